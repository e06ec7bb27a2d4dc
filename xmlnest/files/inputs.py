"""Inputs: the files, walked folders or stdin the arguments name, read within a size limit."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterator, Sequence
from typing import BinaryIO, NamedTuple

from xmlnest.engine.document import too_large
from xmlnest.errors import InputError, NotAFile, NothingFound

STDIN = "-"
STDIN_NAME = "<stdin>"


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
    regular: bool = False  # a walk's listing says: a regular file, not a link (no stat first)


def folders_among(args: Sequence[str]) -> tuple[str, ...]:
    """The arguments that name folders (asked once per run, by its configuration)."""
    return tuple(a for a in args if a != STDIN and os.path.isdir(a))


def expand(
    args: Sequence[str],
    *,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    folders: Sequence[str] | None = None,
) -> Iterator[Input | InputError]:
    """Inputs in order: files as given, folders walked for ``*.xml`` in sorted order.
    ``folders``: which arguments are folders, when the caller has asked already. After
    the walks, an :class:`UnusedGlob` for each ``--exclude`` glob that matched no file and
    no folder in any of them (a typo, or a folder's path where its name would do)."""
    seen: set[object] = set()
    is_folder = set(folders_among(args) if folders is None else folders)
    excluded: set[str] = set()  # the exclude globs that matched something
    walked = False
    for arg in args or [STDIN]:
        if arg == STDIN:
            yield Input(STDIN_NAME, None)
            continue
        if arg in is_folder:
            walked = True
            matched = False
            for found, key, link, regular in _walk(arg, include, exclude, excluded):
                matched = True
                if key not in seen:
                    seen.add(key)
                    yield Input(found, found, True, arg, link, regular=regular)
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
    for glob in dict.fromkeys(exclude) if walked else ():
        if glob not in excluded:
            yield UnusedGlob(
                f"--exclude '{glob}' matched no file and no folder",
                hint="a glob matches the path below the folder, or a file's or folder's name",
            )


class UnusedGlob(InputError):
    """An ``--exclude`` glob that matched nothing in the folders walked: a warning."""


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
    root: str,
    include: Sequence[str],
    exclude: Sequence[str],
    excluded: set[str] | None = None,
) -> Iterator[tuple[str, object, bool, bool]]:
    """``*.xml`` below ``root`` as ``os.walk`` goes (a folder's files, then its folders,
    each sorted; folders named ``.*`` and links to folders not entered); globs match the
    path below ``root`` or the name, and an ``exclude`` glob that matches a folder (``old``,
    ``old/``, ``archive/old``) keeps the walk out of it. Yields ``(path, identity, is a
    link, is a regular file)``: a plain file's identity and type come from the listing
    itself, so a walk costs no stat per file (nor does reading it, see :func:`read`).
    ``excluded`` collects the exclude globs that matched something.
    """
    hits = excluded if excluded is not None else set()
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
                skip = e.name.startswith(".") or e.is_symlink()
                if not skip and not _excluded(prefix + e.name, exclude, hits, folder=True):
                    folders.append(e.name)
                continue
            if not e.name.endswith(".xml"):
                continue
            rel = prefix + e.name
            if include and not any(_match(rel, g) for g in include):
                continue
            if _excluded(rel, exclude, hits):
                continue
            path = os.path.join(folder, e.name)
            link = e.is_symlink()
            if link:
                yield path, _identity(path), True, False
            else:
                yield path, (device, e.inode()), False, e.is_file(follow_symlinks=False)
        pending += [(os.path.join(folder, d), f"{prefix}{d}/") for d in reversed(folders)]


def _excluded(rel: str, exclude: Sequence[str], hits: set[str], *, folder: bool = False) -> bool:
    """Whether an exclude glob matches ``rel`` (a folder's also when written ``old/``);
    the globs that do are added to ``hits``, as written."""
    matched = [g for g in exclude if _match(rel, g.rstrip("/") if folder else g)]
    hits.update(matched)
    return bool(matched)


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
    in a folder walk, skipped (:class:`NotAFile`): opening a FIFO waits for a writer. A
    file the walk listed as regular is opened without a stat first; whatever is opened
    is checked again (``fstat``), so a file swapped meanwhile is still refused.
    """
    if inp.path is None:
        data = stdin.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise too_large(max_bytes, None)  # a stream: how much more there was is not known
        return Read(data)
    try:
        regular = inp.regular
        if not regular:
            st = os.stat(inp.path)
            regular = stat.S_ISREG(st.st_mode)
            if not regular:
                _refuse_special(inp, st.st_mode, writing)  # a FIFO to read, or an exception
        # O_NONBLOCK: a file swapped for a FIFO since the listing or the stat must not
        # block the open. A FIFO named for reading is opened to wait for its writer.
        fd = _open(inp.path, _NONBLOCKING if regular else _BLOCKING)
        try:
            st = os.fstat(fd)  # the file as opened
            if regular and not stat.S_ISREG(st.st_mode):
                _refuse_special(inp, st.st_mode, True)
            if regular and st.st_size > max_bytes:
                raise too_large(max_bytes, st.st_size)  # its real size, and nothing read
            # Ask for what the file holds (plus one byte, to see it grow past the limit),
            # not for max_bytes: a 16 MiB request costs a buffer per small file.
            want = min(st.st_size, max_bytes) + 1 if regular else max_bytes + 1
            data = _read_upto(fd, want)
            if len(data) == want and want <= max_bytes:  # grew while we read: read the rest
                data += _read_upto(fd, max_bytes + 1 - want)
        finally:
            os.close(fd)
        if len(data) > max_bytes:  # a FIFO, or a file that grew while it was read
            raise too_large(max_bytes, None)
        return Read(data, identity_of(st), st.st_nlink)  # as opened
    except FileNotFoundError:
        raise InputError("no such file", hint="check the path") from None
    except PermissionError:
        raise InputError("permission denied while reading", hint="check the file's mode") from None
    except IsADirectoryError:
        raise InputError("is a folder", hint="name a file") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", hint="check the path") from None


_BLOCKING = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
_NONBLOCKING = _BLOCKING | os.O_NONBLOCK


def _open(path: str, flags: int) -> int:
    """A descriptor to read ``path`` (raw ``os.open``: no file object per input)."""
    return os.open(path, flags)


def _read_upto(fd: int, size: int) -> bytes:
    """Up to ``size`` bytes from ``fd``; fewer only where the input ends."""
    data = _read(fd, size)
    if len(data) in (0, size):
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = _read(fd, size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


_read = os.read  # the one read call (tests stand an endless stream in for it)


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


def identity_of(st: os.stat_result) -> tuple[int, ...]:
    """Device, inode, size and mtime: what changes when another program rewrites or
    replaces the file (:meth:`~xmlnest.files.atomic.AtomicBatch.stage` compares it)."""
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
