"""Which x86 vendor a domain is for: what its XML says (vendor, model family, a required
feature), what ``--arch`` asks, or the host's; and when the edit needs no vendor at all.

Pure: reads the domain, returns the vendor or refuses (XN103, XN108).
"""

from __future__ import annotations

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.transforms.common import Context, line, refuse_forbid, text_of
from xmlnest.errors import RuleError
from xmlnest.model import Vendor

HOST_MODE_FEATURES = ("vmx", "svm")
OFF_POLICIES = ("disable", "forbid")  # a feature the guest does not get

# libvirt cpu_map model families (src/cpu_map/x86_*.xml); qemu64/kvm64 and friends tell nothing.
# Prefix tuples rather than a regex: nothing to compile on the start-up path.
_INTEL_MODELS = tuple(
    p.lower()
    for p in (
        "Haswell",
        "Skylake",
        "IvyBridge",
        "Cascadelake",
        "Icelake",
        "Cooperlake",
        "Snowridge",
        "Nehalem",
        "Westmere",
        "SandyBridge",
        "Broadwell",
        "Conroe",
        "Penryn",
        "core2duo",
        "coreduo",
        "SapphireRapids",
        "GraniteRapids",
        "SierraForest",
        "ClearwaterForest",
        "KnightsMill",
        "n270",
    )
)
_AMD_MODELS = ("epyc", "opteron_g", "phenom", "athlon", "dhyana")
VENDOR_TEXT: dict[str, Vendor] = {"intel": "intel", "amd": "amd", "hygon": "amd"}


def model_vendor(name: str) -> Vendor | None:
    lowered = name.lower()
    if lowered.startswith(_INTEL_MODELS):
        return "intel"
    if lowered.startswith(_AMD_MODELS):
        return "amd"
    return None


def xml_vendor(ctx: Context) -> tuple[Vendor, str, int | None] | None:
    """What the domain itself says about the CPU vendor: (vendor, evidence, line)."""
    if ctx.options.model:  # the model asked for replaces (or makes) the <cpu>
        v = model_vendor(ctx.options.model)
        return (v, f"--model {ctx.options.model}", None) if v else None
    cpu = ctx.cpu
    if cpu is None or ctx.options.passthrough:
        return None
    vendor_el = ctx.child(cpu, "vendor")
    v = VENDOR_TEXT.get(text_of(vendor_el).lower())
    if v:
        return v, f"<vendor>{text_of(vendor_el)}</vendor>", line(vendor_el)
    model_el = ctx.child(cpu, "model")
    v = model_vendor(text_of(model_el))
    if v and cpu.get("mode", "custom") == "custom":
        return v, f"CPU model {text_of(model_el)}", line(model_el)
    wanted = {
        f.get("name")
        for f in ctx.children(cpu, "feature")
        if f.get("policy", "require") in ("require", "force")
    }
    if ("vmx" in wanted) != ("svm" in wanted):
        v = "intel" if "vmx" in wanted else "amd"
        return v, f"required feature {'vmx' if v == 'intel' else 'svm'}", line(cpu)
    return None


def disabled_vendor(ctx: Context) -> Vendor | None:
    """The vendor whose nesting feature alone is turned off in ``<cpu>`` (weak evidence,
    used only by ``--disable`` with ``--arch auto``)."""
    off = {
        f.get("name") for f in ctx.children(ctx.cpu, "feature") if f.get("policy") in OFF_POLICIES
    }
    if ("vmx" in off) == ("svm" in off):
        return None
    return "intel" if "vmx" in off else "amd"


def vendor_neutral(ctx: Context) -> bool:
    """The enabling edit is the same for Intel and AMD: the CPU ends up host-passthrough or
    maximum (no ``<cpu>``, host-model, no model, ``--passthrough``) and nothing names a
    vendor-specific feature to require."""
    opts = ctx.options
    if opts.disable or opts.model or opts.host_model or opts.windows:
        return False
    cpu = ctx.cpu
    if cpu is None or opts.passthrough:
        return True
    mode = cpu.get("mode", "custom")
    return mode in ("host-passthrough", "maximum", "host-model") or (
        mode == "custom" and not text_of(ctx.child(cpu, "model"))
    )


def resolve_vendor(ctx: Context, requested: str) -> tuple[Vendor, bool]:
    """The vendor asked for, checked against the XML; or the XML's; or the host's — and
    whether it was guessed (from the machine running xmlnest, or not needed at all by a
    vendor-neutral edit), so that nothing vendor-specific is said on its strength."""
    evidence = xml_vendor(ctx)
    if requested in ("intel", "amd"):
        if evidence and evidence[0] != requested:
            raise RuleError(
                f"--arch {requested} does not fit this domain: {evidence[1]} is "
                f"{evidence[0].upper() if evidence[0] == 'amd' else 'Intel'}",
                hint=rule_hint("XN103", "vendor", vendor=evidence[0]),
                line=evidence[2],
                rule="XN103",
            )
        return ("intel" if requested == "intel" else "amd"), False
    if evidence:
        return evidence[0], False
    if ctx.options.disable:
        # A host mode keeps no vendor; an earlier --disable's feature says which it was,
        # so a run on another host leaves the output as it is.
        off = disabled_vendor(ctx)
        if off:
            return off, False
    host = ctx.host.cpu_vendor()
    if host:
        return host, not ctx.host.vendor_is_the_domains
    if vendor_neutral(ctx):
        # The same edit for either vendor (pass the host CPU through): no vendor needed,
        # so none is guessed; a forbidden nesting feature of either is still refused.
        for feat in HOST_MODE_FEATURES:
            refuse_forbid(ctx, ctx.cpu, feat)
        return "intel", True
    raise RuleError(
        "cannot tell Intel from AMD: the XML names no vendor or model family, and the "
        "vendor of the host it runs on is not known",
        hint=rule_hint("XN108", "x86"),
        line=line(ctx.cpu) or line(ctx.os_type),
        rule="XN108",
    )
