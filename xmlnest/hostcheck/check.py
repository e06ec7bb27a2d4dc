"""Host readiness for nested guests (``xmlnest --host-check``): assemble the report.

Single responsibility: call the CPU verdict (``host_cpu``), the module's ``nested``
parameter and its persistence (modprobe.d, the kernel command line), and the checks
around them (``host_assess``: where am I, /dev/kvm, firmware, speed, distribution), and
combine them into one ``HostReport`` whose ``exit_code`` answers "will my L2 run?".
Nothing here writes, prints or exits; ``host_render`` turns the report into text or JSON.

Paths inside the report are host paths (``/sys/...``, ``/etc/...``), never the ``root``
prefix, so a report reads the same whether taken from ``/`` or a test tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from xmlnest.errors import UsageError
from xmlnest.hostcheck import assess, devkvm, modprobe, probe
from xmlnest.hostcheck.cpu import (
    CPUINFO,
    NOT_ELSEWHERE,
    CpuContext,
    CpuVerdict,
    assess_cpu,
    cpu_vendor,
    detect_arch,
    read_cpuinfo,
    vendor_from,
)
from xmlnest.hostcheck.render import render_json, render_text, report_dict
from xmlnest.hostcheck.report import (
    EXIT_ACTION_NEEDED,
    EXIT_READY,
    EXIT_UNSUPPORTED,
    STOP_VMS,
    Arch,
    Firmware,
    HostReport,
    OsInfo,
    Place,
    Security,
)

__all__ = [
    "EXIT_ACTION_NEEDED",
    "EXIT_READY",
    "EXIT_UNSUPPORTED",
    "STOP_VMS",
    "Arch",
    "HostReport",
    "cpu_vendor",
    "host_check",
    "render_json",
    "render_text",
    "report_dict",
]

TECH_PREVIEW = "Nested virtualization is a Technology Preview in RHEL 8 (unsupported)."
PVM_SHADOW = (
    "kvm_pvm runs every guest of this machine on KVM's shadow MMU, so the Security "
    "advisories' path is reachable from its guests with nesting off too (virt-pvm/linux#24): "
    "only a fixed kernel closes it."
)
_GUEST_FLAG = {"kvm_intel": "vmx", "kvm_amd": "svm", "kvm": "sie", "kvm_hv": "nested-hv"}


@dataclass(frozen=True)
class _ModuleFacts:
    param_path: str
    value: str | None
    loaded: bool
    config: modprobe.Setting | None
    cmdline: modprobe.Setting | None

    @property
    def next_boot(self) -> modprobe.Setting | None:
        """What the next load applies: kmod appends the command line's options last."""
        return self.cmdline or self.config


def _module_facts(root: Path, module: str) -> _ModuleFacts:
    path = probe.param_path(module, "nested")
    return _ModuleFacts(
        param_path=str(path),
        value=probe.read_param(root, module, "nested"),
        loaded=probe.module_present(root, module),
        config=modprobe.config_setting(root, module, "nested"),
        cmdline=modprobe.cmdline_setting(root, module, "nested"),
    )


def _module_notes(module: str, facts: _ModuleFacts, enabled: bool) -> list[str]:
    notes: list[str] = []
    if not facts.loaded:
        notes.append(
            f"The {module} module is not loaded ({facts.param_path.rsplit('/', 2)[0]} "
            "is missing), so nesting is not enabled."
        )
    elif facts.value is None:
        notes.append(
            f"{module} is loaded but {facts.param_path} is missing or unreadable; "
            "this kernel may not offer nesting."
        )
    elif assess.is_on(facts.value) is None:
        notes.append(f"Unrecognised value {facts.value!r} in {facts.param_path}.")
    config, cmdline = facts.config, facts.cmdline
    if cmdline is not None and assess.is_on(cmdline.value) is not True:
        notes.append(
            f"The kernel command line has {cmdline.text}, which overrides modprobe.d at every "
            "boot; remove it from the boot loader's kernel command line."
        )
    elif config is not None and assess.is_on(config.value) is not True:
        overridden = cmdline is not None
        notes.append(
            f"{config.source} sets nested={config.value} for {module}; "
            + (
                f"the kernel command line's {cmdline.text} overrides it."
                if overridden and cmdline is not None
                else "change it to nested=1 to keep nesting after a reboot."
            )
        )
    elif facts.next_boot is None and enabled:
        notes.append(
            f"Nesting is on now but neither modprobe.d nor the kernel command line sets it; "
            f"unless it is the kernel's default, add 'options {module} nested=1' to "
            "/etc/modprobe.d/kvm.conf."
        )
    return notes


