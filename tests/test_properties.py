"""Properties over generated domains: idempotence, untouched lines, validity, --check; the
same for --disable, --host-model and --windows, and enable-disable-enable round trips."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import require_libvirt_schema, run_cli
from tests.helpers import allowed_lines, changed_input_lines, round_trip_expectation
from tests.strategies import Generated, domains
from xmlnest.engine import core, document, transforms
from xmlnest.engine.validate import RngValidator
from xmlnest.errors import XmlnestError
from xmlnest.model import Options

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _rng() -> RngValidator:
    return RngValidator(require_libvirt_schema() / "domain.rng")


@SETTINGS
@given(domains())
def test_transform_is_idempotent_and_keeps_untouched_lines(g: Generated) -> None:
    _holds(g, Options(arch=g.target), refusals={"XN104", "XN105"})


@SETTINGS
@given(domains())
def test_disable_is_idempotent_and_keeps_untouched_lines(g: Generated) -> None:
    out = _holds(g, Options(arch=g.target, disable=True), refusals=set())
    assert out is not None  # --disable refuses none of these
    if g.target == "ibmz":
        assert out == g.xml  # no XML edit exists there


@SETTINGS
@given(domains(targets=("intel", "amd")))
def test_host_model_is_idempotent_and_keeps_untouched_lines(g: Generated) -> None:
    out = _holds(g, Options(arch=g.target, host_model=True), refusals={"XN104"})
    if out is not None:
        assert b"host-passthrough" not in out.split(b"<cpu", 1)[-1].split(b">", 1)[0]


@SETTINGS
@given(domains(targets=("intel", "amd")), st.sampled_from(["", "passthrough", "host_model"]))
def test_windows_is_idempotent_and_keeps_untouched_lines(g: Generated, form: str) -> None:
    """--windows over the same generated domains (each CPU form): idempotent, untouched
    lines identical, valid where the input was; refusals only the forbid rule's."""
    options = Options(
        arch=g.target,
        windows=True,
        passthrough=form == "passthrough",
        host_model=form == "host_model",
    )
    _holds(g, options, refusals={"XN104"})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(domains(targets=("intel", "amd", "power9")), st.booleans())
def test_enable_disable_enable_returns_the_enabled_bytes(g: Generated, host_model: bool) -> None:
    enable = Options(arch=g.target, host_model=host_model and g.target != "power9")
    try:
        enabled = core.process(g.xml, enable).output
    except XmlnestError:
        return
    disabled = core.process(enabled, Options(arch=g.target, disable=True)).output
    assert disabled != enabled
    again = core.process(disabled, enable).output
    expected = round_trip_expectation(enabled)
    if expected is None:  # the enabled CPU spelled out what a disabled one cannot recall
        off_again = core.process(again, Options(arch=g.target, disable=True)).output
        assert core.process(off_again, enable).output == again
        return
    assert again == expected


def _holds(g: Generated, options: Options, *, refusals: set[str]) -> bytes | None:
    """The output keeps every promise (``None`` where a rule in ``refusals`` refused it)."""
    try:
        out = core.process(g.xml, options, validator=_rng())
    except XmlnestError as exc:  # refusals are fine; crashes are not
        assert exc.rule in refusals, exc.format()
        return None
    again = core.process(out.output, options)
    assert again.output == out.output
    source = document.parse(g.xml)
    plan = transforms.plan(source.root, options)
    assert not (changed_input_lines(g.xml, out.output) - allowed_lines(source, plan))
    newline = g.style.newline.encode()
    if newline == b"\r\n":
        assert b"\n" not in out.output.replace(b"\r\n", b"")
    assert out.output.endswith(newline) == g.xml.endswith(newline)
    assert out.output.startswith(b"<?xml") == g.xml.startswith(b"<?xml")
    if not _rng().problems(source.root):
        assert not _rng().problems(document.parse(out.output).root)
    return out.output


@settings(max_examples=100, deadline=None)
@given(domains(), st.sampled_from([[], ["--disable"]]))
def test_check_agrees_with_whether_output_differs(g: Generated, flags: list[str]) -> None:
    result = run_cli(["--arch", g.target, *flags, "--no-validate", "-"], g.xml)
    check = run_cli(["--arch", g.target, *flags, "--no-validate", "--check", "-"], g.xml)
    if result.code == 3:
        assert check.code == 3
        assert result.out == b""
        return
    assert result.code == 0
    assert check.code == (1 if result.out != g.xml else 0)
