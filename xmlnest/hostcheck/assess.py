"""Judge the machine around the KVM module: where am I, firmware, speed, distribution.

Each function turns what ``host_probe`` read into one part of the report (see
``host_model``), with the advice a user needs (/dev/kvm has its own ``host_devkvm``).
Sources: the kernel's Documentation/virt/kvm/x86/running-nested-guests.rst (speed
parameters), kvm-ok from cpu-checker (the firmware MSRs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from xmlnest.hostcheck import probe
from xmlnest.hostcheck.report import (
    Arch,
    Firmware,
    OsInfo,
    Place,
    SpeedParam,
)
from xmlnest.model import Vendor

_ON = frozenset({"1", "Y", "y"})
_OFF = frozenset({"0", "N", "n"})

# DMI strings that only virtual machines report (systemd-detect-virt's main ones).
_VM_DMI = (
    "QEMU",
    "KVM",
    "VirtualBox",
    "innotek GmbH",
    "VMware",
    "Virtual Machine",  # Hyper-V's product_name
    "HVM domU",
    "Xen",
    "Bochs",
    "BHYVE",
    "Parallels",
    "Google Compute Engine",
    "OpenStack Nova",
)
_DMI = "/sys/class/dmi/id"

_INTEL_FEATURE_CONTROL = 0x3A  # bit 0 lock, bit 2 VMX outside SMX (kvm-ok's test)
_AMD_VM_CR = 0xC0010114  # bit 4 SVMDIS
_FIRMWARE_LOG = re.compile(
    r"^.*\b(kvm|vmx|svm)\b.*\b(disabled|not enabled) \(?by bios\)?.*$",
    re.IGNORECASE | re.MULTILINE,
)


def is_on(value: str | None) -> bool | None:
    """``True`` for 1/Y, ``False`` for 0/N, ``None`` when absent or unrecognised."""
    if value in _ON:
        return True
    if value in _OFF:
        return False
    return None


# --- where am I ------------------------------------------------------------------------


@dataclass(frozen=True)
class Guest:
    """What the L1 view needs: the extension a guest must see and whether it sees it."""

    flag: str  # vmx, svm, sie, nested-hv
    visible: bool
    module: str | None
    module_loaded: bool


def place(root: Path, arch: Arch, flags: frozenset[str], platform: str | None) -> Place:
    """Bare metal or a VM, from the hypervisor flag, DMI, /sys/hypervisor, sysinfo."""
    evidence: list[str] = []
    vm: bool | None = None
    if arch is Arch.X86:
        vm = "hypervisor" in flags
        evidence.append("CPU flag hypervisor" if vm else "no hypervisor CPU flag")
    vendor = probe.read_host(root, f"{_DMI}/sys_vendor")
    product = probe.read_host(root, f"{_DMI}/product_name")
    dmi = " ".join(part for part in (vendor, product) if part)
    hypervisor: str | None = None
    if dmi:
        evidence.append(f"DMI: {dmi}")
        if any(mark.lower() in dmi.lower() for mark in _VM_DMI):
            vm, hypervisor = True, dmi
    hv_type = probe.read_host(root, "/sys/hypervisor/type")
    if hv_type:
        evidence.append(f"/sys/hypervisor/type: {hv_type}")
        vm, hypervisor = True, hypervisor or hv_type
    if arch is Arch.S390X:
        vm = _s390_guest(root, evidence)
    elif arch is Arch.POWER and platform:
        evidence.append(f"platform {platform}")
        vm = platform.lower() == "pseries"  # PowerNV is bare metal; pseries runs on a hypervisor
    if vm is None:
        return Place("unknown", None, hypervisor, tuple(evidence), "")
    if vm:
        return Place("vm", "L1", hypervisor, tuple(evidence), "")
    return Place("bare-metal", "L0", hypervisor, tuple(evidence), "")


def _s390_guest(root: Path, evidence: list[str]) -> bool | None:
    sysinfo = probe.read_host(root, "/proc/sysinfo")
    if sysinfo is None:
        return None
    program = re.search(r"^VM00 Control Program:\s*(.+)$", sysinfo, re.MULTILINE)
    if program:
        evidence.append(f"/proc/sysinfo: VM00 Control Program: {program.group(1).strip()}")
        return True
    evidence.append("/proc/sysinfo: LPAR, no VM level")
    return False


def view(where: Place, guest: Guest | None) -> str:
    """The one sentence on what this machine's place means for L2 guests."""
    if where.kind == "bare-metal":
        return "this is bare metal (an L0): its guests are L1s, and nesting lets them run L2s"
    if where.kind == "unknown":
        return "cannot tell whether this is bare metal or a VM; the L0 checks below apply"
    if guest is None or guest.module is None:
        return "this is a VM; xmlnest's edits do not apply to its architecture"
    flag, module = guest.flag, guest.module
    if not guest.visible:
        return (
            f"this is a VM without {flag}: ask the L0's owner to enable nesting (the L0 "
            f"needs {module} nested=1 and this VM host-passthrough or require {flag})"
        )
    if guest.module_loaded:
        return f"this is a VM; {flag} is visible and {module} is loaded, so it can run L2 guests"
    return (
        f"this is a VM; {flag} is visible but {module} is not loaded: load it "
        f"(modprobe {module}) to run L2 guests"
    )


