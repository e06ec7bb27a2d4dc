"""Intel and AMD (x86): pass the host CPU through, or require ``vmx``/``svm`` on a named model
or in host-model (``--host-model``); or disable it (``--disable``).

Pure plan functions: they read the domain and return the edits still needed.
"""

from __future__ import annotations

from lxml import etree

from xmlnest.errors import RuleError
from xmlnest.plan import Finding, Insert, Level, NewElement, Remove, SetText
from xmlnest.transforms.common import (
    Builder,
    Context,
    Vendor,
    features_named,
    line,
    refuse_forbid,
    text_of,
)

NESTING_FEATURE: dict[str, str] = {"intel": "vmx", "amd": "svm"}  # by vendor or target
HOST_MODE_FEATURES = ("vmx", "svm")
CPU_MODES = ("custom", "host-model", "host-passthrough", "maximum")
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
_VENDOR_TEXT: dict[str, Vendor] = {"intel": "intel", "amd": "amd", "hygon": "amd"}


def model_vendor(name: str) -> Vendor | None:
    lowered = name.lower()
    if lowered.startswith(_INTEL_MODELS):
        return "intel"
    if lowered.startswith(_AMD_MODELS):
        return "amd"
    return None


def xml_vendor(ctx: Context) -> tuple[Vendor, str, int | None] | None:
    """What the domain itself says about the CPU vendor: (vendor, evidence, line)."""
    cpu = ctx.cpu
    if cpu is None or ctx.options.passthrough:
        return None
    if ctx.options.model:
        v = model_vendor(ctx.options.model)
        return (v, f"--model {ctx.options.model}", None) if v else None
    vendor_el = ctx.child(cpu, "vendor")
    v = _VENDOR_TEXT.get(text_of(vendor_el).lower())
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
    if opts.disable or opts.model or opts.host_model:
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
                hint=f"use --arch {evidence[0]}, or --model/--passthrough to replace the CPU",
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
    host = ctx.host_vendor()
    if host:
        return host, not ctx.options.host_is_the_domains
    if vendor_neutral(ctx):
        # The same edit for either vendor (pass the host CPU through): no vendor needed,
        # so none is guessed; a forbidden nesting feature of either is still refused.
        for feat in HOST_MODE_FEATURES:
            refuse_forbid(ctx, ctx.cpu, feat)
        return "intel", True
    raise RuleError(
        "cannot tell Intel from AMD: the XML names no vendor or model family, and the "
        "vendor of the host it runs on is not known",
        hint="pass --arch intel or --arch amd",
        line=line(ctx.cpu) or line(ctx.os_type),
        rule="XN108",
    )


def plan(ctx: Context, vendor: Vendor, b: Builder) -> None:
    feat = NESTING_FEATURE[vendor]
    cpu = ctx.cpu
    refuse_forbid(ctx, cpu, feat)
    opts = ctx.options
    if opts.model:
        _custom_form(ctx, b, cpu, opts.model, feat)
        return
    if opts.host_model:
        _host_model_form(ctx, b, cpu, feat)
        return
    if cpu is None:
        b.edits.append(
            Insert(ctx.ref(ctx.root), NewElement("cpu", (("mode", "host-passthrough"),)))
        )
        return
    mode = cpu.get("mode", "custom")
    has_model = bool(text_of(ctx.child(cpu, "model")))
    # In a host mode the vendor no longer shows in the XML, so a later run may resolve
    # the other one: drop a disable of either nesting feature, and the result is the same.
    if mode in ("host-passthrough", "maximum"):
        drop_disabled(ctx, b, cpu, *HOST_MODE_FEATURES)
    elif opts.passthrough or mode == "host-model" or (mode == "custom" and not has_model):
        to_passthrough(ctx, b, cpu, HOST_MODE_FEATURES, mode="host-passthrough")
    elif mode == "custom":
        ensure_required(ctx, b, cpu, feat)
    else:
        raise unknown_mode(cpu, mode)


def unknown_mode(cpu: etree._Element, mode: str) -> RuleError:
    return RuleError(
        f"unknown CPU mode '{mode}'",
        hint="libvirt knows custom, host-model, host-passthrough and maximum",
        line=line(cpu),
        rule="XN111",
    )


def plan_disable(ctx: Context, vendor: Vendor, b: Builder) -> None:
    """The inverse edit: exactly one ``disable`` policy on the vendor's feature, in any mode
    (the mode, model and every other child stay)."""
    feat = NESTING_FEATURE[vendor]
    cpu = ctx.cpu
    if cpu is None:
        b.warn(_nothing_to_disable("no <cpu>", line(ctx.root)))
        return
    mode = cpu.get("mode", "custom")
    if mode not in CPU_MODES:
        raise unknown_mode(cpu, mode)
    no_model = mode == "custom" and not text_of(ctx.child(cpu, "model"))
    if no_model and not features_named(ctx, cpu, feat):
        # libvirt refuses features in a custom CPU without a model; none is needed.
        b.warn(_nothing_to_disable("a <cpu> without a model", line(cpu)))
        return
    ensure_disabled(ctx, b, cpu, feat)


def _nothing_to_disable(what: str, where: int | None) -> Finding:
    return Finding(
        "XN220",
        f"{what}: QEMU's default CPU exposes neither vmx nor svm under KVM; nothing to disable",
        hint="adding a <cpu> would change far more than nesting; left as it is",
        line=where,
        level=Level.INFO,
    )


