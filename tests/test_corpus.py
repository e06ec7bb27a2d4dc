"""The real-world corpus: every x86/POWER/IBM Z domain either is refused with a rule, or
comes out idempotent, with untouched lines kept, and schema-valid whenever it was valid.

Non-KVM corpus files are also run once more as KVM domains, so their CPU and feature
shapes exercise the transforms too.
"""

from __future__ import annotations

import csv
import re
from functools import cache

import pytest

from tests.conftest import CORPUS, require_corpus, require_libvirt_schema
from tests.helpers import allowed_lines, changed_input_lines
from xmlnest import core, document, transforms
from xmlnest.errors import RuleError
from xmlnest.lossless import tree as cst
from xmlnest.transforms.common import Options
from xmlnest.validate import RngValidator

TARGETS = {
    "x86_64": ("intel", "amd"),
    "i686": ("intel", "amd"),
    "ppc64": ("power9",),
    "ppc64le": ("power9",),
    "s390x": ("ibmz",),
}


def _rows() -> list[dict[str, str]]:
    index = CORPUS / "index.tsv"
    if not index.is_file():
        return []
    with index.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = _rows()
CASES = [
    pytest.param(row["path"], target, id=f"{row['path']}-{target}")
    for row in ROWS
    if row["root"] == "domain"
    for target in TARGETS.get(row["arch"], ())
]


@cache
def _rng() -> RngValidator:
    return RngValidator(require_libvirt_schema() / "domain.rng")


def test_corpus_is_present_and_covers_every_target() -> None:
    require_corpus()
    assert {t for p in CASES for t in p.values[1:]} == {"intel", "amd", "power9", "ibmz"}
    assert len(CASES) > 300


def test_every_corpus_file_round_trips_through_the_lossless_tree() -> None:
    require_corpus()
    for row in ROWS:
        text = (CORPUS / row["path"]).read_bytes().decode("utf-8")
        assert cst.serialize(cst.parse(text)) == text, row["path"]
        doc = cst.parse(text)
        for el in doc.parsed:  # regenerate every tag from its split-out parts
            assert el is not None  # nothing skimmed without ``expand``
            el.clean = False
            assert isinstance(el.attrs, list)
        assert cst.serialize(doc) == text, row["path"]


def test_skimming_keeps_every_corpus_file_and_every_index() -> None:
    """Tokenizing only what an edit reaches changes no byte and no index: for each file,
    with each child of the root (and the last element) as the one to expand."""
    require_corpus()
    skimmed = 0
    for row in ROWS:
        text = (CORPUS / row["path"]).read_bytes().decode("utf-8")
        full = cst.parse(text)
        where = [(e.name, e.offset, e.end) if e else None for e in full.parsed]
        kids = [i for i, e in enumerate(full.parsed) if e and full.parents.get(id(e)) is full.root]
        for expand in [set(), {len(where) - 1}, *({i} for i in kids)]:
            doc = cst.parse(text, expand)
            assert cst.serialize(doc) == text, row["path"]
            assert len(doc.parsed) == len(where), row["path"]
            for i, el in enumerate(doc.parsed):
                if el is None:
                    skimmed += 1
                else:
                    assert (el.name, el.offset, el.end) == where[i], row["path"]
            assert all(doc.parsed[i] is not None for i in expand), row["path"]
    assert skimmed > 0


def _check(raw: bytes, target: str, extra: dict[str, object]) -> str:
    options = Options(arch=target, **extra)  # type: ignore[arg-type]
    source = document.parse(raw)
    try:
        out = core.process(raw, options, validator=_rng())
    except RuleError as exc:
        assert exc.rule, f"refused without a rule id: {exc.format()}"
        assert exc.rule != "XN110", exc.format()
        return "refused"
    if not out.changed:
        assert out.output == raw
        return "unchanged"
    again = core.process(out.output, options, validator=_rng())
    assert not again.changed, "not idempotent"
    plan = transforms.plan(source.root, options, lambda: None)
    stray = changed_input_lines(raw, out.output) - allowed_lines(source, plan)
    assert not stray, f"untouched lines changed: {sorted(stray)}"
    if not _rng().problems(source.root):
        assert not _rng().problems(document.parse(out.output).root)
    return "changed"


@pytest.mark.parametrize(("path", "target"), CASES)
def test_corpus_file(path: str, target: str) -> None:
    require_corpus()
    raw = (CORPUS / path).read_bytes()
    _check(raw, target, {})
    as_kvm = re.sub(rb"<domain type=(['\"])\w+\1", rb"<domain type='kvm'", raw, count=1)
    verdict = _check(as_kvm, target, {})
    if target in ("intel", "amd"):
        _check(as_kvm, target, {"passthrough": True})
        _check(as_kvm, target, {"model": "Skylake-Client" if target == "intel" else "EPYC"})
    assert verdict in ("refused", "unchanged", "changed")


def test_corpus_outcomes_are_mostly_edits_not_refusals() -> None:
    """Guards against a transform that 'passes' by refusing everything."""
    require_corpus()
    counts = {"refused": 0, "unchanged": 0, "changed": 0}
    for p in CASES:
        path, target = p.values
        raw = (CORPUS / str(path)).read_bytes()
        as_kvm = re.sub(rb"<domain type=(['\"])\w+\1", rb"<domain type='kvm'", raw, count=1)
        counts[_check(as_kvm, str(target), {})] += 1
    assert counts["changed"] > counts["refused"]
    assert counts["unchanged"] > 20
