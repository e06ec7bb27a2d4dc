"""Who may open a device node: the current user and libvirt's QEMU user, by name and ids.

On ``/`` the current user is this process (``os.geteuid``, ``os.getgroups``) and its access
is ``os.access`` on the node; in a test tree it is the ``Uid``/``Gid``/``Groups`` lines of
``proc/self/status`` and access is judged from the node's mode bits. Accounts come from
``pwd``/``grp`` on ``/`` and from the tree's ``etc/passwd`` and ``etc/group`` otherwise;
libvirt's user from ``/etc/libvirt/qemu.conf``. Reads only.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
from dataclasses import dataclass
from pathlib import Path

from xmlnest.hostcheck.probe import Node, is_live, read_text, under


@dataclass(frozen=True)
class Identity:
    """A user as the kernel checks access: uid, and every gid it holds."""

    name: str
    uid: int
    gids: frozenset[int]


def current_identity(root: Path) -> Identity | None:
    """This process on ``/``; the tree's ``proc/self/status`` otherwise."""
    if is_live(root):
        uid = os.geteuid()
        gids = frozenset({os.getegid(), *os.getgroups()})
        return Identity(Accounts(root).user_name(uid), uid, gids)
    text = read_text(under(root, "/proc/self/status"))
    if text is None:
        return None
    fields = {k.strip(): v.split() for k, _, v in (ln.partition(":") for ln in text.splitlines())}
    try:
        uid = int(fields["Uid"][1])  # real, effective, saved, fs
        gids = frozenset({int(fields["Gid"][1]), *map(int, fields.get("Groups", []))})
    except (KeyError, IndexError, ValueError):
        return None
    return Identity(Accounts(root).user_name(uid), uid, gids)


def current_access(root: Path, host_path: str, who: Identity, found: Node) -> bool:
    """Read and write access for the current user: ``os.access`` on ``/``, else mode bits."""
    if is_live(root) and found.source == "os.stat":
        return os.access(under(root, host_path), os.R_OK | os.W_OK, effective_ids=True)
    return mode_allows(found, who)


def mode_allows(found: Node, who: Identity) -> bool:
    """Read-write by mode bits: root always; else owner, group or other bits (ACLs not read)."""
    if who.uid == 0:
        return True
    if who.uid == found.uid:
        bits = found.mode >> 6
    elif found.gid in who.gids:
        bits = found.mode >> 3
    else:
        bits = found.mode
    return bits & 0o6 == 0o6


class Accounts:
    """User and group names: ``pwd``/``grp`` on ``/``, the tree's etc files otherwise."""

    def __init__(self, root: Path) -> None:
        self._live = is_live(root)
        self._passwd = _colon_file(root, "/etc/passwd") if not self._live else []
        self._group = _colon_file(root, "/etc/group") if not self._live else []

    def user(self, name: str, primary: int | None = None) -> Identity | None:
        """The user's uid and gids: its primary group (or ``primary``) and every group
        listing it, as ``getgrouplist`` gives a process started as that user."""
        if self._live:
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                return None
            member = {g.gr_gid for g in grp.getgrall() if name in g.gr_mem}
            gid = entry.pw_gid if primary is None else primary
            return Identity(name, entry.pw_uid, frozenset({gid} | member))
        for fields in self._passwd:
            if fields[0] == name and len(fields) >= 4 and fields[2].isdigit():
                member = {
                    int(g[2])
                    for g in self._group
                    if len(g) >= 4 and g[2].isdigit() and name in g[3].split(",")
                }
                own = {int(fields[3])} if fields[3].isdigit() else set()
                gids = own if primary is None else {primary}
                return Identity(name, int(fields[2]), frozenset(gids | member))
        return None

    def user_name(self, uid: int) -> str:
        if self._live:
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return str(uid)
        return next((f[0] for f in self._passwd if len(f) > 2 and f[2] == str(uid)), str(uid))

    def group_name(self, gid: int) -> str:
        if self._live:
            try:
                return grp.getgrgid(gid).gr_name
            except KeyError:
                return str(gid)
        return next((f[0] for f in self._group if len(f) > 2 and f[2] == str(gid)), str(gid))

    def group_gid(self, name: str) -> int | None:
        if self._live:
            try:
                return grp.getgrnam(name).gr_gid
            except KeyError:
                return None
        found = next((f[2] for f in self._group if f[0] == name and len(f) > 2), None)
        return int(found) if found is not None and found.isdigit() else None


def _colon_file(root: Path, host_path: str) -> list[list[str]]:
    text = read_text(under(root, host_path)) or ""
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def qemu_conf_user(root: Path) -> tuple[str | None, str | None]:
    """``user`` and ``group`` set (uncommented) in ``/etc/libvirt/qemu.conf``."""
    text = read_text(under(root, "/etc/libvirt/qemu.conf")) or ""
    found: dict[str, str] = {}
    for match in re.finditer(r'(?m)^\s*(user|group)\s*=\s*"([^"]*)"', text):
        found[match.group(1)] = match.group(2)
    return found.get("user"), found.get("group")


def qemu_user(root: Path, accounts: Accounts) -> Identity | None:
    """libvirt's QEMU user: qemu.conf's ``user``/``group``, else libvirt-qemu or qemu."""
    user, group = qemu_conf_user(root)
    names = [user] if user else ["libvirt-qemu", "qemu"]  # Debian/Ubuntu, Fedora/RHEL
    for name in names:
        if name.startswith("+") and name[1:].isdigit():
            uid = int(name[1:])
            return Identity(accounts.user_name(uid), uid, frozenset({0} if uid == 0 else ()))
        found = accounts.user(name)
        if found is None:
            continue
        if group:
            gid = int(group[1:]) if group[1:].isdigit() else accounts.group_gid(group)
            if gid is not None:
                found = accounts.user(name, primary=gid) or found
        return found
    return None