def _hpage_notes(hpage: bool | None, config: modprobe.Setting | None) -> list[str]:
    notes: list[str] = []
    if hpage:
        notes.append(
            "kvm is loaded with hpage=1: on IBM Z, huge-page backing and nested "
            "virtualization cannot be used at the same time ('modprobe kvm hpage=1 "
            "nested=1' fails with 'Invalid argument'; dmesg: 'kvm-s390: A KVM host that "
            "supports nesting cannot back its KVM guests with huge pages'). Enabling "
            "nesting means loading kvm with hpage=0, so guests can no longer be backed "
            "by huge pages."
        )
    if config is not None and assess.is_on(config.value):
        notes.append(
            f"{config.source} sets 'options kvm hpage={config.value}'; remove hpage there "
            "before adding nested=1, or kvm will fail to load at boot."
        )
    return notes


def _enable_commands(module: str, loaded: bool, hpage_in_the_way: bool) -> tuple[str, ...]:
    load = f"modprobe {module} nested=1"
    if hpage_in_the_way:
        load += " hpage=0"  # command-line options come after modprobe.d's: last one wins
    return (f"modprobe -r {module}", load) if loaded else (load,)


def _check_root(root: Path) -> None:
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise UsageError(
            f"--host-root {root}: {what}; give the folder that holds the host's proc/ and sys/"
        )


def host_check(root: Path) -> HostReport:
    """Read the host tree under ``root`` (normally ``/``) and assess nesting; never writes.

    Raises ``UsageError`` when ``root`` is not a folder.
    """
    _check_root(root)
    os_info = assess.os_info(root)
    info = read_cpuinfo(root)
    if info is None:
        return _unknown_report(root, f"cannot read {CPUINFO}; " + NOT_ELSEWHERE, os_info)
    arch = detect_arch(info)
    where = assess.place(root, arch, info.words("flags"), info.first("platform"))
    in_vm = where.kind == "vm"
    vendor = vendor_from(info)
    firmware = None
    if arch is Arch.X86:
        expected = {"intel": "kvm_intel", "amd": "kvm_amd", None: None}[vendor]
        firmware = assess.firmware(root, vendor, expected, in_vm)
    ctx = CpuContext(in_vm, firmware.state if firmware else "unknown", assess.is_rhel8(os_info))
    arch, verdict = assess_cpu(info, ctx)
    return _report(root, arch, verdict, where, firmware, os_info)


