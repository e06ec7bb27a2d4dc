"""Atomic, durable in-place writes: a temp file beside the target, fsync, rename over it."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import stat
import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from xmlnest.errors import WriteError
from xmlnest.files.inputs import identity_of
from xmlnest.files.temps import run_leader, temp_name

if TYPE_CHECKING:
    from pathlib import Path


class _Staged:
    """A new content in its temp file, not yet renamed over its target."""

    __slots__ = ("key", "target", "seen", "tmp", "fd")

    def __init__(self, key: str, target: str, seen: tuple[int, ...], tmp: str, fd: int):
        self.key = key  # the path as given to stage()
        self.target = target  # the file to replace (symlinks resolved)
        self.seen = seen  # its device, inode, size and mtime when staged
        self.tmp = tmp  # the temp file ("" once renamed or removed)
        self.fd = fd  # open until fsynced (-1 after)


class AtomicBatch:
    """In-place rewrites made durable together, the way dpkg unpacks.

    ``stage`` writes each new content to a temp file beside its target and starts its
    writeback at once; ``commit`` waits for all of them (fsync each: by then mostly
    done), and only then renames each over its target. At every moment, a power loss
    included, each file holds its old bytes or its new ones; one file's failure leaves
    the others alone. Waiting for the disk once per batch instead of once per file is
    what lets a folder of templates be rewritten at nearly the speed of a check.
    Use it as a context manager: leaving it removes the temp files of whatever was not
    committed (an error or Ctrl-C in the middle).
    """

    def __init__(self, *, start_writeback: bool = True) -> None:
        self._staged: list[_Staged] = []
        self._start = _writeback_starter() if start_writeback else None

    def __enter__(self) -> AtomicBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._discard()

    def _discard(self) -> None:
        for s in self._staged:
            _drop(s)
        self._staged = []

    def stage(self, path: str | Path, data: bytes, seen: tuple[int, ...] | None = None) -> str:
        """Write ``data`` beside ``path``; return the folder the rename will happen in.

        ``seen``: the file's identity when it was read (:func:`read`); if it differs at
        commit time, another program changed the file since, and it is left alone.
        """
        # A symlink's target is replaced, not the link. (Only the last component matters:
        # a linked folder on the way still leads to the same folder. One lstat, not one
        # per component as realpath does.)
        target = os.path.realpath(path) if os.path.islink(path) else os.fspath(path)
        folder, name = os.path.split(target)
        st = _regular_file(target)
        _may_replace(st, target)
        # Tracked before the temp file exists, its name claimed before each open: a Ctrl-C
        # at any point, even just after the open returns, leaves __exit__ a name to remove.
        staged = _Staged(str(path), target, seen or identity_of(st), "", -1)
        self._staged.append(staged)
        try:
            staged.fd, staged.tmp = _create_temp(folder or ".", name, staged)
        except OSError as exc:
            self._staged.remove(staged)
            raise _not_written(exc) from None
        fd = staged.fd
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            _keep_owner(fd, st)
            _copy_xattrs(target, fd)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self._start is not None:
                self._start(fd)
        except (OSError, WriteError) as exc:
            self._staged.remove(staged)
            _drop(staged)
            if isinstance(exc, WriteError):
                raise
            raise _not_written(exc) from None
        return folder or "."

    def commit(self) -> dict[str, WriteError]:
        """fsync every staged file, then rename each over its target. Returns the
        failures by the path given to :meth:`stage`; the folders still need an fsync
        for the renames themselves to be durable (:func:`sync_folders`)."""
        failed: dict[str, WriteError] = {}
        for s in self._staged:
            try:
                os.fsync(s.fd)
            except OSError as exc:
                failed[s.key] = _not_written(exc)
            finally:
                fd, s.fd = s.fd, -1
                with contextlib.suppress(OSError):  # fsync said what matters
                    os.close(fd)
        for s in self._staged:
            if s.key in failed:
                continue
            if _identity_now(s.target) != s.seen:
                failed[s.key] = WriteError(
                    "not written: another program changed or moved it during the run",
                    hint="run xmlnest on it again",
                )
                continue
            try:
                os.replace(s.tmp, s.target)
                s.tmp = ""
            except OSError as exc:
                failed[s.key] = _not_written(exc)
        self._discard()  # the temp files of the failures
        return failed


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_temp_serial = itertools.count()


def _create_temp(folder: str, name: str, claim: _Staged | None = None) -> tuple[int, str]:
    """A new file ``.xmlnest-NAME.LEADER-PID-N.tmp`` beside ``name`` (see ``temp_name``),
    private until chmod'ed (what tempfile.mkstemp does, at a fifth of its cost: it runs
    once per rewrite). ``claim`` holds each name while its open is tried, so that an
    interrupt between the open and the caller's bookkeeping cannot lose the file."""
    leader, pid = run_leader(), os.getpid()
    while True:
        tmp = os.path.join(folder, temp_name(name, leader, pid, next(_temp_serial)))
        if claim is not None:
            claim.tmp = tmp
        try:
            return os.open(tmp, _TEMP_FLAGS | os.O_CLOEXEC, 0o600), tmp
        except FileExistsError:  # left by an earlier run that had the same pid: not ours
            if claim is not None:
                claim.tmp = ""
            continue


