"""docs/host-capture.md's capture script, run on this machine: the report from the tree
it writes is the report from ``/`` (so the document names every file --host-check reads)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

DOC = REPO / "docs" / "host-capture.md"


def capture_script() -> str:
    blocks: list[str] = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    scripts = [b for b in blocks if "copy /proc/cpuinfo" in b]
    assert len(scripts) == 1, scripts
    return scripts[0]


def test_a_captured_tree_gives_the_live_report(tmp_path: Path) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the script copies Linux's /proc and /sys")
    tree = tmp_path / "host-tree"
    r = subprocess.run(
        ["sh", "-c", capture_script(), "sh", str(tree)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert (tree / "proc" / "cpuinfo").is_file()
    live = run_cli(["--host-check", "--json"])
    captured = run_cli(["--host-check", "--json", "--host-root", str(tree)])
    assert captured.code == live.code, captured.err
    assert json.loads(captured.out) == json.loads(live.out)
