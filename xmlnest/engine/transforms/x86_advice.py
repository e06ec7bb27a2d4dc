"""The x86 warnings and notes about a domain that is still transformed.

Rules XN201-XN204, XN208, XN215, XN218, XN219 and XN222; ``advice`` asks for
them. Pure: reads the domain and the resolved target, returns findings.
"""

from __future__ import annotations

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Finding, Level
from xmlnest.engine.transforms.common import Context, line, text_of
from xmlnest.engine.transforms.x86 import NESTING_FEATURE

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"

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


def final_cpu_mode(ctx: Context) -> str:
    """The ``<cpu>`` mode once planned: the one an option asks for, else the edit's own."""
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


def advise_x86(
    ctx: Context,
    target: str,
    level: str,
    *,
    vendor_known: bool = True,
) -> list[Finding]:
    """The x86 findings; ``vendor_known``: false when the vendor is only guessed (from
    this machine) and the edit vendor-neutral, so nothing vendor-specific is said."""
    out: list[Finding] = []
    # What the host behind the connection offers (None: no connection, or it cannot say).
    # (Only KVM domains get here: check_domain_type refuses the rest.)
    host = ctx.host
    offered = host.offer(ctx.arch or "") if vendor_known else None
    lacks = offered is not None and NESTING_FEATURE[target] not in offered
    cpu = ctx.cpu
    mode = final_cpu_mode(ctx)
    # On a guessed vendor only vendor-neutral edits reach here: say nothing vendor-specific.
    feat = ("vmx" if target == "intel" else "svm") if vendor_known else "vmx/svm"
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
                hint=rule_hint("XN201"),
                line=line(cpu),
            )
        )
    if target == "amd" and vendor_known:  # never for a vendor-neutral edit on a guess
        out.append(
            Finding(
                "XN202",
                "migration of an AMD L1 does not work while nesting is enabled on the L0 host",
                hint=rule_hint("XN202"),
                line=line(cpu) or line(ctx.os_type),
            )
        )
    if mode in ("host-passthrough", "maximum"):
        out.append(_passthrough_migration(ctx, mode, feat))
    if mode == "host-model" and not lacks:
        told = "not asked, no libvirt connection" if host.uri is None else "its driver cannot say"
        out.append(_host_model_offer(ctx, feat, "offers it" if offered is not None else told))
    known = ctx.options.known_models
    if ctx.options.model and known is not None and ctx.options.model not in known:
        from xmlnest.engine.cpumap import closest

        near = closest(ctx.options.model, known)
        out.append(
            Finding(
                "XN218",
                f"--model {ctx.options.model} is not a CPU model the installed libvirt's "
                "cpu_map knows; libvirt would refuse to start the guest",
                hint=rule_hint("XN218", "near", models=" or ".join(near))
                if near
                else rule_hint("XN218"),
                line=None,
            )
        )
    other = "svm" if target == "intel" else "vmx"
    both: list[Finding] = []  # XN208 findings come before XN215 ones
    foreign: list[Finding] = []
    for f in ctx.children(cpu, "feature"):
        if f.get("policy", "require") not in ("require", "force"):
            continue
        name = f.get("name") or ""
        vendor = _virtualization_extension(name)
        if name == other and vendor_known:
            both.append(
                Finding(
                    "XN208",
                    f"both vmx and svm are required; '{other}' fails on "
                    f"every {target.upper() if target == 'amd' else 'Intel'} host",
                    hint=rule_hint("XN208", feature=other),
                    line=line(f),
                )
            )
        elif vendor not in (None, target) and vendor_known:
            extension = "AMD's SVM" if vendor == "amd" else "Intel's VMX"
            foreign.append(
                Finding(
                    "XN215",
                    f"CPU feature '{name}' belongs to {extension}, which "
                    f"{'Intel' if target == 'intel' else 'AMD'} CPUs lack: with it required "
                    "the guest will not start",
                    hint=rule_hint("XN215", feature=name),
                    line=line(f),
                )
            )
    out += both + foreign
    out += cpu_overridden(ctx)
    if lacks and host.uri is not None:
        out.append(_host_lacks(host.uri, feat))
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
            hint=rule_hint("XN203", "feature", feature=feat),
            line=line(cpu),
        )
    return Finding(
        "XN203",
        f"{mode} migrates only between hosts with identical CPUs",
        hint=rule_hint("XN203"),
        line=line(cpu),
        level=Level.INFO,
    )


def _host_model_offer(ctx: Context, feat: str, told: str) -> Finding:
    """XN222: host-model is expanded from the host at start, so a required feature is
    there only where the host's host-model CPU offers it; ``told``: what this host said."""
    return Finding(
        "XN222",
        f"host-model with {feat} required, for migration: libvirt expands host-model from "
        f"each host at start, so the guest starts only where the host offers {feat} "
        f"(this host: {told})",
        hint=rule_hint("XN222", feature=feat),
        line=line(ctx.cpu) or line(ctx.os_type),
        level=Level.INFO,
    )


def _host_lacks(uri: str, feat: str) -> Finding:
    """XN219: the host behind the connection cannot give a KVM guest ``feat`` (its
    host-model CPU, what its KVM offers guests, lacks it): nesting is in the XML, but the
    guest would not see it, or, with the feature required, would not start."""
    return Finding(
        "XN219",
        f"the host behind {uri} does not offer {feat} to guests (its host-model CPU lacks it)",
        hint=rule_hint("XN219"),
        line=None,
    )


def cpu_overridden(ctx: Context) -> list[Finding]:
    """XN204: a ``-cpu`` in ``<qemu:commandline>`` overrides whatever ``<cpu>`` says."""
    return [
        Finding(
            "XN204",
            "<qemu:commandline> passes -cpu, which overrides the CPU libvirt configures",
            hint=rule_hint("XN204"),
            line=line(arg),
        )
        for arg in ctx.root.iter(f"{{{QEMU_NS}}}arg")
        if (arg.get("value") or "").strip() == "-cpu"
    ]
