"""L0 host readiness report for nested virtualization (``xmlnest --host-check``).

Single responsibility: read a host tree under ``root`` (``/proc/cpuinfo``,
``/sys/module/<kvm module>/parameters``, ``modprobe.d``) and assess, following the
RHEL 8 rules, whether the CPU supports nesting and whether the KVM module has it
enabled. Nothing here writes, prints or exits; text and JSON rendering are pure
functions of the report, and the CLI decides what to do with them.

Paths inside the report are host paths (``/sys/...``, ``/etc/...``), never the
``root`` prefix, so a report reads the same whether taken from ``/`` or a test tree.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Literal

Vendor = Literal["intel", "amd"]

EXIT_READY = 0
EXIT_ACTION_NEEDED = 1
EXIT_UNSUPPORTED = 3

STOP_VMS = "Stop all running VMs on the L0 host first."

_MAX_READ = 16 * 1024 * 1024  # /proc/cpuinfo of a very large host is a few MiB
_CPUINFO = PurePosixPath("/proc/cpuinfo")
_MODPROBE_DIRS = (  # kmod's search order; the first file of a given name wins
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
)
_ON = frozenset({"1", "Y", "y"})
_OFF = frozenset({"0", "N", "n"})
_X86_VENDORS: Mapping[str, Vendor] = {
    "GenuineIntel": "intel",
    "AuthenticAMD": "amd",
    "HygonGenuine": "amd",
}
_X86_MODULES: Mapping[Vendor, str] = {"intel": "kvm_intel", "amd": "kvm_amd"}
_POWER_GENERATION = re.compile(r"\bPOWER(\d+)", re.IGNORECASE)
_NOT_ELSEWHERE = "the L0 host must be an Intel, AMD, IBM POWER9, or IBM Z system"


class Arch(StrEnum):
    """CPU family of the L0 host, as far as /proc/cpuinfo tells."""

    X86 = "x86"
    S390X = "s390x"
    POWER = "power"
    ARM = "arm"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class HostReport:
    """Facts about the L0 host and the verdict on them; ``exit_code`` sums it up."""

    arch: Arch
    vendor: Vendor | None
    cpu_model: str | None
    supported: bool
    support_reason: str
    module: str | None
    nested_param_path: str | None
    nested_value: str | None
    enabled: bool
    enable_caution: str | None
    enable_now: tuple[str, ...]
    enable_permanent_line: str | None
    persistent_config_file: str | None
    hpage: bool | None
    notes: tuple[str, ...]

    @property
    def exit_code(self) -> int:
        """0 supported and enabled; 1 supported but action needed; 3 not supported."""
        if not self.supported:
            return EXIT_UNSUPPORTED
        if self.enabled and self.hpage is not True:
            return EXIT_READY
        return EXIT_ACTION_NEEDED


# --- reading ---------------------------------------------------------------------------


def _under(root: Path, host_path: PurePosixPath | str) -> Path:
    return root / str(host_path).lstrip("/")


def _read_text(path: Path) -> str | None:
    """The file's text, or ``None`` when it cannot be read. Opens read-only."""
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_READ)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def _read_param(root: Path, module: str, param: str) -> str | None:
    text = _read_text(_under(root, _param_path(module, param)))
    return None if text is None else text.strip()


def _param_path(module: str, param: str) -> PurePosixPath:
    return PurePosixPath("/sys/module", module, "parameters", param)


def _is_on(value: str | None) -> bool | None:
    """``True`` for 1/Y, ``False`` for 0/N, ``None`` when absent or unrecognised."""
    if value in _ON:
        return True
    if value in _OFF:
        return False
    return None


# --- /proc/cpuinfo ---------------------------------------------------------------------


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


def _read_cpuinfo(root: Path) -> CpuInfo | None:
    text = _read_text(_under(root, _CPUINFO))
    return None if text is None else CpuInfo.parse(text)


def _detect_arch(info: CpuInfo) -> Arch:
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


def _vendor_from(info: CpuInfo) -> Vendor | None:
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
    info = _read_cpuinfo(root)
    return None if info is None else _vendor_from(info)


# --- per-architecture CPU verdicts ------------------------------------------------------


@dataclass(frozen=True)
class _CpuVerdict:
    vendor: Vendor | None
    cpu_model: str | None
    supported: bool
    reason: str
    module: str | None
    caution: str | None = None
    notes: tuple[str, ...] = ()


