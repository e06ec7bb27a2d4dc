"""Never lose a file, part 2: faults while writing in place.

* SIGKILL at random moments of a big ``-i`` run: every file is its old or its new bytes;
* write failures (ENOSPC, permission denied at rename) keep the original, are reported
  per file, and the run goes on to exit 3;
* Ctrl-C exits 130 with no half-written file; a closed stdout ends quietly.
"""

from __future__ import annotations

import csv
import errno
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import REPO, require_corpus, run_cli
from xmlnest import files as sources
from xmlnest.engine import core, document
from xmlnest.errors import WriteError, XmlnestError
from xmlnest.files import atomic
from xmlnest.model import Options

ARGS = ["--arch", "intel", "--no-validate"]
COPIES = 2000
KILLS = 5
TEMP = re.compile(re.escape(sources.TEMP_PREFIX) + r".*" + re.escape(sources.TEMP_SUFFIX) + "$")


@dataclass(frozen=True)
class Pair:
    old: bytes
    new: bytes


@cache
def _corpus_pairs() -> tuple[Pair, ...]:
    """x86 corpus domains made KVM, that need the nesting edit: (old, expected new) bytes."""
    corpus = require_corpus()
    with (corpus / "index.tsv").open(newline="") as fh:
        rows = [
            r
            for r in csv.DictReader(fh, delimiter="\t")
            if r["arch"] == "x86_64"
            and r["root"] == "domain"
            and r["domain_type"] in ("kvm", "qemu")
        ]
    pairs: list[Pair] = []
    for row in rows:
        raw = (corpus / row["path"]).read_bytes()
        raw = re.sub(rb"(<domain\b[^>]*?\btype=)(['\"])qemu\2", rb"\1\2kvm\2", raw, count=1)
        try:
            out = core.process(raw, Options(arch="intel"))
        except XmlnestError:
            continue
        if out.changed:
            document.parse(out.output)  # the new bytes parse
            pairs.append(Pair(raw, out.output))
    assert len(pairs) >= 50, "too few corpus domains need the edit"
    return tuple(pairs)


def _populate(folder: Path, pairs: tuple[Pair, ...], copies: int) -> dict[Path, Pair]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[Path, Pair] = {}
    for i in range(copies):
        pair = pairs[i % len(pairs)]
        f = folder / f"vm-{i:05}.xml"
        f.write_bytes(pair.old)
        files[f] = pair
    return files


def _state(folder: Path, files: dict[Path, Pair]) -> tuple[int, int, list[str]]:
    """(files still old, files new, temp files); fails on any other content or file."""
    old = new = 0
    temps: list[str] = []
    for entry in folder.iterdir():
        if entry not in files:
            assert TEMP.match(entry.name), f"unexpected file {entry.name}"
            temps.append(entry.name)
    for f, pair in files.items():
        data = f.read_bytes()
        if data == pair.old:
            old += 1
        elif data == pair.new:
            new += 1
        else:
            pytest.fail(f"{f.name}: neither its old nor its new bytes ({len(data)} bytes)")
    return old, new, temps


def _inodes(folder: Path) -> dict[str, int]:
    with os.scandir(folder) as it:
        return {e.name: e.inode() for e in it}


def _start_and_wait_for(folder: Path, done: int, *args: str) -> subprocess.Popen[bytes]:
    """Start ``xmlnest -i FOLDER`` and return once ``done`` files were replaced (or it ended).

    os.replace gives each rewritten file a new inode, so progress is a cheap scandir.
    """
    before = _inodes(folder)
    proc = _xmlnest(*ARGS, "-q", "-i", *args, str(folder))
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        now = _inodes(folder)
        if sum(1 for name, ino in before.items() if now.get(name) != ino) >= done:
            break
        time.sleep(0.002)
    return proc


def _xmlnest(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "xmlnest", *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: kill the workers too
    )


def _live_in_group(pgid: int) -> list[int]:
    """Processes of group ``pgid`` that are still running (zombies awaiting reaping aside)."""
    live = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            live.append(int(stat_file.parent.name))
    return live


