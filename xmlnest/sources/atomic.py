"""Where bytes come from and go to: files, folders, stdin; atomic in-place writes."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import itertools
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NamedTuple

from xmlnest.errors import InputError, NotAFile, NothingFound, UsageError, WriteError

STDIN = "-"
STDIN_NAME = "<stdin>"
TEMP_PREFIX = ".xmlnest-"
TEMP_SUFFIX = ".tmp"


class Input(NamedTuple):
    """One thing to process. ``walked`` inputs were found in a folder, not named.

    Paths are plain strings: inputs cross to worker processes by the thousand, and a
    ``Path`` costs ten times more to pickle.
    """

    name: str  # as shown in messages and diffs
    path: str | None  # None for stdin
    walked: bool = False
    base: str | None = None  # the folder it was found under (for --output-dir)
    link: bool | None = None  # a symlink? (known from a walk's listing; None: not asked)
    domain: str | None = None  # a libvirt domain's name (read and defined through libvirt)


def expand(
    args: Sequence[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> Iterator[Input | InputError]:
    """Inputs in order: files as given, folders walked for ``*.xml`` in sorted order."""
    seen: set[object] = set()
    for arg in args or [STDIN]:
        if arg == STDIN:
            yield Input(STDIN_NAME, None)
            continue
        if os.path.isdir(arg):
            matched = False
            for found, key, link in _walk(arg, include, exclude):
                matched = True
                if key not in seen:
                    seen.add(key)
                    yield Input(found, found, walked=True, base=arg, link=link)
            if not matched:
                yield _nothing_found(arg, include, exclude)
            continue
        key = _identity(arg)
        if key in seen:
            yield InputError(
                "named more than once; processed once", hint="drop the repeat", path=arg
            )
            continue
        seen.add(key)
        yield Input(arg, arg)


def _nothing_found(folder: str, include: Sequence[str], exclude: Sequence[str]) -> NothingFound:
    """What to say about a folder argument in which the walk found nothing."""
    globs = [f"--include '{g}'" for g in include] + [f"--exclude '{g}'" for g in exclude]
    if globs and any(_walk(folder, (), ())):
        return NothingFound(
            f"no *.xml file here matches {' '.join(globs)}",
            hint="globs match the path below the folder or the file name",
            path=folder,
        )
    return NothingFound(
        "no *.xml file in this folder (nor below it)",
        hint="name the folder that holds the domain XML",
        path=folder,
    )


def _identity(path: str) -> object:
    """The same file however it is named (links, ``./``): device and inode; else the path."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.abspath(path)
    return (st.st_dev, st.st_ino)


def _walk(
    root: str, include: Sequence[str], exclude: Sequence[str]
) -> Iterator[tuple[str, object, bool]]:
    """``*.xml`` below ``root`` as ``os.walk`` goes (a folder's files, then its folders,
    each sorted; folders named ``.*`` and links to folders not entered); globs match the
    path below ``root``. Yields ``(path, identity, is a link)``: a plain file's identity
    comes from the listing itself, so a walk costs no stat per file.
    """
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
            device = os.stat(folder).st_dev
        except OSError:  # unreadable or gone: skipped, as os.walk does
            continue
        folders = []
        for e in entries:
            try:
                is_dir = e.is_dir()  # follows links, as os.walk
            except OSError:
                is_dir = False
            if is_dir:
                if not e.name.startswith(".") and not e.is_symlink():
                    folders.append(e.name)
                continue
            if not e.name.endswith(".xml"):
                continue
            rel = prefix + e.name
            if include and not any(_match(rel, g) for g in include):
                continue
            if any(_match(rel, g) for g in exclude):
                continue
            path = os.path.join(folder, e.name)
            link = e.is_symlink()
            yield path, _identity(path) if link else (device, e.inode()), link
        pending += [(os.path.join(folder, d), f"{prefix}{d}/") for d in reversed(folders)]


def _match(rel: str, pattern: str) -> bool:
    return fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel.rsplit("/", 1)[-1], pattern)


class Read(NamedTuple):
    data: bytes
    seen: tuple[int, ...] | None = None  # the file as read (see AtomicBatch.stage)
    links: int = 1  # its hard links: an in-place rewrite replaces this name only