def _assess_x86(info: CpuInfo) -> _CpuVerdict:
    vendor = _vendor_from(info)
    model = info.first("model name")
    flags = info.words("flags", "vmx flags")
    virt_notes: tuple[str, ...] = ()
    if "hypervisor" in flags:
        virt_notes = (
            "The hypervisor flag is set: this system is itself a VM; "
            "the L0 checks apply to the physical host below it.",
        )
    if vendor is None:
        return _CpuVerdict(
            None,
            model,
            False,
            "neither vmx nor svm in the CPU flags "
            "(hardware virtualization absent or disabled in firmware)",
            None,
            notes=virt_notes,
        )
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
    missing = [flag for flag in needed if flag not in flags]
    if missing:
        hint = " (absent or disabled in firmware)" if missing[0] == needed[0] else ""
        reason = (
            f"CPU flags lack {' and '.join(missing)}{hint}; nesting needs "
            f"{needed[0]} and {needed[1]}, generally {generation}"
        )
        return _CpuVerdict(vendor, model, False, reason, module, notes=virt_notes)
    reason = f"CPU flags include {needed[0]} and {needed[1]}"
    return _CpuVerdict(
        vendor, model, True, reason, module, caution, notes=virt_notes + vendor_notes
    )


def _assess_s390(info: CpuInfo) -> _CpuVerdict:
    machine = info.first("machine")
    model = f"IBM/S390 machine {machine}" if machine else "IBM/S390"
    if "sie" not in info.words("features"):
        reason = "CPU features lack sie; nesting on IBM Z needs the sie facility"
        return _CpuVerdict(None, model, False, reason, "kvm")
    return _CpuVerdict(None, model, True, "CPU features include sie", "kvm", STOP_VMS)


def _assess_power(info: CpuInfo) -> _CpuVerdict:
    cpu = info.first("cpu") or ""
    machine = info.first("machine") or info.first("platform")
    model = "; ".join(part for part in (cpu, machine) if part) or None
    match = _POWER_GENERATION.search(cpu)
    if match is None:
        reason = (
            f"cannot tell the POWER generation from cpu '{cpu}'; nesting needs IBM POWER9 or later"
        )
        return _CpuVerdict(None, model, False, reason, "kvm_hv")
    generation = int(match.group(1))
    if generation < 9:
        reason = (
            f"POWER{generation}: creating nested VMs is not possible on IBM POWER8 "
            "or older; nesting needs IBM POWER9 or later"
        )
        return _CpuVerdict(None, model, False, reason, "kvm_hv")
    notes = [
        "XIVE (External Interrupt Virtualization Engine) does not work in the L1 "
        "hypervisor; L1 VMs can use the emulated XIVE interrupt controller to start L2 VMs.",
        "On IBM POWER9 nesting works only with RHEL 8 on L0 and L1, RHEL 8 or RHEL 7 "
        "(rhel-alt kernel) on L2, and L1/L2 not in POWER8 compatibility mode.",
    ]
    reason = "IBM POWER9 supports nested virtualization (KVM-HV)"
    if generation > 9:
        reason = f"POWER{generation} is later than POWER9 (nesting needs POWER9 or later)"
        notes.append(f"RHEL 8 documents nesting for IBM POWER9; POWER{generation} is untested.")
    return _CpuVerdict(None, model, True, reason, "kvm_hv", STOP_VMS, tuple(notes))


def _arm_model(info: CpuInfo) -> str | None:
    named = info.first("model name") or info.first("Processor")
    if named:
        return named
    implementer, part = info.first("CPU implementer"), info.first("CPU part")
    if implementer and part:
        return f"ARM implementer {implementer} part {part}"
    return None


def _assess_arm(info: CpuInfo) -> _CpuVerdict:
    reason = (
        "nested virtualization currently does not work on other architectures, "
        "such as ARM; " + _NOT_ELSEWHERE
    )
    return _CpuVerdict(None, _arm_model(info), False, reason, None)


def _assess_unknown(info: CpuInfo) -> _CpuVerdict:
    reason = (
        "unrecognised architecture in /proc/cpuinfo; nested virtualization currently "
        "does not work on other architectures; " + _NOT_ELSEWHERE
    )
    return _CpuVerdict(None, info.first("model name"), False, reason, None)


_ASSESSORS: Mapping[Arch, Callable[[CpuInfo], _CpuVerdict]] = {
    Arch.X86: _assess_x86,
    Arch.S390X: _assess_s390,
    Arch.POWER: _assess_power,
    Arch.ARM: _assess_arm,
    Arch.UNKNOWN: _assess_unknown,
}


# --- modprobe.d ------------------------------------------------------------------------


@dataclass(frozen=True)
class _ConfigSetting:
    """The last ``options <module> <param>=<value>`` kmod would apply, and its file."""

    file: str
    value: str


