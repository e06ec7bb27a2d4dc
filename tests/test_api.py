"""The public Python API: its surface is pinned, and it keeps the CLI's guarantees."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import xmlnest
from tests.conftest import REPO, run_cli

SAMPLES = REPO / "samples"

SURFACE = {
    "transform": "(xml: 'bytes | str', *, arch: 'str' = 'auto', model: 'str | None' = None, "
    "passthrough: 'bool' = False, level: 'str' = 'l1', validate: 'str' = 'auto', "
    "host_vendor: 'HostVendor | None' = None, windows: 'bool' = False, "
    "disable: 'bool' = False, host_model: 'bool' = False) -> 'Result'",
    "check": "(xml: 'bytes | str', *, arch: 'str' = 'auto', model: 'str | None' = None, "
    "passthrough: 'bool' = False, level: 'str' = 'l1', validate: 'str' = 'auto', "
    "host_vendor: 'HostVendor | None' = None, windows: 'bool' = False, "
    "disable: 'bool' = False, host_model: 'bool' = False) -> 'bool'",
    "host_check": "(root: 'str' = '/') -> 'HostReport'",
    "explain": "(rule: 'str') -> 'str'",
    "connect": "(uri: 'str | None' = None, *, backend: 'str | None' = None) -> 'Connection'",
    "domain_names": "(conn: 'Connection') -> 'list[str]'",
    "convert_domains": "(conn: 'Connection', names: 'Sequence[str] | None' = None, *, "
    "arch: 'str' = 'auto', model: 'str | None' = None, passthrough: 'bool' = False, "
    "level: 'str' = 'l1', disable: 'bool' = False, host_model: 'bool' = False, "
    "windows: 'bool' = False, validate: 'str' = 'auto', schema_dir: 'str | None' = None, strict: 'bool' = False, "
    "ignore: 'Iterable[str]' = (), define: 'bool' = False, skip_unsupported: 'bool' = False, "
    "max_bytes: 'int' = 16777216, wording: 'Wording' = 'api', "
    "validation: 'Choice | None' = None, restarts: 'bool' = True, options: 'Options | None' = None) -> 'Iterator[DomainResult]'",
    "enabling_risk": "(uri: 'str', *, host_root: 'str | None' = None, "
    "ignore: 'Iterable[str]' = ()) -> 'Finding | None'",
    "domain_status": "(conn: 'Connection', names: 'Sequence[str] | None' = None, *, "
    "arch: 'str' = 'auto', model: 'str | None' = None, passthrough: 'bool' = False, "
    "level: 'str' = 'l1', host_model: 'bool' = False, disable: 'bool' = False) "
    "-> 'Iterator[StatusRow | LibvirtError]'",
}


def test_the_surface_is_pinned() -> None:
    """Changing a name or a signature must be a deliberate edit of this test."""
    assert sorted(xmlnest.__all__) == sorted(
        [*SURFACE, "Result", "DomainResult", "Finding", "Level", "XmlnestError", "InputError", "RuleError",
         "ValidationError", "UsageError"]
    )  # fmt: skip
    for name, signature in SURFACE.items():
        assert str(inspect.signature(getattr(xmlnest, name))) == signature, name
    # The three lists that name the surface agree: xmlnest.__all__, its lazy homes, and
    # xmlnest.api.__all__ (every API name is public at the top).
    from xmlnest import api

    assert set(api.__all__) - {"api_words"} <= set(xmlnest.__all__)
    for name in xmlnest.__all__:
        assert getattr(xmlnest, name) is not None, name
    assert [f.name for f in xmlnest.Result.__dataclass_fields__.values()] == [
        "output", "changed", "findings", "arch"
    ]  # fmt: skip
    assert xmlnest.Finding._fields == ("rule", "message", "hint", "line", "level")
    assert issubclass(xmlnest.UsageError, ValueError)
    for err in ("InputError", "RuleError", "ValidationError"):
        assert issubclass(getattr(xmlnest, err), xmlnest.XmlnestError)


@pytest.mark.parametrize("name", ["amd-l1.xml", "intel-l1.xml", "power9-l1.xml", "ibmz-l1.xml"])
def test_transform_gives_what_the_cli_prints(name: str) -> None:
    raw = (SAMPLES / name).read_bytes()
    cli = run_cli([str(SAMPLES / name)])
    result = xmlnest.transform(raw, host_vendor="local")
    assert result.output == cli.out
    assert result.changed == (cli.out != raw)
    assert xmlnest.check(result.output, host_vendor="local") is True
    assert xmlnest.transform(raw.decode(), host_vendor="local").output == result.output


def test_findings_carry_rule_level_line_message_hint() -> None:
    result = xmlnest.transform((SAMPLES / "amd-l1.xml").read_bytes(), arch="amd")
    assert result.arch == "amd"
    (f,) = [f for f in result.findings if f.rule == "XN202"]
    assert f.level is xmlnest.Level.WARNING and f.line == 23
    assert f.message.startswith("migration of an AMD L1") and f.hint


# A domain whose CPU model (qemu64) names no vendor, so the nesting feature needs one.
NEUTRAL = (
    (SAMPLES / "intel-l1.xml")
    .read_bytes()
    .replace(
        b"<cpu mode='host-model' check='partial'/>",
        b"<cpu mode='custom' match='exact'>\n    <model>qemu64</model>\n  </cpu>",
    )
)


def test_it_never_guesses_the_vendor_from_this_machine_unless_asked() -> None:
    neutral = NEUTRAL
    with pytest.raises(xmlnest.RuleError) as refused:
        xmlnest.transform(neutral)
    assert refused.value.rule == "XN108"
    assert b"name='svm'" in xmlnest.transform(neutral, host_vendor="amd").output


@pytest.mark.parametrize(
    "kwargs",
    [{"arch": "arm"}, {"arch": "S390X"}, {"level": "l3"}, {"validate": "dtd"},
     {"host_vendor": "via"}, {"model": " "}, {"model": "EPYC", "passthrough": True}],
)  # fmt: skip
def test_bad_arguments_raise_usage_error_never_a_bare_key_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(xmlnest.UsageError):
        xmlnest.transform((SAMPLES / "amd-l1.xml").read_bytes(), **kwargs)  # type: ignore[arg-type]


def test_aliases_work() -> None:
    assert xmlnest.transform((SAMPLES / "ibmz-l1.xml").read_bytes(), arch="s390x").arch == "ibmz"


def test_refusals_are_xmlnest_errors() -> None:
    with pytest.raises(xmlnest.InputError):
        xmlnest.transform(b"<domain")
    live = (SAMPLES / "intel-l1.xml").read_bytes().replace(b"<domain ", b"<domain id='3' ", 1)
    with pytest.raises(xmlnest.RuleError) as refused:
        xmlnest.transform(live, arch="intel")
    assert refused.value.rule == "XN113"


def test_explain_and_host_check() -> None:
    assert xmlnest.explain("xn113").startswith("XN113 (error): live XML of a running domain")
    with pytest.raises(xmlnest.UsageError):
        xmlnest.explain("XN999")
    report = xmlnest.host_check(str(REPO / "tests" / "hosts" / "intel-off"))
    assert report.exit_code == 1
    with pytest.raises(xmlnest.UsageError):
        xmlnest.host_check("/nonexistent-host-root")


def test_import_xmlnest_is_cheap() -> None:
    code = "import sys, xmlnest; print(sorted(m for m in ('lxml', 'click') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_windows_via_the_api_matches_the_cli() -> None:
    case = REPO / "tests" / "golden" / "windows" / "amd-win11-virt-manager"
    result = xmlnest.transform((case / "input.xml").read_bytes(), arch="amd", windows=True)
    assert result.output == (case / "expected.xml").read_bytes()
    assert "XN227" in {f.rule for f in result.findings}
    assert xmlnest.check(result.output, arch="amd", windows=True)
    with pytest.raises(xmlnest.RuleError, match="XN114|AMD"):
        older = (case / "input.xml").read_text().replace("win/11", "win/10")
        xmlnest.transform(older, arch="amd", windows=True)


# ------------------------------------------------- disable, host_model, the API's own words


def test_disable_and_host_model_give_what_the_cli_prints() -> None:
    amd = SAMPLES / "amd-l1.xml"
    on = xmlnest.transform(amd.read_bytes(), arch="amd").output
    off = xmlnest.transform(on, arch="amd", disable=True)
    assert (
        off.changed
        and off.output == run_cli([str(amd), "--arch", "amd", "--disable"]).out
        or (off.output == run_cli(["--arch", "amd", "--disable", "-"], stdin=on).out)
    )
    assert xmlnest.check(off.output, arch="amd", disable=True)
    assert (
        b"policy='disable' name='svm'" in off.output
        or b"name='svm' policy='disable'" in (off.output)
        or b"svm" not in off.output
    )
    intel = SAMPLES / "intel-l1.xml"
    hm = xmlnest.transform(intel.read_bytes(), arch="intel", host_model=True)
    assert hm.output == run_cli([str(intel), "--arch", "intel", "--host-model"]).out
    assert b"host-model" in hm.output and b"vmx" in hm.output


@pytest.mark.parametrize(
    "kwargs",
    [{"disable": True, "model": "EPYC"}, {"disable": True, "passthrough": True},
     {"disable": True, "host_model": True}, {"disable": True, "level": "l2"},
     {"host_model": True, "model": "EPYC"}, {"host_model": True, "passthrough": True}],
)  # fmt: skip
def test_contradictions_are_usage_errors_naming_parameters(kwargs: dict[str, object]) -> None:
    with pytest.raises(xmlnest.UsageError) as bad:
        xmlnest.transform((SAMPLES / "amd-l1.xml").read_bytes(), **kwargs)  # type: ignore[arg-type]
    assert "--" not in str(bad.value)


def test_hints_name_the_api_parameters_never_a_cli_flag() -> None:
    neutral = NEUTRAL
    with pytest.raises(xmlnest.RuleError) as refused:
        xmlnest.transform(neutral)
    assert refused.value.hint == "pass arch='intel' or arch='amd'"
    mismatch = (SAMPLES / "power9-l1.xml").read_bytes()
    with pytest.raises(xmlnest.RuleError) as wrong:
        xmlnest.transform(mismatch, arch="amd")
    assert "--" not in wrong.value.format() and "arch=" in wrong.value.hint
    for sample in SAMPLES.glob("*.xml"):
        for f in xmlnest.transform(sample.read_bytes(), host_vendor="amd").findings:
            assert "--" not in f.hint, (sample.name, f)


@pytest.mark.parametrize(
    ("cli", "api"),
    [("pass --arch intel|amd to choose", "pass arch='intel' or arch='amd' to choose"),
     ("use --arch amd, or --model/--passthrough to replace the CPU",
      "use arch='amd', or model=NAME or passthrough=True to replace the CPU"),
     ("use --host-model, or --model NAME, for a migratable CPU",
      "use host_model=True, or model=NAME, for a migratable CPU"),
     ("only POWER9 L2s get nested-hv (for performance); drop --level l2",
      "only POWER9 L2s get nested-hv (for performance); use level='l1'"),
     ("see xmlnest --explain XN207", "see xmlnest.explain('XN207')"),
     ("pass --arch intel, amd, power9 or ibmz", "pass arch= one of intel, amd, power9 or ibmz")],
)  # fmt: skip
def test_api_words(cli: str, api: str) -> None:
    assert xmlnest.api.api_words(cli) == api


# ------------------------------------------------------------ libvirt domains by name


def test_convert_domains_checks_then_defines_on_one_connection(tmp_path: Path) -> None:
    from tests.test_connection import FLEET, node_file

    uri = node_file(tmp_path, FLEET)
    with xmlnest.connect(uri) as conn:
        assert xmlnest.domain_names(conn) == sorted(FLEET)
        seen = {r.name: r for r in xmlnest.convert_domains(conn, ["amd-off", "intel-run", "nope"])}
        assert seen["nope"].status == "rejected" and not seen["nope"].found
        assert seen["nope"].error is not None and "no such domain" in seen["nope"].error.problem
        amd = seen["amd-off"]
        assert amd.status == "changed" and not amd.defined and not amd.restart_required
        assert amd.before == conn.stored_xml(conn.lookup("amd-off"))  # nothing defined
        intel = seen["intel-run"]
        assert intel.changed and intel.running and intel.restart_required
        (quiet,) = xmlnest.convert_domains(conn, ["intel-run"], restarts=False)
        assert quiet.changed and not quiet.restart_required  # not asked: not said
        done = list(xmlnest.convert_domains(conn, ["amd-off", "intel-run"], define=True))
        assert [d.defined for d in done] == [True, True]
        assert conn.stored_xml(conn.lookup("amd-off")) == amd.after  # byte for byte
        again = list(xmlnest.convert_domains(conn, ["amd-off", "intel-run"], define=True))
        assert [d.status for d in again] == ["unchanged", "unchanged"]
        off = list(xmlnest.convert_domains(conn, ["amd-off"], disable=True, define=True))
        assert off[0].changed and b"policy='disable' name='svm'" in off[0].after
        rows = {r.name: r for r in xmlnest.domain_status(conn) if not isinstance(r, Exception)}
        assert rows["amd-off"].stored == "would change" and rows["intel-run"].stored == "nested"


def test_convert_domains_refuses_with_the_api_words_and_strict(tmp_path: Path) -> None:
    from tests.test_connection import FLEET, node_file

    uri = node_file(tmp_path, FLEET)
    with xmlnest.connect(uri) as conn:
        (arm,) = xmlnest.convert_domains(conn, ["arm-run"])
        assert arm.status == "rejected" and arm.errors[0].rule == "XN101" and arm.found
        (tcg,) = xmlnest.convert_domains(conn, ["it's a café"], strict=True)
        warned = list(xmlnest.convert_domains(conn, ["it's a café"]))[0].findings
        assert (tcg.status == "rejected") == any(f.level is xmlnest.Level.WARNING for f in warned)
        with pytest.raises(xmlnest.UsageError, match="ignore: XN101: XN101 is an error"):
            list(xmlnest.convert_domains(conn, ["arm-run"], ignore=["XN101"]))


def test_enabling_risk_is_the_clis_xn223_in_the_apis_words() -> None:
    from xmlnest.engine.plan import Level

    bad = str(REPO / "tests" / "hosts" / "sec-debian12-unpatched-on")
    found = xmlnest.enabling_risk("qemu:///system", host_root=bad)
    assert found is not None and (found.rule, found.level) == ("XN223", Level.WARNING)
    assert "CVE-2026-53359 and CVE-2026-46113" in found.message
    assert found.hint == "upgrade the host kernel first, or keep nesting off (xmlnest.host_check())"
    cli = run_cli(["-c", "test:///default", "--domain", "test", "--check", "--host-root", bad])
    assert f"test:///default: warning: XN223 {found.message}; " in cli.err  # the same finding
    fixed = str(REPO / "tests" / "hosts" / "sec-debian12-patched-on")
    assert xmlnest.enabling_risk("qemu:///system", host_root=fixed) is None
    remote = xmlnest.enabling_risk("qemu+ssh://l0.example/system")
    assert remote is not None and (remote.rule, remote.level) == ("XN224", Level.INFO)
    assert xmlnest.enabling_risk("test:///default") is None  # a made-up host
    assert xmlnest.enabling_risk("qemu:///system", host_root=bad, ignore=["xn223"]) is None
    assert xmlnest.enabling_risk("qemu+ssh://l0.example/system", ignore=["XN224,XN203"]) is None
    with pytest.raises(xmlnest.UsageError, match="ignore: XN102: XN102 is an error"):
        xmlnest.enabling_risk("qemu:///system", host_root=bad, ignore=["XN102"])
    with pytest.raises(xmlnest.UsageError, match="is not a folder"):
        xmlnest.enabling_risk("qemu:///system", host_root=str(REPO / "no-such-root"))
