"""Properties over generated domains: idempotence, untouched lines, validity, --check."""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings

from tests.conftest import require_libvirt_schema, run_cli
from tests.helpers import allowed_lines, changed_input_lines
from tests.strategies import Generated, domains
from xmlnest import core, document, transforms
from xmlnest.errors import XmlnestError
from xmlnest.transforms.common import Options
from xmlnest.validate import RngValidator

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _rng() -> RngValidator:
    return RngValidator(require_libvirt_schema() / "domain.rng")


@SETTINGS
@given(domains())
def test_transform_is_idempotent_and_keeps_untouched_lines(g: Generated) -> None:
    options = Options(arch=g.target)
    try:
        out = core.process(g.xml, options, validator=_rng())
    except XmlnestError as exc:  # refusals are fine; crashes are not
        assert exc.rule in {"XN104", "XN105"}, exc.format()
        return
    again = core.process(out.output, options)
    assert again.output == out.output
    source = document.parse(g.xml)
    plan = transforms.plan(source.root, options, lambda: None)
    assert not (changed_input_lines(g.xml, out.output) - allowed_lines(source, plan))
    newline = g.style.newline.encode()
    if newline == b"\r\n":
        assert b"\n" not in out.output.replace(b"\r\n", b"")
    assert out.output.endswith(newline) == g.xml.endswith(newline)
    assert out.output.startswith(b"<?xml") == g.xml.startswith(b"<?xml")
    if not _rng().problems(source.root):
        assert not _rng().problems(document.parse(out.output).root)


@settings(max_examples=100, deadline=None)
@given(domains())
def test_check_agrees_with_whether_output_differs(g: Generated) -> None:
    result = run_cli(["--arch", g.target, "--no-validate", "-"], g.xml)
    check = run_cli(["--arch", g.target, "--no-validate", "--check", "-"], g.xml)
    if result.code == 3:
        assert check.code == 3
        assert result.out == b""
        return
    assert result.code == 0
    assert check.code == (1 if result.out != g.xml else 0)
