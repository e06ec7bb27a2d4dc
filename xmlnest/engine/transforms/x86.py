"""Intel and AMD (x86): pass the host CPU through, or require ``vmx``/``svm`` on a named model
or in host-model (``--host-model``); or disable it (``--disable``).

Pure plan functions: they read the domain and return the edits still needed.
"""

from __future__ import annotations

from lxml import etree

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Finding, Insert, Level, NewElement, Remove, SetText
from xmlnest.engine.transforms.common import (
    Builder,
    Context,
    features_named,
    line,
    refuse_forbid,
    text_of,
)
from xmlnest.engine.transforms.x86_vendor import (
    HOST_MODE_FEATURES,
    OFF_POLICIES,
    VENDOR_TEXT,
    model_vendor,
)
from xmlnest.errors import RuleError
from xmlnest.model import Vendor

NESTING_FEATURE: dict[str, str] = {"intel": "vmx", "amd": "svm"}  # by vendor or target
CPU_MODES = ("custom", "host-model", "host-passthrough", "maximum")


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
        hint=rule_hint("XN111"),
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
        hint=rule_hint("XN220"),
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
        old_vendor = VENDOR_TEXT.get(text_of(vendor_el).lower())
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