def ensure_disabled(ctx: Context, b: Builder, cpu: etree._Element, feat: str) -> None:
    """Exactly one ``<feature>`` for ``feat``, with a policy that keeps it from the guest
    (an existing ``forbid`` is stronger than ``disable`` and stays)."""
    found = features_named(ctx, cpu, feat)
    if not found:
        b.edits.append(
            Insert(ctx.ref(cpu), NewElement("feature", (("policy", "disable"), ("name", feat))))
        )
        return
    keep = next((f for f in found if f.get("policy") in OFF_POLICIES), found[0])
    if keep.get("policy") not in OFF_POLICIES:
        b.set(keep, "policy", "disable")
    for dup in found:
        if dup is not keep:
            b.edits.append(Remove(ctx.ref(dup)))


def _host_model_form(ctx: Context, b: Builder, cpu: etree._Element | None, feat: str) -> None:
    """``--host-model``: keep (or make) host-model and require the feature inside it; a
    custom CPU with a model keeps its model."""
    if cpu is None:
        b.edits.append(
            Insert(
                ctx.ref(ctx.root),
                NewElement(
                    "cpu",
                    (("mode", "host-model"),),
                    children=(NewElement("feature", (("policy", "require"), ("name", feat))),),
                ),
            )
        )
        return
    mode = cpu.get("mode", "custom")
    if mode not in CPU_MODES:
        raise unknown_mode(cpu, mode)
    if mode != "host-model" and not (mode == "custom" and text_of(ctx.child(cpu, "model"))):
        b.set(cpu, "mode", "host-model")
        b.unset(cpu, "match")  # not used with host-model
        b.unset(cpu, "migratable")  # libvirt allows it only for host-passthrough/maximum
        for el in ctx.children(cpu, "vendor"):  # custom-only
            b.edits.append(Remove(ctx.ref(el)))
        for el in ctx.children(cpu, "model"):  # x86 host-model takes no model name
            if text_of(el):
                b.edits.append(Remove(ctx.ref(el)))
    ensure_required(ctx, b, cpu, feat)


def drop_disabled(ctx: Context, b: Builder, cpu: etree._Element, *feats: str) -> None:
    """Remove ``disable`` policies on nesting features (a host CPU mode passes them on)."""
    for feat in feats:
        for f in features_named(ctx, cpu, feat):
            if f.get("policy") == "disable":
                b.edits.append(Remove(ctx.ref(f)))


def to_passthrough(
    ctx: Context, b: Builder, cpu: etree._Element, feats: tuple[str, ...], *, mode: str
) -> None:
    """Switch to a host CPU mode, dropping what only a named model can carry."""
    b.set(cpu, "mode", mode)
    b.unset(cpu, "match")
    for name in ("model", "vendor"):
        for el in ctx.children(cpu, name):
            b.edits.append(Remove(ctx.ref(el)))
    drop_disabled(ctx, b, cpu, *feats)


def ensure_required(ctx: Context, b: Builder, cpu: etree._Element, feat: str) -> None:
    """Exactly one ``<feature>`` for ``feat``, with a policy that turns it on."""
    found = features_named(ctx, cpu, feat)
    if not found:
        b.edits.append(
            Insert(ctx.ref(cpu), NewElement("feature", (("policy", "require"), ("name", feat))))
        )
        return
    first = found[0]
    if first.get("policy") not in ("require", "force"):
        b.set(first, "policy", "require")
    for dup in found[1:]:
        b.edits.append(Remove(ctx.ref(dup)))


def _custom_form(
    ctx: Context, b: Builder, cpu: etree._Element | None, model: str, feat: str
) -> None:
    """The reference document's named-model form: custom, exact, partial, fallback allow."""
    if cpu is None:
        b.edits.append(
            Insert(
                ctx.ref(ctx.root),
                NewElement(
                    "cpu",
                    (("mode", "custom"), ("match", "exact"), ("check", "partial")),
                    children=(
                        NewElement("model", (("fallback", "allow"),), text=model),
                        NewElement("feature", (("policy", "require"), ("name", feat))),
                    ),
                ),
            )
        )
        return
    switching = cpu.get("mode", "custom") != "custom"
    if switching:
        b.set(cpu, "mode", "custom")
        b.set(cpu, "match", "exact")
        b.set(cpu, "check", "partial")
        b.unset(cpu, "migratable")
    else:
        for name, value in (("match", "exact"), ("check", "partial")):
            if cpu.get(name) is None:
                b.set(cpu, name, value)
    new_vendor = model_vendor(model)
    for vendor_el in ctx.children(cpu, "vendor"):
        # A <vendor> that contradicts the new model would make libvirt refuse the CPU.
        old_vendor = _VENDOR_TEXT.get(text_of(vendor_el).lower())
        if new_vendor and old_vendor and old_vendor != new_vendor:
            b.edits.append(Remove(ctx.ref(vendor_el)))
    model_el = ctx.child(cpu, "model")
    if model_el is None:
        b.edits.append(
            Insert(ctx.ref(cpu), NewElement("model", (("fallback", "allow"),), text=model))
        )
    else:
        if text_of(model_el) != model:
            b.edits.append(SetText(ctx.ref(model_el), model))
        if switching or model_el.get("fallback") is None:
            b.set(model_el, "fallback", "allow")
    ensure_required(ctx, b, cpu, feat)
