"""Warnings and notes about a domain that is still transformed (rules XN2xx/XN3xx).

Pure: reads the domain and the resolved target, returns findings. The rules' texts and
sources live in ``xmlnest.rules``.
"""

from __future__ import annotations

import re

from xmlnest.plan import Finding, Level
from xmlnest.transforms.common import Context, line, text_of

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
LIBOSINFO_NS = "http://libosinfo.org/xmlns/libvirt/domain/1.0"
_RHEL = re.compile(r"^http://redhat\.com/rhel/(\d+)\.(\d+|unknown)$")
_TESTED_WINDOWS = ("http://microsoft.com/win/2k16", "http://microsoft.com/win/2k19")

# AMD's SVM sub-features: libvirt's cpu_map (x86_features.xml), CPUID leaf 0x8000000A.
# Intel's VMX sub-features are libvirt's ``vmx-*`` names (capability MSRs 0x480-0x491).
SVM_FEATURES = frozenset(
    ("npt", "lbrv", "svm-lock", "nrip-save", "tsc-scale", "vmcb-clean", "flushbyasid",
     "decodeassists", "pause-filter", "pfthreshold", "avic", "v-vmsave-vmload", "vgif",
     "svme-addr-chk")
)  # fmt: skip


def _virtualization_extension(feature: str) -> str | None:
    """'amd' or 'intel' for a sub-feature of SVM or VMX (themselves excluded), else None."""
    if feature in SVM_FEATURES:
        return "amd"
    return "intel" if feature.startswith("vmx-") else None


def advise(
    ctx: Context, target: str, level: str, host_offers: frozenset[str] | None = None
) -> list[Finding]:
    """Findings for the planned domain. ``host_offers``: the features the host's host-model
    CPU offers (from its domain capabilities), ``None`` where no libvirt connection told."""
    if ctx.options.disable:  # nesting goes off: only what could undo the edit matters
        return _cpu_overridden(ctx) if target in ("intel", "amd") else []
    found: list[Finding] = []
    if target in ("intel", "amd"):
        found += _x86(ctx, target, level, host_offers)
    if target == "power9":
        found += _power(ctx, level)
    found += _guest_os(ctx, level, target)
    return found


def _final_cpu_mode(ctx: Context) -> str:
    cpu, opts = ctx.cpu, ctx.options
    if opts.model:
        return "custom"
    if opts.host_model:
        named = cpu is not None and cpu.get("mode", "custom") == "custom"
        return "custom" if named and text_of(ctx.child(cpu, "model")) else "host-model"
    if cpu is None or opts.passthrough:
        return "host-passthrough"
    mode = cpu.get("mode", "custom")
    if mode == "host-model" or (mode == "custom" and not text_of(ctx.child(cpu, "model"))):
        return "host-passthrough"
    return mode


def _x86(
    ctx: Context, target: str, level: str, host_offers: frozenset[str] | None
) -> list[Finding]:
    out: list[Finding] = []
    cpu = ctx.cpu
    mode = _final_cpu_mode(ctx)
    feat = "vmx" if target == "intel" else "svm"
    switching = (
        bool(ctx.options.model) and cpu is not None and cpu.get("mode", "custom") != "custom"
    )
    checked = mode in ("custom", "host-model")
    if checked and cpu is not None and cpu.get("check") == "none" and not switching:
        out.append(
            Finding(
                "XN201",
                "check='none': if the host lacks "
                f"{'vmx' if target == 'intel' else 'svm'} the guest starts without "
                "nesting, silently",
                hint="use check='partial'",
                line=line(cpu),
            )
        )
    if target == "amd":
        out.append(
            Finding(
                "XN202",
                "migration of an AMD L1 does not work while nesting is enabled on the L0 host",
                hint="do not live-migrate or save it",
                line=line(cpu) or line(ctx.os_type),
            )
        )
    if mode in ("host-passthrough", "maximum"):
        out.append(_passthrough_migration(ctx, mode, feat))
    if mode == "host-model":
        out.append(_host_model_offer(ctx, feat, host_offers))
    other = "svm" if target == "intel" else "vmx"
    both: list[Finding] = []  # XN208 findings come before XN215 ones
    foreign: list[Finding] = []
    for f in ctx.children(cpu, "feature"):
        if f.get("policy", "require") not in ("require", "force"):
            continue
        name = f.get("name") or ""
        vendor = _virtualization_extension(name)
        if name == other:
            both.append(
                Finding(
                    "XN208",
                    f"both vmx and svm are required; '{other}' fails on "
                    f"every {target.upper() if target == 'amd' else 'Intel'} host",
                    hint=f"remove the {other} feature or make it optional",
                    line=line(f),
                )
            )
        elif vendor not in (None, target):
            extension = "AMD's SVM" if vendor == "amd" else "Intel's VMX"
            foreign.append(
                Finding(
                    "XN215",
                    f"CPU feature '{name}' belongs to {extension}, which "
                    f"{'Intel' if target == 'intel' else 'AMD'} CPUs lack: with it required "
                    "the guest will not start",
                    hint=f"remove the {name} feature or make it optional",
                    line=line(f),
                )
            )
    out += both + foreign
    out += _cpu_overridden(ctx)
    hyperv = ctx.child(ctx.child(ctx.root, "features"), "hyperv")
    if hyperv is not None and level == "l1":
        missing = []
        if target == "intel" and ctx.child(hyperv, "evmcs") is None:
            missing.append("<evmcs state='on'/> (needs <vapic state='on'/>)")
        stimer = ctx.child(hyperv, "stimer")
        if stimer is None or ctx.child(stimer, "direct") is None:
            missing.append("<stimer state='on'><direct state='on'/></stimer>")
        if missing:
            out.append(
                Finding(
                    "XN207",
                    "<hyperv> suggests a Windows guest; for Hyper-V or WSL2 "
                    "inside it add " + " and ".join(missing),
                    hint="see xmlnest --explain XN207",
                    line=line(hyperv),
                )
            )
    return out


