"""Domains by name: -c/--domain/--all-domains/-i/--status through the CLI, on both backends,
against libvirt's test driver (a node file) and the real qemu:///system daemon."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import AMD_NESTING_OFF, REPO, DefineOnSystem, need, run_cli
from tests.helpers import LIGHT, loaded_by
from tests.test_connection import FLEET, SYSTEM, node_file, uuid_of
from tests.test_connection import _virsh as system_virsh
from xmlnest.libvirt import connection

pytestmark = pytest.mark.usefixtures("backend_env")


@pytest.fixture
def backend_env(monkeypatch: pytest.MonkeyPatch, backend: str) -> str:
    """Run every test once per backend (the test_connection ``backend`` fixture checks it
    can be had), chosen the way a user forces one."""
    monkeypatch.setenv(connection.BACKEND_ENV, backend)
    return backend


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return node_file(tmp_path, FLEET)


def test_one_domain_prints_its_converted_stored_definition(uri: str) -> None:
    r = run_cli(["-c", uri, "--arch", "amd", "--domain", "amd-off"])
    assert r.code == 0, r.err
    assert b"<feature policy='require' name='svm'/>" in r.out
    assert b" id='" not in r.out.split(b">", 1)[0]  # the stored definition, never the live one


def test_check_over_all_domains_names_each_and_refuses_what_cannot_nest(uri: str) -> None:
    r = run_cli(["-c", uri, "--all-domains", "--check", "--arch", "auto"])
    assert r.code == 3
    assert "amd-off: would change" in r.err_lines
    assert any(ln.startswith("arm-run:") and " XN101 " in ln for ln in r.err_lines)
    assert any(ln.startswith("tcg-off:") and " XN10" in ln for ln in r.err_lines)
    assert r.err_lines[-1].startswith("xmlnest: ") and "rejected in" in r.err_lines[-1]


def test_check_exits_1_when_only_changes_are_pending(uri: str) -> None:
    r = run_cli(["-c", uri, "--domain", "amd-off", "--domain", "power9-run", "--check"])
    assert r.code == 1, r.err
    assert "amd-off: would change" in r.err_lines


def test_diff_headers_name_the_domain(uri: str) -> None:
    r = run_cli(["-c", uri, "--domain", "amd-off", "--diff"])
    assert r.code == 0, r.err
    text = r.out.decode()
    assert text.startswith("--- a/amd-off\n+++ b/amd-off\n")
    assert "-    <feature policy='disable' name='svm'/>" in text
    assert "+    <feature policy='require' name='svm'/>" in text


def test_json_lines_per_domain(uri: str) -> None:
    r = run_cli(["-c", uri, "--domain", "amd-off", "--domain", "nope", "--check", "--json"])
    assert r.code == 3
    recs = [json.loads(ln) for ln in r.out.decode().splitlines()]
    assert [(x["path"], x["status"]) for x in recs] == [(uri, "rejected"), ("amd-off", "would change")]


def test_in_place_defines_and_says_a_running_domain_needs_a_power_off(uri: str) -> None:
    r = run_cli(["-c", uri, "--arch", "intel", "--domain", "intel-run", "-i"])
    assert r.code == 0, r.err
    assert (
        f"{uri}: note: intel-run is running: the new CPU takes effect after a full power-off "
        "(virsh shutdown intel-run; virsh start intel-run); a reboot or reset is not enough"
    ) in r.err_lines
    off = run_cli(["-c", uri, "--domain", "amd-off", "-i"])
    assert off.code == 0 and "is running" not in off.err


def test_a_definition_changed_meanwhile_is_left_alone(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone ran virsh edit between xmlnest's read and its define: nothing is defined."""
    from xmlnest.libvirt import source as domains
    real = domains.DomainSource.read

    def read(self: domains.DomainSource, item: object) -> bytes:
        return real(self, item).replace(b"<memory unit='KiB'>1048576", b"<memory unit='KiB'>2097152")  # type: ignore[arg-type]

    defined: list[bytes] = []
    monkeypatch.setattr(domains.DomainSource, "read", read)
    monkeypatch.setattr(connection.LibvirtPython, "define", lambda s, d, x: defined.append(x))
    monkeypatch.setattr(connection.Virsh, "define", lambda s, d, x: defined.append(x))
    r = run_cli(["-c", uri, "--domain", "amd-off", "-i"])
    assert r.code == 3 and defined == []
    assert r.err_lines[-1] == (
        f"{uri}: domain 'amd-off': its stored definition changed since xmlnest read it; nothing "
        "defined; someone edited it meanwhile: run xmlnest again"
    )


