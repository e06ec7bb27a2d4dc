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
from xmlnest.cli import parallel
from xmlnest.cli import worker as runner
from xmlnest.cli.config import Output, RunConfig
from xmlnest.engine import validate
from xmlnest.files import Input

SAMPLE = REPO / "tests" / "golden" / "intel" / "host-model-topology-disable-vmx-comments"


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The validators made (each compiles its own schema when first used)."""
    chosen: list[str] = []
    real = validate.Choice.make_validator

    def make_validator(self: validate.Choice) -> validate.Validator | None:
        chosen.append(self.kind)
        return real(self)

    monkeypatch.setattr(validate.Choice, "make_validator", make_validator)
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
    validation = validate.choose("auto", None)  # as configure() chooses it, once
    config = RunConfig(output=Output.CHECK, paths=(str(tmp_path),), validation=validation)
    items = _items(tmp_path, 4)
    for task in (items[:2], items[2:]):
        copy = pickle.loads(pickle.dumps(config))  # what each task brings
        assert copy == config and copy is not config
        results = parallel.process_chunk(task, copy)
        assert [r.status for r in results] == ["changed", "changed"]
    assert compiles == [validation.kind]


def test_another_configuration_gets_its_own_state(tmp_path: Path, compiles: list[str]) -> None:
    items = _items(tmp_path, 1)
    for kind in ("auto", "none", "none", "auto"):
        config = RunConfig(output=Output.CHECK, validation=validate.choose(kind, None))
        runner.process_one(items[0], config)
    auto = validate.choose("auto", None).kind
    assert compiles == [auto, "none", auto]


def test_replaced_state_is_freed_at_once(tmp_path: Path, compiles: list[str]) -> None:
    """No reference cycle holds the old state (and its compiled schema) until the cyclic
    collector happens to run."""
    items = _items(tmp_path, 1)
    runner.process_one(items[0], RunConfig(output=Output.CHECK))
    old = weakref.ref(runner._last[0][1])
    gc.disable()
    try:
        none = validate.choose("none", None)
        runner.process_one(items[0], RunConfig(output=Output.CHECK, validation=none))
        assert old() is None
    finally:
        gc.enable()


def test_each_run_starts_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs in one process with the same arguments but another XMLNEST_SCHEMA_DIR:
    each validates against its own schema (an equal configuration is not the same run)."""
    from tests.conftest import run_cli
    from tests.test_verify import CUSTOM, NO_FEATURE_RNG  # CUSTOM gains a <feature>

    schemas = {
        "any": NO_FEATURE_RNG.replace("<except><name>feature</name></except>", ""),
        "no-feature": NO_FEATURE_RNG,
    }
    for name, rng in schemas.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "domain.rng").write_text(rng)
    vm = tmp_path / "vm.xml"
    vm.write_bytes(CUSTOM)
    codes = []
    for name in ("any", "no-feature", "any"):
        monkeypatch.setenv("XMLNEST_SCHEMA_DIR", str(tmp_path / name))
        r = run_cli(["--arch", "intel", "--check", str(vm)])
        codes.append(r.code)
        if name == "no-feature":
            assert f"XN110 the result would not validate against libvirt {tmp_path}/no-feature" in (
                r.err
            )
    assert codes == [1, 3, 1]
