"""Golden pairs: tests/golden/<arch>/<case>/input.xml -> expected.xml (or expected.err).

Every expected.xml is also run as an input that must come out byte-identical.
``pytest --regen-golden`` rewrites expected.xml from the code: review the diff.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.conftest import REPO, require_libvirt_schema, run_cli

GOLDEN = REPO / "tests" / "golden"
CASES = sorted(p for p in GOLDEN.glob("*/*") if (p / "input.xml").is_file())


def _args(case: Path) -> list[str]:
    f = case / "args"
    return shlex.split(f.read_text()) if f.is_file() else ["--arch", "auto"]


def _ids(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


def test_there_are_golden_cases_for_every_arch() -> None:
    arches = {p.parent.name for p in CASES}
    assert {"intel", "amd", "power9", "ibmz", "other"} <= arches
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_golden(case: Path, request: pytest.FixtureRequest) -> None:
    require_libvirt_schema()
    src = (case / "input.xml").read_bytes()
    result = run_cli([*_args(case), "--schema-dir", "/usr/share/libvirt/schemas", "-"], src)
    err_file = case / "expected.err"
    if err_file.is_file():
        rule = err_file.read_text().strip()
        assert result.code == 3, result.err
        assert result.out == b""
        assert len(result.err_lines) == 1, result.err
        assert result.err_lines[0].startswith("<stdin>"), result.err
        assert rule in result.err_lines[0]
        return
    expected_file = case / "expected.xml"
    if request.config.getoption("--regen-golden"):
        expected_file.write_bytes(result.out)
    assert result.code == 0, result.err
    assert result.out == expected_file.read_bytes()


@pytest.mark.parametrize("case", [c for c in CASES if (c / "expected.xml").is_file()], ids=_ids)
def test_expected_is_a_fixed_point(case: Path) -> None:
    expected = (case / "expected.xml").read_bytes()
    result = run_cli([*_args(case), "--no-validate", "-"], expected)
    assert result.code == 0, result.err
    assert result.out == expected
    check = run_cli([*_args(case), "--no-validate", "--check", "-"], expected)
    assert check.code == 0, check.err
