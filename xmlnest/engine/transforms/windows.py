"""``--windows``: an x86 L1 ready to run the Windows hypervisor (Hyper-V, WSL2, Windows
Sandbox, VBS) — the nesting edit plus TSX off on Intel, the Hyper-V enlightenments nested
Hyper-V needs and the Hyper-V clock.

Pure plan functions: they read the domain and return the edits still needed (rules
XN114-XN116 refuse, XN228 and XN229 warn); the other Windows findings are ``advice_for``'s.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from lxml import etree

from xmlnest.engine.hints import rule_hint
from xmlnest.engine.plan import Finding, Insert, Level, NewElement, Remove
from xmlnest.engine.transforms.common import Builder, Context, line, refuse_forbid, text_of
from xmlnest.engine.transforms.guest_os import os_id
from xmlnest.engine.transforms.x86 import (
    CPU_MODES,
    NESTING_FEATURE,
    _custom_form,
    _host_model_form,
    ensure_disabled,
    ensure_required,
    unknown_mode,
)
from xmlnest.errors import RuleError
from xmlnest.model import Options, Vendor

WINDOWS_PREFIX = "http://microsoft.com/win/"
# Intel's TSX: Hyper-V fails to start on CPUs whose TSX it distrusts (cilium/ebpf#1816).
TSX = ("hle", "rtm")
CONFIDENTIAL = ("sev", "sev-snp", "tdx")
HOST_HYPERV_MODES = ("passthrough", "host-model")  # the hypervisor picks the set: left alone


class Enlightenment(NamedTuple):
    """One ``<hyperv>`` child of the profile, in libvirt's order."""

    name: str
    attrs: tuple[tuple[str, str], ...] = ()
    intel_only: bool = False


# QEMU docs/system/i386/hyperv.rst: the nested-specific ones (stimer direct, evmcs) and
# what they require (vpindex, synic, vapic, hv-time = the hypervclock timer).
PROFILE = (
    Enlightenment("relaxed"),
    Enlightenment("vapic"),
    Enlightenment("spinlocks", (("retries", "8191"),)),
    Enlightenment("vpindex"),
    Enlightenment("runtime"),
    Enlightenment("synic"),
    Enlightenment("stimer"),  # with <direct state='on'/>
    Enlightenment("frequencies"),
    Enlightenment("tlbflush"),
    Enlightenment("ipi"),
    Enlightenment("evmcs", intel_only=True),
)
PROFILE_NAMES = frozenset(e.name for e in PROFILE)


class WindowsOS(NamedTuple):
    """A Windows release as libosinfo names it (``http://microsoft.com/win/11``)."""

    ident: str
    label: str  # "Windows 11", "Windows Server 2019"
    amd_nesting: bool  # Microsoft supports nested virtualization on AMD from here on


_CLIENT = re.compile(r"^(\d+)(?:\.\d+)?$")
_SERVER = re.compile(r"^2k(\d+)(r2)?$")


def windows_release(ident: str) -> WindowsOS | None:
    """The release behind a libosinfo id under ``http://microsoft.com/win/``; ``None``
    for ids of other vendors. Unknown Windows names (xp, vista, …) count as old."""
    if not ident.startswith(WINDOWS_PREFIX):
        return None
    name = ident[len(WINDOWS_PREFIX) :]
    client = _CLIENT.match(name)
    if client:
        return WindowsOS(ident, f"Windows {name}", int(client.group(1)) >= 11)
    server = _SERVER.match(name)
    if server:
        year = 2000 + int(server.group(1))
        r2 = " R2" if server.group(2) else ""
        return WindowsOS(ident, f"Windows Server {year}{r2}", year >= 2022)
    return WindowsOS(ident, f"Windows ({name})", False)


def is_windows(ctx: Context) -> bool:
    """The libosinfo metadata says Windows; without metadata, a ``<hyperv>`` element
    (the enlightenments exist for Windows guests) says so too."""
    found = os_id(ctx)
    if found is not None:
        return found[0].startswith(WINDOWS_PREFIX)
    return hyperv_of(ctx) is not None


def hyperv_of(ctx: Context) -> etree._Element | None:
    return ctx.child(ctx.child(ctx.root, "features"), "hyperv")


