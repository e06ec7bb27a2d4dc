"""--disable and --host-model: usage errors, round trips, the host-offer seam, the JSON
report, XN203's level, and real libvirt accepting every golden output of both flags."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, libvirt_tool, run_cli
from tests.helpers import round_trip_expectation
from xmlnest.engine import core
from xmlnest.engine.plan import Level
from xmlnest.model import HostFacts, Options

GOLDEN = REPO / "tests" / "golden"
SAMPLES = REPO / "samples"
INTEL = (SAMPLES / "intel-l1.xml").read_bytes()  # host-model check='partial'


def _args(case: Path) -> list[str]:
    f = case / "args"
    return shlex.split(f.read_text()) if f.is_file() else []


FLAG_CASES = sorted(
    p
    for p in GOLDEN.glob("*/*")
    if (p / "expected.xml").is_file() and {"--disable", "--host-model"} & set(_args(p))
)
# Inputs of the enabling cases, with each enabling form that applies to them.
ROUND_TRIPS = [
    pytest.param(p / "input.xml", host_model, id=f"{p.parent.name}/{p.name}-{form}")
    for p in sorted(GOLDEN.glob("*/*"))
    if p.parent.name in ("intel", "amd", "power9")
    and (p / "expected.xml").is_file()
    and not {"--disable", "--host-model", "--model", "--level"} & set(_args(p))
    for host_model, form in ((False, "default"), (True, "host-model"))
    if not host_model or p.parent.name != "power9"
]


def test_there_are_golden_cases_for_both_flags_and_every_arch() -> None:
    disable = {p.parent.name for p in FLAG_CASES if "--disable" in _args(p)}
    host_model = {p.parent.name for p in FLAG_CASES if "--host-model" in _args(p)}
    assert disable == {"intel", "amd", "power9", "ibmz"}
    # POWER9, IBM Z: their own edit; windows/: --windows --host-model
    assert host_model - {"windows"} == {"intel", "amd", "power9", "ibmz"}
    assert len(FLAG_CASES) >= 25


# --- usage -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [["--model", "Haswell"], ["--passthrough"], ["--host-model"], ["--level", "l2"]],
    ids=" ".join,
)
def test_disable_with_an_enabling_option_is_a_usage_error(extra: list[str]) -> None:
    fast = run_cli(["--disable", *extra, str(SAMPLES / "intel-l1.xml")])
    slow = run_cli(["--disable", *extra, "--", str(SAMPLES / "intel-l1.xml")])  # click
    assert fast.code == slow.code == 2
    assert fast.out == b""
    assert fast.err == slow.err
    assert f"--disable and {extra[0]}" in fast.err


def test_disable_with_the_default_level_is_fine() -> None:
    """The fast reader cannot tell an explicit --level l1 from the default: l1 is no
    conflict, so only --level l2 is refused."""
    r = run_cli(["--arch", "intel", "--disable", "--level", "l1", str(SAMPLES / "intel-l1.xml")])
    assert r.code == 0, r.err
    assert b"<feature policy='disable' name='vmx'/>" in r.out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--host-model", "--model", "EPYC"], "--host-model and --model"),
        (["--host-model", "--passthrough"], "--host-model and --passthrough"),
        (["--host-model", "--arch", "power9"], "not to --arch power9"),
        (["--host-model", "--arch", "s390x"], "not to --arch s390x"),
    ],
)
def test_host_model_usage_errors(args: list[str], words: str) -> None:
    r = run_cli([*args, str(SAMPLES / "intel-l1.xml")])
    assert r.code == 2 and r.out == b""
    assert words in r.err


def test_check_with_disable_says_whether_disabling_changes_anything(tmp_path: Path) -> None:
    f = tmp_path / "vm.xml"
    f.write_bytes(INTEL)
    assert run_cli(["--arch", "intel", "--disable", "--check", str(f)]).code == 1
    assert f.read_bytes() == INTEL  # --check writes nothing
    assert run_cli(["--arch", "intel", "--disable", "-i", str(f)]).code == 0
    assert b"policy='disable' name='vmx'" in f.read_bytes()
    r = run_cli(["--arch", "intel", "--disable", "--check", str(f)])
    assert r.code == 0, r.err


def test_ibmz_disable_is_an_info_note_and_exit_0() -> None:
    xml = (GOLDEN / "ibmz" / "disable-host-model-unchanged" / "input.xml").read_bytes()
    quiet = run_cli(["--disable", "-"], xml)
    assert quiet.code == 0 and quiet.out == xml and quiet.err == ""
    loud = run_cli(["--disable", "-v", "-"], xml)
    assert loud.code == 0 and loud.out == xml
    assert "info: XN221" in loud.err and "nested=0" in loud.err


def test_help_names_both_flags() -> None:
    from xmlnest.cli import command as cli
    text = cli._command().get_help(cli._command().make_context("xmlnest", ["--arch", "intel"]))
    assert "--disable" in text and "--host-model" in text
    assert "Turn nesting off" in text


# --- round trips ---------------------------------------------------------------------------


def _out(raw: bytes, **opts: object) -> bytes:
    return core.process(raw, Options(**opts), host=HostFacts(vendor="intel")).output  # type: ignore[arg-type]


@pytest.mark.parametrize(("path", "host_model"), ROUND_TRIPS)
def test_enable_disable_enable_returns_the_enabled_bytes(path: Path, host_model: bool) -> None:
    raw = path.read_bytes()
    args = _args(path.parent)
    arch = args[args.index("--arch") + 1] if "--arch" in args else "auto"
    enable: dict[str, object] = {"arch": arch, "host_model": host_model}
    enable["passthrough"] = "--passthrough" in args and not host_model
    enabled = _out(raw, **enable)
    disabled = _out(enabled, arch=arch, disable=True)
    assert disabled != enabled
    assert _out(disabled, arch=arch, disable=True) == disabled
    again = _out(disabled, **enable)
    expected = round_trip_expectation(enabled)
    assert expected is not None  # no golden enabling output spells vmx/svm in a host mode
    if expected != enabled:
        assert b"policy='force' name='svm'" in enabled  # amd/custom-force-svm-compliant
    assert again == expected


def test_what_a_disabled_feature_cannot_remember() -> None:
    """An explicit require in host-passthrough is kept when enabling, turned into a
    disable by --disable, and then removed by enabling (host-passthrough passes it anyway):
    the cycle is stable from there on."""
    raw = INTEL.replace(
        b"<cpu mode='host-model' check='partial'/>",
        b"<cpu mode='host-passthrough'>\n    <feature policy='require' name='vmx'/>\n  </cpu>",
    )
    assert _out(raw, arch="intel") == raw
    off = _out(raw, arch="intel", disable=True)
    again = _out(off, arch="intel")
    assert b"<cpu mode='host-passthrough'/>" in again
    assert round_trip_expectation(raw) is None
    assert _out(_out(again, arch="intel", disable=True), arch="intel") == again


def test_disable_in_a_host_mode_does_not_depend_on_the_vendor_of_a_later_run() -> None:
    """A host mode keeps no vendor: the disabled feature itself tells a later auto run."""
    raw = (GOLDEN / "intel" / "disable-host-passthrough-selfclosing" / "input.xml").read_bytes()
    off = core.process(raw, Options(disable=True), host=HostFacts(vendor="amd")).output
    assert b"policy='disable' name='svm'" in off
    for vendor in ("intel", "amd"):
        again = core.process(off, Options(disable=True), host=HostFacts(vendor=vendor))
        assert again.output == off
    # An explicit --arch still wins: the other vendor's feature is disabled too.
    both = core.process(off, Options(arch="intel", disable=True)).output
    assert b"name='vmx'" in both and b"name='svm'" in both


# --- findings ----------------------------------------------------------------------------


def test_xn203_is_a_warning_only_where_xmlnest_switches_host_model() -> None:
    switched = run_cli(["--arch", "intel", "-"], INTEL)
    assert switched.code == 0
    assert "warning: XN203 host-model switched to host-passthrough" in switched.err
    assert "--host-model" in switched.err
    assert "XN203" not in run_cli(["--arch", "intel", "--host-model", "-"], INTEL).err
    asked = run_cli(["--arch", "intel", "--passthrough", "-v", "-"], INTEL)
    assert "info: XN203" in asked.err  # the user chose host-passthrough: a note
    no_cpu = (GOLDEN / "intel" / "no-cpu" / "input.xml").read_bytes()
    assert "info: XN203" in run_cli(["--arch", "intel", "-v", "-"], no_cpu).err
    assert "XN203" not in run_cli(["--arch", "intel", "-"], no_cpu).err


def _host(offers: frozenset[str] | None) -> HostFacts:
    return HostFacts("qemu:///system", offered=(("x86_64", offers),))


def _offer_findings(offers: frozenset[str] | None, arch: str = "intel") -> dict[str, Level]:
    out = core.process(INTEL, Options(arch=arch, host_model=True), host=_host(offers))
    return {f.rule: f.level for f in out.findings if f.rule in ("XN222", "XN219")}


def test_host_model_says_whether_the_host_offers_the_feature() -> None:
    """The seam for a libvirt connection's domain capabilities (stub values here)."""
    assert _offer_findings(None) == {"XN222": Level.INFO}
    assert _offer_findings(frozenset({"vmx", "pcid"})) == {"XN222": Level.INFO}
    assert _offer_findings(frozenset({"svm", "pcid"})) == {"XN219": Level.WARNING}
    assert _offer_findings(frozenset({"svm"}), arch="amd") == {"XN222": Level.INFO}
    told = core.process(INTEL, Options(arch="intel", host_model=True), host=_host(frozenset()))
    assert any("lacks it" in f.message and " vmx " in f.message for f in told.findings)
    offered = core.process(INTEL, Options(arch="intel"), host=_host(frozenset({"vmx"})))
    assert not {"XN222", "XN219"} & {f.rule for f in offered.findings}  # host-passthrough