def _report(
    root: Path,
    arch: Arch,
    verdict: CpuVerdict,
    where: Place,
    firmware: Firmware | None,
    os_info: OsInfo,
) -> HostReport:
    module = verdict.module
    in_vm = where.kind == "vm"
    facts = _module_facts(root, module) if module else None
    loaded = bool(facts and facts.loaded)
    guest = None
    if module is not None:
        visible = verdict.supported or module == "kvm_hv"
        guest = assess.Guest(_GUEST_FLAG.get(module, module), visible, module, loaded)
    where = Place(
        where.kind, where.level, where.hypervisor, where.evidence, assess.view(where, guest)
    )
    enabled = facts is not None and assess.is_on(facts.value) is True
    hpage: bool | None = None
    hpage_config: modprobe.Setting | None = None
    if arch is Arch.S390X and module:
        hpage = assess.is_on(probe.read_param(root, module, "hpage"))
        hpage_config = modprobe.config_setting(root, module, "hpage")
    notes = list(verdict.notes)
    caution: str | None = None
    enable_now: tuple[str, ...] = ()
    permanent: str | None = None
    config = facts.config if facts else None
    cmdline = facts.cmdline if facts else None
    security = _security(root, arch, module, enabled, loaded, config, cmdline)
    urgent = any(item.level == "action needed" for item in security)
    if verdict.supported and module and facts and not in_vm:
        notes += [  # no advice to keep nesting on while the kernel says turn it off
            note
            for note in _module_notes(module, facts, enabled)
            if not (urgent and note.startswith("Nesting is on now"))
        ]
        notes += _hpage_notes(hpage, hpage_config)
        permanent = f"options {module} nested=1"
        if not enabled:
            in_the_way = bool(hpage) or assess.is_on(hpage_config.value if hpage_config else None)
            enable_now = _enable_commands(module, facts.loaded, bool(in_the_way))
            caution = verdict.caution if facts.loaded else None
    elif in_vm and module and facts and facts.value is not None:
        notes.append(
            f"{facts.param_path} = {facts.value} in this VM matters only for guests of its "
            "guests (L3), which are not expected to work; L2 guests need nesting on the L0."
        )
    if verdict.supported and assess.is_rhel8(os_info):
        notes.append(TECH_PREVIEW)
    dev_kvm = devkvm.dev_kvm(root, module, loaded)
    if dev_kvm.served_by == "kvm_pvm" and any(i.kernel.state != "patched" for i in security):
        notes.append(PVM_SHADOW)
    speed = assess.speed(root, module, in_vm)
    return HostReport(
        arch=arch,
        vendor=verdict.vendor,
        cpu_model=verdict.cpu_model,
        supported=verdict.supported,
        support_reason=verdict.reason,
        module=module,
        module_loaded=loaded,
        nested_param_path=facts.param_path if facts else None,
        nested_value=facts.value if facts else None,
        enabled=enabled,
        enable_caution=caution,
        enable_now=enable_now,
        enable_permanent_line=permanent,
        persistent_config_file=config.source if config and assess.is_on(config.value) else None,
        persistent_cmdline=cmdline.text if cmdline and assess.is_on(cmdline.value) else None,
        hpage=hpage,
        place=where,
        dev_kvm=dev_kvm,
        firmware=firmware,
        speed=speed,
        slow=any(param.slow for param in speed),
        os=os_info,
        notes=tuple(notes),
        security=security,
    )


def _security(
    root: Path,
    arch: Arch,
    module: str | None,
    enabled: bool,
    loaded: bool,
    config: modprobe.Setting | None,
    cmdline: modprobe.Setting | None,
) -> tuple[Security, ...]:
    """The kernel against the nesting advisories of this arch (x86 only, so far)."""
    from xmlnest.hostcheck import kernel as host_kernel
    from xmlnest.hostcheck import security as host_security

    advisories = host_kernel.applicable(arch.value)
    if not advisories:
        return ()
    kernel = host_kernel.verdict(host_kernel.read_kernel(root), advisories)
    item = host_security.assess(
        kernel, module=module, enabled=enabled, loaded=loaded, config=config, cmdline=cmdline
    )
    return (item,)


def _unknown_report(root: Path, reason: str, os_info: OsInfo) -> HostReport:
    nowhere = Place("unknown", None, None, (), "")
    where = Place("unknown", None, None, (), assess.view(nowhere, None))
    return HostReport(
        arch=Arch.UNKNOWN,
        vendor=None,
        cpu_model=None,
        supported=False,
        support_reason=reason,
        module=None,
        module_loaded=False,
        nested_param_path=None,
        nested_value=None,
        enabled=False,
        enable_caution=None,
        enable_now=(),
        enable_permanent_line=None,
        persistent_config_file=None,
        persistent_cmdline=None,
        hpage=None,
        place=where,
        dev_kvm=devkvm.dev_kvm(root, None, False),
        firmware=None,
        speed=(),
        slow=False,
        os=os_info,
        notes=(),
    )