def refuse_confidential(ctx: Context) -> None:
    """XN115: KVM cannot nest inside a SEV, SEV-SNP or TDX guest (every x86 edit)."""
    sec = ctx.child(ctx.root, "launchSecurity")
    kind = sec.get("type") if sec is not None else None
    if kind in CONFIDENTIAL:
        raise RuleError(
            f"a confidential guest (launchSecurity type '{kind}') cannot run a hypervisor: "
            "KVM offers no nested virtualization inside SEV, SEV-SNP or TDX guests",
            hint=rule_hint("XN115"),
            line=line(sec),
            rule="XN115",
        )


def check_guest(ctx: Context, vendor: Vendor) -> WindowsOS | None:
    """Refuse what ``--windows`` cannot serve (XN116 a guest known not to be Windows,
    XN114 an AMD L1 older than Windows 11 / Server 2022); the release, when known."""
    found = os_id(ctx)
    if found is None:
        return None
    ident, where = found
    release = windows_release(ident)
    if release is None:
        raise RuleError(
            f"--windows, but the libosinfo metadata says this guest is {ident}",
            hint=rule_hint("XN116"),
            line=where,
            rule="XN116",
        )
    if vendor == "amd" and not release.amd_nesting:
        raise RuleError(
            f"{release.label} on AMD: Microsoft supports nested virtualization on AMD "
            "processors only from Windows 11 and Windows Server 2022",
            hint=rule_hint("XN114"),
            line=where,
            rule="XN114",
        )
    return release


def plan(ctx: Context, vendor: Vendor, b: Builder) -> None:
    """The ``--windows`` edit: CPU, enlightenments, clock (what is still missing)."""
    release = check_guest(ctx, vendor)
    if release is None and vendor == "amd":
        b.warn(
            Finding(
                "XN229",
                "--windows on AMD, and the domain does not say which Windows it runs: "
                "Microsoft supports nested virtualization on AMD only from Windows 11 and "
                "Windows Server 2022",
                hint=rule_hint("XN229"),
                line=line(ctx.os_type),
            )
        )
    plan_cpu(ctx, vendor, b)
    plan_hyperv(ctx, vendor, b)
    plan_clock(ctx, b)


def plan_cpu(ctx: Context, vendor: Vendor, b: Builder) -> None:
    """require vmx/svm in the CPU form the options ask for (host-passthrough by default,
    then also check='none' and migratable='off'); Intel: TSX (hle, rtm) disabled."""
    feat = NESTING_FEATURE[vendor]
    cpu = ctx.cpu
    refuse_forbid(ctx, cpu, feat)
    opts = ctx.options
    tsx = TSX if vendor == "intel" else ()
    if cpu is None:
        b.edits.append(Insert(ctx.ref(ctx.root), _new_cpu(ctx, feat, tsx)))
        return
    if opts.model:
        _custom_form(ctx, b, cpu, opts.model, feat)
    elif opts.host_model:
        _host_model_form(ctx, b, cpu, feat)
    else:
        mode = cpu.get("mode", "custom")
        if mode not in CPU_MODES:
            raise unknown_mode(cpu, mode)
        has_model = bool(text_of(ctx.child(cpu, "model")))
        if opts.passthrough or mode == "host-model" or (mode == "custom" and not has_model):
            b.set(cpu, "mode", "host-passthrough")
            b.unset(cpu, "match")
            for name in ("model", "vendor"):
                for el in ctx.children(cpu, name):
                    b.edits.append(Remove(ctx.ref(el)))
            mode = "host-passthrough"
        if mode in ("host-passthrough", "maximum"):
            b.set(cpu, "check", "none")
            b.set(cpu, "migratable", "off")
        ensure_required(ctx, b, cpu, feat)
    for name in tsx:
        ensure_disabled(ctx, b, cpu, name)


def _new_cpu(ctx: Context, feat: str, tsx: tuple[str, ...]) -> NewElement:
    opts = ctx.options
    features = (NewElement("feature", (("policy", "require"), ("name", feat))),) + tuple(
        NewElement("feature", (("policy", "disable"), ("name", name))) for name in tsx
    )
    if opts.model:
        attrs: tuple[tuple[str, str], ...] = (
            ("mode", "custom"),
            ("match", "exact"),
            ("check", "partial"),
        )
        model = (NewElement("model", (("fallback", "allow"),), text=opts.model),)
        return NewElement("cpu", attrs, children=model + features)
    if opts.host_model:
        return NewElement("cpu", (("mode", "host-model"),), children=features)
    attrs = (("mode", "host-passthrough"), ("check", "none"), ("migratable", "off"))
    return NewElement("cpu", attrs, children=features)


