"""The token tree's skimming: an element no edit reaches is kept as one slice, and so is a
run of siblings no edit reaches, where no edit needs their parent's children one by one."""

from __future__ import annotations

import pytest

from xmlnest.engine.lossless import skim
from xmlnest.engine.lossless import tree as cst
from xmlnest.engine.lossless.nodes import Document, Element, Other, Text
from xmlnest.engine.lossless.style import sniff_style

DOC = """<domain type='kvm'>
  <name>x</name>
  <cpu mode='custom'>
    <model>Haswell</model>
  </cpu>
  <devices>
    {inside}
  </devices >
  <on_crash>destroy</on_crash>
</domain>
"""


def _indexes(doc: Document) -> dict[str, int]:
    """Tag name -> index, for the elements that were tokenized."""
    return {el.name: i for i, el in enumerate(doc.parsed) if el is not None}


@pytest.mark.parametrize(
    "inside",
    [
        "<disk type='file'><source file='/a'/></disk><serial/>",
        "<disk type='file' note='a &gt; b'><source file='/a'/></disk>",
        "",
    ],
)
def test_a_root_child_no_edit_reaches_is_skimmed(inside: str) -> None:
    text = DOC.format(inside=inside)
    full = cst.parse(text)
    cpu = _indexes(full)["cpu"]
    doc = cst.parse(text, {cpu})
    assert cst.serialize(doc) == text
    assert len(doc.parsed) == len(full.parsed)
    devices = _indexes(full)["devices"]
    skimmed = doc.parsed[devices]
    assert skimmed is not None and skimmed.clean
    if "<" in inside:
        assert skimmed.children == []  # not tokenized
    else:  # text only: matched whole, like any leaf, and nothing to skim
        raws = [c if isinstance(c, Element) else c.raw for c in skimmed.children]
        assert raws == ["\n    \n  "]  # one text child; an element here fails the test
    inner = inside.count("<") - inside.count("</")
    assert doc.parsed[devices + 1 : devices + 1 + inner] == [None] * inner
    # What follows the skimmed element is tokenized again, at the same indexes.
    assert _indexes(doc)["on_crash"] == _indexes(full)["on_crash"]
    cpu_el = doc.parsed[cpu]
    assert cpu_el is not None and [c.name for c in cpu_el.element_children()] == ["model"]


@pytest.mark.parametrize(
    "inside",
    [
        "<!-- </devices> -->",  # a comment could hide a fake end tag
        "<![CDATA[ </devices> ]]>",
        "<?pi </devices>?>",
        "<devices><x/></devices>",  # same name inside: the first end tag is not ours
        "<devices/>",
    ],
)
def test_content_that_could_fool_the_skim_is_tokenized(inside: str) -> None:
    text = DOC.format(inside=inside)
    full = cst.parse(text)
    doc = cst.parse(text, {_indexes(full)["cpu"]})
    assert cst.serialize(doc) == text
    first = next(i for i, e in enumerate(full.parsed) if e and e.name == "devices")
    devices = doc.parsed[first]
    assert devices is not None and devices.name == "devices"
    assert devices.children != []  # tokenized, not skimmed
    assert len(doc.parsed) == len(full.parsed)
    for el, was in zip(doc.parsed, full.parsed, strict=True):
        assert el is None or (
            was is not None and (el.name, el.offset, el.end) == (was.name, was.offset, was.end)
        )


def test_a_longer_name_with_the_same_prefix_does_not_stop_the_skim() -> None:
    text = DOC.format(inside="<devicesX/><devices-list></devices-list>")
    doc = cst.parse(text, set())
    assert cst.serialize(doc) == text
    assert doc.parsed.count(None) == 1 + 2  # <model> in <cpu>, two in <devices>


def test_an_edit_deep_inside_keeps_its_ancestors_and_their_children_tokenized() -> None:
    text = DOC.format(
        inside="<disk><source file='/a'/><target dev='vda'/></disk><serial><x/></serial>"
    )
    full = cst.parse(text)
    names = _indexes(full)
    doc = cst.parse(text, {names["source"]})
    assert cst.serialize(doc) == text
    kept = [doc.parsed[names[n]] for n in ("devices", "disk", "source", "target", "serial")]
    assert [el.name if el is not None else None for el in kept] == [
        "devices",
        "disk",
        "source",
        "target",
        "serial",
    ]
    # Skimmed: <model> inside <cpu>, <x/> inside <serial>; nothing else.
    assert [i for i, el in enumerate(doc.parsed) if el is None] == [names["model"], names["x"]]


def test_elements_on_the_path_to_an_edit_are_not_scanned_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listing an edit's ancestors spares scanning each to its end (depth x size)."""
    depth = 40
    text = "<domain>" + "<a><b/>" * depth + "<leaf/>" + "</a>" * depth + "</domain>"
    full = cst.parse(text)
    leaf = next(i for i, e in enumerate(full.parsed) if e and e.name == "leaf")
    path = {i for i, e in enumerate(full.parsed) if e and e.name in ("domain", "a", "leaf")}
    scanned: list[int] = []
    real = skim.element

    def spy(text: str, name: str, pos: int) -> tuple[int, int, int] | None:
        scanned.append(pos)
        return real(text, name, pos)

    monkeypatch.setattr(skim, "element", spy)
    doc = cst.parse(text, path)
    assert cst.serialize(doc) == text
    assert doc.parsed[leaf] is not None
    assert len(scanned) == 0  # every <b/> is self-closing, every <a> on the path
    doc = cst.parse(text, {leaf})  # the leaf alone: still right, each <a> scanned first
    assert doc.parsed[leaf] is not None and len(scanned) == depth


# ---------------------------------------------------------------- runs of siblings