def _config_files(root: Path) -> list[PurePosixPath]:
    """``*.conf`` files in kmod's order: sorted by name, first directory wins a name."""
    chosen: dict[str, PurePosixPath] = {}
    for directory in _MODPROBE_DIRS:
        try:
            entries = sorted(_under(root, directory).iterdir())
        except OSError:
            continue
        for entry in entries:
            name = entry.name
            if name.endswith(".conf") and not name.startswith(".") and name not in chosen:
                chosen[name] = PurePosixPath(directory, name)
    return [chosen[name] for name in sorted(chosen)]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def _module_name(name: str) -> str:
    return name.replace("-", "_")


def _config_setting(root: Path, module: str, param: str) -> _ConfigSetting | None:
    setting: _ConfigSetting | None = None
    for host_file in _config_files(root):
        text = _read_text(_under(root, host_file))
        if text is None:
            continue
        for line in _logical_lines(text):
            words = line.split()
            if len(words) < 3 or words[0] != "options":
                continue
            if _module_name(words[1]) != module:
                continue
            for word in words[2:]:
                key, sep, value = word.partition("=")
                if sep and key == param:
                    setting = _ConfigSetting(str(host_file), value.strip("\"'"))
    return setting


# --- assessment ------------------------------------------------------------------------


@dataclass(frozen=True)
class _ModuleFacts:
    param_path: str
    value: str | None
    loaded: bool
    config: _ConfigSetting | None