def host_accepts(options: Options, offered: frozenset[str] | None) -> Options:
    """``options`` with the enlightenments a host's domain capabilities list (``offered``;
    ``None``: not reported) taken into what the target accepts. libvirt reports no
    ``<stimer><direct>`` there: it goes with ``stimer``."""
    if offered is None:
        return options
    offered = offered | ({"stimer.direct"} if "stimer" in offered else set())
    accepted = options.hyperv_accepted
    return options._replace(hyperv_accepted=offered if accepted is None else accepted & offered)


def wanted(vendor: Vendor, accepted: frozenset[str] | None) -> list[Enlightenment]:
    """The profile for ``vendor``, less what the target libvirt does not accept."""
    return [
        e
        for e in PROFILE
        if (vendor == "intel" or not e.intel_only) and (accepted is None or e.name in accepted)
    ]


def stimer_direct_accepted(accepted: frozenset[str] | None) -> bool:
    """``<stimer><direct/>``: named ``stimer.direct`` in the accepted set."""
    return accepted is None or "stimer.direct" in accepted


def plan_hyperv(ctx: Context, vendor: Vendor, b: Builder) -> None:
    """Every enlightenment of the profile on in ``<hyperv>``: missing ones added, an
    ``off`` one flipped in place, extras kept; a passthrough/host-model set left alone."""
    accepted = ctx.options.hyperv_accepted
    profile = wanted(vendor, accepted)
    skipped = [
        e.name for e in PROFILE if (vendor == "intel" or not e.intel_only) and e not in profile
    ]
    direct = stimer_direct_accepted(accepted)
    if not direct and any(e.name == "stimer" for e in profile):
        skipped.append("stimer direct")
    if skipped:
        b.warn(_not_accepted(ctx, skipped))
    features = ctx.child(ctx.root, "features")
    hyperv = ctx.child(features, "hyperv")
    if hyperv is not None and hyperv.get("mode") in HOST_HYPERV_MODES:
        return
    if not profile:
        return
    if features is None:
        b.edits.append(
            Insert(
                ctx.ref(ctx.root),
                NewElement("features", children=(_new_hyperv(profile, direct),)),
            )
        )
        return
    if hyperv is None:
        b.edits.append(Insert(ctx.ref(features), _new_hyperv(profile, direct)))
        return
    for e in profile:
        found = ctx.children(hyperv, e.name)
        if not found:
            b.edits.append(Insert(ctx.ref(hyperv), _new_enlightenment(e, direct)))
            continue
        el = found[0]
        if el.get("state") != "on":
            b.set(el, "state", "on")
        for name, value in e.attrs:
            if el.get(name) is None:
                b.set(el, name, value)
        if e.name == "stimer" and direct:
            _ensure_direct(ctx, b, el)


def _ensure_direct(ctx: Context, b: Builder, stimer: etree._Element) -> None:
    found = ctx.child(stimer, "direct")
    if found is None:
        b.edits.append(Insert(ctx.ref(stimer), NewElement("direct", (("state", "on"),))))
    elif found.get("state") != "on":
        b.set(found, "state", "on")


def _new_enlightenment(e: Enlightenment, direct: bool) -> NewElement:
    children = (NewElement("direct", (("state", "on"),)),) if e.name == "stimer" and direct else ()
    return NewElement(e.name, (("state", "on"), *e.attrs), children=children)


def _new_hyperv(profile: list[Enlightenment], direct: bool) -> NewElement:
    return NewElement(
        "hyperv",
        (("mode", "custom"),),
        children=tuple(_new_enlightenment(e, direct) for e in profile),
    )


def _not_accepted(ctx: Context, names: list[str]) -> Finding:
    """XN228: an enlightenment the target libvirt does not know is left out (never an
    element that would make the output invalid)."""
    return Finding(
        "XN228",
        "the target libvirt (its schema, or the host's domain capabilities) does not "
        "accept <hyperv> " + ", ".join(names) + ": left out, and nested Hyper-V may not "
        "start without it",
        hint=rule_hint("XN228"),
        line=line(hyperv_of(ctx)) or line(ctx.child(ctx.root, "features")),
    )


