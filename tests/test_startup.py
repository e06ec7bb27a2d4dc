"""Start-up cost: heavy imports stay off the default path; the RelaxNG compiles once per run."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import REPO, require_libvirt_schema, run_cli
from tests.helpers import LIGHT, loaded_by

SAMPLE = REPO / "samples" / "intel-l1.xml"  # host-model: needs a change, so validation runs
HEAVY = ("xmlschema", "deepdiff")
MARK = "HEAVY-MODULES="

PROBE = f"""\
import sys
from xmlnest.cli import main
rc = main(sys.argv[1:])
sys.stdout.flush()
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})
print({MARK!r} + repr([rc, heavy]), file=sys.stderr)
"""


def _heavy_after(args: list[str]) -> tuple[int, list[str]]:
    """Run ``main(args)`` in a fresh interpreter; return its code and heavy modules loaded."""
    env = {k: v for k, v in os.environ.items() if k != "XMLNEST_SCHEMA_DIR"}
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith(MARK)]
    assert lines, f"probe did not finish (exit {r.returncode}):\n{r.stderr}"
    rc, heavy = ast.literal_eval(lines[-1][len(MARK) :])
    return rc, heavy


@pytest.fixture(scope="module")
def schema_dir() -> str:
    return str(require_libvirt_schema())


def test_no_validate_imports_neither_xmlschema_nor_deepdiff() -> None:
    rc, heavy = _heavy_after(["--arch", "intel", "--no-validate", str(SAMPLE)])
    assert rc == 0
    assert heavy == []


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="default-auto"),
        pytest.param(["--validate", "rng"], id="rng"),
    ],
)
def test_libvirt_rng_validation_imports_neither(schema_dir: str, extra: list[str]) -> None:
    args = ["--arch", "intel", "--schema-dir", schema_dir, *extra, str(SAMPLE)]
    rc, heavy = _heavy_after(args)
    assert rc == 0
    assert heavy == []


@pytest.mark.parametrize(
    ("mode", "code"), [(["--check"], 1), (["--diff"], 0), (["--check", "--diff"], 1)]
)
def test_check_and_unified_diff_import_neither(schema_dir: str, mode: list[str], code: int) -> None:
    """SAMPLE needs the edit: --check says so with exit 1, a diff alone exits 0."""
    rc, heavy = _heavy_after(["--arch", "intel", "--schema-dir", schema_dir, *mode, str(SAMPLE)])
    assert rc == code
    assert heavy == []


def test_xsd_validation_does_import_xmlschema() -> None:
    """The probe can fail: asking for the bundled XSD must load xmlschema."""
    rc, heavy = _heavy_after(["--arch", "intel", "--validate", "xsd", str(SAMPLE)])
    assert rc == 0
    assert "xmlschema" in heavy


def _count_relaxng(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Record every ``lxml.etree.RelaxNG(...)`` call (xmlnest.engine.validate looks it up lazily)."""
    real = etree.RelaxNG
    calls: list[tuple[Any, ...]] = []

    def counting(*args: Any, **kwargs: Any) -> etree.RelaxNG:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(etree, "RelaxNG", counting)
    return calls


def test_relaxng_compiles_once_for_many_files(
    tmp_path: Path, schema_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"d{i}.xml"
        f.write_bytes(SAMPLE.read_bytes().replace(b"intel-l1", f"intel-l1-{i}".encode()))
        files.append(str(f))
    calls = _count_relaxng(monkeypatch)
    r = run_cli(["--arch", "intel", "--schema-dir", schema_dir, "--check", *files])
    assert r.code == 1, r.err  # all three would change, so all three were validated
    assert sum(ln.endswith(": would change") for ln in r.err_lines) == 3
    assert len(calls) == 1


def test_relaxng_is_not_compiled_when_nothing_changes(
    tmp_path: Path, schema_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    nested = run_cli(["--arch", "intel", "--no-validate", str(SAMPLE)]).out
    f = tmp_path / "nested.xml"
    f.write_bytes(nested)
    calls = _count_relaxng(monkeypatch)
    r = run_cli(["--arch", "intel", "--schema-dir", schema_dir, "--check", str(f)])
    assert r.code == 0, r.err
    assert calls == []


def test_the_pipe_path_never_imports_libvirt_nor_what_it_does_not_use() -> None:
    sample = str(REPO / "samples" / "intel-l1.xml")
    advisories = (
        "xmlnest.hostcheck.advisories",
        "xmlnest.hostcheck.kernel",
        "xmlnest.hostcheck.security",
    )
    # the host's kernel (advisories) is no business of a file or a pipe
    watch = (
        "libvirt",
        "xmlnest.libvirt.connection",
        "xmlnest.libvirt.source",
        "xmlnest.engine.rules",
        *LIGHT,
        *advisories,
    )
    assert loaded_by(["--arch", "intel", "--check", sample], watch) == []
    assert loaded_by(["--arch", "intel", "--no-validate"], watch) == []  # stdin: a pipe
    # The probe can fail: --ignore reads the rule table.
    assert "xmlnest.engine.rules" in loaded_by(["--check", "--ignore", "XN203", sample], watch)
    # ... and the probe sees the advisories where a run does read them
    host = ["--host-check", "--host-root", str(REPO / "tests" / "hosts" / "intel-on")]
    assert set(advisories) <= set(loaded_by(host, watch))