def _wait_group_gone(pgid: int) -> None:
    """Every process of a killed run is gone (no orphaned worker still writing)."""
    deadline = time.monotonic() + 10
    while _live_in_group(pgid):
        if time.monotonic() > deadline:
            pytest.fail(f"processes {_live_in_group(pgid)} outlived SIGKILL")
        time.sleep(0.01)


def test_sigkill_at_random_moments_never_leaves_a_half_written_file(tmp_path: Path) -> None:
    pairs = _corpus_pairs()
    folder = tmp_path / "vms"
    files = _populate(folder, pairs, COPIES)
    rng = random.Random(os.environ.get("XMLNEST_FAULT_SEED", "20240601"))
    leftovers: list[str] = []
    converted: list[int] = []
    for _ in range(KILLS):
        proc = _start_and_wait_for(folder, rng.randint(1, COPIES - 200))
        time.sleep(rng.uniform(0, 0.01))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and its worker processes
        proc.wait(30)
        _wait_group_gone(proc.pid)
        old, new, temps = _state(folder, files)
        converted.append(new)
        leftovers += [t for t in temps if t not in leftovers]
        for f, pair in files.items():  # next run starts from scratch
            if f.read_bytes() != pair.old:
                f.write_bytes(pair.old)
    assert any(0 < n < COPIES for n in converted), f"no kill landed mid-run: {converted}"
    # a complete run afterwards converts everything
    proc = _xmlnest(*ARGS, "-q", "-i", str(folder))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    old, new, temps = _state(folder, files)
    assert (old, new) == (0, COPIES)
    print(f"converted at kill: {converted}; temp files left by kills: {len(leftovers)}")
    # A killed run may leave its temp file behind; a later run must not leave more.
    assert set(temps) <= set(leftovers)


def test_a_later_run_removes_stale_temp_files(tmp_path: Path) -> None:
    vm = tmp_path / "vm.xml"
    vm.write_bytes(_plain())
    stale = tmp_path / f"{sources.TEMP_PREFIX}vm.xml.k1ll3d{sources.TEMP_SUFFIX}"
    stale.write_bytes(_plain()[:40])
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    r = run_cli([*ARGS, "-i", str(tmp_path)])
    assert r.code == 0, r.err
    assert sources.stale_temp_files(tmp_path) == []


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_temp_file_whose_writer_is_dead_goes_at_once(tmp_path: Path) -> None:
    """Temp names carry the writer's pid: a killed writer's temp file is removed by the
    next in-place run even when it is seconds old; a live writer's (and one whose name
    has no pid) is kept until it is a minute old."""
    vm = tmp_path / "vm.xml"
    vm.write_bytes(_plain())
    temp = f"{sources.TEMP_PREFIX}vm.xml.{{}}{sources.TEMP_SUFFIX}"
    dead = tmp_path / temp.format(f"{_dead_pid()}-0")
    live = tmp_path / temp.format(f"{os.getppid()}-3")  # pytest's parent: running
    no_pid = tmp_path / temp.format("k1ll3d")
    for p in (dead, live, no_pid):
        p.write_bytes(_plain()[:40])  # fresh: the age rule alone would keep them all
    r = run_cli([*ARGS, "-i", str(vm)])
    assert r.code == 0, r.err
    assert r.err_lines == [f"xmlnest: removed {dead}, a temp file left by an interrupted run"]
    assert sources.stale_temp_files(tmp_path) == sorted([live, no_pid])
    assert vm.read_bytes() == _nested()
    an_hour_ago = time.time() - 3600
    for p in (live, no_pid):
        os.utime(p, (an_hour_ago, an_hour_ago))
    r = run_cli([*ARGS, "-i", str(vm)])
    assert r.code == 0, r.err
    assert sources.stale_temp_files(tmp_path) == []


def _plain() -> bytes:
    from tests.test_safety import PLAIN

    return PLAIN


def _nested() -> bytes:
    from tests.test_safety import NESTED

    return NESTED


def _temp_of(fd: int, name: str) -> bool:
    """Whether ``fd`` is the temp file an in-place write of ``name`` goes through."""
    return (
        os.readlink(f"/proc/self/fd/{fd}")
        .rsplit("/", 1)[-1]
        .startswith(f"{sources.TEMP_PREFIX}{name}.")
    )