def plan_clock(ctx: Context, b: Builder) -> None:
    """``<timer name='hypervclock' present='yes'/>`` (QEMU's hv-time, which hv-stimer
    requires): added when absent, turned on when present='no'."""
    clock = ctx.child(ctx.root, "clock")
    timer = NewElement("timer", (("name", "hypervclock"), ("present", "yes")))
    if clock is None:
        # libvirt's default offset is utc: saying so changes nothing else.
        b.edits.append(
            Insert(ctx.ref(ctx.root), NewElement("clock", (("offset", "utc"),), children=(timer,)))
        )
        return
    found = [t for t in ctx.children(clock, "timer") if t.get("name") == "hypervclock"]
    if not found:
        b.edits.append(Insert(ctx.ref(clock), timer))
    elif found[0].get("present") == "no":
        b.set(found[0], "present", "yes")


# Advice


def hidden_hypervisor(ctx: Context) -> list[Finding]:
    """XN226: ``<vendor_id>`` or ``<kvm><hidden state='on'/>`` hide the hypervisor from
    Windows (they exist for GPU passthrough drivers) and may break VBS."""
    out: list[Finding] = []
    vendor_id = ctx.child(hyperv_of(ctx), "vendor_id")
    if vendor_id is not None and vendor_id.get("state") == "on":
        out.append(_hidden(vendor_id, "<hyperv><vendor_id> changes the hypervisor's name"))
    hidden = ctx.child(ctx.child(ctx.child(ctx.root, "features"), "kvm"), "hidden")
    if hidden is not None and hidden.get("state") == "on":
        out.append(_hidden(hidden, "<kvm><hidden state='on'/> hides KVM"))
    return out


def _hidden(el: etree._Element, what: str) -> Finding:
    return Finding(
        "XN226",
        f"{what} from the guest: meant for GPU passthrough drivers, it may keep Windows "
        "from starting its own hypervisor (VBS, Hyper-V)",
        hint=rule_hint("XN226"),
        line=line(el),
    )


NOTES = (
    "the Windows hypervisor starts at the guest's next boot (Windows 11 turns VBS on by "
    "itself once it sees vmx/svm); the new CPU takes effect only after a full power-off "
    "(virsh shutdown, then virsh start), not a reboot. Inside Windows, 'systeminfo' then "
    "says 'A hypervisor has been detected' and msinfo32 shows Virtualization-based "
    "security 'Running'"
)


def notes(ctx: Context) -> Finding:
    """XN227: what happens next and how to recover; said with every ``--windows`` edit."""
    return Finding(
        "XN227", NOTES, hint=rule_hint("XN227"), line=line(ctx.os_type), level=Level.NOTE
    )


def missing_for_windows(
    ctx: Context, vendor: Vendor, vendor_known: bool
) -> tuple[str, bool] | None:
    """For XN225: what ``--windows`` would still change (beyond the plain edit), in a few
    words, or why it would refuse (then ``True``); ``None`` when nothing."""
    opts = ctx.options._replace(windows=True)
    scratch = Context(ctx.root, opts, ctx.host)
    try:
        check_guest(scratch, vendor)
    except RuleError as exc:
        if exc.rule == "XN114" and vendor_known:
            return exc.problem, True
        if exc.rule == "XN116":
            return None
    intel = vendor == "intel" and vendor_known
    said: list[str] = []
    b = Builder(scratch)
    plan_cpu(scratch, vendor, b)
    if b.edits:
        said.append("the CPU's vmx/svm required" + (" with TSX (hle, rtm) off" if intel else ""))
    names = missing_enlightenments(scratch, vendor if vendor_known else "amd")
    if names:
        said.append("the enlightenments " + ", ".join(names))
    b = Builder(scratch)
    plan_clock(scratch, b)
    if b.edits:
        said.append("the hypervclock timer")
    return ("; ".join(said), False) if said else None


def missing_enlightenments(ctx: Context, vendor: Vendor) -> list[str]:
    """The profile's enlightenments absent or off in ``<hyperv>`` (none for a
    passthrough set: the hypervisor gives them all)."""
    hyperv = hyperv_of(ctx)
    if hyperv is not None and hyperv.get("mode") in HOST_HYPERV_MODES:
        return []
    accepted = ctx.options.hyperv_accepted
    out: list[str] = []
    for e in wanted(vendor, accepted):
        el = ctx.child(hyperv, e.name)
        if el is None or el.get("state") != "on":
            out.append(e.name)
        elif e.name == "stimer" and stimer_direct_accepted(accepted):
            direct = ctx.child(el, "direct")
            if direct is None or direct.get("state") != "on":
                out.append("stimer direct")
    return out
