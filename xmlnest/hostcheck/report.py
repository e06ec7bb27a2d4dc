"""The ``--host-check`` report as data, and the exit code it decides.

Frozen dataclasses only: ``host.py`` fills them in, ``host_render.py`` prints them, and
``--json`` is their ``dataclasses.asdict`` (so field names here are the JSON's stable keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

from xmlnest.errors import ExitCode
from xmlnest.model import Vendor

if TYPE_CHECKING:
    from xmlnest.hostcheck.kernel import KernelVerdict

FirmwareState = Literal["enabled", "disabled", "unknown"]
PlaceKind = Literal["bare-metal", "vm", "unknown"]

EXIT_READY = ExitCode.OK  # the exit codes are the run's own (errors.ExitCode)
EXIT_ACTION_NEEDED = ExitCode.CHANGES
EXIT_UNSUPPORTED = ExitCode.REJECTED

STOP_VMS = "Stop all running VMs on the L0 host first."


class Arch(StrEnum):
    """CPU family of the host, as far as /proc/cpuinfo tells."""

    X86 = "x86"
    S390X = "s390x"
    POWER = "power"
    ARM = "arm"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Place:
    """Where this machine is: bare metal (an L0) or a VM (an L1 when it runs guests)."""

    kind: PlaceKind
    level: Literal["L0", "L1"] | None
    hypervisor: str | None  # what the VM's hypervisor calls itself, when it says
    evidence: tuple[str, ...]
    view: str  # one sentence: what this means for running L2 guests


@dataclass(frozen=True)
class Access:
    """Whether one user may open /dev/kvm read-write, and the fix when not."""

    role: Literal["current user", "libvirt qemu user"]
    user: str
    ok: bool
    fix: tuple[str, ...]


@dataclass(frozen=True)
class DevKvm:
    """The /dev/kvm node: present, a character device, who serves it, who may open it."""

    path: str
    present: bool
    char_device: bool
    rdev: str | None
    mode: str | None  # "0660"
    owner: str | None
    group: str | None
    served_by: str | None
    served_by_known: bool | None  # a KVM module xmlnest's XML edits apply to
    served_by_note: str | None
    access: tuple[Access, ...]
    problem: str | None  # None when the node is usable by everyone checked
    fix: tuple[str, ...]


@dataclass(frozen=True)
class Firmware:
    """Whether the firmware left hardware virtualization on (x86 only)."""

    state: FirmwareState
    source: str | None  # "/dev/cpu/0/msr 0x3a", "/dev/kmsg", "kvm_intel is loaded"
    detail: str


@dataclass(frozen=True)
class SpeedParam:
    """A module parameter that decides how fast nested guests run."""

    param: str
    path: str
    value: str | None
    on: bool | None
    slow: bool  # off, and the kernel's document says this slows nested guests
    advice: str | None


@dataclass(frozen=True)
class OsInfo:
    """``/etc/os-release``'s ID, VERSION_ID and PRETTY_NAME (``None`` when absent)."""

    id: str | None
    version_id: str | None
    pretty_name: str | None


@dataclass(frozen=True)
class Security:
    """The kernel against the nesting advisories, and what to do (``hostcheck.security``)."""

    level: Literal["ok", "note", "action needed"]
    message: str
    kernel: KernelVerdict
    upgrade: str | None = None  # "upgrade the kernel to 6.1.177 or later and reboot"
    off_now: tuple[str, ...] = ()  # action needed: turn nesting off now (as root)
    off_caution: str | None = None  # what must hold first (every VM stopped)
    off_keep: str | None = None  # and keep it off after a reboot


@dataclass(frozen=True)
class HostReport:
    """Facts about the host and the verdict on them; ``exit_code`` sums it up."""

    arch: Arch
    vendor: Vendor | None
    cpu_model: str | None
    supported: bool
    support_reason: str
    module: str | None
    module_loaded: bool
    nested_param_path: str | None
    nested_value: str | None
    enabled: bool
    enable_caution: str | None
    enable_now: tuple[str, ...]
    enable_permanent_line: str | None
    persistent_config_file: str | None
    persistent_cmdline: str | None
    hpage: bool | None
    place: Place
    dev_kvm: DevKvm
    firmware: Firmware | None
    speed: tuple[SpeedParam, ...]
    slow: bool
    os: OsInfo
    notes: tuple[str, ...]
    security: tuple[Security, ...] = ()  # x86: the kernel's verdict; other arches: none

    @property
    def exit_code(self) -> int:
        """0 L2 guests can run; 1 action needed on this machine; 3 cannot nest here.

        Bare metal needs the module's nested parameter on (and, on IBM Z, hpage off); a VM
        needs only its KVM module loaded, since its own nested parameter matters for L3.
        Virtualization disabled by the firmware is an action (1), not a missing CPU feature.
        Nesting on with a kernel that has a nesting advisory is an action (Security).
        Slow parameters are reported but do not change the code.
        """
        in_vm = self.place.kind == "vm"
        if self.firmware is not None and self.firmware.state == "disabled" and not in_vm:
            return EXIT_ACTION_NEEDED
        if not self.supported:
            return EXIT_UNSUPPORTED
        if any(item.level == "action needed" for item in self.security):
            return EXIT_ACTION_NEEDED
        if self.dev_kvm.problem is not None:
            return EXIT_ACTION_NEEDED
        if in_vm:
            return EXIT_READY if self.module_loaded else EXIT_ACTION_NEEDED
        if self.enabled and self.hpage is not True:
            return EXIT_READY
        return EXIT_ACTION_NEEDED