def read(inp: Input, max_bytes: int, stdin: BinaryIO, *, writing: bool = False) -> Read:
    """Read at most ``max_bytes + 1`` bytes, so an oversized input is caught, not loaded.

    Only regular files are opened, with one exception: a FIFO named on the command line
    in a mode that writes nothing (``writing`` false: it cannot be replaced, nor copied
    as a file). Any other FIFO, socket or device is refused before it is opened, or, met
    in a folder walk, skipped (:class:`NotAFile`): opening a FIFO waits for a writer.
    """
    if inp.path is None:
        return Read(stdin.read(max_bytes + 1))
    try:
        st = os.stat(inp.path)
        regular = stat.S_ISREG(st.st_mode)
        if not regular:
            _refuse_special(inp, st.st_mode, writing)  # a FIFO to read, or an exception
        # O_NONBLOCK: a file swapped for a FIFO since the stat must not block the open.
        with open(inp.path, "rb", opener=_nonblocking if regular else None) as fh:
            if regular:
                st = os.fstat(fh.fileno())  # the file as opened
                if not stat.S_ISREG(st.st_mode):
                    _refuse_special(inp, st.st_mode, True)
            # Ask for what the file holds (plus one byte, to see it grow past the limit),
            # not for max_bytes: a 16 MiB request costs a buffer per small file.
            want = min(st.st_size, max_bytes) + 1 if regular else max_bytes + 1
            data = fh.read(want)
            if len(data) == want and want <= max_bytes:  # grew while we read: read the rest
                data += fh.read(max_bytes + 1 - want)
            return Read(data, _identity_of(st), st.st_nlink)  # as opened
    except FileNotFoundError:
        raise InputError("no such file", hint="check the path") from None
    except PermissionError:
        raise InputError("permission denied while reading", hint="check the file's mode") from None
    except IsADirectoryError:
        raise InputError("is a folder", hint="name a file") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", hint="check the path") from None


def _nonblocking(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)


def _refuse_special(inp: Input, mode: int, writing: bool) -> None:
    """Raise for what is not a regular file, unless it is a FIFO named for reading only."""
    if stat.S_ISDIR(mode):
        raise InputError("is a folder", hint="name a file, or let xmlnest walk the folder")
    kind = "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
    if inp.walked:
        raise NotAFile(f"is {kind}; skipped, like XML that is not a domain")
    if not stat.S_ISFIFO(mode):
        raise InputError("is not a regular file", hint="name a domain XML file")
    if writing:
        raise InputError(
            "is a FIFO, not a regular file: -i cannot replace it and -o copies files only",
            hint="read it with --check or --diff, or pipe it: xmlnest < FIFO > OUT.xml",
        )


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
        try:
            fd, tmp = _create_temp(folder or ".", name)
        except OSError as exc:
            raise _not_written(exc) from None
        # Tracked at once: whatever happens next (Ctrl-C included), __exit__ cleans up.
        staged = _Staged(str(path), target, seen or _identity_of(st), tmp, fd)
        self._staged.append(staged)
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except OSError:  # not root: at least keep the group, where we are in it
                    with contextlib.suppress(OSError):
                        os.fchown(fd, -1, st.st_gid)
            _copy_xattrs(target, fd)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self._start is not None:
                self._start(fd)
        except OSError as exc:
            self._staged.remove(staged)
            _drop(staged)
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


def _create_temp(folder: str, name: str) -> tuple[int, str]:
    """A new file ``.xmlnest-NAME.PID-N.tmp`` beside ``name``, private until chmod'ed
    (what tempfile.mkstemp does, at a fifth of its cost: it runs once per rewrite)."""
    while True:
        tmp = os.path.join(folder, f"{TEMP_PREFIX}{name}.{os.getpid()}-{next(_temp_serial)}")
        try:
            return os.open(tmp + TEMP_SUFFIX, _TEMP_FLAGS | os.O_CLOEXEC, 0o600), tmp + TEMP_SUFFIX
        except FileExistsError:  # left by an earlier run that had the same pid
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


def _identity_of(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _identity_now(target: str) -> tuple[int, ...] | None:
    try:
        return _identity_of(os.stat(target))
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


def stale_temp_files(folder: Path) -> list[Path]:
    """Temp files an interrupted run left in ``folder``."""
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
    name carries no pid, see :func:`_create_temp`)."""
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


def mirror(item: Input) -> Path:
    """Where ``--output-dir`` puts an input's copy, below the output folder: the path
    below the walked folder; a named file's relative path, or its name when the path is
    absolute or climbs out (``..``), so that a copy never lands outside the folder."""
    assert item.path is not None
    if item.base is not None:
        return Path(item.path).relative_to(item.base)
    rel = os.path.normpath(item.path)
    if os.path.isabs(rel) or rel.split(os.sep, 1)[0] == os.pardir:
        return Path(os.path.basename(rel))
    return Path(rel)


def check_output_dir(items: Sequence[Input], output_dir: Path) -> None:
    """Refuse (before anything is written) an ``--output-dir`` run that would lose a file:
    two inputs whose copies go to the same path, or a copy that would overwrite an input
    (``-o .`` over the inputs themselves)."""
    inputs = {os.path.realpath(i.path): i.name for i in items if i.path is not None}
    targets: dict[str, str] = {}
    for item in items:
        if item.path is None:
            continue
        shown = os.path.join(output_dir, mirror(item))
        out = os.path.realpath(shown)
        if out in inputs:
            same = inputs[out] == item.name
            raise UsageError(
                f"--output-dir {output_dir}: the copy of {item.name} would overwrite "
                + ("the file itself" if same else f"the input {inputs[out]}")
                + ", but -o keeps the originals; use -i to rewrite files in place, "
                "or an output folder outside the inputs"
            )
        if out in targets:
            raise UsageError(
                f"--output-dir {output_dir}: {targets[out]} and {item.name} would both be "
                f"written to {shown}; give each folder its own run and output folder"
            )
        targets[out] = item.name