def _passthrough_migration(ctx: Context, mode: str, feat: str) -> Finding:
    """XN203: a note where the CPU is, or was asked to be, a host mode; a warning where
    xmlnest itself turns a host-model CPU into host-passthrough."""
    cpu = ctx.cpu
    if cpu is not None and cpu.get("mode") == "host-model" and not ctx.options.passthrough:
        return Finding(
            "XN203",
            f"host-model switched to host-passthrough, which passes {feat} through wherever "
            "the host has nesting on but migrates only between hosts with identical CPUs",
            hint=f"use --host-model to keep host-model and require {feat} in it",
            line=line(cpu),
        )
    return Finding(
        "XN203",
        f"{mode} migrates only between hosts with identical CPUs",
        hint="use --host-model, or --model NAME, for a migratable CPU",
        line=line(cpu),
        level=Level.INFO,
    )


def _host_model_offer(ctx: Context, feat: str, host_offers: frozenset[str] | None) -> Finding:
    """XN222/XN223: host-model is expanded from the host at start, so a required feature
    is there only where the host's host-model CPU offers it."""
    where = line(ctx.cpu) or line(ctx.os_type)
    if host_offers is not None and feat not in host_offers:
        return Finding(
            "XN223",
            f"this host's host-model CPU lacks {feat}: with {feat} required the guest will "
            "not start here",
            hint=f"enable nesting on the host (xmlnest --host-check), then check "
            f"virsh domcapabilities for {feat}",
            line=where,
        )
    told = "offers it" if host_offers is not None else "not asked, no libvirt connection"
    return Finding(
        "XN222",
        f"host-model with {feat} required, for migration: libvirt expands host-model from "
        f"each host at start, so the guest starts only where the host offers {feat} "
        f"(this host: {told})",
        hint=f"virsh domcapabilities lists {feat} under host-model where the host offers it",
        line=where,
        level=Level.INFO,
    )


def _cpu_overridden(ctx: Context) -> list[Finding]:
    """XN204: a ``-cpu`` in ``<qemu:commandline>`` overrides whatever ``<cpu>`` says."""
    return [
        Finding(
            "XN204",
            "<qemu:commandline> passes -cpu, which overrides the CPU libvirt configures",
            hint="remove the -cpu argument",
            line=line(arg),
        )
        for arg in ctx.root.iter(f"{{{QEMU_NS}}}arg")
        if (arg.get("value") or "").strip() == "-cpu"
    ]


def _power(ctx: Context, level: str) -> list[Finding]:
    out: list[Finding] = []
    hpt = ctx.child(ctx.child(ctx.root, "features"), "hpt")
    if hpt is not None:
        out.append(
            Finding(
                "XN209",
                "<hpt> makes this guest HPT-oriented; nested HV needs radix guests",
                hint="remove <hpt>",
                line=line(hpt),
            )
        )
    if level == "l1":
        out.append(
            Finding(
                "XN210",
                "give the L2 guests nested-hv too, for performance",
                hint="xmlnest --level l2 L2.xml",
                line=line(ctx.os_type),
                level=Level.INFO,
            )
        )
    return out


def _os_id(ctx: Context) -> tuple[str, int | None] | None:
    metadata = ctx.child(ctx.root, "metadata")
    if metadata is None:
        return None
    for os_el in metadata.iter(f"{{{LIBOSINFO_NS}}}os"):
        ident = os_el.get("id")
        if ident:
            return ident, line(os_el)
    return None


def _tested(ident: str, level: str, target: str) -> bool:
    """Inside the reference document's tested matrix (for POWER9: RHEL 8 only)."""
    m = _RHEL.match(ident)
    if m:
        major, minor = int(m.group(1)), m.group(2)
        if target == "power9":
            return major == 8 or (level == "l2" and major == 7)
        if minor == "unknown":
            return major == 8
        return (major == 7 and int(minor) >= 8) or (major == 8 and int(minor) >= 2)
    return level == "l1" and target != "power9" and ident in _TESTED_WINDOWS


def _guest_os(ctx: Context, level: str, target: str) -> list[Finding]:
    found = _os_id(ctx)
    if found is None:
        return [
            Finding(
                "XN206",
                "no libosinfo metadata: the guest OS is unknown",
                hint="virt-install --os-variant records it",
                line=None,
                level=Level.INFO,
            )
        ]
    ident, where = found
    if _tested(ident, level, target):
        if target == "power9" and level == "l2" and ident.startswith("http://redhat.com/rhel/7"):
            return [
                Finding(
                    "XN214",
                    "a RHEL 7 L2 on POWER9 nests only with the rhel-alt kernel, which the "
                    "metadata cannot show",
                    hint="check that the L2 runs the RHEL 7 for POWER9 (rhel-alt) kernel",
                    line=where,
                )
            ]
        return []
    which = "L1" if level == "l1" else "L2"
    if target == "power9":
        tested = "RHEL 8" if level == "l1" else "RHEL 8, or RHEL 7 with the rhel-alt kernel"
    elif level == "l1":
        tested = "RHEL 7.8+, RHEL 8.2+, Windows Server 2016/2019"
    else:
        tested = "RHEL 7.8+, RHEL 8.2+"
    return [
        Finding(
            "XN205",
            f"guest OS {ident} is outside the tested {which} environments ({tested})",
            hint="it may work, but it is not tested",
            line=where,
        )
    ]
