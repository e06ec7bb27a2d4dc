"""The real-world corpus: every x86/POWER/IBM Z domain either is refused with a rule, or
comes out idempotent, with untouched lines kept, and schema-valid whenever it was valid;
the same for --disable (x86, POWER9) and --host-model (x86), and enabling, disabling and
enabling again gives the enabled bytes.

Non-KVM corpus files are also run once more as KVM domains, so their CPU and feature
shapes exercise the transforms too.
"""

from __future__ import annotations

import csv
import re
from functools import cache

import pytest
from lxml import etree

from tests.conftest import CORPUS, require_corpus, require_libvirt_schema
from tests.helpers import allowed_lines, changed_input_lines, round_trip_expectation
from xmlnest.engine import core, document, transforms
from xmlnest.engine.lossless import tree as cst
from xmlnest.engine.validate import RngValidator
from xmlnest.errors import RuleError
from xmlnest.model import Options

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
    with each child of the root (and the last element) as the one to expand, alone and
    with runs of siblings kept as slices."""
    require_corpus()
    skimmed = 0
    for row in ROWS:
        text = (CORPUS / row["path"]).read_bytes().decode("utf-8")
        full = cst.parse(text)
        where = [(e.name, e.offset, e.end) if e else None for e in full.parsed]
        kids = [i for i, e in enumerate(full.parsed) if e and full.parents.get(id(e)) is full.root]
        cases: list[tuple[set[int], set[int] | None]] = [
            (e, None) for e in [set(), {len(where) - 1}, *({i} for i in kids)]
        ]
        # The renderer's way: the path to one child of the root expanded, and runs of
        # siblings where the root's children are not needed one by one (or are, or that
        # child's are: an insertion into it).
        cases += [({0, i}, opened) for i in kids for opened in (set(), {0}, {i})]
        for expand, opened in cases:
            doc = cst.parse(text, expand, opened)
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
        return f"refused {exc.rule}"
    if not out.changed:
        assert out.output == raw
        return "unchanged"
    again = core.process(out.output, options, validator=_rng())
    assert not again.changed, "not idempotent"
    plan = transforms.plan(source.root, options)
    stray = changed_input_lines(raw, out.output) - allowed_lines(source, plan)
    assert not stray, f"untouched lines changed: {sorted(stray)}"
    if not _rng().problems(source.root):
        assert not _rng().problems(document.parse(out.output).root)
    return "changed"


ALREADY_OFF = re.compile(
    rb"""policy=['"](?:disable|forbid)['"] name=['"](?:vmx|svm)['"]|nested-hv state=['"]off"""
)


def _round_trip(raw: bytes, target: str, extra: dict[str, object]) -> None:
    """Enabling, then disabling, then enabling again gives the enabled bytes (see
    ``round_trip_expectation`` for what a disabled feature cannot remember)."""
    enable = Options(arch=target, **extra)  # type: ignore[arg-type]
    try:
        enabled = core.process(raw, enable).output
    except RuleError:
        return
    off = Options(arch=target, disable=True)
    disabled = core.process(enabled, off).output
    again = core.process(disabled, enable).output
    expected = round_trip_expectation(enabled)
    if expected is None:  # the enabled CPU spelled out what a disabled one cannot recall
        assert core.process(core.process(again, off).output, enable).output == again
        return
    assert again == expected, "enable-disable-enable differs"


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
        _check(as_kvm, target, {"host_model": True})
        _round_trip(as_kvm, target, {"host_model": True})
    if target != "ibmz":  # IBM Z has no XML edit for --disable
        _check(raw, target, {"disable": True})
        _check(as_kvm, target, {"disable": True})
        _round_trip(as_kvm, target, {})
    assert verdict == _expected(as_kvm, target)


# ------------------------------------------------------------------ the expected verdicts
# A second, independent reading of the table in docs/edits.md "What it changes, per architecture":
# what each corpus domain must give, from its XML alone (model vendors from libvirt's own
# cpu_map, not from xmlnest's model families).

HOST_MODES = ("host-passthrough", "maximum")


@cache
def _cpu_map_vendors() -> dict[str, str]:
    """x86 model name -> 'intel' or 'amd' (Hygon's Dhyana is an AMD design), per libvirt."""
    cpu_map = require_libvirt_schema().parent / "cpu_map"
    out = {}
    for f in cpu_map.glob("x86_*.xml"):
        for model in etree.parse(str(f)).iter("model"):
            vendor = model.find("vendor")
            if vendor is not None and model.get("name"):
                out[model.get("name", "")] = {"Hygon": "amd"}.get(
                    vendor.get("name", ""), vendor.get("name", "").lower()
                )
    return out


def _features(cpu: etree._Element | None) -> list[tuple[str, str]]:
    """(name, policy) of each <feature>; a feature without policy is 'require'."""
    if cpu is None:
        return []
    return [(f.get("name", ""), f.get("policy", "require")) for f in cpu.iterchildren("feature")]


