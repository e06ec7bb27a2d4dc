"""The runner's per-process state: one compiled schema per run, in this process and in each
``--jobs`` worker (whose tasks each bring an unpickled copy of the configuration), and
none kept alive once a run with another configuration replaces it."""

from __future__ import annotations

import gc
import pickle
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from xmlnest import parallel, runner, validate
from xmlnest.config import Output, RunConfig
from xmlnest.sources import Input

SAMPLE = REPO / "tests" / "golden" / "intel" / "host-model-topology-disable-vmx-comments"


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The schemas chosen (each choice compiles its own when first used)."""
    chosen: list[str] = []
    real = validate.choose

    def choose(kind: str, schema_dir: str | None, env: object = None) -> validate.Choice:
        chosen.append(kind)
        return real(kind, schema_dir)

    monkeypatch.setattr(runner, "choose", choose)
    monkeypatch.setattr(runner, "_last", [])
    yield chosen


def _items(tmp_path: Path, n: int) -> list[Input]:
    paths = []
    for i in range(n):
        p = tmp_path / f"{i}.xml"
        p.write_bytes((SAMPLE / "input.xml").read_bytes())
        paths.append(p)
    return [Input(str(p), str(p)) for p in paths]


def test_a_worker_keeps_its_schema_across_tasks(tmp_path: Path, compiles: list[str]) -> None:
    config = RunConfig(output=Output.CHECK, paths=(str(tmp_path),))
    items = _items(tmp_path, 4)
    for task in (items[:2], items[2:]):
        copy = pickle.loads(pickle.dumps(config))  # what each task brings
        assert copy == config and copy is not config
        results = parallel.process_chunk(task, copy)
        assert [r.status for r in results] == ["changed", "changed"]
    assert compiles == ["auto"]


def test_another_configuration_gets_its_own_state(tmp_path: Path, compiles: list[str]) -> None:
    items = _items(tmp_path, 1)
    for kind in ("auto", "none", "none", "auto"):
        runner.process_one(items[0], RunConfig(output=Output.CHECK, validate_kind=kind))
    assert compiles == ["auto", "none", "auto"]


def test_replaced_state_is_freed_at_once(tmp_path: Path, compiles: list[str]) -> None:
    """No reference cycle holds the old state (and its compiled schema) until the cyclic
    collector happens to run."""
    items = _items(tmp_path, 1)
    runner.process_one(items[0], RunConfig(output=Output.CHECK))
    old = weakref.ref(runner._last[0][1])
    gc.disable()
    try:
        runner.process_one(items[0], RunConfig(output=Output.CHECK, validate_kind="none"))
        assert old() is None
    finally:
        gc.enable()
