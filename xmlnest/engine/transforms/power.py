"""IBM POWER9 (pseries): ``<nested-hv state='on'/>`` in ``<features>``; never POWER8 compat.

``--disable`` flips an existing ``nested-hv`` to ``state='off'`` rather than removing it:
one attribute changes (and changes back on the next enabling run), the ``<features>``
it sits in is never left empty or rebuilt, and the explicit ``off`` does not depend on
QEMU's default. An absent ``nested-hv`` is already off (QEMU's pseries default) and stays
absent.
"""

from __future__ import annotations

import re

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Finding, Insert, Level, NewElement
from xmlnest.engine.transforms.common import Builder, Context, line, text_of
from xmlnest.errors import RuleError

# host-model + powerN = compatibility mode; custom POWERn must equal the host
# (libvirt src/cpu/cpu_ppc64.c).
_OLD_POWER = re.compile(r"^power[5-8]", re.IGNORECASE)
NESTED_HV = NewElement("nested-hv", (("state", "on"),))


def plan(ctx: Context, b: Builder) -> None:
    machine = ctx.machine
    if machine is not None and not machine.startswith("pseries"):
        raise RuleError(
            f"machine type '{machine}' cannot host nested guests; nested-hv exists only for "
            "pseries",
            hint=rule_hint("XN109"),
            line=line(ctx.os_type),
            rule="XN109",
        )
    cpu = ctx.cpu
    model = ctx.child(cpu, "model")
    if cpu is not None and _OLD_POWER.match(text_of(model)):
        mode = cpu.get("mode", "custom")
        what = "compatibility mode" if mode == "host-model" else "CPU model"
        raise RuleError(
            f"POWER8-or-older {what} ({text_of(model)}): nested virtualization needs POWER9 "
            "or later, in the L1 and in the L2",
            hint=rule_hint("XN105"),
            line=line(model),
            rule="XN105",
        )
    features = ctx.child(ctx.root, "features")
    if features is None:
        b.edits.append(Insert(ctx.ref(ctx.root), NewElement("features", children=(NESTED_HV,))))
        return
    nested = ctx.child(features, "nested-hv")
    if nested is None:
        b.edits.append(Insert(ctx.ref(features), NESTED_HV))
    elif nested.get("state") != "on":
        if nested.get("state") == "off":
            b.warn(
                Finding(
                    "XN213",
                    "nested-hv was explicitly off; turning it on",
                    hint=rule_hint("XN213"),
                    line=line(nested),
                )
            )
        b.set(nested, "state", "on")


def plan_disable(ctx: Context, b: Builder) -> None:
    nested = ctx.child(ctx.child(ctx.root, "features"), "nested-hv")
    if nested is None:
        b.warn(
            Finding(
                "XN220",
                "no <nested-hv>: QEMU's pseries machines leave it off by default; nothing to "
                "disable",
                hint=rule_hint("XN220", "power"),
                line=line(ctx.os_type),
                level=Level.INFO,
            )
        )
        return
    b.set(nested, "state", "off")
