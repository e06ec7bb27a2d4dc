"""The type check as configured in pyproject.toml: a plain ``mypy`` is strict over the
package, its tests and tools/ (the docs generator), and finds nothing.

mypy is in the test extra, so under XMLNEST_REQUIRE_REAL=1 its absence fails. A cold run
takes ~17 s on two cores (more on a busy machine); mypy's cache (``.mypy_cache``, ignored
by git) makes a re-run take about a second.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO, need


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m mypy ARGS`` from the repository's root, so its pyproject.toml applies."""
    if importlib.util.find_spec("mypy") is None:
        need("mypy", "pip install -e '.[test]'")
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_plain_mypy_is_clean_over_the_package_and_its_tests() -> None:
    r = _mypy()
    assert r.returncode == 0, r.stdout + r.stderr
    checked = re.search(r"^Success: no issues found in (\d+) source files$", r.stdout, re.M)
    assert checked, r.stdout
    trees = ("xmlnest", "tests", "tools")
    with (REPO / "pyproject.toml").open("rb") as f:
        assert tuple(tomllib.load(f)["tool"]["mypy"]["files"]) == trees
    sources = [p for tree in trees for p in (REPO / tree).rglob("*.py")]
    assert int(checked[1]) == len(sources)  # every tree, every file: none left out


def test_the_configured_mypy_is_strict(tmp_path: Path) -> None:
    """The configuration the clean run uses rejects an unannotated function (strict) and
    a wrong argument type: the check above can fail."""
    bad = tmp_path / "untyped_sample.py"
    bad.write_text(
        "def untyped(x):\n    return x\n\n\ndef typed(n: int) -> int:\n    return n\n\n\ntyped('1')\n"
    )
    r = _mypy(str(bad))
    assert r.returncode == 1, r.stdout + r.stderr
    assert (
        "untyped_sample.py:1: error: Function is missing a type annotation  [no-untyped-def]"
        in r.stdout
    )
    assert "[arg-type]" in r.stdout
