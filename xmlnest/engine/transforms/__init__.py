"""The one registry of per-architecture transforms, and the checks every domain passes first.

``plan()`` resolves the target (Intel, AMD, POWER9, IBM Z) from ``--arch`` and the
domain's ``<os><type arch machine>``, refuses what cannot nest, and asks the target's
transform (the enabling one, or with ``--disable`` the inverse one) for the edits still
needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from lxml import etree

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Plan
from xmlnest.engine.transforms import live, power, s390x, windows, x86, x86_vendor
from xmlnest.engine.transforms.advice import advise
from xmlnest.engine.transforms.common import Builder, Context, line
from xmlnest.errors import RuleError
from xmlnest.model import NO_HOST, HostFacts, Options

Transform = Callable[[Context, Builder], None]


class Transforms(NamedTuple):
    enable: Transform
    disable: Transform
    windows: Transform | None = None  # --windows: the L1 runs the Windows hypervisor


REGISTRY: dict[str, Transforms] = {
    "intel": Transforms(
        lambda ctx, b: x86.plan(ctx, "intel", b),
        lambda ctx, b: x86.plan_disable(ctx, "intel", b),
        lambda ctx, b: windows.plan(ctx, "intel", b),
    ),
    "amd": Transforms(
        lambda ctx, b: x86.plan(ctx, "amd", b),
        lambda ctx, b: x86.plan_disable(ctx, "amd", b),
        lambda ctx, b: windows.plan(ctx, "amd", b),
    ),
    "power9": Transforms(power.plan, power.plan_disable),
    "ibmz": Transforms(s390x.plan, s390x.plan_disable),
}

# User-facing names for --arch, and the domain arches each family covers.
ARCH_ALIASES: dict[str, str] = {
    "auto": "auto",
    "intel": "intel",
    "amd": "amd",
    "ibmz": "ibmz",
    "s390x": "ibmz",
    "power9": "power9",
    "ppc64": "power9",
    "ppc64le": "power9",
    "pseries": "power9",
}
FAMILY_OF_TARGET = {"intel": "x86", "amd": "x86", "power9": "power", "ibmz": "s390x"}
FAMILY_OF_ARCH = {
    "x86_64": "x86",
    "i686": "x86",
    "i386": "x86",
    "ppc64": "power",
    "ppc64le": "power",
    "s390x": "s390x",
}
_ARM = ("aarch64", "armv6l", "armv7l", "armv7b", "arm")

# Refusals of a domain that cannot nest by what it is, whatever its configuration: its
# architecture (XN101), its type (XN102: TCG, Xen, LXC...) or its machine (XN109: powernv).
# --skip-unsupported skips and counts these; every other refusal stays an error.
CANNOT_NEST = frozenset({"XN101", "XN102", "XN109"})


def plan(
    root: etree._Element,
    options: Options,
    host: HostFacts = NO_HOST,
    *,
    advice: bool = True,
) -> Plan:
    """The edits this domain still needs for nesting (empty when already compliant), or
    with ``options.disable`` to have nesting off.

    ``host``: what is known of the host the domain runs on: its vendor, for an x86
    domain that names none, and with a connection what it offers guests (x86 advice says
    when it lacks the nesting feature; ``--windows`` writes only the enlightenments it
    lists). A fact it does not hold yet raises :class:`HostFactNeeded`: the caller looks
    it up and plans again. ``advice=False`` skips the warnings and notes (the
    idempotence re-plan needs only the edits).
    """
    ctx = Context(root, options, host)
    live.refuse_live(ctx)
    check_domain_type(ctx)  # before the arch: a Xen or LXC domain needs no --arch to be told
    target, vendor_from_host = resolve_target(ctx)
    # --host-model is a policy for a fleet's x86 domains: the others get their own edit.
    # --model names one x86 CPU model: it cannot mean a POWER or IBM Z domain.
    if options.model and FAMILY_OF_TARGET[target] != "x86":
        raise RuleError(
            f"--model applies to Intel and AMD CPUs, not to this {ctx.arch} domain",
            hint=rule_hint("XN103", "flag", flag="--model"),
            line=line(ctx.os_type),
            rule="XN103",
        )
    if options.level == "l2" and target != "power9":
        raise RuleError(
            "--level l2: an L2 used as a hypervisor (L3 guests) is not expected to work",
            hint=rule_hint("XN112"),
            line=line(ctx.os_type),
            rule="XN112",
        )
    transforms = REGISTRY[target]
    if options.windows and transforms.windows is None:
        raise RuleError(
            f"--windows readies an Intel or AMD L1 for the Windows hypervisor, not this "
            f"{ctx.arch} domain",
            hint=rule_hint("XN116", "arch"),
            line=line(ctx.os_type),
            rule="XN116",
        )
    if FAMILY_OF_TARGET[target] == "x86" and not options.disable:
        windows.refuse_confidential(ctx)
    if options.windows and not options.disable and host.uri is not None:
        # --windows writes only what the host's domain capabilities list as well (asked
        # only now: a domain refused above costs no lookup).
        accepted = windows.host_accepts(options, host.hyperv_offer(ctx.arch or ""))
        ctx = Context(root, accepted, host)
    b = Builder(ctx)
    if options.disable:
        transforms.disable(ctx, b)
    elif options.windows and transforms.windows is not None:
        transforms.windows(ctx, b)
    else:
        transforms.enable(ctx, b)
    if advice:
        b.findings += advise(ctx, target, options.level, bool(b.edits), vendor_from_host)
    return Plan(
        target=target,
        edits=tuple(b.edits),
        findings=tuple(b.findings),
        action="disable" if options.disable else "enable",
        elements=ctx.index,
    )


def resolve_target(ctx: Context) -> tuple[str, bool]:
    """The target (intel, amd, power9, ibmz), and whether its x86 vendor came from the
    machine running xmlnest rather than from the domain or ``--arch``."""
    requested = ctx.options.arch
    arch = ctx.arch
    where = line(ctx.os_type) or line(ctx.root)
    if arch is None:
        if requested == "auto":
            raise RuleError(
                "cannot tell the architecture: <os><type> has no arch attribute",
                hint=rule_hint("XN108"),
                line=where,
                rule="XN108",
            )
        family = FAMILY_OF_TARGET[requested]
    else:
        family = FAMILY_OF_ARCH.get(arch, "")
        if not family:
            raise RuleError(
                f"nested virtualization is not supported on {'ARM' if arch in _ARM else arch} "
                f"(arch '{arch}')",
                hint=rule_hint("XN101"),
                line=where,
                rule="XN101",
            )
        if requested != "auto" and FAMILY_OF_TARGET[requested] != family:
            raise RuleError(
                f"--arch {requested} does not fit this domain's arch '{arch}'",
                hint=rule_hint("XN103"),
                line=where,
                rule="XN103",
            )
    if family == "x86":
        return x86_vendor.resolve_vendor(ctx, requested)
    return ("power9" if family == "power" else "ibmz"), False


def check_domain_type(ctx: Context) -> None:
    kind = ctx.root.get("type")
    if kind == "kvm":
        return
    if kind == "qemu":
        problem = "domain type 'qemu' is TCG emulation, which cannot run KVM guests of its own"
    else:
        problem = f"domain type '{kind}' is not KVM; only KVM domains can host nested KVM guests"
    raise RuleError(
        problem,
        hint=rule_hint("XN102"),
        line=line(ctx.root),
        rule="XN102",
    )
