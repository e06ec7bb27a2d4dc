"""The runner transforms a few files, then validates their outputs one after the other
(``runner.GROUP``): results, their order and what is written are those of one file at a
time, and a group takes no more files once its inputs reach ``GROUP_BYTES``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, Run, run_cli
from tests.test_verify import NO_FEATURE_RNG
from xmlnest.cli import worker as runner
from xmlnest.engine import core

GOLDEN = REPO / "tests" / "golden"


def _folder(tmp_path: Path) -> Path:
    """Forty inputs of every kind: changed, unchanged, not a domain, malformed, and ones
    whose output a schema refuses (it forbids <feature>, which a custom CPU gains)."""
    vms = tmp_path / "vms"
    vms.mkdir(parents=True)
    inputs = sorted(GOLDEN.glob("intel/*/input.xml"))[:30]
    for i, src in enumerate(inputs):
        shutil.copy(src, vms / f"{i:02d}-{src.parent.name}.xml")
    for i, src in enumerate(sorted(GOLDEN.glob("intel/*/expected.xml"))[:5]):
        shutil.copy(src, vms / f"5{i}-already.xml")
    (vms / "60-network.xml").write_text("<network><name>default</name></network>\n")
    (vms / "61-broken.xml").write_text("<domain type='kvm'><name>x</domain>\n")
    (vms / "62-cut.xml").write_bytes(inputs[0].read_bytes()[:40])
    return vms


def _run(args: list[str]) -> Run:
    return run_cli(["--arch", "intel", *args])


@pytest.mark.parametrize(
    "mode",
    [
        ["--check"],
        ["--diff"],
        ["--json", "--check"],
        ["-i"],
        ["--strict", "-i"],
        ["--check", "--jobs", "2"],  # the worker gets the same groups (forked)
        ["-i", "--jobs", "2"],
    ],
)
@pytest.mark.parametrize("schema", [False, True])
def test_results_are_those_of_one_file_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: list[str], schema: bool
) -> None:
    extra = ["--no-validate"]
    if schema:
        (tmp_path / "rng").mkdir()
        (tmp_path / "rng" / "domain.rng").write_text(NO_FEATURE_RNG)
        extra = ["--schema-dir", str(tmp_path / "rng")]
    runs = {}
    for group in (1, 4, runner.GROUP):
        folder = _folder(tmp_path / f"g{group}")
        monkeypatch.setattr(runner, "GROUP", group)
        r = _run([*mode, *extra, str(folder)])
        written = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
        runs[group] = (
            r.code,
            r.out.replace(str(folder).encode(), b"F"),
            r.err.replace(str(folder), "F").splitlines()[:-1],  # the summary has a time
            written,
        )
    assert runs[1] == runs[4] == runs[runner.GROUP]
    code, _, err, _ = runs[1]
    assert code == 3 and any("61-broken.xml" in ln for ln in err)
    if schema:
        assert any(": XN110 the result would not validate" in ln for ln in err)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    transform, validated = core.transform, core.validated

    def spy_transform(raw: bytes, *a: object, **kw: object) -> core.Outcome:
        calls.append("T")
        return transform(raw, *a, **kw)  # type: ignore[arg-type]

    def spy_validated(outcome: core.Outcome, validator: object) -> core.Outcome:
        calls.append("V")
        return validated(outcome, validator)  # type: ignore[arg-type]

    monkeypatch.setattr(core, "transform", spy_transform)
    monkeypatch.setattr(core, "validated", spy_validated)
    return calls


def test_a_group_is_transformed_then_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(7):
        shutil.copy(
            GOLDEN / "intel" / "host-model-topology-disable-vmx-comments" / "input.xml",
            tmp_path / f"{i}.xml",
        )
    calls = _spy(monkeypatch)
    monkeypatch.setattr(runner, "GROUP", 3)
    assert _run(["--check", "--no-validate", str(tmp_path)]).code == 1
    assert "".join(calls) == "TTTVVV" + "TTTVVV" + "TV"


def test_a_group_holds_at_most_group_bytes_of_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = GOLDEN / "intel" / "host-model-topology-disable-vmx-comments" / "input.xml"
    for i in range(5):
        shutil.copy(src, tmp_path / f"{i}.xml")
    calls = _spy(monkeypatch)
    monkeypatch.setattr(runner, "GROUP_BYTES", 2 * src.stat().st_size)  # two files' worth
    assert _run(["--check", "--no-validate", str(tmp_path)]).code == 1
    assert "".join(calls) == "TTVV" + "TTVV" + "TV"
