"""The public Python API: its surface is pinned, and it keeps the CLI's guarantees."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import xmlnest
from tests.conftest import REPO, run_cli

SAMPLES = REPO / "samples"

SURFACE = {
    "transform": "(xml: 'bytes | str', *, arch: 'str' = 'auto', model: 'str | None' = None, "
    "passthrough: 'bool' = False, level: 'str' = 'l1', validate: 'str' = 'auto', "
    "host_vendor: 'HostVendor | None' = None, windows: 'bool' = False) -> 'Result'",
    "check": "(xml: 'bytes | str', *, arch: 'str' = 'auto', model: 'str | None' = None, "
    "passthrough: 'bool' = False, level: 'str' = 'l1', validate: 'str' = 'auto', "
    "host_vendor: 'HostVendor | None' = None, windows: 'bool' = False) -> 'bool'",
    "host_check": "(root: 'str' = '/') -> 'HostReport'",
    "explain": "(rule: 'str') -> 'str'",
}


def test_the_surface_is_pinned() -> None:
    """Changing a name or a signature must be a deliberate edit of this test."""
    assert sorted(xmlnest.__all__) == sorted(
        [*SURFACE, "Result", "Finding", "Level", "XmlnestError", "InputError", "RuleError",
         "ValidationError", "UsageError"]
    )  # fmt: skip
    for name, signature in SURFACE.items():
        assert str(inspect.signature(getattr(xmlnest, name))) == signature, name
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


def test_it_never_guesses_the_vendor_from_this_machine_unless_asked() -> None:
    neutral = (SAMPLES / "intel-l1.xml").read_bytes().replace(
        b"<cpu mode='host-model' check='partial'/>",
        b"<cpu mode='custom' match='exact'>\n    <model>qemu64</model>\n  </cpu>",
    )
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
