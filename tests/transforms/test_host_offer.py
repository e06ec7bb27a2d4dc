"""What the host behind a libvirt connection offers, as the advice sees it: XN219 when the
host cannot give a KVM guest the nesting feature, XN222's note for host-model, nothing to
go by when no host or the driver cannot say. A table per case; the host's facts are
values here, a real host's in tests/test_connection.py and tests/test_domains_cli.py.
How the converter learns them (once, and only when a plan asks) is tests/test_convert.py."""

from __future__ import annotations

import pytest

from xmlnest.engine import core
from xmlnest.engine.plan import Level
from xmlnest.model import HostFacts, Options

URI = "qemu+ssh://l0/system"
NO_HOST = object()  # no connection at all


def domain(cpu: str, arch: str = "x86_64") -> bytes:
    return (
        "<domain type='kvm'>\n  <name>d</name>\n  <memory unit='MiB'>512</memory>\n"
        f"  <os>\n    <type arch='{arch}' machine='q35'>hvm</type>\n  </os>\n"
        f"  {cpu}\n</domain>\n"
    ).encode()


PASS = "<cpu mode='host-passthrough'/>"
MODEL = "<cpu mode='host-model'/>"
CUSTOM = "<cpu mode='custom'><model fallback='allow'>Skylake-Client</model></cpu>"

# (case, XML, options, what the host offers for x86_64 (or NO_HOST), expected {rule: level})
CASES = [
    ("passthrough, host lacks svm", domain(PASS), Options(arch="amd"), frozenset({"x2apic"}),
     {"XN219": Level.WARNING}),
    ("passthrough, host offers svm", domain(PASS), Options(arch="amd"), frozenset({"svm"}), {}),
    ("custom, host lacks vmx (it has svm)", domain(CUSTOM), Options(arch="intel"),
     frozenset({"svm"}), {"XN219": Level.WARNING}),
    ("driver cannot say", domain(PASS), Options(arch="amd"), None, {}),
    ("no connection", domain(PASS), Options(arch="amd"), NO_HOST, {}),
    ("disabling nesting: nothing to warn about", domain(PASS), Options(arch="amd", disable=True),
     frozenset(), {}),
    ("host-model, host lacks svm", domain(MODEL), Options(arch="amd", host_model=True),
     frozenset(), {"XN219": Level.WARNING}),
    ("host-model, host offers svm", domain(MODEL), Options(arch="amd", host_model=True),
     frozenset({"svm"}), {"XN222": Level.INFO}),
    ("host-model, driver cannot say", domain(MODEL), Options(arch="amd", host_model=True),
     None, {"XN222": Level.INFO}),
    ("host-model, no connection", domain(MODEL), Options(arch="amd", host_model=True), NO_HOST,
     {"XN222": Level.INFO}),
]  # fmt: skip


@pytest.mark.parametrize(("xml", "options", "offers", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_host_offer(
    xml: bytes, options: Options, offers: object, expected: dict[str, Level]
) -> None:
    host = HostFacts() if offers is NO_HOST else _offering(offers)
    out = core.process(xml, options, host=host)
    got = {f.rule: f.level for f in out.findings if f.rule in ("XN219", "XN222")}
    assert got == expected


def _offering(offers: object, arch: str = "x86_64") -> HostFacts:
    """A connection's host known to offer ``offers`` to ``arch`` guests (and nothing
    known of other arches: a plan asking for one would raise HostFactNeeded)."""
    assert offers is None or isinstance(offers, frozenset)
    return HostFacts(URI, offered=((arch, offers),))


def test_the_warning_names_the_uri_and_the_feature() -> None:
    host = _offering(frozenset())
    (found,) = [
        f for f in core.process(domain(PASS), Options(arch="amd"), host=host).findings
        if f.rule == "XN219"
    ]  # fmt: skip
    assert found.message == (
        f"the host behind {URI} does not offer svm to guests (its host-model CPU lacks it)"
    )
    assert found.hint == "enable nesting on that host first (xmlnest --host-check there)"
    assert found.line is None  # a fact about the host, not a line of the XML


def test_host_model_says_what_the_host_told() -> None:
    def told(offers: frozenset[str] | None | object) -> str:
        host = HostFacts() if offers is NO_HOST else _offering(offers)
        out = core.process(domain(MODEL), Options(arch="amd", host_model=True), host=host)
        (note,) = [f for f in out.findings if f.rule == "XN222"]
        return note.message.rsplit("(this host: ", 1)[1]

    assert told(frozenset({"svm"})) == "offers it)"
    assert told(None) == "its driver cannot say)"
    assert told(NO_HOST) == "not asked, no libvirt connection)"


def test_the_plan_asks_for_what_it_lacks_and_nothing_else() -> None:
    """The engine is handed values; a fact it needs and lacks is a request (the converter
    answers it), and one it does not need is never asked for."""
    from xmlnest.model import Fact, HostFactNeeded

    unknown = HostFacts(URI)  # a connection, nothing learned of it yet
    with pytest.raises(HostFactNeeded) as asked:
        core.process(domain(PASS), Options(arch="amd"), host=unknown)
    assert asked.value.fact == Fact("offered", "x86_64")
    power = domain("", arch="ppc64le").replace(b"machine='q35'", b"machine='pseries'")
    assert core.process(power, Options(), host=unknown).changed  # POWER9: no x86 offer
    disabled = core.process(domain(PASS), Options(arch="amd", disable=True), host=unknown)
    assert disabled.changed  # turning nesting off compares no offer