def _three(tmp_path: Path) -> list[Path]:
    files = []
    for name in ("a.xml", "b.xml", "c.xml"):
        f = tmp_path / name
        f.write_bytes(_plain())
        files.append(f)
    return files


def test_enospc_keeps_the_original_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = _three(tmp_path)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if _temp_of(fd, "b.xml"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    r = run_cli([*ARGS, "-i", str(a), str(b), str(c)])
    assert r.code == 3
    mine = [ln for ln in r.err_lines if ln.startswith(f"{b}:")]
    assert len(mine) == 1 and "No space left on device" in mine[0] and "unchanged" in mine[0]
    assert b.read_bytes() == _plain()
    assert a.read_bytes() == c.read_bytes() == _nested()
    assert sources.stale_temp_files(tmp_path) == []


@pytest.mark.parametrize("err", [errno.EACCES, errno.EPERM, errno.EROFS, errno.EXDEV])
def test_rename_failure_keeps_the_original_and_the_run_goes_on(
    err: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = _three(tmp_path)
    real_replace = os.replace

    def replace(src: str, dst: str | Path) -> None:
        if Path(dst).name == "b.xml":
            raise (
                PermissionError(err, os.strerror(err))
                if err
                in (
                    errno.EACCES,
                    errno.EPERM,
                )
                else OSError(err, os.strerror(err))
            )
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    r = run_cli([*ARGS, "-i", str(a), str(b), str(c)])
    assert r.code == 3
    mine = [ln for ln in r.err_lines if ln.startswith(f"{b}:")]
    assert len(mine) == 1 and os.strerror(err) in mine[0], r.err
    assert b.read_bytes() == _plain()
    assert a.read_bytes() == c.read_bytes() == _nested()
    assert sources.stale_temp_files(tmp_path) == []


def test_file_replaced_mid_run_by_a_folder_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target vanished between read and write: reported, nothing created in its place."""
    a, b, c = _three(tmp_path)
    real_stage = sources.AtomicBatch.stage

    def stage(
        self: sources.AtomicBatch, path: str | Path, data: bytes, seen: tuple[int, ...] | None
    ) -> str:
        if Path(path).name == "b.xml":
            Path(path).unlink()
        return real_stage(self, path, data, seen)

    monkeypatch.setattr(sources.AtomicBatch, "stage", stage)
    r = run_cli([*ARGS, "-i", str(a), str(b), str(c)])
    assert r.code == 3
    assert [ln for ln in r.err_lines if ln.startswith(f"{b}:")]
    assert not b.exists()
    assert a.read_bytes() == c.read_bytes() == _nested()
    assert sources.stale_temp_files(tmp_path) == []


@pytest.mark.parametrize("change", ["edit", "delete"])
def test_file_changed_by_another_program_before_the_batch_commits_is_left_alone(
    change: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewrites wait for the end of their batch; a file someone saved (or removed) in
    that window keeps their version and is reported, the others are written."""
    a, b, c = _three(tmp_path)
    real_commit = sources.AtomicBatch.commit

    def commit(self: sources.AtomicBatch) -> dict[str, WriteError]:
        if change == "edit":
            b.write_bytes(_plain() + b"<!-- saved by an editor -->\n")
        else:
            b.unlink()
        return real_commit(self)

    monkeypatch.setattr(sources.AtomicBatch, "commit", commit)
    r = run_cli([*ARGS, "-i", str(a), str(b), str(c)])
    assert r.code == 3
    mine = [ln for ln in r.err_lines if ln.startswith(f"{b}:")]
    assert len(mine) == 1 and "another program changed or moved it" in mine[0], r.err
    if change == "edit":
        assert b.read_bytes() == _plain() + b"<!-- saved by an editor -->\n"
    else:
        assert not b.exists()
    assert a.read_bytes() == c.read_bytes() == _nested()
    assert sources.stale_temp_files(tmp_path) == []


def test_sigint_exits_130_without_half_written_files(tmp_path: Path) -> None:
    pairs = _corpus_pairs()
    folder = tmp_path / "vms"
    files = _populate(folder, pairs, 1500)
    proc = _start_and_wait_for(folder, 20)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole foreground group
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 20
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err, err.decode()
    old, new, temps = _state(folder, files)
    assert temps == []
    assert old > 0, "interrupted too late to prove anything"


def test_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    from tests.test_safety import _big_domain

    for i in range(30):
        (tmp_path / f"vm{i:02}.xml").write_bytes(_big_domain(200))
    cmd = f"{sys.executable} -m xmlnest --arch intel --no-validate --diff {tmp_path} | head -1"
    res = subprocess.run(
        ["bash", "-o", "pipefail", "-c", cmd],
        cwd=REPO,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert res.stdout.startswith(b"---"), res.stdout[:200]
    assert res.stdout.count(b"\n") == 1
    assert res.stderr == b"", res.stderr  # no traceback, no BrokenPipeError noise
    # the reader leaving is not a failure: nothing was rejected, so exit 0
    assert res.returncode == 0, res.returncode
    # a single big document to stdout, too
    big = tmp_path / "vm00.xml"
    res = subprocess.run(
        ["bash", "-c", f"{sys.executable} -m xmlnest --arch intel --no-validate {big} | head -1"],
        cwd=REPO,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert res.stdout == _big_domain(200).split(b"\n", 1)[0] + b"\n"
    assert res.stderr == b"", res.stderr


def _interrupted_leaves_every_file_old(tmp_path: Path, *files: Path) -> None:
    """``-i`` over ``files`` with a KeyboardInterrupt armed: exit 130, every file still
    its old bytes, no temp file left."""
    r = run_cli([*ARGS, "-i", *map(str, files)])
    assert r.code == 130
    assert [f.read_bytes() for f in files] == [_plain()] * len(files)
    assert sources.stale_temp_files(tmp_path) == []


def test_interrupt_in_the_middle_of_a_write_keeps_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the new bytes are half on disk: the original stays, the temp goes."""
    a, b, c = _three(tmp_path)

    def fsync(fd: int) -> None:
        if _temp_of(fd, "b.xml"):
            os.ftruncate(fd, 10)  # as if only part had reached the disk
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync)
    # Renames wait until every file of the batch is on disk: none had happened yet.
    _interrupted_leaves_every_file_old(tmp_path, a, b, c)


def test_interrupt_between_the_renames_of_a_batch_leaves_each_file_old_or_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = _three(tmp_path)
    real_replace = os.replace

    def replace(src: str, dst: str | Path) -> None:
        if Path(dst).name == "b.xml":
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    r = run_cli([*ARGS, "-i", str(a), str(b), str(c)])
    assert r.code == 130
    assert a.read_bytes() == _nested()
    assert b.read_bytes() == c.read_bytes() == _plain()
    assert sources.stale_temp_files(tmp_path) == []


def test_a_file_saved_by_another_program_while_it_was_processed_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The identity checked before the rename is the file's as it was read."""
    a, b, c = _three(tmp_path)
    real_transform = core.transform
    theirs = _plain() + b"<!-- saved meanwhile -->\n"

    def transform(raw: bytes, *args: object, **kw: object) -> core.Outcome:
        out = real_transform(raw, *args, **kw)  # type: ignore[arg-type]
        if b.read_bytes() == _plain():
            b.write_bytes(theirs)  # same inode, new size and mtime
        return out

    monkeypatch.setattr(core, "transform", transform)  # the runner's step
    r = run_cli([*ARGS, "-i", str(b)])
    assert r.code == 3 and "another program changed or moved it" in r.err, r.err
    assert b.read_bytes() == theirs
    assert sources.stale_temp_files(tmp_path) == []


def test_interrupt_while_staging_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, c = _three(tmp_path)
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if _temp_of(fd, "b.xml"):
            raise KeyboardInterrupt
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    _interrupted_leaves_every_file_old(tmp_path, a, b, c)


def test_interrupt_just_after_the_temp_file_is_opened_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The narrowest window: the temp file exists, its descriptor not yet handed back.
    Its name was claimed before the open, so leaving the batch still removes it."""
    a, b, c = _three(tmp_path)
    real_open = os.open

    def open_then_interrupt(path: str, flags: int, *mode: int) -> int:
        fd = real_open(path, flags, *mode)
        if ".xmlnest-b.xml." in os.fspath(path):
            raise KeyboardInterrupt  # as if SIGINT landed on the next bytecode
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupt)
    _interrupted_leaves_every_file_old(tmp_path, a, b, c)


def test_interrupted_before_results_are_reported_still_syncs_the_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch renamed files but Ctrl-C came before their results: their folders are
    fsynced all the same, so the renames are durable."""
    from xmlnest.cli.report import Report  # the class cli.py counts results with

    for sub in ("one", "two"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "vm.xml").write_bytes(_plain())
    synced: list[str | Path] = []
    monkeypatch.setattr(atomic, "_fsync_dir", synced.append)

    def add(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Report, "add", add)
    r = run_cli([*ARGS, "-i", str(tmp_path)])
    assert r.code == 130
    assert (tmp_path / "one" / "vm.xml").read_bytes() == _nested()  # renamed, unreported
    assert sorted(os.path.realpath(f) for f in synced) == [
        str((tmp_path / sub).resolve()) for sub in ("one", "two")
    ]


def test_a_rewrite_that_cannot_keep_the_owner_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the temp file cannot be given the file's owner and group (root squashed on
    NFS, say), the file is left alone rather than handed to the user."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file owned by someone else")
    vm = tmp_path / "vm.xml"
    vm.write_bytes(_plain())
    os.chown(vm, 4242, 4343)
    calls: list[tuple[int, int]] = []

    def fchown(fd: int, uid: int, gid: int) -> None:
        calls.append((uid, gid))
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "fchown", fchown)
    r = run_cli([*ARGS, "-i", str(vm)])
    assert r.code == 3 and r.out == b""
    assert r.err_lines == [
        f"{vm}: not written: a rewrite cannot keep its owner and group (uid 4242, gid 4343), "
        "the file is unchanged; run xmlnest as root or as a member of the file's group, or "
        "use --output-dir"
    ]
    assert calls == [(4242, 4343)]
    assert vm.read_bytes() == _plain() and (vm.stat().st_uid, vm.stat().st_gid) == (4242, 4343)
    assert sources.stale_temp_files(tmp_path) == []


def test_as_root_a_rewrite_keeps_owner_and_group(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to make a file owned by someone else")
    vm = tmp_path / "vm.xml"
    vm.write_bytes(_plain())
    os.chown(vm, 4242, 4343)
    vm.chmod(0o640)
    r = run_cli([*ARGS, "-i", str(vm)])
    assert r.code == 0, r.err
    st = vm.stat()
    assert vm.read_bytes() == _nested()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (4242, 4343, 0o640)


def test_a_batch_starts_writeback_early_on_linux(tmp_path: Path) -> None:
    """Every staged file's writeback is started before the batch waits on any."""
    if not sys.platform.startswith("linux"):
        pytest.skip("sync_file_range is Linux's")
    started: list[int] = []
    real = sources._writeback_starter()
    assert real is not None
    files = [tmp_path / f"{i}.xml" for i in range(5)]
    for f in files:
        f.write_bytes(b"old")

    def start(fd: int) -> None:
        started.append(fd)
        real(fd)

    with sources.AtomicBatch() as batch:
        batch._start = start
        for i, f in enumerate(files):
            batch.stage(f, b"new %d" % i)
        assert [f.read_bytes() for f in files] == [b"old"] * 5  # nothing renamed yet
        assert batch.commit() == {}
    assert len(started) == 5
    assert [f.read_bytes() for f in files] == [b"new %d" % i for i in range(5)]
    assert sources.stale_temp_files(tmp_path) == []


def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    files = _populate(tmp_path / "vms", _sample_pairs(), 800)
    proc = _start_and_wait_for(tmp_path / "vms", 20, "--jobs", "2")
    try:
        assert proc.poll() is None, "the run ended before the kill"
        os.kill(proc.pid, signal.SIGKILL)  # the parent only, as the OOM killer might
        proc.wait(10)
        deadline = time.monotonic() + 2
        while _live_in_group(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _live_in_group(proc.pid) == []
    finally:
        if _live_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        _wait_group_gone(proc.pid)
    _state(tmp_path / "vms", files)  # and still: every file old or new


def test_a_read_only_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    """0444: no one may write it (root could, by overriding the mode): -i refuses it with
    one line and exit 3, and the batch goes on with the others."""
    ro, rw = tmp_path / "a-ro.xml", tmp_path / "b-rw.xml"
    for f in (ro, rw):
        f.write_bytes(_plain())
    ro.chmod(0o444)
    before = ro.stat()
    r = run_cli([*ARGS, "-q", "-i", str(tmp_path)])
    assert r.code == 3 and r.out == b""
    assert r.err_lines == [
        f"{ro}: not written: it is read-only (mode 0444), the file is unchanged; make it "
        "writable (chmod u+w) if it should change, or use --output-dir"
    ]
    after = ro.stat()
    assert ro.read_bytes() == _plain()
    assert (after.st_ino, after.st_mtime_ns, after.st_mode) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_mode,
    )
    assert rw.read_bytes() == _nested()
    assert sources.stale_temp_files(tmp_path) == []


# The CLI as another user: Python starts as root (its install may be root's alone), runs
# the command once on a scratch copy so that every module the run needs is loaded, then
# drops to UID (no supplementary groups) and runs it for real.
AS_USER = """
import os, sys
from xmlnest.cli import main
uid, gid, scratch, args = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
main([*args[:-1], scratch])
print("--- as the user ---", file=sys.stderr, flush=True)
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
sys.exit(main(args))
"""
NOBODY = 65534


def _as_user(uid: int, gid: int, path: Path, scratch: Path) -> tuple[int, list[str]]:
    r = subprocess.run(
        [sys.executable, "-c", AS_USER, str(uid), str(gid), str(scratch), *ARGS, "-i", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = r.stderr.partition("--- as the user ---\n")[2]
    return r.returncode, [ln for ln in err.splitlines() if ln]


@pytest.mark.parametrize(
    ("owner", "mode", "problem"),
    [
        (
            (0, 0),
            0o644,
            "not written: you may not write it (permission denied), the file is unchanged; "
            "run xmlnest as a user who may write it, or use --output-dir",
        ),
        (
            (0, 0),
            0o666,
            "not written: it is owned by uid 0 and a rewrite would make it yours, the file "
            "is unchanged; run xmlnest as its owner (or as root, which keeps owner and "
            "group), or use --output-dir",
        ),
        (
            (NOBODY, 0),
            0o644,
            f"not written: a rewrite cannot keep its group (uid {NOBODY}, gid 0), the file "
            "is unchanged; run xmlnest as root or as a member of the file's group, or use "
            "--output-dir",
        ),
    ],
    ids=["root-owned", "root-owned-world-writable", "foreign-group"],
)
def test_another_user_cannot_take_over_a_file_in_a_folder_they_may_write(
    owner: tuple[int, int], mode: int, problem: str
) -> None:
    """A user who may write the folder could replace any file in it; -i does not: a file
    the user may not write, or whose owner or group the rewrite would change, is refused
    (exit 3, one line) and keeps its bytes, inode, owner and mode."""
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to make files owned by root and to run as another user")
    folder = Path(tempfile.mkdtemp(prefix="xmlnest-owner-"))
    try:
        folder.chmod(0o777)  # anyone may write it, no sticky bit: may replace any file
        vm, scratch = folder / "vm.xml", folder / "scratch.xml"
        for f in (vm, scratch):
            f.write_bytes(_plain())
        os.chown(vm, *owner)
        vm.chmod(mode)
        before = vm.stat()
        code, lines = _as_user(NOBODY, NOBODY, vm, scratch)
        assert (code, lines) == (3, [f"{vm}: {problem}"])
        after = vm.stat()
        assert vm.read_bytes() == _plain()
        assert (after.st_ino, after.st_uid, after.st_gid, after.st_mode) == (
            before.st_ino,
            before.st_uid,
            before.st_gid,
            before.st_mode,
        )
        assert sources.stale_temp_files(folder) == []
        # the same user rewrites a file that is theirs, in the same way
        os.chown(vm, NOBODY, NOBODY)
        assert _as_user(NOBODY, NOBODY, vm, scratch) == (0, [])
        assert vm.read_bytes() == _nested() and vm.stat().st_uid == NOBODY
    finally:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _sample_pairs() -> tuple[Pair, ...]:
    """The samples xmlnest converts under ARGS (no corpus needed)."""
    old = (REPO / "samples" / "intel-l1.xml").read_bytes()
    return (Pair(old, core.process(old, Options(arch="intel")).output),)


def _writer_of(temp: str) -> int | None:
    """The writing process's pid in a temp name (``.LEADER-START-WRITER-N.tmp``, or
    ``.WRITER-N.tmp`` as named before issue 20)."""
    suffix = re.escape(sources.TEMP_SUFFIX) + "$"
    m = re.search(r"\.\d+-\d+-(\d+)-\d+" + suffix, temp) or re.search(r"\.(\d+)-\d+" + suffix, temp)
    return int(m.group(1)) if m else None


def test_a_kill_9_of_a_jobs_run_leaves_temp_files_the_next_run_removes_at_once(
    tmp_path: Path,
) -> None:
    """`kill -9` of `xmlnest -i --jobs 2` over 3,000 files while its worker holds temp
    files: the worker dies with it, and the run started right after removes every temp
    file the killed run left (the worker's too: they name the run's leader, which is
    gone) and converts everything; no file is ever half-written."""
    folder = tmp_path / "vms"
    files = _populate(folder, _sample_pairs(), 3000)
    proc = _xmlnest(*ARGS, "-q", "-i", "--jobs", "2", str(folder))
    leader = proc.pid
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            with os.scandir(folder) as it:
                temps = [e.name for e in it if TEMP.match(e.name)]
            if any(_writer_of(t) not in (None, leader) for t in temps):
                os.kill(leader, signal.SIGKILL)  # the leader only, as a user's kill -9 does
                seen.update(temps)
                break
            time.sleep(0.001)
        assert seen, "no worker temp file was seen before the run ended"
        proc.wait(10)  # reaped, as a shell reaps what it started
        gone = time.monotonic() + 2
        while _live_in_group(leader) and time.monotonic() < gone:
            time.sleep(0.01)
        assert _live_in_group(leader) == [], "the worker outlived its leader"
    finally:
        if proc.poll() is None:
            os.killpg(leader, signal.SIGKILL)
    _, _, left = _state(folder, files)
    assert any(_writer_of(t) != leader for t in left), "the kill left no worker temp file"
    after = _xmlnest(*ARGS, "-i", str(folder))  # at once: no waiting for anything to age
    _, err = after.communicate(timeout=300)
    said = [ln for ln in err.decode().splitlines() if " XN203 " not in ln]
    assert after.returncode == 0, said
    removed = [ln for ln in said if "a temp file left by an interrupted run" in ln]
    assert len(removed) == len(left), (left, said)
    old, new, temps = _state(folder, files)
    assert (old, new, temps) == (0, 3000, [])


def test_a_temp_file_is_stale_exactly_when_its_run_is_over(tmp_path: Path) -> None:
    """Temp names carry the run leader's pid and start time: a live leader's temp file is
    kept however old (the run may rename it any moment); a dead leader's, a zombie's, and
    one whose pid now belongs to another process (another start time) go at once."""
    from xmlnest.files.temps import process_tag, temp_name

    vm = tmp_path / "vm.xml"
    vm.write_bytes(_plain())
    me = process_tag(os.getpid())
    assert me is not None and me.startswith(f"{os.getpid()}-")
    pid, start = me.split("-")
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while process_tag(zombie.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)  # exited, not yet reaped
    names = {
        "live": temp_name("vm.xml", me, 1, 0),
        "dead": temp_name("vm.xml", f"{_dead_pid()}-{start}", 1, 1),
        "reused": temp_name("vm.xml", f"{pid}-{int(start) + 1}", 1, 2),
        "zombie": temp_name("vm.xml", f"{zombie.pid}-{start}", 1, 3),
    }
    an_hour_ago = time.time() - 3600
    for name in names.values():
        (tmp_path / name).write_bytes(_plain()[:40])
    os.utime(tmp_path / names["live"], (an_hour_ago, an_hour_ago))
    try:
        r = run_cli([*ARGS, "-i", str(vm)])
    finally:
        zombie.wait()
    assert r.code == 0, r.err
    assert sorted(r.err_lines) == sorted(
        f"xmlnest: removed {tmp_path / names[k]}, a temp file left by an interrupted run"
        for k in ("dead", "reused", "zombie")
    )
    assert sources.stale_temp_files(tmp_path) == [tmp_path / names["live"]]
