"""Read the host tree under ``root`` for ``--host-check``; never decides, never writes.

Every reader opens read-only and returns ``None`` (or an empty value) when a source is
missing or unreadable, so the callers can say "unknown" instead of guessing.

Two things a test tree cannot hold are modelled honestly rather than faked:

- a device node: git stores no character devices, so a tree other than ``/`` may describe
  ``/dev/kvm`` in a sidecar ``dev/kvm.fixture-node`` (``kind``, ``rdev``, ``mode``, ``uid``,
  ``gid`` lines). On ``/`` the sidecar is never read: the node is ``os.stat``-ed and the
  current user's access is ``os.access`` on it.
- the current user (see ``host_users``).

MSRs are 8 little-endian bytes read with ``os.pread`` at the register's offset in
``dev/cpu/0/msr``; the kernel log is read from ``dev/kmsg``. Where a module parameter is
set for the next load is ``host_modprobe``'s.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

MAX_READ = 16 * 1024 * 1024  # /proc/cpuinfo of a very large host is a few MiB
NODE_SIDECAR = ".fixture-node"
_KMSG_RECORD = 8192  # /dev/kmsg returns one record per read; a smaller buffer is EINVAL

NodeKind = Literal["char", "block", "file", "dir", "other"]


def under(root: Path, host_path: PurePosixPath | str) -> Path:
    """``host_path`` (absolute, as on the host) inside the tree at ``root``."""
    return root / str(host_path).lstrip("/")


def is_live(root: Path) -> bool:
    """Whether ``root`` is this machine's own ``/`` (not a captured tree)."""
    try:
        return root.resolve() == Path("/").resolve()
    except OSError:
        return False


def read_text(path: Path) -> str | None:
    """The file's text, or ``None`` when it cannot be read. Opens read-only."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_READ)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def read_host(root: Path, host_path: str) -> str | None:
    """The stripped text of ``host_path`` under ``root``, or ``None``."""
    text = read_text(under(root, host_path))
    return None if text is None else text.strip()


def param_path(module: str, param: str) -> PurePosixPath:
    return PurePosixPath("/sys/module", module, "parameters", param)


def read_param(root: Path, module: str, param: str) -> str | None:
    return read_host(root, str(param_path(module, param)))


# --- modules ---------------------------------------------------------------------------


def kvm_modules(root: Path) -> tuple[str, ...]:
    """Names in ``/sys/module`` that are ``kvm`` or start with ``kvm_``, sorted."""
    try:
        names = [entry.name for entry in under(root, "/sys/module").iterdir()]
    except OSError:
        return ()
    return tuple(sorted(n for n in names if n == "kvm" or n.startswith("kvm_")))


def module_present(root: Path, module: str) -> bool:
    """``/sys/module/<module>`` exists: loaded, or built in with parameters."""
    return under(root, f"/sys/module/{module}").is_dir()


def module_states(root: Path) -> Mapping[str, str] | None:
    """``/proc/modules``' name -> state (``Live``, ``Loading``...), or ``None`` if unreadable."""
    text = read_text(under(root, "/proc/modules"))
    if text is None:
        return None
    states: dict[str, str] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 5:
            states[words[0]] = words[4]
    return states


# --- where am I ------------------------------------------------------------------------


def os_release(root: Path) -> Mapping[str, str]:
    """``/etc/os-release`` (else ``/usr/lib/os-release``) as KEY -> unquoted value."""
    text = read_text(under(root, "/etc/os-release"))
    if text is None:
        text = read_text(under(root, "/usr/lib/os-release")) or ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            try:
                parts = shlex.split(value)
            except ValueError:
                parts = [value]
            fields[key] = " ".join(parts)
    return fields


# --- device nodes ----------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """What ``stat`` says about a path (or what a test tree's sidecar says it would)."""

    kind: NodeKind
    rdev: str | None  # "major:minor" for devices
    mode: int  # permission bits only
    uid: int
    gid: int
    source: Literal["os.stat", "sidecar"]


def _kind(mode: int) -> NodeKind:
    if stat.S_ISCHR(mode):
        return "char"
    if stat.S_ISBLK(mode):
        return "block"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "other"


def node(root: Path, host_path: str) -> Node | None:
    """``os.stat`` of the node; in a test tree, its sidecar when the node is absent."""
    path = under(root, host_path)
    try:
        info = os.stat(path)
    except OSError:
        return None if is_live(root) else _sidecar_node(path)
    kind = _kind(info.st_mode)
    rdev = None
    if kind in ("char", "block"):
        rdev = f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
    return Node(kind, rdev, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, "os.stat")


def _sidecar_node(path: Path) -> Node | None:
    text = read_text(path.with_name(path.name + NODE_SIDECAR))
    if text is None:
        return None
    fields = dict(
        (key.strip(), value.strip())
        for key, sep, value in (line.partition("=") for line in text.splitlines())
        if sep and not key.strip().startswith("#")
    )
    kind = fields.get("kind", "other")
    try:
        return Node(
            kind if kind in ("char", "block", "file", "dir") else "other",  # type: ignore[arg-type]
            fields.get("rdev"),
            int(fields.get("mode", "0"), 8),
            int(fields.get("uid", "0")),
            int(fields.get("gid", "0")),
            "sidecar",
        )
    except ValueError:
        return None


# --- firmware: MSRs and the kernel log -------------------------------------------------


def read_msr(root: Path, register: int, cpu: int = 0) -> int | None:
    """The MSR's 8 bytes (little endian) from ``/dev/cpu/<cpu>/msr``, or ``None``."""
    path = under(root, f"/dev/cpu/{cpu}/msr")
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.pread(fd, 8, register)
    except OSError:
        return None
    finally:
        os.close(fd)
    return int.from_bytes(data, "little") if len(data) == 8 else None


def kernel_log(root: Path) -> str | None:
    """The kernel's ring buffer from ``/dev/kmsg`` (non-blocking), or ``None`` if unreadable."""
    path = under(root, "/dev/kmsg")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        while size < MAX_READ:
            try:
                chunk = os.read(fd, _KMSG_RECORD)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # a record was overwritten while reading
                    continue
                return None if not chunks else b"".join(chunks).decode("utf-8", "replace")
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", errors="replace")
