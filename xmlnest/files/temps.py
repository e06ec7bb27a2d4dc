"""Temp files of in-place writes: named so that a later run can tell a stale one and remove it."""

from __future__ import annotations

import contextlib
import functools
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

TEMP_PREFIX = ".xmlnest-"
TEMP_SUFFIX = ".tmp"


def temp_name(name: str, leader: str, writer: int, serial: int) -> str:
    """``.xmlnest-NAME.LEADER-WRITER-N.tmp``: the temp file beside ``name``. ``LEADER``
    (:func:`run_leader`: the pid and start time of the process that leads the run, the
    same in its ``--jobs`` workers) tells a later run whether the run that made it is gone
    (:func:`remove_stale_temp_files`); ``WRITER`` (the writing process's pid) and ``N``
    keep the names of a run's processes apart."""
    return f"{TEMP_PREFIX}{name}.{leader}-{writer}-{serial}{TEMP_SUFFIX}"


def process_tag(pid: int) -> str | None:
    """``PID-START``: a process named so that a reused pid does not pass for it (START: its
    start time in clock ticks since boot, from /proc; ``0`` where there is no /proc).
    ``None`` when there is no such process, or it has exited and awaits reaping."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rpartition(b")")[2].split()
    except FileNotFoundError:
        return None
    except OSError:  # no /proc here: whether the pid runs is all that can be known
        return f"{pid}-0" if _pid_runs(pid) else None
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):  # a zombie has finished its run
        return None
    return f"{pid}-{int(fields[19])}"


def _pid_runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: is there such a process?
    except ProcessLookupError:
        return False
    except PermissionError:  # there is, owned by someone else
        return True
    except (OverflowError, OSError):  # not a pid this system can have
        return False
    return True


def run_leader() -> str:
    """This process's tag (:func:`process_tag`): the run's leader is the process that
    started it; its ``--jobs`` workers are handed its tag (:func:`follow`)."""
    return _followed or _own_tag(os.getpid())


@functools.lru_cache(maxsize=1)
def _own_tag(pid: int) -> str:  # by pid: a forked child asks again
    return process_tag(pid) or f"{pid}-0"


_followed = ""  # a --jobs worker's leader, set once at its start by follow()


def follow(leader: str) -> None:
    """Make this process (a ``--jobs`` worker) name its temp files after ``leader``."""
    global _followed
    _followed = leader


def leader_gone(leader: str) -> bool:
    """Whether the run led by ``leader`` (a :func:`process_tag`) has ended."""
    pid, _, start = leader.partition("-")
    now = process_tag(int(pid))
    return now is None or (start != "0" and now != leader)


def stale_temp_files(folder: Path) -> list[Path]:
    """Temp files an interrupted run left in ``folder``."""
    from pathlib import Path  # only -i runs ask (pathlib stays off the pipe path)

    try:
        with os.scandir(folder) as listing:
            return sorted(
                Path(e.path)
                for e in listing
                if e.name.startswith(TEMP_PREFIX) and e.name.endswith(TEMP_SUFFIX)
            )
    except OSError:
        return []


STALE_AFTER_SECONDS = 60.0
_RUN = re.compile(r"\.(\d+-\d+)-\d+-\d+" + re.escape(TEMP_SUFFIX) + "$")  # LEADER-WRITER-N
_OLD_PID = re.compile(r"\.(\d+)-\d+" + re.escape(TEMP_SUFFIX) + "$")  # PID-N, before issue 20


def _is_stale(name: str, age: float, older_than: float) -> bool:
    """A temp file whose run has ended is stale at once (its leader is gone: killed
    workers die with it, and what they left is no one's). Names without a leader: stale
    once the pid in them no longer runs, or, whatever they say, once older than
    ``older_than`` seconds."""
    m = _RUN.search(name)
    if m is not None:
        return leader_gone(m.group(1))
    m = _OLD_PID.search(name)
    if m is not None and not _pid_runs(int(m.group(1))):
        return True
    return age > older_than


def remove_stale_temp_files(folder: Path, *, older_than: float = STALE_AFTER_SECONDS) -> list[Path]:
    """Delete temp files a killed run left in ``folder``; return what was removed.

    A temp file whose run is over (its leader, named in it, is gone) goes at once; one
    whose run is still going is kept, however old: it may be renamed any moment. Names
    from older versions (a writer's pid only, or none) go once that pid no longer runs,
    or after ``older_than`` seconds.
    """
    import time

    now = time.time()
    removed: list[Path] = []
    for p in stale_temp_files(folder):
        with contextlib.suppress(OSError):
            if not p.is_file() or p.is_symlink():
                continue
            if _is_stale(p.name, now - p.stat().st_mtime, older_than):
                p.unlink()
                removed.append(p)
    return removed