def test_xn202_stays_with_host_model_and_goes_with_disable() -> None:
    amd = (GOLDEN / "amd" / "host-model" / "input.xml").read_bytes()
    assert "XN202" in run_cli(["--arch", "amd", "--host-model", "-"], amd).err
    assert "XN202" not in run_cli(["--arch", "amd", "--disable", "-"], amd).err


def test_disable_keeps_only_the_cpu_override_warning() -> None:
    xml = (
        INTEL.replace(b"<domain type='kvm'>", b"<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>")
        .replace(b"</devices>", b"</devices>\n  <qemu:commandline>\n    <qemu:arg value='-cpu'/>\n    <qemu:arg value='host'/>\n  </qemu:commandline>")
    )  # fmt: skip
    r = run_cli(["--arch", "intel", "--disable", "-v", "-"], xml)
    assert r.code == 0, r.err
    rules = {
        w.split(": ")[2].split()[0] for w in r.err_lines if ": warning: " in w or ": info: " in w
    }
    assert rules == {"XN204"}


def test_json_report_says_which_way_nesting_went() -> None:
    on = run_cli(["--arch", "intel", "--diff=json", "-"], INTEL)
    off = run_cli(["--arch", "intel", "--disable", "--diff=json", "-"], INTEL)
    assert json.loads(on.out)["action"] == "enable"
    record = json.loads(off.out)
    assert record["action"] == "disable"
    added = record["changes"]["dictionary_item_added"]
    assert added == {
        "/domain/cpu/feature[@name='vmx']/@name": "vmx",
        "/domain/cpu/feature[@name='vmx']/@policy": "disable",
    }