def _module_facts(root: Path, module: str) -> _ModuleFacts:
    path = _param_path(module, "nested")
    return _ModuleFacts(
        param_path=str(path),
        value=_read_param(root, module, "nested"),
        loaded=_under(root, path.parent.parent).is_dir(),
        config=_config_setting(root, module, "nested"),
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
    elif _is_on(facts.value) is None:
        notes.append(f"Unrecognised value {facts.value!r} in {facts.param_path}.")
    config = facts.config
    if config is not None and _is_on(config.value) is not True:
        notes.append(
            f"{config.file} sets nested={config.value} for {module}; "
            "change it to nested=1 to keep nesting after a reboot."
        )
    elif config is None and enabled:
        notes.append(
            f"Nesting is on now but no modprobe.d file sets it; unless it is the kernel's "
            f"default, add 'options {module} nested=1' to /etc/modprobe.d/kvm.conf."
        )
    return notes


def _hpage_notes(hpage: bool | None, config: _ConfigSetting | None) -> list[str]:
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
    if config is not None and _is_on(config.value):
        notes.append(
            f"{config.file} sets 'options kvm hpage={config.value}'; remove hpage there "
            "before adding nested=1, or kvm will fail to load at boot."
        )
    return notes


def _enable_commands(module: str, loaded: bool, hpage_in_the_way: bool) -> tuple[str, ...]:
    load = f"modprobe {module} nested=1"
    if hpage_in_the_way:
        load += " hpage=0"  # command-line options come after modprobe.d's: last one wins
    return (f"modprobe -r {module}", load) if loaded else (load,)


def host_check(root: Path) -> HostReport:
    """Read the host tree under ``root`` (normally ``/``) and assess nesting; never writes."""
    info = _read_cpuinfo(root)
    if info is None:
        return _unknown_report(f"cannot read {_CPUINFO}; " + _NOT_ELSEWHERE)
    arch = _detect_arch(info)
    verdict = _ASSESSORS[arch](info)
    if verdict.module is None:
        return HostReport(
            arch=arch,
            vendor=verdict.vendor,
            cpu_model=verdict.cpu_model,
            supported=verdict.supported,
            support_reason=verdict.reason,
            module=None,
            nested_param_path=None,
            nested_value=None,
            enabled=False,
            enable_caution=None,
            enable_now=(),
            enable_permanent_line=None,
            persistent_config_file=None,
            hpage=None,
            notes=verdict.notes,
        )
    module = verdict.module
    facts = _module_facts(root, module)
    enabled = _is_on(facts.value) is True
    hpage: bool | None = None
    hpage_config: _ConfigSetting | None = None
    if arch is Arch.S390X:
        hpage = _is_on(_read_param(root, module, "hpage"))
        hpage_config = _config_setting(root, module, "hpage")
    notes = list(verdict.notes)
    caution: str | None = None
    enable_now: tuple[str, ...] = ()
    permanent: str | None = None
    if verdict.supported:
        notes += _module_notes(module, facts, enabled)
        notes += _hpage_notes(hpage, hpage_config)
        permanent = f"options {module} nested=1"
        if not enabled:
            in_the_way = bool(hpage) or _is_on(hpage_config.value if hpage_config else None)
            enable_now = _enable_commands(module, facts.loaded, bool(in_the_way))
            caution = verdict.caution if facts.loaded else None
        notes.append("Nested virtualization is a Technology Preview in RHEL 8 (unsupported).")
    persisted = facts.config if facts.config and _is_on(facts.config.value) else None
    return HostReport(
        arch=arch,
        vendor=verdict.vendor,
        cpu_model=verdict.cpu_model,
        supported=verdict.supported,
        support_reason=verdict.reason,
        module=module,
        nested_param_path=facts.param_path,
        nested_value=facts.value,
        enabled=enabled,
        enable_caution=caution,
        enable_now=enable_now,
        enable_permanent_line=permanent,
        persistent_config_file=persisted.file if persisted else None,
        hpage=hpage,
        notes=tuple(notes),
    )


def _unknown_report(reason: str) -> HostReport:
    return HostReport(
        arch=Arch.UNKNOWN,
        vendor=None,
        cpu_model=None,
        supported=False,
        support_reason=reason,
        module=None,
        nested_param_path=None,
        nested_value=None,
        enabled=False,
        enable_caution=None,
        enable_now=(),
        enable_permanent_line=None,
        persistent_config_file=None,
        hpage=None,
        notes=(),
    )


# --- rendering -------------------------------------------------------------------------

_STATUS = {
    EXIT_READY: "ready: nested virtualization is supported and enabled",
    EXIT_ACTION_NEEDED: "action needed: supported but not enabled",
    EXIT_UNSUPPORTED: "not supported",
}


def _nested_line(report: HostReport) -> str:
    if report.nested_value is None:
        return f"{report.nested_param_path}: missing (module not loaded?)"
    state = "enabled" if report.enabled else "NOT enabled"
    return f"{report.nested_param_path} = {report.nested_value} ({state})"


def _facts_lines(report: HostReport) -> list[str]:
    arch = report.arch.value + (f" ({report.vendor})" if report.vendor else "")
    support = "supported" if report.supported else "NOT supported"
    lines = [
        "L0 host check for nested virtualization",
        f"  CPU:          {report.cpu_model or 'unknown'}",
        f"  Architecture: {arch}",
        f"  Support:      {support}: {report.support_reason}",
    ]
    if report.module is not None:
        lines.append(f"  Module:       {report.module}")
        lines.append(f"  Nested:       {_nested_line(report)}")
    if report.hpage is not None:
        lines.append(f"  Huge pages:   hpage={'1' if report.hpage else '0'}")
    if report.supported:
        where = report.persistent_config_file
        persistent = f"nested=1 set in {where}" if where else "not set in modprobe.d"
        lines.append(f"  Persistent:   {persistent}")
    return lines


def _enable_lines(report: HostReport) -> list[str]:
    lines: list[str] = []
    if report.enable_now:
        lines += ["", "To enable nesting now (as root):"]
        if report.enable_caution:
            lines.append(f"  {report.enable_caution}")
        lines += [f"    {command}" for command in report.enable_now]
    if report.supported and report.enable_permanent_line and report.exit_code != EXIT_READY:
        lines.append("")
        if report.persistent_config_file:
            lines += [
                f"Already permanent: {report.persistent_config_file} contains",
                f"    {report.enable_permanent_line}",
                "  so a reboot (or the module reload above) is all that is needed.",
            ]
        else:
            lines += [
                "To keep it enabled after a reboot, add this line to /etc/modprobe.d/kvm.conf:",
                f"    {report.enable_permanent_line}",
            ]
    return lines


def render_text(report: HostReport) -> str:
    """Human-readable report: facts, commands to run, notes, status; ends with a newline."""
    lines = _facts_lines(report) + _enable_lines(report)
    if report.notes:
        lines += ["", "Notes:"] + [f"  - {note}" for note in report.notes]
    lines += ["", f"Status: {_STATUS[report.exit_code]} (exit {report.exit_code})"]
    return "\n".join(lines) + "\n"


def report_dict(report: HostReport) -> dict[str, object]:
    """Field names plus ``exit_code``; tuples become lists, ``arch`` its string value."""
    data: dict[str, object] = dataclasses.asdict(report)
    data["arch"] = report.arch.value
    data["exit_code"] = report.exit_code
    return data


def render_json(report: HostReport) -> str:
    """The report as sorted, indented JSON ending with a newline."""
    return json.dumps(report_dict(report), sort_keys=True, indent=2) + "\n"
