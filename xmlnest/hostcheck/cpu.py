"""Per-architecture CPU verdicts for ``--host-check``, from ``/proc/cpuinfo`` alone.

Given the parsed cpuinfo and where the machine is (bare metal or a VM, and what the
firmware check found), say whether this CPU can run nested guests, which KVM module is
the one for it, and why. Nothing here reads files other than through ``host_probe``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from xmlnest.hostcheck.probe import read_text, under
from xmlnest.hostcheck.report import STOP_VMS, Arch, FirmwareState
from xmlnest.model import Vendor

CPUINFO = "/proc/cpuinfo"
_X86_VENDORS: Mapping[str, Vendor] = {
    "GenuineIntel": "intel",
    "AuthenticAMD": "amd",
    "HygonGenuine": "amd",
}
_X86_MODULES: Mapping[Vendor, str] = {"intel": "kvm_intel", "amd": "kvm_amd"}
_FIRMWARE_NAME: Mapping[Vendor, str] = {
    "intel": "Intel Virtualization Technology (VT-x)",
    "amd": "SVM Mode (AMD-V)",
}
_POWER_GENERATION = re.compile(r"\bPOWER(\d+)", re.IGNORECASE)
NOT_ELSEWHERE = "the L0 host must be an Intel, AMD, IBM POWER9, or IBM Z system"


@dataclass(frozen=True)
class CpuInfo:
    """``key : value`` lines of /proc/cpuinfo, in order (keys repeat once per CPU)."""

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> CpuInfo:
        pairs: list[tuple[str, str]] = []
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip():
                pairs.append((key.strip(), value.strip()))
        return cls(tuple(pairs))

    def first(self, key: str) -> str | None:
        return next((value for k, value in self.fields if k == key), None)

    def has(self, key: str) -> bool:
        return any(k == key for k, _ in self.fields)

    def words(self, *keys: str) -> frozenset[str]:
        """Whitespace-separated words of the first line of each key, united."""
        found: set[str] = set()
        for key in keys:
            found.update((self.first(key) or "").split())
        return frozenset(found)


def read_cpuinfo(root: Path) -> CpuInfo | None:
    text = read_text(under(root, CPUINFO))
    return None if text is None else CpuInfo.parse(text)


def detect_arch(info: CpuInfo) -> Arch:
    vendor_id = info.first("vendor_id") or ""
    if vendor_id.startswith("IBM/S390"):
        return Arch.S390X
    if vendor_id or info.has("flags"):
        return Arch.X86
    cpu = info.first("cpu") or ""
    if (
        info.has("platform")
        or "pvr" in (info.first("revision") or "")
        or re.match(r"(POWER|PPC)", cpu, re.IGNORECASE)
    ):
        return Arch.POWER
    model = info.first("model name") or info.first("Processor") or ""
    if info.has("CPU implementer") or re.match(r"(ARM|AArch64)", model, re.IGNORECASE):
        return Arch.ARM
    return Arch.UNKNOWN


def vendor_from(info: CpuInfo) -> Vendor | None:
    vendor = _X86_VENDORS.get(info.first("vendor_id") or "")
    if vendor is not None:
        return vendor
    flags = info.words("flags")
    if "vmx" in flags:
        return "intel"
    if "svm" in flags:
        return "amd"
    return None


def cpu_vendor(root: Path) -> Vendor | None:
    """x86 vendor of the host under ``root``: from ``vendor_id``, else from vmx/svm flags."""
    info = read_cpuinfo(root)
    return None if info is None else vendor_from(info)


@functools.cache
def this_machines_vendor(root: str = "/") -> Vendor | None:
    """:func:`cpu_vendor` of the machine running xmlnest (``root``: ``--host-root``), read
    once per process: the guess behind ``--arch auto`` (the CLI's runner, the API)."""
    return cpu_vendor(Path(root))


# --- per-architecture CPU verdicts ------------------------------------------------------


@dataclass(frozen=True)
class CpuVerdict:
    vendor: Vendor | None
    cpu_model: str | None
    supported: bool
    reason: str
    module: str | None
    caution: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class CpuContext:
    """What the CPU verdict needs beyond cpuinfo: is this a VM, what the firmware said."""

    in_vm: bool = False
    firmware: FirmwareState = "unknown"
    rhel8: bool = False


def _assess_x86(info: CpuInfo, ctx: CpuContext) -> CpuVerdict:
    vendor = vendor_from(info)
    model = info.first("model name")
    flags = info.words("flags", "vmx flags")
    if vendor is None:
        reason = (
            "this VM's CPU flags show neither vmx nor svm: its L0 does not pass hardware "
            "virtualization through"
            if ctx.in_vm
            else "neither vmx nor svm in the CPU flags "
            "(hardware virtualization absent or disabled in firmware)"
        )
        return CpuVerdict(None, model, False, reason, None)
    module = _X86_MODULES[vendor]
    if vendor == "intel":
        needed, generation = ("vmx", "ept"), "Intel Xeon v3 cores and later"
        caution = (
            "Shut down running VMs first: modprobe -r kvm_intel fails while the module is in use."
        )
        vendor_notes: tuple[str, ...] = ()
    else:
        needed, generation = ("svm", "npt"), "AMD EPYC cores and later"
        caution = STOP_VMS
        vendor_notes = (
            "Migrating VMs does not work on AMD systems when nested virtualization "
            "is enabled on the L0 host.",
        )
    virt, paging = needed
    if ctx.in_vm:
        if virt not in flags:
            reason = f"this VM's CPU flags lack {virt} (its L0 does not pass it through)"
            return CpuVerdict(vendor, model, False, reason, module)
        reason = f"this VM's CPU flags include {virt}" + (
            f" and {paging}" if paging in flags else f" (not {paging}: L2 guests are slower)"
        )
        return CpuVerdict(vendor, model, True, reason, module, caution)
    missing = [flag for flag in needed if flag not in flags]
    if ctx.firmware == "disabled":
        reason = (
            f"{virt} is switched off: enable {_FIRMWARE_NAME[vendor]} in the firmware setup,"
            f" power the machine off and on, and check again (nesting needs "
            f"{virt} and {paging}, generally {generation})"
        )
        return CpuVerdict(vendor, model, False, reason, module)
    if missing:
        hint = ""
        if missing[0] == virt:
            hint = " (absent)" if ctx.firmware == "enabled" else " (absent or disabled in firmware)"
        reason = (
            f"CPU flags lack {' and '.join(missing)}{hint}; nesting needs "
            f"{virt} and {paging}, generally {generation}"
        )
        return CpuVerdict(vendor, model, False, reason, module)
    reason = f"CPU flags include {virt} and {paging}"
    return CpuVerdict(vendor, model, True, reason, module, caution, notes=vendor_notes)


def _assess_s390(info: CpuInfo, ctx: CpuContext) -> CpuVerdict:
    machine = info.first("machine")
    model = f"IBM/S390 machine {machine}" if machine else "IBM/S390"
    if "sie" not in info.words("features"):
        reason = "CPU features lack sie; nesting on IBM Z needs the sie facility"
        return CpuVerdict(None, model, False, reason, "kvm")
    return CpuVerdict(None, model, True, "CPU features include sie", "kvm", STOP_VMS)


def _assess_power(info: CpuInfo, ctx: CpuContext) -> CpuVerdict:
    cpu = info.first("cpu") or ""
    machine = info.first("machine") or info.first("platform")
    model = "; ".join(part for part in (cpu, machine) if part) or None
    match = _POWER_GENERATION.search(cpu)
    if match is None:
        reason = (
            f"cannot tell the POWER generation from cpu '{cpu}'; nesting needs IBM POWER9 or later"
        )
        return CpuVerdict(None, model, False, reason, "kvm_hv")
    generation = int(match.group(1))
    if generation < 9:
        reason = (
            f"POWER{generation}: creating nested VMs is not possible on IBM POWER8 "
            "or older; nesting needs IBM POWER9 or later"
        )
        return CpuVerdict(None, model, False, reason, "kvm_hv")
    notes = [
        "XIVE (External Interrupt Virtualization Engine) does not work in the L1 "
        "hypervisor; L1 VMs can use the emulated XIVE interrupt controller to start L2 VMs.",
    ]
    if ctx.rhel8:
        notes.append(
            "On IBM POWER9 nesting works only with RHEL 8 on L0 and L1, RHEL 8 or RHEL 7 "
            "(rhel-alt kernel) on L2, and L1/L2 not in POWER8 compatibility mode."
        )
    reason = "IBM POWER9 supports nested virtualization (KVM-HV)"
    if generation > 9:
        reason = f"POWER{generation} is later than POWER9 (nesting needs POWER9 or later)"
        notes.append(f"RHEL 8 documents nesting for IBM POWER9; POWER{generation} is untested.")
    return CpuVerdict(None, model, True, reason, "kvm_hv", STOP_VMS, tuple(notes))


def _arm_model(info: CpuInfo) -> str | None:
    named = info.first("model name") or info.first("Processor")
    if named:
        return named
    implementer, part = info.first("CPU implementer"), info.first("CPU part")
    if implementer and part:
        return f"ARM implementer {implementer} part {part}"
    return None


def _assess_arm(info: CpuInfo, ctx: CpuContext) -> CpuVerdict:
    reason = (
        "nested virtualization currently does not work on other architectures, "
        "such as ARM; " + NOT_ELSEWHERE
    )
    return CpuVerdict(None, _arm_model(info), False, reason, None)


def _assess_unknown(info: CpuInfo, ctx: CpuContext) -> CpuVerdict:
    reason = (
        "unrecognised architecture in /proc/cpuinfo; nested virtualization currently "
        "does not work on other architectures; " + NOT_ELSEWHERE
    )
    return CpuVerdict(None, info.first("model name"), False, reason, None)


_ASSESSORS: Mapping[Arch, Callable[[CpuInfo, CpuContext], CpuVerdict]] = {
    Arch.X86: _assess_x86,
    Arch.S390X: _assess_s390,
    Arch.POWER: _assess_power,
    Arch.ARM: _assess_arm,
    Arch.UNKNOWN: _assess_unknown,
}


def assess_cpu(info: CpuInfo, ctx: CpuContext) -> tuple[Arch, CpuVerdict]:
    """The architecture and the CPU verdict for it."""
    arch = detect_arch(info)
    return arch, _ASSESSORS[arch](info, ctx)