# --- real libvirt ------------------------------------------------------------------------


@pytest.mark.parametrize("case", FLAG_CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_libvirt_accepts_every_golden_output_of_both_flags(case: Path) -> None:
    """virt-xml-validate (domain.rng) and `virsh define --validate` on libvirt's test
    driver, which takes type='kvm' domains of every arch."""
    expected = case / "expected.xml"
    validate = subprocess.run(
        [libvirt_tool("virt-xml-validate"), str(expected), "domain"], capture_output=True, check=False
    )
    assert validate.returncode == 0, validate.stderr.decode() + validate.stdout.decode()
    define = subprocess.run(
        [libvirt_tool("virsh"), "-c", "test:///default", "define", "--validate", str(expected)],
        capture_output=True,
        check=False,
    )
    assert define.returncode == 0, define.stderr.decode()
    assert b"defined from" in define.stdout


def test_virsh_refuses_the_duplicate_the_disable_case_removes(tmp_path: Path) -> None:
    """Ground truth for intel/disable-force-and-disabled-duplicate: libvirt refuses the
    input's two vmx features, and accepts xmlnest's output."""
    case = GOLDEN / "intel" / "disable-force-and-disabled-duplicate"
    proc = subprocess.run(
        [libvirt_tool("virsh"), "-c", "test:///default", "define", str(case / "input.xml")],
        capture_output=True,
        check=False,
    )
    assert proc.returncode != 0
    assert b"specified more than once" in proc.stderr


def test_host_model_refuses_an_unknown_mode() -> None:
    xml = INTEL.replace(b"mode='host-model'", b"mode='host-copy'")
    r = run_cli(["--arch", "intel", "--host-model", "-"], xml)
    assert r.code == 3 and r.out == b"" and "XN111" in r.err


def test_disable_in_place_with_jobs(tmp_path: Path) -> None:
    """The options reach --jobs workers (they cross a process boundary)."""
    files = []
    for i in range(3):
        f = tmp_path / f"{i}.xml"
        f.write_bytes(INTEL)
        files.append(str(f))
    r = run_cli(["--arch", "intel", "--disable", "-i", "-j", "2", *files])
    assert r.code == 0, r.err
    assert "3 changed" in r.err
    for name in files:
        assert b"<feature policy='disable' name='vmx'/>" in Path(name).read_bytes()


def test_the_summary_under_disable_says_already_off_not_already_nested(tmp_path: Path) -> None:
    """An input --disable leaves alone is "already off"; IBM Z, where no XML edit turns
    nesting off, is "left to the host"; enabling still says "already nested"."""
    disabled = core.process(INTEL, Options(arch="intel", disable=True)).output
    (tmp_path / "a-off.xml").write_bytes(disabled)
    (tmp_path / "b-on.xml").write_bytes(INTEL)
    (tmp_path / "c-z.xml").write_bytes((SAMPLES / "ibmz-l1.xml").read_bytes())
    host = ["--arch", "auto", "--host-root", str(REPO / "tests/hosts/intel-on")]
    r = run_cli(["--disable", "--check", *host, str(tmp_path)])
    assert r.code == 1, r.err
    assert r.err_lines[-1].startswith(
        "xmlnest: 1 would change, 1 already off, 1 left to the host, 0 skipped, 0 rejected in "
    ), r.err
    (tmp_path / "b-on.xml").unlink()
    r = run_cli(["--check", *host, str(tmp_path)])
    assert r.err_lines[-1].startswith("xmlnest: 1 would change, 1 already nested, 0 skipped"), r.err