ROOT = """<domain type='kvm'>
  <name>x</name>
  <uuid>u</uuid>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
  <cpu mode='host-model'/>
  <clock offset='utc'/>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file'><source file='/a'/></disk>
  </devices>
</domain>
"""


def _shape(doc: Document) -> list[str]:
    """The root's children: an element by name, a text or a run by its raw text."""
    return [c.name if isinstance(c, Element) else c.raw for c in doc.root.children]


def _same_indexes(doc: Document, full: Document) -> None:
    assert len(doc.parsed) == len(full.parsed)
    for el, was in zip(doc.parsed, full.parsed, strict=True):
        assert el is None or (
            was is not None and (el.name, el.offset, el.end) == (was.name, was.offset, was.end)
        )


def test_siblings_no_edit_reaches_are_kept_as_runs() -> None:
    full = cst.parse(ROOT)
    cpu = _indexes(full)["cpu"]
    doc = cst.parse(ROOT, {0, cpu}, set())  # an attribute of <cpu>: no child list needed
    assert cst.serialize(doc) == ROOT
    _same_indexes(doc, full)
    assert _shape(doc) == [
        "\n  ",
        "<name>x</name>\n  <uuid>u</uuid>\n  <os>\n    <type arch='x86_64'>hvm</type>\n  </os>",
        "\n  ",
        "cpu",
        "\n  ",
        ROOT[ROOT.index("<clock") : ROOT.index("</domain>") - 1],
        "\n",
    ]
    assert all(isinstance(c, Text | Element) for c in doc.root.children[::2])
    assert isinstance(doc.root.children[1], Other)


def test_an_opened_parent_keeps_its_children_one_by_one() -> None:
    """An insertion's parent: its children's names and the text around them are needed."""
    full = cst.parse(ROOT)
    cpu = _indexes(full)["cpu"]
    doc = cst.parse(ROOT, {0, cpu}, {0})
    assert cst.serialize(doc) == ROOT
    _same_indexes(doc, full)
    names = [c for c in _shape(doc) if not c.isspace()]
    assert names == ["name", "uuid", "os", "cpu", "clock", "on_crash", "devices"]


def test_a_run_of_leaves_stops_before_the_leaf_to_tokenize() -> None:
    text = "<domain>\n  <a/>\n  <b>x</b>\n  <c/>\n  <d k='v'/>\n</domain>"
    full = cst.parse(text)
    c = _indexes(full)["c"]
    doc = cst.parse(text, {0, c}, set())
    assert cst.serialize(doc) == text
    _same_indexes(doc, full)
    assert _shape(doc) == ["\n  ", "<a/>\n  <b>x</b>", "\n  ", "c", "\n  ", "<d k='v'/>", "\n"]


@pytest.mark.parametrize(
    ("between", "kept"),
    [
        ("<!-- a comment -->", "<!-- a comment -->"),  # markup stops a run
        ("stray text", "\n  stray text\n  "),  # so does text that is not blank
        ("<p><!-- c --><q/></p>", "p"),  # and an element the skim does not vouch for
    ],
)
def test_a_run_ends_where_a_sibling_is_not_plain(between: str, kept: str) -> None:
    text = f"<domain>\n  <a/>\n  {between}\n  <b/>\n  <cpu/>\n</domain>"
    full = cst.parse(text)
    doc = cst.parse(text, {0, _indexes(full)["cpu"]}, set())
    assert cst.serialize(doc) == text
    _same_indexes(doc, full)
    shape = _shape(doc)
    assert shape[:2] == ["\n  ", "<a/>"]
    assert kept in shape and "cpu" in shape


@pytest.mark.parametrize(
    "text",
    [
        "<domain><name>x</name>\n\t<uuid/>\n\t<cpu/>\n\t<clock/>\n</domain>",  # no text first
        "<domain>\n<name>x</name>\n  <uuid/>\n    <cpu/>\n</domain>",  # no indent first
        "<domain>  <name>x</name><uuid/>\n   <cpu/>\n   <clock/></domain>",
    ],
)
def test_no_run_hides_the_text_that_sets_the_indent_unit(text: str) -> None:
    """The file's indent unit is read from the root's texts, up to the first that has an
    indented line: no run may start before that text."""
    full = cst.parse(text)
    doc = cst.parse(text, {0, _indexes(full)["cpu"]}, set())
    assert cst.serialize(doc) == text
    _same_indexes(doc, full)
    assert sniff_style(doc, text) == sniff_style(full, text)
    assert "<name>" not in [getattr(c, "raw", "")[:6] for c in doc.root.children]


@pytest.mark.parametrize(
    ("tail", "one_step"),
    [
        ("</domain>\n", True),
        ("</domain >\n\n", True),
        ("</domain>\n<!-- after the root -->\n", True),
        ("</domain>\n<!-- a fake </domain> -->\n", False),  # found, but its '<!' is in the run
        ("</domain>\n<?pi </domain>?>\n", False),
        ("<!-- in the run --></domain>\n", False),  # a comment could hide a '<'
    ],
)
def test_the_last_run_of_the_root_is_found_from_its_end_tag(
    tail: str, one_step: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "<domain>\n  <cpu/>\n  <a><b/></a>\n  <c>x</c>\n  " + tail
    full = cst.parse(text)
    runs: list[int] = []
    real = skim.siblings

    def spy(text: str, pos: int, index: int, stop: int) -> tuple[int, int]:
        runs.append(index)
        return real(text, pos, index, stop)

    monkeypatch.setattr(skim, "siblings", spy)
    doc = cst.parse(text, {0, 1}, set())
    assert cst.serialize(doc) == text
    _same_indexes(doc, full)
    assert (runs == []) is one_step
    assert "<a><b/></a>\n  <c>x</c>" in _shape(doc)
