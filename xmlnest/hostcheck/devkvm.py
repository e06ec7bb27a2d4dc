"""/dev/kvm: whether it is there, a character device, which module serves it, who may use it.

Judges what ``host_probe`` and ``host_users`` read into the report's ``DevKvm``, with the
fix command for each problem: no node where the guests are started (a container without the
device), or QEMU's "Could not access KVM kernel module: Permission denied" when libvirt's
QEMU user is outside the node's group (voidlinux/void-packages#1095).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from xmlnest.hostcheck import probe, users
from xmlnest.hostcheck.report import Access, DevKvm

DEV_KVM = "/dev/kvm"

# Which KVM modules xmlnest's XML edits are for, and what to say about the others.
KNOWN_MODULES = frozenset({"kvm_intel", "kvm_amd", "kvm_hv", "kvm"})
_OTHER_MODULES: Mapping[str, str] = {
    "kvm_pvm": (
        "kvm_pvm is PVM, a KVM that runs guests without vmx or svm and needs a PVM-enabled "
        "guest kernel; xmlnest's XML edits (passing vmx/svm to the L1) do not apply to it"
    ),
    "kvm_pr": (
        "kvm_pr is KVM-PR, POWER's problem-state KVM; xmlnest's nested-hv edit does not apply to it"
    ),
}


def served_by(root: Path, expected: str | None) -> tuple[str | None, tuple[str, ...]]:
    """The KVM module behind /dev/kvm (the expected one first), and all present."""
    present = probe.kvm_modules(root)
    states = probe.module_states(root)
    if states is not None:  # a module listed in /proc/modules but not Live is not serving
        present = tuple(m for m in present if states.get(m, "Live") == "Live")
    vendors = [m for m in present if m != "kvm"]
    if expected in vendors:
        return expected, present
    if vendors:
        return vendors[0], present
    if "kvm" in present and expected == "kvm":
        return "kvm", present
    return None, present


def dev_kvm(root: Path, expected: str | None, module_loaded: bool) -> DevKvm:
    """/dev/kvm: present, a character device, who serves it, who may read and write it."""
    module, _ = served_by(root, expected)
    known = None if module is None else module in KNOWN_MODULES
    note = None
    if module is not None and not known:
        note = _OTHER_MODULES.get(
            module, f"{module} is a KVM module xmlnest does not know; its XML edits do not apply"
        )
    found = probe.node(root, DEV_KVM)
    accounts = users.Accounts(root)
    if found is None:
        fix = (
            ()
            if not module_loaded
            else (
                f"{expected} is loaded but {DEV_KVM} is missing: in a container, pass the "
                f"device in (e.g. docker run --device {DEV_KVM}); otherwise create it as "
                f"udev would: mknod {DEV_KVM} c 10 232 && chgrp kvm {DEV_KVM} && "
                f"chmod 0660 {DEV_KVM}",
            )
        )
        return DevKvm(
            DEV_KVM, False, False, None, None, None, None, module, known, note, (), "missing", fix
        )
    owner, group = accounts.user_name(found.uid), accounts.group_name(found.gid)
    mode = f"{found.mode:04o}"
    if found.kind != "char":
        fix = (
            f"{DEV_KVM} is a {found.kind}, not a character device: remove it; udev creates "
            f"the node when the KVM module loads (or: mknod {DEV_KVM} c 10 232)",
        )
        return DevKvm(
            DEV_KVM, True, False, None, mode, owner, group, module, known, note, (),
            f"not a character device ({found.kind})", fix,
        )  # fmt: skip
    checks = _access(root, found, group, accounts)
    denied = [a for a in checks if not a.ok]
    problem: str | None = None
    if denied:
        problem = "not readable and writable by " + " and ".join(
            f"{a.user} ({a.role})" for a in denied
        )
    steps = tuple(dict.fromkeys(step for a in denied for step in a.fix))  # once each
    return DevKvm(
        DEV_KVM, True, True, found.rdev, mode, owner, group, module, known, note,
        tuple(checks), problem, steps,
    )  # fmt: skip


def _access(root: Path, found: probe.Node, group: str, accounts: users.Accounts) -> list[Access]:
    checks: list[Access] = []
    me = users.current_identity(root)
    if me is not None:
        ok = users.current_access(root, DEV_KVM, me, found)
        checks.append(Access("current user", me.name, ok, () if ok else _fix(found, group, me)))
    qemu = users.qemu_user(root, accounts)
    if qemu is not None:
        ok = users.mode_allows(found, qemu)
        checks.append(
            Access("libvirt qemu user", qemu.name, ok, () if ok else _fix(found, group, qemu))
        )
    return checks


def _fix(found: probe.Node, group: str, who: users.Identity) -> tuple[str, ...]:
    if found.mode & 0o060 == 0o060 and not group.isdigit():
        return (f"usermod -aG {group} {who.name}  (then log in again / restart its VMs)",)
    return (
        f"chgrp kvm {DEV_KVM} && chmod 0660 {DEV_KVM}  (until reboot; udev's rule "
        f'KERNEL=="kvm", GROUP="kvm", MODE="0660" keeps it)',
        f"usermod -aG kvm {who.name}",
    )