# --- firmware --------------------------------------------------------------------------


def firmware(root: Path, vendor: Vendor | None, module: str | None, in_vm: bool) -> Firmware:
    """kvm-ok's MSR test where /dev/cpu/0/msr reads, else the kernel log, else unknown."""
    if vendor == "intel":
        value = probe.read_msr(root, _INTEL_FEATURE_CONTROL)
        if value is not None:
            source = "/dev/cpu/0/msr 0x3a (IA32_FEATURE_CONTROL)"
            if value & 0b1 and not value & 0b100:
                return Firmware("disabled", source, "locked without VMX outside SMX")
            return Firmware("enabled", source, "VMX outside SMX allowed")
    elif vendor == "amd":
        value = probe.read_msr(root, _AMD_VM_CR)
        if value is not None:
            source = "/dev/cpu/0/msr 0xc0010114 (VM_CR)"
            if value & 0b10000:
                return Firmware("disabled", source, "SVMDIS set")
            return Firmware("enabled", source, "SVMDIS clear")
    log = probe.kernel_log(root)
    if log is not None:
        line = _FIRMWARE_LOG.search(log)
        if line:
            said = line.group(0).split(";")[-1].strip()
            return Firmware("disabled", "/dev/kmsg", f"kernel log: {said}")
    if module is not None and _live(root, module):
        return Firmware("enabled", f"{module} is loaded", "it refuses to load when disabled")
    said = "kernel log unreadable" if log is None else "no firmware line in the kernel log"
    vm = "a VM: the L0 decides what it sees; " if in_vm else ""
    msr = "/dev/cpu/0/msr unreadable (modprobe msr, as root, makes it readable)"
    return Firmware("unknown", None, f"{vm}{msr}; {said}")


def _live(root: Path, module: str) -> bool:
    """Loaded as a module and initialised (built-in modules have no initstate)."""
    states = probe.module_states(root)
    if states is not None and states.get(module) == "Live":
        return True
    return probe.read_host(root, f"/sys/module/{module}/initstate") == "live"


# --- speed -----------------------------------------------------------------------------

_DOC = "Documentation/virt/kvm/x86/running-nested-guests.rst"
_SPEED: Mapping[str, tuple[tuple[str, bool, str], ...]] = {
    "kvm_intel": (
        (
            "ept",
            True,
            "ept is off: KVM uses shadow paging and L2 guests run much slower; the kernel's "
            f"{_DOC}: if L2 is slow, ensure enable_shadow_vmcs and ept are enabled "
            "(in a VM, ept needs the L0's ept=1 and host-passthrough)",
        ),
        (
            "enable_shadow_vmcs",
            True,
            "enable_shadow_vmcs is off: each VMREAD/VMWRITE of an L1 exits to the L0, so L2 "
            f"guests run slower ({_DOC}; needs Haswell or later)",
        ),
        (
            "enable_apicv",
            False,
            f"enable_apicv is off: interrupts cost more exits ({_DOC} expects it on Haswell "
            "or later)",
        ),
    ),
    "kvm_amd": (
        (
            "npt",
            True,
            "npt is off: KVM uses shadow paging and L2 guests run much slower "
            "(in a VM, npt needs the L0's npt=1 and host-passthrough)",
        ),
        (
            "avic",
            False,
            "avic is off (KVM's default on most kernels): interrupts cost more exits; "
            "AVIC is off with nesting before Linux 5.19 anyway",
        ),
    ),
}
_L0_ONLY = "enable_shadow_vmcs"  # shadows the L1's VMCS accesses: the L0's setting counts


def speed(root: Path, module: str | None, in_vm: bool) -> tuple[SpeedParam, ...]:
    """The parameters that decide nested speed, for the loaded vendor module."""
    if module is None or not probe.module_present(root, module):
        return ()
    params: list[SpeedParam] = []
    release = probe.read_host(root, "/proc/sys/kernel/osrelease")
    for name, slows, advice in _SPEED.get(module, ()):
        value = probe.read_param(root, module, name)
        if value is None:
            continue  # an older kernel without the parameter: nothing to report
        on = is_on(value)
        slow = slows and on is False and not (in_vm and name == _L0_ONLY)
        said: str | None = advice if on is False else None
        if on is False and in_vm and name == _L0_ONLY:
            said = (
                f"{name} is off in this VM; it speeds up this VM's own guests' guests (L3): "
                "for L2 guests the L0's enable_shadow_vmcs is the one that counts"
            )
        if name == "avic" and on and _older_than(release, (5, 19)):
            said = f"avic is on, but Linux {release} turns AVIC off for VMs given svm (< 5.19)"
        path = str(probe.param_path(module, name))
        params.append(SpeedParam(name, path, value, on, slow, said))
    return tuple(params)


def _older_than(release: str | None, version: tuple[int, int]) -> bool:
    match = re.match(r"(\d+)\.(\d+)", release or "")
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2))) < version


# --- distribution ----------------------------------------------------------------------


def os_info(root: Path) -> OsInfo:
    fields = probe.os_release(root)
    return OsInfo(fields.get("ID"), fields.get("VERSION_ID"), fields.get("PRETTY_NAME"))


def is_rhel8(info: OsInfo) -> bool:
    return info.id == "rhel" and (info.version_id or "").split(".")[0] == "8"