def test_libvirt_dropping_the_edit_is_said(uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the define xmlnest reads the stored definition back: an edit libvirt did not
    keep is an error, not a silent success."""
    for cls in (connection.LibvirtPython, connection.Virsh):
        real = cls.define

        def define(self: connection.Connection, dom: connection.DomainInfo, xml: bytes, real=real) -> None:  # type: ignore[no-untyped-def]
            real(self, dom, xml.replace(b"policy='require' name='svm'", b"policy='disable' name='svm'"))

        monkeypatch.setattr(cls, "define", define)
    r = run_cli(["-c", uri, "--domain", "amd-off", "-i"])
    assert r.code == 3
    assert "defined, but the stored definition libvirt kept lacks the nesting edit" in r.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--domain", "nope", "--check"], "domain 'nope': no such domain"),
    ],
)
def test_unknown_names_are_refused_one_line_each(uri: str, args: list[str], message: str) -> None:
    r = run_cli(["-c", uri, *args])
    assert r.code == 3 and r.out == b""
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith(f"{uri}: {message}")


@pytest.mark.parametrize("args", [["--domain", "x", "--check"], ["--status"]])
def test_an_unreachable_uri_is_one_line_exit_3(args: list[str]) -> None:
    bad = "qemu+unix:///system?socket=/nonexistent"
    r = run_cli(["-c", bad, *args])
    assert r.code == 3 and r.out == b""
    assert len(r.err_lines) == 1 and r.err_lines[0].startswith(bad + ": ")
    assert "Traceback" not in r.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-c", "test:///default"], "-c test:///default needs --domain NAME, --all-domains or --status"),
        (["--domain", "a", "x.xml"], "name files or libvirt domains (--domain), not both"),
        (["--domain", "a", "--all-domains", "--check"], "--domain and --all-domains contradict"),
        (["--all-domains"], "several domains need --check, --diff or --in-place"),
        (["--domain", "a", "-o", "out"], "--output-dir writes files"),
        (["--status", "-i"], "--status reports and changes nothing"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    r = run_cli(args)
    assert r.code == 2 and r.out == b""
    assert r.err_lines[0].startswith(f"xmlnest: {message}"), r.err


def test_status_over_the_fleet(uri: str) -> None:
    r = run_cli(["-c", uri, "--status", "--arch", "auto"])
    assert r.code == 3  # arm and tcg are refused
    lines = r.out.decode().splitlines()
    assert lines[0].split() == ["NAME", "ARCH", "STATE", "STORED", "RUNNING"]
    rows = {ln.split()[0]: ln for ln in lines[1:-1]}
    assert lines[-1] == (
        "2 of 7 domains expose vmx/svm in their stored definition; 1 of 3 running domains "
        "have it now; 0 restart pending"
    )
    assert "shut off" in rows["amd-off"] and "would change" in rows["amd-off"]
    assert "refused XN101" in rows["arm-run"] and " aarch64 " in rows["arm-run"]  # arch kept
    j = run_cli(["-c", uri, "--status", "--json", "--domain", "amd-off", "--domain", "power9-run"])
    assert j.code == 1
    *rows_json, summary = map(json.loads, j.out.decode().splitlines())
    recs = {x["name"]: x for x in rows_json}
    assert summary == {
        "record": "summary", "domains": 2, "stored_nested": 1, "running": 1,
        "running_nested": 1, "restart_pending": 0,
    }  # fmt: skip
    assert recs["amd-off"] == {
        "arch": "x86_64", "name": "amd-off", "restart_pending": False, "running": None,
        "state": "shut off", "stored": "would change",
    }  # fmt: skip
    assert recs["power9-run"]["stored"] == "nested" and recs["power9-run"]["running"] == "nested"


def test_a_domain_by_name_loads_its_backend_only_and_on_libvirt_python_not_json(
    tmp_path: Path, backend: str
) -> None:
    uri = node_file(tmp_path, FLEET)
    watch = (
        "xmlnest.libvirt.connection.virsh",
        "xmlnest.libvirt.connection.session",
        "xmlnest.libvirt.connection.shell",
        *LIGHT,
    )
    args = ["--connect", uri, "--domain", "amd-off", "--check"]  # -c: click loads difflib
    loaded = loaded_by(args, watch, backend=backend)
    if backend == "python":
        assert loaded == []
    else:
        assert "xmlnest.libvirt.connection.virsh" in loaded  # the probe can fail


# ----------------------------------------------------------------------- the real daemon



def _virsh(*args: str) -> subprocess.CompletedProcess[bytes]:
    return system_virsh(*args, check=False)


@pytest.fixture
def system_domain(system_domains: DefineOnSystem) -> str:
    return system_domains(AMD_NESTING_OFF)


def test_convert_a_shut_off_domain_on_qemu_system_by_name(system_domain: str) -> None:
    r = run_cli(["-c", SYSTEM, "--domain", system_domain, "-i"])
    assert r.code == 0, r.err
    stored = _virsh("dumpxml", "--inactive", system_domain).stdout.decode()
    assert "<feature policy='require' name='svm'/>" in stored
    assert "policy='disable' name='svm'" not in stored
    again = run_cli(["-c", SYSTEM, "--domain", system_domain, "--check"])
    assert again.code == 0, again.err  # idempotent against what libvirt stored
    st = run_cli(["-c", SYSTEM, "--status", "--json", "--domain", system_domain])
    host, rec, summary = [json.loads(ln) for ln in st.out.decode().splitlines()]
    assert (host["record"], summary["record"], summary["stored_nested"]) == ("host", "summary", 1)
    assert rec["stored"] == "nested" and rec["state"] == "shut off" and rec["running"] is None


def test_the_host_behind_qemu_system_is_asked_whether_it_offers_nesting(
    system_domain: str,
) -> None:
    """XN219 says so when the host's host-model CPU lacks the feature; --strict refuses."""
    from tests.test_connection import _local_kvm_nests, _local_vendor

    r = run_cli(["-c", SYSTEM, "--domain", system_domain, "--check", "--arch", "amd"])
    offers = _local_vendor() == "amd" and _local_kvm_nests("amd")
    warned = [ln for ln in r.err_lines if " XN219 " in ln]
    if offers:
        assert warned == []
    else:
        assert warned == [
            f"{system_domain}: warning: XN219 the host behind {SYSTEM} does not offer svm to "
            "guests (its host-model CPU lacks it); enable nesting on that host first "
            "(xmlnest --host-check there)"
        ]
        strict = run_cli(["-c", SYSTEM, "--domain", system_domain, "--check", "--strict"])
        assert strict.code == 3


def test_a_transient_domain_is_refused(daemon: None, tmp_path: Path) -> None:
    name = f"xmlnest-test-t-{secrets.token_hex(4)}"
    f = tmp_path / "t.xml"
    f.write_text(
        f"<domain type='qemu'>\n  <name>{name}</name>\n  <memory unit='MiB'>64</memory>\n"
        "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n</domain>\n"
    )
    created = _virsh("create", str(f))
    assert created.returncode == 0, created.stderr
    try:
        r = run_cli(["-c", SYSTEM, "--domain", name, "-i"])
        assert r.code == 3 and r.out == b""
        assert r.err_lines[0].startswith(f"{SYSTEM}: domain '{name}': ") and "transient" in r.err
    finally:
        _virsh("destroy", name)


def test_the_vendor_is_the_hosts_own_and_host_model_asks_what_it_offers(
    system_domains: DefineOnSystem,
) -> None:
    """With a connection the x86 vendor is the capabilities' (no XN217 guess note, and
    vendor advice such as AMD's XN202 applies); --host-model asks the host's domain
    capabilities whether host-model carries the feature, and says it once."""
    from tests.test_connection import _local_kvm_nests, _local_vendor

    vendor = _local_vendor()
    if vendor is None:
        need("an Intel or AMD host behind qemu:///system", "run it on an x86 host")
        raise AssertionError("unreachable")
    feature = "svm" if vendor == "amd" else "vmx"
    name = system_domains(
        "<domain type='kvm'>\n  <name>{name}</name>\n  <memory unit='MiB'>256</memory>\n"
        "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n"
        "  <cpu mode='host-model'/>\n</domain>\n",
        "hm",
    )
    plain = run_cli(["-c", SYSTEM, "--domain", name, "--check"])
    assert plain.code == 1, plain.err
    assert "XN217" not in plain.err
    assert ("XN202" in plain.err) == (vendor == "amd")
    hm = run_cli(["-c", SYSTEM, "--domain", name, "--check", "--host-model", "-v"])
    assert hm.code == 1, hm.err
    told = [ln for ln in hm.err_lines if " XN219 " in ln or " XN222 " in ln]
    if _local_kvm_nests(vendor):
        assert len(told) == 1 and "XN222" in told[0] and "offers it" in told[0]
    else:
        assert len(told) == 1 and "XN219" in told[0] and f"not offer {feature} " in told[0]


def test_in_place_reads_each_definition_just_before_its_define(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--check reads each stored definition ahead; -i reads each one only when its turn
    comes, so someone else's edit meanwhile is taken in, not refused by the guard."""
    ahead: list[str] = []
    for cls in (connection.LibvirtPython, connection.Virsh):
        real = cls.stored_xmls

        def spy(self: connection.Connection, doms: list[connection.DomainInfo], real=real):  # type: ignore[no-untyped-def]
            ahead.extend(d.name for d in doms)
            return real(self, doms)

        monkeypatch.setattr(cls, "stored_xmls", spy)
    names = ["--domain", "amd-off", "--domain", "intel-run"]
    assert run_cli(["-c", uri, *names, "--check"]).code == 1
    assert ahead == ["amd-off", "intel-run"]
    ahead.clear()
    r = run_cli(["-c", uri, *names, "-i"])
    assert r.code == 0, r.err
    assert ahead == []


def test_a_closed_stdout_while_refusals_are_reported_ends_quietly(uri: str) -> None:
    """`xmlnest --json … | head -c 100` with many unknown names: the reader leaves while
    the refusals' records are written; the exit code is the run's, with no traceback."""
    names = [a for i in range(3000) for a in ("--domain", f"no-such-{i}")]
    cmd = [sys.executable, "-m", "xmlnest", "-c", uri, "--json", "--check", *names]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO) as p:
        assert p.stdout is not None and p.stderr is not None
        head = p.stdout.read(100)
        p.stdout.close()
        err = p.stderr.read()
        code = p.wait(timeout=120)
    assert head.startswith(b'{"findings"')
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err[-500:]
    assert code == 3


def test_status_says_restart_pending_only_where_an_edit_waits_for_a_power_off(
    tmp_path: Path,
) -> None:
    """A running host-model guest never converted runs nested (the host offers vmx) and
    would after a power-off too: its stored definition "would change", nothing is pending.
    Under --disable, a disabled definition is "not nested" (not "nested"), and IBM Z, where
    no XML turns nesting off, is a "host setting"."""
    uri = node_file(
        tmp_path,
        {
            "hm-run": (uuid_of(1), dict(cpu="  <cpu mode='host-model' check='partial'/>\n")),
            "off-run": (
                uuid_of(2),
                dict(
                    cpu="  <cpu mode='custom' match='exact'>\n    <model>Haswell-noTSX</model>\n"
                    "    <feature policy='disable' name='vmx'/>\n  </cpu>\n"
                ),
            ),
            "z-run": (uuid_of(3), dict(arch="s390x", machine="s390-ccw-virtio")),
        },
    )
    r = run_cli(["-c", uri, "--status", "--json", "--arch", "auto", "--domain", "hm-run"])
    rec, _summary = map(json.loads, r.out.decode().splitlines())
    assert (rec["stored"], rec["running"], rec["restart_pending"]) == (
        "would change",
        "nested",
        False,
    )
    assert r.code == 1  # would change: convert it, no restart asked for
    got = {}
    for args in (["--arch", "intel", "--domain", "hm-run", "--domain", "off-run"], ["--domain", "z-run"]):
        d = run_cli(["-c", uri, "--status", "--disable", "--json", *args])
        got.update({x["name"]: x for x in map(json.loads, d.out.decode().splitlines()) if "name" in x})
        assert d.code == (1 if "hm-run" in args else 0), d.err
    assert {n: (x["stored"], x["running"], x["restart_pending"]) for n, x in got.items()} == {
        "hm-run": ("would change", "nested", False),
        "off-run": ("not nested", "not nested", False),
        "z-run": ("host setting", "nested", False),
    }


def test_in_place_by_name_prints_one_line_per_defined_domain(tmp_path: Path) -> None:
    """As virsh and virt-xml: each defined domain named, with "(restart pending)" where a
    running guest needs a power-off for the nesting edit. A running host-model guest on
    a host that offers vmx already runs nested: defined, nothing pending, no note."""
    cpu = "  <cpu mode='custom' match='exact'>\n    <model>Haswell-noTSX</model>\n  </cpu>\n"
    uri = node_file(
        tmp_path,
        {
            "hm-run": (uuid_of(1), dict(cpu="  <cpu mode='host-model' check='partial'/>\n")),
            "off": (uuid_of(2), dict(cpu=cpu, running=False)),
            "run": (uuid_of(3), dict(cpu=cpu)),
            "done": (uuid_of(4), dict(cpu="  <cpu mode='host-passthrough'/>\n")),
        },
    )
    r = run_cli(["-c", uri, "--arch", "intel", "--all-domains", "-i"])
    assert r.code == 0, r.err
    mine = [ln for ln in r.err_lines if " warning: " not in ln]
    assert mine[:-1] == [
        "hm-run: defined",
        "off: defined",
        "run: defined (restart pending)",
        f"{uri}: note: run is running: the new CPU takes effect after a full power-off "
        "(virsh shutdown run; virsh start run); a reboot or reset is not enough",
    ]
    assert mine[-1].startswith("xmlnest: 3 changed, 1 already nested")
    quiet = run_cli(["-c", uri, "--arch", "intel", "--all-domains", "-i", "-q"])
    assert (quiet.code, quiet.err) == (0, "")
    j = run_cli(["-c", uri, "--arch", "intel", "--domain", "off", "-i", "--json"])
    assert "defined" not in j.err and json.loads(j.out)["status"] == "changed"
