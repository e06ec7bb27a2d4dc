"""The kernel verdict weighed against the nested parameter: ``--host-check``'s Security item,
an enabling run's XN223/XN224, ``--status``'s host line.

Nesting on with a vulnerable kernel is ``action needed``, with both ways out: upgrade to
the branch's first fixed release, or turn nesting off until then (the reference's own
steps with ``nested=0``: stop every VM, reload the module, keep it in modprobe.d).
Nesting off with a vulnerable kernel, and a kernel xmlnest cannot judge, are notes. An L1
that runs KVM for guests of its own is a KVM host too: the same check applies inside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Finding, Level
from xmlnest.hostcheck.assess import is_on
from xmlnest.hostcheck.kernel import CANNOT_TELL, VULNERABLE, KernelVerdict
from xmlnest.hostcheck.modprobe import Setting
from xmlnest.hostcheck.report import STOP_VMS, Security


def _names(cves: tuple[str, ...]) -> str:
    return " and ".join(cves)


def escapes(cves: tuple[str, ...]) -> str:
    """``"CVE-A and CVE-B, guest-to-host escapes reachable only through nesting"``."""
    what = "guest-to-host escapes" if len(cves) > 1 else "a guest-to-host escape"
    return f"{_names(cves)}, {what} reachable only through nesting"


def _off(
    module: str, loaded: bool, config: Setting | None, cmdline: Setting | None
) -> tuple[tuple[str, ...], str | None, str]:
    """Turning nesting off now and keeping it off after a reboot, as the reference's own
    enabling steps with nested=0."""
    now = ((f"modprobe -r {module}",) if loaded else ()) + (f"modprobe {module} nested=0",)
    line = f"options {module} nested=0"
    set_off = next((s for s in (cmdline, config) if s is not None), None)
    if set_off is not None and is_on(set_off.value) is False:
        keep = f"{set_off.source} already has {set_off.text} for the next load"
    elif cmdline is not None:
        keep = (
            f"the kernel command line's {cmdline.text} wins over modprobe.d at every boot: "
            f"replace it with {module}.nested=0 in the boot loader's configuration"
        )
    elif config is not None:
        keep = f"in {config.source}, replace '{config.text}' with '{line}'"
    else:
        keep = (
            f"add '{line}' to /etc/modprobe.d/kvm.conf "
            f"(or {module}.nested=0 to the kernel command line)"
        )
    return now, STOP_VMS if loaded else None, keep


def assess(
    verdict: KernelVerdict,
    *,
    module: str | None,
    enabled: bool,
    loaded: bool,
    config: Setting | None = None,
    cmdline: Setting | None = None,
) -> Security:
    """The Security item for a kernel ``verdict`` and the vendor module's nested state."""
    if verdict.state == VULNERABLE:
        fixed = verdict.fixed_in
        upgrade = f"upgrade the kernel to {fixed} or later and reboot" if fixed else None
        if enabled and module is not None:
            now, caution, keep = _off(module, loaded, config, cmdline)
            return Security(
                level="action needed",
                message=f"nesting is on and the kernel has {escapes(verdict.cves)}",
                kernel=verdict,
                upgrade=upgrade,
                off_now=now,
                off_caution=caution,
                off_keep=keep,
            )
        return Security(
            level="note",
            message=f"the kernel has {_names(verdict.cves)}; nesting is off, which keeps "
            "them unreachable: upgrade before turning it on",
            kernel=verdict,
            upgrade=upgrade,
        )
    if verdict.state == CANNOT_TELL:
        when = "keeping nesting on" if enabled else "turning nesting on"
        said = "does not say" if verdict.release else "cannot be read, so xmlnest cannot tell"
        return Security(
            level="note",
            message=f"the kernel's version {said} whether it has the fixes for "
            f"{_names(verdict.cves)}; check the distribution's advisories before {when}",
            kernel=verdict,
        )
    return Security(level="ok", message=verdict.reason, kernel=verdict)


def enabling_warning(verdict: KernelVerdict) -> Finding | None:
    """XN223, said once by an enabling run whose host's kernel is vulnerable."""
    if not verdict.vulnerable:
        return None
    fixed = ""
    if verdict.fixed_in:
        fixed = f"; fixed in {verdict.fixed_in}"
        if verdict.branch_eol and verdict.release:
            fixed += " (this kernel's branch is end-of-life and gets no fix)"
    return Finding(
        "XN223", f"the host's kernel {verdict.kernel} has {escapes(verdict.cves)}{fixed}",
        hint=rule_hint("XN223"),
    )  # fmt: skip


def remote_note(uri: str) -> Finding:
    """XN224: the kernel behind a remote URI cannot be read from here."""
    return Finding(
        "XN224",
        f"xmlnest cannot read the kernel of the host behind {uri}, so it cannot say whether "
        "it has a guest-to-host escape reachable only through nesting (XN223)",
        hint=rule_hint("XN224"),
        level=Level.INFO,
    )


@dataclass(frozen=True)
class HostExposure:
    """``--status``'s host line: the kernel's verdict and the vendor module's nested value."""

    kernel: KernelVerdict
    module: str | None  # kvm_intel, kvm_amd (None: the vendor is unknown)
    nested: str | None  # the parameter's value; None when the module is not loaded

    def line(self) -> str:
        k = self.kernel
        if k.state == VULNERABLE:
            fixed = f" (fixed in {k.fixed_in})" if k.fixed_in else ""
            state = f"vulnerable to {_names(k.cves)}{fixed}"
        elif k.state == CANNOT_TELL:
            state = f"cannot tell (check {_names(k.cves)})"
        else:
            state = "patched" if k.cves == () and k.sources else "no known nesting advisory"
        if self.module is None:
            nested = "nested: unknown vendor"
        elif self.nested is None:
            nested = f"{self.module} not loaded"
        else:
            nested = f"{self.module} nested={self.nested}"
        return f"host: kernel {k.kernel}: {state}; {nested}"

    def json_line(self) -> str:
        import json

        record = {"record": "host", **dataclasses.asdict(self)}
        return json.dumps(record, sort_keys=True)


def host_exposure(root: Path) -> HostExposure:
    """Read the kernel, the CPU's vendor and its module's nested parameter under ``root``."""
    from xmlnest.hostcheck import probe
    from xmlnest.hostcheck.cpu import read_cpuinfo, vendor_from
    from xmlnest.hostcheck.kernel import applicable, read_kernel, verdict

    info = read_cpuinfo(root)
    vendor = vendor_from(info) if info is not None else None
    module = {"intel": "kvm_intel", "amd": "kvm_amd"}.get(vendor or "")
    nested = probe.read_param(root, module, "nested") if module else None
    advisories = applicable("x86") if module else ()
    return HostExposure(verdict(read_kernel(root), advisories), module, nested)
