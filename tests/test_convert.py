"""The converter: host facts reach the engine as values, each looked up once, and only
when a plan asks for it; every path (API, CLI files and pipes, domains by name) converts
through it."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from xmlnest.convert import Converter, ThisMachine
from xmlnest.engine import core
from xmlnest.errors import RuleError
from xmlnest.model import Fact, HostFactNeeded, HostFacts, Options, Vendor

URI = "qemu+ssh://l0/system"


def domain(cpu: str = "", arch: str = "x86_64", name: str = "d") -> bytes:
    machine = "pseries" if arch.startswith("ppc") else "q35"
    return (
        f"<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='MiB'>512</memory>\n"
        f"  <os>\n    <type arch='{arch}' machine='{machine}'>hvm</type>\n  </os>\n"
        f"  {cpu}\n</domain>\n"
    ).encode()


NO_VENDOR = "<cpu mode='custom' match='exact'><model>qemu64</model></cpu>"  # needs a vendor
INTEL = "<cpu mode='custom'><model fallback='allow'>Skylake-Client</model></cpu>"


class Counting:
    """A host lookup that counts what it is asked."""

    def __init__(
        self,
        uri: str | None = URI,
        vendor: Vendor | None = "amd",
        offers: frozenset[str] | None = frozenset({"svm"}),
    ) -> None:
        self.uri = uri
        self.vendor_is_the_domains = uri is not None
        self._vendor = vendor
        self._offers = offers
        self.asked: list[Fact] = []

    def vendor(self) -> Vendor | None:
        self.asked.append(Fact("vendor"))
        return self._vendor

    def offered(self, arch: str) -> frozenset[str] | None:
        self.asked.append(Fact("offered", arch))
        return self._offers

    def hyperv(self, arch: str) -> frozenset[str] | None:
        self.asked.append(Fact("hyperv", arch))
        return frozenset({"relaxed", "vapic", "spinlocks"})


def test_each_fact_is_looked_up_once_for_many_domains() -> None:
    lookup = Counting()
    converter = Converter(Options(), lookup=lookup)
    for i in range(100):
        out = converter.process(domain(NO_VENDOR, name=f"d{i}"))
        assert b"name='svm'" in out.output  # the connection's vendor: AMD
    assert lookup.asked == [Fact("vendor"), Fact("offered", "x86_64")]
    assert converter.lookups == 2
    assert converter.facts == HostFacts(
        URI,
        "amd",
        vendor_is_the_domains=True,
        offered=(("x86_64", frozenset({"svm"})),),
    )


def test_nothing_is_looked_up_that_no_plan_needs() -> None:
    lookup = Counting()
    converter = Converter(Options(arch="intel"), lookup=lookup)
    power = Converter(Options(), lookup=lookup)
    converter.process(domain(INTEL, name="named"))  # its model names the vendor
    assert lookup.asked == [Fact("offered", "x86_64")]  # ... but the offer is compared
    power.process(domain(arch="ppc64le"))
    assert lookup.asked == [Fact("offered", "x86_64")]  # POWER9: nothing about the host
    files = Counting(uri=None)
    Converter(Options(arch="intel"), lookup=files).process(domain(INTEL))
    assert files.asked == []  # no connection: no offer to ask for, the XML names Intel


def test_windows_asks_the_connection_once_per_arch_for_its_enlightenments() -> None:
    lookup = Counting(vendor="intel", offers=frozenset({"vmx"}))
    converter = Converter(Options(arch="intel", windows=True), lookup=lookup)
    for i in range(3):
        out = converter.process(domain(INTEL, name=f"w{i}"))
        assert b"<relaxed state='on'/>" in out.output
        assert b"<stimer" not in out.output  # not in what the host lists
    assert lookup.asked.count(Fact("hyperv", "x86_64")) == 1
    power = Converter(Options(windows=True), lookup=lookup)
    with pytest.raises(RuleError, match="XN116|Intel or AMD"):
        power.process(domain(arch="ppc64le"))
    assert Fact("hyperv", "ppc64le") not in lookup.asked  # refused first: nothing asked


def test_the_vendor_a_connection_gives_is_not_called_a_guess() -> None:
    here = Converter(Options(), lookup=Counting(uri=None))
    there = Converter(Options(), lookup=Counting())
    rules = [{f.rule for f in c.process(domain(NO_VENDOR)).findings} for c in (here, there)]
    assert "XN217" in rules[0]  # "vendor AMD taken from this machine's CPU"
    assert "XN217" not in rules[1]


def test_a_fact_with_nowhere_to_look_is_a_bug_not_a_loop() -> None:
    """The safety net: a plan asking for what cannot be learned stops at once."""
    converter = Converter(Options(), facts=HostFacts(vendor_looked_up=False))
    with pytest.raises(RuntimeError, match="no way to learn it"):
        converter.process(domain(NO_VENDOR))


def test_the_engine_itself_only_asks() -> None:
    with pytest.raises(HostFactNeeded) as need:
        core.process(domain(NO_VENDOR), Options(), host=HostFacts(vendor_looked_up=False))
    assert need.value.fact == Fact("vendor")
    told = HostFacts(vendor_looked_up=False).answered(Fact("vendor"), "intel")
    assert b"name='vmx'" in core.process(domain(NO_VENDOR), Options(), host=told).output


def test_host_facts_are_plain_values() -> None:
    facts = HostFacts(URI, "intel", offered=(("x86_64", frozenset({"vmx"})),))
    assert pickle.loads(pickle.dumps(facts)) == facts
    assert facts.knows(Fact("offered", "x86_64")) and not facts.knows(Fact("hyperv", "x86_64"))
    assert HostFacts().knows(Fact("offered", "s390x"))  # no connection: nothing to ask


def test_this_machine_is_read_under_its_root() -> None:
    assert ThisMachine(str(REPO / "tests" / "hosts" / "amd-on")).vendor() == "amd"
    assert ThisMachine(str(REPO / "tests" / "hosts" / "intel-on")).vendor() == "intel"


def test_the_cli_reads_the_vendor_from_host_root_only_when_asked(tmp_path: Path) -> None:
    """--host-root stands for the machine the vendor is guessed from: a domain that names
    none gets that machine's feature; one that names its own never reads it."""
    f = tmp_path / "d.xml"
    f.write_bytes(domain(NO_VENDOR))
    for host, feature in (("amd-on", b"svm"), ("intel-on", b"vmx")):
        root = str(REPO / "tests" / "hosts" / host)
        r = run_cli(["--no-validate", "--host-root", root, str(f)])
        assert r.code == 0, r.err
        assert b"name='" + feature + b"'" in r.out
    empty = tmp_path / "no-cpuinfo"  # a root with no /proc/cpuinfo: no vendor to read
    empty.mkdir()
    named = tmp_path / "named.xml"
    named.write_bytes(domain(INTEL))
    r = run_cli(["--no-validate", "--host-root", str(empty), str(named)])
    assert r.code == 0 and b"name='vmx'" in r.out, r.err
    r = run_cli(["--no-validate", "--host-root", str(empty), str(f)])
    assert r.code == 3 and "XN108" in r.err  # needed, read, and not there: refused
