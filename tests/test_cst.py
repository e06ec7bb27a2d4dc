"""The token tree's skimming: children of the root no edit reaches are kept as one slice."""

from __future__ import annotations

import pytest

from xmlnest.lossless import tree as cst
from xmlnest.lossless.nodes import Document, Element

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
    real = cst._skim

    def spy(text: str, name: str, pos: int) -> tuple[int, int, int] | None:
        scanned.append(pos)
        return real(text, name, pos)

    monkeypatch.setattr(cst, "_skim", spy)
    doc = cst.parse(text, path)
    assert cst.serialize(doc) == text
    assert doc.parsed[leaf] is not None
    assert len(scanned) == 0  # every <b/> is self-closing, every <a> on the path
    doc = cst.parse(text, {leaf})  # the leaf alone: still right, each <a> scanned first
    assert doc.parsed[leaf] is not None and len(scanned) == depth
