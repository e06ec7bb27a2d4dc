"""IBM Z (s390x): no CPU edit in host modes; refuse what excludes nesting.

Huge-page backing and nesting cannot be combined on IBM Z (reference document); under
Secure Execution (``s390-pv``) QEMU withdraws the SIE facilities. QEMU's named models
carry none of the SIE features, so a custom model is switched to host-model.
No XML edit turns nesting off on IBM Z: that is the host's ``kvm nested=0``.
"""

from __future__ import annotations

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Finding, Level
from xmlnest.engine.transforms.common import Builder, Context, line, refuse_forbid, text_of
from xmlnest.engine.transforms.x86 import drop_disabled, to_passthrough
from xmlnest.errors import RuleError

SIE_FEATURE = "sief2"


def plan(ctx: Context, b: Builder) -> None:
    hugepages = ctx.child(ctx.child(ctx.root, "memoryBacking"), "hugepages")
    if hugepages is not None:
        raise RuleError(
            "huge-page memory backing cannot be combined with nested virtualization on IBM Z",
            hint=rule_hint("XN106"),
            line=line(hugepages),
            rule="XN106",
        )
    pv = ctx.child(ctx.root, "launchSecurity")
    if pv is not None and pv.get("type") == "s390-pv":
        raise RuleError(
            "Secure Execution (launchSecurity type 's390-pv') withdraws the SIE facilities "
            "nesting needs",
            hint=rule_hint("XN107"),
            line=line(pv),
            rule="XN107",
        )
    cpu = ctx.cpu
    refuse_forbid(ctx, cpu, SIE_FEATURE)
    if cpu is None:
        return
    mode = cpu.get("mode", "custom")
    if ctx.options.passthrough and mode not in ("host-passthrough", "maximum"):
        to_passthrough(ctx, b, cpu, (SIE_FEATURE,), mode="host-passthrough")
    elif mode in ("host-model", "host-passthrough", "maximum"):
        drop_disabled(ctx, b, cpu, SIE_FEATURE)
    elif text_of(ctx.child(cpu, "model")):
        b.warn(
            Finding(
                "XN212",
                f"CPU model {text_of(ctx.child(cpu, 'model'))} lacks the SIE features nesting "
                "needs; switching to host-model",
                hint=rule_hint("XN212"),
                line=line(cpu),
            )
        )
        to_passthrough(ctx, b, cpu, (SIE_FEATURE,), mode="host-model")


def plan_disable(ctx: Context, b: Builder) -> None:
    b.warn(
        Finding(
            "XN221",
            "IBM Z: no domain XML setting turns nesting off; it is the host's kvm module "
            "parameter nested",
            hint=rule_hint("XN221"),
            line=line(ctx.os_type),
            level=Level.INFO,
        )
    )