def _expected(raw: bytes, target: str) -> str:
    root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
    if root.get("id") is not None:  # libvirt writes an id only into a running domain's XML
        return "refused XN113"
    if root.get("type") != "kvm":
        return "refused XN102"
    cpu = root.find("cpu")
    if target in ("intel", "amd"):
        verdict = _expected_x86(cpu, target)
        security = root.find("launchSecurity")
        confidential = security is not None and security.get("type") in ("sev", "sev-snp", "tdx")
        if confidential and verdict not in ("refused XN103", "refused XN108"):
            return "refused XN115"  # KVM cannot nest in a confidential guest (issue 24)
        return verdict
    if target == "power9":
        return _expected_power9(root, cpu)
    return _expected_ibmz(root, cpu)


def _x86_vendor(cpu: etree._Element, mode: str) -> str | None:
    """What the XML says: <vendor>, else a custom model's vendor, else vmx xor svm."""
    vendor = (cpu.findtext("vendor") or "").strip().lower()
    if vendor in ("intel", "amd", "hygon"):
        return "amd" if vendor == "hygon" else vendor
    model = (cpu.findtext("model") or "").strip()
    if mode == "custom" and model in _cpu_map_vendors():
        return _cpu_map_vendors()[model]
    wanted = {n for n, p in _features(cpu) if p in ("require", "force")}
    if len(wanted & {"vmx", "svm"}) == 1:
        return "intel" if "vmx" in wanted else "amd"
    return None


def _expected_x86(cpu: etree._Element | None, target: str) -> str:
    if cpu is None:
        return "changed"  # host-passthrough inserted
    mode = cpu.get("mode", "custom")
    if mode not in ("custom", "host-model", *HOST_MODES):
        return "refused XN111"
    vendor = _x86_vendor(cpu, mode)
    if vendor not in (None, target):
        return "refused XN103"
    nest = "vmx" if target == "intel" else "svm"
    policies = [p for n, p in _features(cpu) if n == nest]
    if "forbid" in policies:
        return "refused XN104"
    if mode in HOST_MODES:  # only a disabled vmx or svm is removed
        disabled = any(n in ("vmx", "svm") and p == "disable" for n, p in _features(cpu))
        return "changed" if disabled else "unchanged"
    if mode == "host-model" or not (cpu.findtext("model") or "").strip():
        return "changed"  # to host-passthrough
    explicit = [f.get("policy") for f in cpu.iterchildren("feature") if f.get("name") == nest]
    return "unchanged" if explicit in (["require"], ["force"]) else "changed"


def _expected_power9(root: etree._Element, cpu: etree._Element | None) -> str:
    os_type = root.find("os/type")
    machine = os_type.get("machine") if os_type is not None else None
    if machine and not machine.startswith("pseries"):
        return "refused XN109"
    model = (cpu.findtext("model") or "").strip().lower() if cpu is not None else ""
    if re.fullmatch(r"power[1-8](?!\d)\w*", model):
        return "refused XN105"  # POWER8-or-older compatibility mode or model
    nested = root.find("features/nested-hv")
    return "unchanged" if nested is not None and nested.get("state") == "on" else "changed"


def _expected_ibmz(root: etree._Element, cpu: etree._Element | None) -> str:
    if root.find("memoryBacking/hugepages") is not None:
        return "refused XN106"
    if root.find("launchSecurity[@type='s390-pv']") is not None:
        return "refused XN107"
    if cpu is None:
        return "unchanged"
    mode = cpu.get("mode", "custom")
    if mode == "custom" and (cpu.findtext("model") or "").strip():
        return "changed"  # to host-model
    disabled = ("sief2", "disable") in _features(cpu)
    return "changed" if disabled else "unchanged"


def test_corpus_disable_refuses_only_a_wrong_target_or_type() -> None:
    """--disable has no refusals of its own: over the corpus (each x86 file under both
        vendors) only a vendor that does not fit (XN103), a non-KVM type (XN102) or a
        running domain's live XML (XN113) is refused,
        and it changes a good share of the domains (the others have no <cpu>, XN220, or have
    nesting off already)."""
    require_corpus()
    counts = {"refused": 0, "unchanged": 0, "changed": 0}
    for p in CASES:
        path, target = p.values
        if target == "ibmz":
            continue
        raw = (CORPUS / str(path)).read_bytes()
        as_kvm = re.sub(rb"<domain type=(['\"])\w+\1", rb"<domain type='kvm'", raw, count=1)
        try:
            out = core.process(as_kvm, Options(arch=str(target), disable=True))
        except RuleError as exc:
            assert exc.rule in ("XN102", "XN103", "XN113"), exc.format(str(path))
            counts["refused"] += 1
            continue
        counts["changed" if out.changed else "unchanged"] += 1
        if not out.changed and "XN220" not in {f.rule for f in out.findings}:
            assert ALREADY_OFF.search(as_kvm), path  # else it says why nothing changed
    assert counts["changed"] > 5 * counts["refused"], counts
    assert counts["changed"] > 200, counts


def test_corpus_outcomes_are_mostly_edits_not_refusals() -> None:
    """Guards against a transform that 'passes' by refusing everything."""
    require_corpus()
    counts = {"refused": 0, "unchanged": 0, "changed": 0}
    for p in CASES:
        path, target = p.values
        raw = (CORPUS / str(path)).read_bytes()
        as_kvm = re.sub(rb"<domain type=(['\"])\w+\1", rb"<domain type='kvm'", raw, count=1)
        counts[_check(as_kvm, str(target), {}).split()[0]] += 1
    assert counts["changed"] > counts["refused"]
    assert counts["unchanged"] > 20