def _copy_xattrs(source: str, fd: int) -> None:
    """Extended attributes go with the content: POSIX ACLs, SELinux labels, user.*.
    Each is copied if the system lets us (a label may need privileges we lack)."""
    try:
        names = os.listxattr(source)
    except (OSError, AttributeError):  # none here, or no xattrs on this system
        return
    for name in names:
        with contextlib.suppress(OSError):
            os.setxattr(fd, name, os.getxattr(source, name))


def _drop(s: _Staged) -> None:
    """Close and remove a staged temp file (nothing once it is renamed)."""
    fd, s.fd = s.fd, -1
    if fd >= 0:
        with contextlib.suppress(OSError):
            os.close(fd)
    tmp, s.tmp = s.tmp, ""
    if tmp:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Replace ``path``'s content atomically and durably, its folder fsynced too (a batch
    of one, see :class:`AtomicBatch`); a symlink keeps pointing where it did."""
    with AtomicBatch(start_writeback=False) as batch:
        folder = batch.stage(path, data)
        failed = batch.commit()
    if failed:
        raise failed[str(path)]
    _fsync_dir(folder)


def _regular_file(target: str) -> os.stat_result:
    try:
        st = os.stat(target)
    except OSError as exc:
        raise WriteError(
            f"not written: it vanished before writing ({exc.strerror})",
            hint="check that nothing else moves the file during the run",
        ) from None
    if not stat.S_ISREG(st.st_mode):
        # A FIFO (or device) would be swapped for a regular file by os.replace.
        raise WriteError(
            "is not a regular file, so it is not rewritten in place",
            hint="write the output elsewhere (stdout or --output-dir)",
        )
    return st


def _may_replace(st: os.stat_result, target: str) -> None:
    """Refuse a file this run could not open for writing, or whose owner a rewrite would
    change: replacing it works through the folder's permission, not the file's, and the
    new file would be the user's. A file no one may write (no w bit, 0444) is read-only
    by intent and refused even for root, who could override the mode."""
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o222:
        raise WriteError(
            f"not written: it is read-only (mode {mode:04o}), the file is unchanged",
            hint="make it writable (chmod u+w) if it should change, or use --output-dir",
        )
    if not os.access(target, os.W_OK, effective_ids=os.access in os.supports_effective_ids):
        raise WriteError(
            "not written: you may not write it (permission denied), the file is unchanged",
            hint="run xmlnest as a user who may write it, or use --output-dir",
        )
    if st.st_uid != os.geteuid() and os.geteuid() != 0:
        raise WriteError(
            f"not written: it is owned by uid {st.st_uid} and a rewrite would make it "
            "yours, the file is unchanged",
            hint="run xmlnest as its owner (or as root, which keeps owner and group), or "
            "use --output-dir",
        )


def _keep_owner(fd: int, st: os.stat_result) -> None:
    """Give the temp file the replaced file's owner and group, or refuse the rewrite:
    root keeps both; another user owns the file already (:func:`_may_replace`) and keeps
    its group only where the user is in that group."""
    made = os.fstat(fd)
    if (st.st_uid, st.st_gid) == (made.st_uid, made.st_gid):
        return
    try:
        os.fchown(fd, st.st_uid, st.st_gid)
    except OSError:
        who = "owner and group" if st.st_uid != os.geteuid() else "group"
        raise WriteError(
            f"not written: a rewrite cannot keep its {who} (uid {st.st_uid}, gid "
            f"{st.st_gid}), the file is unchanged",
            hint="run xmlnest as root or as a member of the file's group, or use --output-dir",
        ) from None


def _identity_now(target: str) -> tuple[int, ...] | None:
    try:
        return identity_of(os.stat(target))
    except OSError:
        return None


def _not_written(exc: OSError) -> WriteError:
    return WriteError(
        f"not written ({exc.strerror or exc}), the file is unchanged",
        hint="check free space and the folder's permissions",
    )


@functools.cache
def _writeback_starter() -> Callable[[int], None] | None:
    """Linux's sync_file_range(SYNC_FILE_RANGE_WRITE), which ``os`` lacks: start writing
    a file's pages to disk without waiting. ``None`` elsewhere (fsync alone then)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    sync_file_range_write = 2

    def start(fd: int) -> None:
        fn(fd, 0, 0, sync_file_range_write)  # a failure only loses the head start

    return start


def sync_folders(folders: Iterable[str | Path]) -> None:
    """fsync each folder once, making the renames done in it durable."""
    for folder in sorted({os.fspath(f) for f in folders}):
        _fsync_dir(folder)


def write_new(path: Path, data: bytes) -> None:
    """Write a converted copy (``--output-dir``), creating folders; atomic like in place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.touch(mode=0o644)
    except OSError as exc:
        raise WriteError(f"cannot create: {exc.strerror}", hint="check the output folder") from None
    write_atomic(path, data)


def _fsync_dir(folder: str | Path) -> None:
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
