"""The fast argument reader agrees with click on every list it accepts, and the
everyday lists (pipes, hooks, folders) never import click."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import REPO, run_cli
from xmlnest import cli, options

SAMPLE = str(REPO / "samples" / "intel-l1.xml")

VALUES = [
    "intel", "amd", "auto", "x86_64", "power9", "ibmz", "s390x", "aarch64", "INTEL",
    "unified", "json", "rng", "xsd", "none", "l1", "l2",
    "0", "1", "2", "07", "-1", "+3", "1e3", "٣", "",
    "Haswell", "a.xml", "dir/", "-", "--", "-x", "*.xml", "=", "a=b",
]  # fmt: skip
PATHS = ["a.xml", "vms/", "-", "--", "-x.xml", "", "=", "--arch", "-qi", "-j2", "--help", "-h"]
DECLS = [d for opt in options.OPTIONS for d in opt.decls] + ["--version", "--nope", "-z"]


@st.composite
def argv(draw: st.DrawFn) -> list[str]:
    out: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["opt", "opt=", "path", "value"]))
        if kind == "opt":
            out.append(draw(st.sampled_from(DECLS)))
        elif kind == "opt=":
            out.append(draw(st.sampled_from(DECLS)) + "=" + draw(st.sampled_from(VALUES)))
        elif kind == "path":
            out.append(draw(st.sampled_from(PATHS)))
        else:
            out.append(draw(st.sampled_from(VALUES)))
    return out


def _click_reads(args: list[str]) -> dict[str, object]:
    ctx = cli._command().make_context("xmlnest", cli._bare_diff(list(args)))
    return dict(ctx.params)


@settings(max_examples=3000, deadline=None)
@given(argv())
def test_the_fast_reader_agrees_with_click_whenever_it_answers(args: list[str]) -> None:
    fast = options.read_fast(args)
    if fast is not None:
        assert fast == _click_reads(args)


EVERYDAY = [
    [],
    ["-"],
    ["--arch", "amd"],
    ["--arch=intel", "vm.xml"],
    ["--arch", "intel", "--model", "Haswell-noTSX", "vm.xml"],
    ["-i", "--skip-non-domain", "a.xml", "b.xml"],
    ["--check", "--diff", "--skip-non-domain", "a.xml", "b.xml"],  # the check hook
    ["--diff=json", "--arch", "power9", "templates/"],
    ["-q", "-j", "2", "--include", "*.xml", "--exclude", "old/*", "--include", "b*", "vms/"],
    ["--validate", "xsd", "--max-bytes", "1000", "--level", "l2", "-v", "x.xml"],
    ["--no-validate", "--strict", "-o", "out/", "--schema-dir", "/s", "--host-root", "/h", "x"],
    ["--host-check", "--json"],
    ["--disable", "--check", "--diff", "--skip-non-domain", "a.xml"],
    ["--host-model", "--arch", "intel", "-"],
    ["--explain", "XN104"],
]


@pytest.mark.parametrize("args", EVERYDAY, ids=" ".join)
def test_everyday_lists_are_read_fast_and_as_click_reads_them(args: list[str]) -> None:
    fast = options.read_fast(args)
    assert fast is not None
    assert fast == _click_reads(args)


@pytest.mark.parametrize(
    "args",
    [["--help"], ["-h"], ["--version"], ["-qi"], ["-j2"], ["--", "-x.xml"], ["--arch"],
     ["--arch", "arm"], ["--jobs", "-1"], ["--check=yes"], ["--nope"], ["--model", "-x"]],
    ids=" ".join,
)  # fmt: skip
def test_everything_else_goes_to_click(args: list[str]) -> None:
    assert options.read_fast(args) is None


def test_shell_completion_goes_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(options.COMPLETION_ENV, "bash_complete")
    assert options.read_fast(["--arch", "intel"]) is None


def test_errors_read_either_way_are_worded_the_same() -> None:
    fast = run_cli(["--in-place", "--check", SAMPLE])
    slow = run_cli(["--in-place", "--check", "--", SAMPLE])  # "--" sends it to click
    assert fast.code == slow.code == 2
    assert fast.err == slow.err


PROBE = """\
import sys
from xmlnest.cli import main
rc = main(sys.argv[1:])
sys.stdout.flush()
print("CLICK=" + str("click" in sys.modules), file=sys.stderr)
"""


@pytest.mark.parametrize(
    ("args", "loaded"),
    [
        (["--arch", "intel", SAMPLE], False),
        (["--check", "--diff", "--skip-non-domain", SAMPLE], False),
        (["--help"], True),
        (["--arch", "nope", SAMPLE], True),
    ],
    ids=["pipe", "hook", "help", "error"],
)
def test_click_is_imported_only_when_needed(args: list[str], loaded: bool) -> None:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60
    )
    assert f"CLICK={loaded}" in r.stderr.splitlines(), r.stderr
