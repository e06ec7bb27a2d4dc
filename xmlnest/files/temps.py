"""Temp files of in-place writes: named so that a later run can tell a stale one and remove it."""

from __future__ import annotations

import contextlib
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

TEMP_PREFIX = ".xmlnest-"
TEMP_SUFFIX = ".tmp"


def temp_name(name: str, pid: int, serial: int) -> str:
    """``.xmlnest-NAME.PID-N.tmp``: the temp file beside ``name`` (the pid tells a later
    run whether its writer still runs, see :func:`remove_stale_temp_files`)."""
    return f"{TEMP_PREFIX}{name}.{pid}-{serial}{TEMP_SUFFIX}"


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
_TEMP_PID = re.compile(r"\.(\d+)-\d+" + re.escape(TEMP_SUFFIX) + "$")


def _writer_alive(name: str) -> bool | None:
    """Whether the process a temp file's name says wrote it is running (``None``: the
    name carries no pid, see :func:`temp_name`)."""
    m = _TEMP_PID.search(name)
    if m is None:
        return None
    try:
        os.kill(int(m.group(1)), 0)  # signal 0: is there such a process?
    except ProcessLookupError:
        return False
    except PermissionError:  # there is, owned by someone else
        return True
    except (OverflowError, OSError):  # not a pid this system can have
        return None
    return True


def remove_stale_temp_files(folder: Path, *, older_than: float = STALE_AFTER_SECONDS) -> list[Path]:
    """Delete temp files an interrupted run left in ``folder``; return what was removed.

    A temp file whose writer (the pid in its name) is no longer running goes at once.
    One whose writer is alive, or whose name carries no pid, goes only once it is older
    than ``older_than`` seconds, so a run still writing in the same folder keeps its own
    temp file.
    """
    import time

    now = time.time()
    removed: list[Path] = []
    for p in stale_temp_files(folder):
        with contextlib.suppress(OSError):
            if not p.is_file() or p.is_symlink():
                continue
            if _writer_alive(p.name) is False or now - p.stat().st_mtime > older_than:
                p.unlink()
                removed.append(p)
    return removed
