"""Recognise the live XML of a running domain, which must never be defined back (XN113).

libvirt writes ``<domain id='N'>`` only for an active domain (formatdomain: "Inactive
machines have no id value"): that is the sure sign. What else only live XML carries is
named in the message so the user sees what defining it would store.
"""

from __future__ import annotations

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.transforms.common import Context, line, text_of
from xmlnest.errors import RuleError

_USER_ALIAS = "ua-"  # user aliases (ua-*) are kept in the stored definition; others are live


def live_signs(ctx: Context) -> list[str]:
    """The live-only state this domain carries, in words (only asked of a domain with an id:
    the corpus shows stored definitions with static labels and hand-made aliases)."""
    signs: list[str] = []
    cpu = ctx.cpu
    if cpu is not None and cpu.get("check") == "full":
        model = ctx.child(cpu, "model")
        if model is not None and model.get("fallback") == "forbid":
            signs.append("an expanded CPU (check='full', fallback='forbid')")
    devices = ctx.child(ctx.root, "devices")
    if devices is not None:
        aliases = [
            a.get("name") or ""
            for a in devices.iter("alias")
            if not (a.get("name") or "").startswith(_USER_ALIAS)
        ]
        if aliases:
            shown = ", ".join(aliases[:3]) + (", …" if len(aliases) > 3 else "")
            signs.append(f"device aliases ({shown})")
    for label in ctx.children(ctx.root, "seclabel"):
        if label.get("type", "dynamic") == "dynamic" and (
            ctx.child(label, "label") is not None or ctx.child(label, "imagelabel") is not None
        ):
            signs.append(f"a dynamic {label.get('model') or ''} security label".replace("  ", " "))
    if ctx.child(ctx.root, "resource") is not None:
        signs.append("a runtime <resource> partition")
    return signs


def refuse_live(ctx: Context) -> None:
    """Raise XN113 for the live XML of a running domain."""
    ident = ctx.root.get("id")
    if ident is None:
        return
    signs = live_signs(ctx)
    state = (
        "its runtime state: " + ", ".join(signs)
        if signs
        else "runtime state (expanded CPU, labels, aliases)"
    )
    name = text_of(ctx.child(ctx.root, "name")) or "NAME"
    raise RuleError(
        f"this is the live XML of a running domain (id='{ident}'); defining it would store "
        + state,
        hint=rule_hint("XN113", name=name),
        line=line(ctx.root),
        rule="XN113",
    )
