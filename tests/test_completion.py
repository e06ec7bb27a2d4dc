"""Shell completion as docs/install.md sets it up: click's generated bash script, sourced
in a real bash, completes xmlnest's options and their values."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xmlnest.engine.transforms import ARCH_ALIASES

SCRIPT = """
_XMLNEST_COMPLETE=bash_source xmlnest > "$1/complete.bash" || exit 9
. "$1/complete.bash"
complete -p xmlnest || exit 8
COMP_WORDS=(xmlnest "$2" "$3"); COMP_CWORD=$4
_xmlnest_completion xmlnest
printf '%s\\n' "${COMPREPLY[@]}"
"""


def _complete(tmp_path: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (two words after ``xmlnest``)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("needs bash")
    script_dir = Path(sys.executable).parent  # the console script beside this interpreter
    if not (script_dir / "xmlnest").exists():
        pytest.skip(f"the xmlnest console script is not in {script_dir} (pip install .)")
    env = {**os.environ, "PATH": f"{script_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    first, second = (*words, "")[:2]
    r = subprocess.run(
        [bash, "--norc", "-c", SCRIPT, "bash", str(tmp_path), first, second, str(len(words))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "complete -o nosort -F _xmlnest_completion xmlnest" in r.stdout
    return [ln for ln in r.stdout.splitlines()[1:] if ln]


def test_bash_completes_an_option(tmp_path: Path) -> None:
    assert _complete(tmp_path, "--ar") == ["--arch"]


def test_bash_completes_an_options_values(tmp_path: Path) -> None:
    assert _complete(tmp_path, "--arch", "") == sorted(ARCH_ALIASES)
