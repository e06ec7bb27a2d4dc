"""Property: the token tree the renderer builds (``tree.parse`` with ``expand`` and
``opened``: untouched elements skimmed, runs of untouched siblings kept as one slice)
agrees with the whole tree on arbitrary well-formed XML, whatever the edits reach.

The documents are made to fool a skim: attributes holding ``>`` and ``/>``, comments,
CDATA and PIs holding fake tags, entities, names that prefix other names, the same
name nested, namespaces, CRLF and tabs, markup after the root.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from xmlnest.engine.lossless import tree
from xmlnest.engine.lossless.nodes import Document, Element, Other, Text
from xmlnest.engine.lossless.style import sniff_style

NAMES = st.sampled_from(["a", "ab", "a:b", "x:a", "cpu", "cpux", "domain", "d-x", "é"])
TAG_ENDS = st.sampled_from(["", " ", "\n"])  # blanks before a tag's '>'
EQUALS = st.sampled_from(["=", " = ", "=\n"])
BLANKS = st.sampled_from(["", " ", "\t", "\n", "\r\n", "\n  ", "\r\n\t", "\n    "])
TEXTS = st.sampled_from(["x", "&amp;", "&#10;", "a > b", "]]", "t\r\nu", "=' ", '="', "\n"])
MARKUP = st.sampled_from(
    [
        "<!-- c -->",
        "<!-- <a> </a> -->",
        "<!-- </cpu> <domain> -->",
        "<![CDATA[<a>x</a>]]>",
        "<![CDATA[</cpux>]]>",
        "<?pi <b/> ?>",
        "<?pi </domain>?>",
        "<!---->",
    ]
)
# After the root: markup that names the root's end tag must not be taken for it.
EPILOGS = st.sampled_from(
    ["", "\n", "\r\n", "\n<!-- e -->\n", "<?e?>", "\n<!-- </domain></a></x:domain> -->\n"]
)
VALUES = st.sampled_from(
    ["v", ">", "/>", "a>b", "&amp;", "&lt;a/&gt;", "x/>y", "&#10;", "\n", "", "= x", "'", '"/>"']
)


@st.composite
def attrs(draw: st.DrawFn) -> str:
    out = ""
    for i in range(draw(st.integers(0, 2))):
        value = draw(VALUES)
        quote = '"' if "'" in value else "'" if '"' in value else draw(st.sampled_from("'\""))
        out += draw(st.sampled_from([" ", "\n ", "\t"])) + draw(st.sampled_from(["k", "a:k"]))
        out += f"{i}{draw(EQUALS)}{quote}{value}{quote}"
    return out


@st.composite
def elements(draw: st.DrawFn, depth: int, name: str | None = None) -> str:
    tag = name or draw(NAMES)
    start = f"<{tag}{draw(attrs())}{draw(TAG_ENDS)}"
    end = f"</{tag}{draw(TAG_ENDS)}>"
    if depth == 0 or draw(st.integers(0, 3)) == 0:
        leaf = draw(st.sampled_from(["empty", "text", "open"]))
        return start + (
            "/>" if leaf == "empty" else ">" + (draw(TEXTS) if leaf == "text" else "") + end
        )
    kids = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["element"] * 6 + ["markup", "text", "blank"]))
        kids.append(draw(BLANKS))
        if kind == "element":
            kids.append(draw(elements(depth - 1)))
        elif kind == "markup":
            kids.append(draw(MARKUP))
        elif kind == "text":
            kids.append(draw(TEXTS))
    return start + ">" + "".join(kids) + draw(BLANKS) + end


@st.composite
def documents(draw: st.DrawFn) -> str:
    root = draw(st.sampled_from(["domain", "a", "x:domain"]))
    body = draw(elements(draw(st.integers(1, 4)), root))
    at = len(root) + 1  # the namespaces the names use, on the root
    body = body[:at] + ' xmlns:a="urn:a" xmlns:x="urn:x"' + body[at:]
    prolog = draw(st.sampled_from(["", "<?xml version='1.0'?>\n", "<!-- p -->\n"]))
    return prolog + body + draw(EPILOGS)


def _shape(children: Sequence[Element | Text | Other]) -> list[tuple[object, ...]]:
    return [
        ("element", c.offset, c.end) if isinstance(c, Element) else (type(c).__name__, c.raw)
        for c in children
    ]


def _text_before(doc: Document, el: Element) -> str | None:
    """The text just before ``el`` among its parent's children (``None``: none there)."""
    parent = doc.parents.get(id(el))
    if parent is None:
        return None
    at = next(k for k, c in enumerate(parent.children) if c is el)
    prev = parent.children[at - 1] if at else None
    return prev.raw if isinstance(prev, Text) else None


def _agrees(text: str, full: Document, expand: set[int], opened: set[int]) -> None:
    doc = tree.parse(text, expand, opened)
    assert tree.serialize(doc) == text
    assert len(doc.parsed) == len(full.parsed)
    for el, was in zip(doc.parsed, full.parsed, strict=True):
        assert was is not None
        assert el is None or (el.name, el.offset, el.end) == (was.name, was.offset, was.end)
    for i in expand:  # the text before it, where an insertion reads its indentation
        el, was = doc.parsed[i], full.parsed[i]
        assert el is not None and was is not None
        assert _text_before(doc, el) == _text_before(full, was)
    for i in opened:
        el, was = doc.parsed[i], full.parsed[i]
        assert el is not None and was is not None
        assert _shape(el.children) == _shape(was.children)
    assert sniff_style(doc, text) == sniff_style(full, text)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.data())
def test_the_renderers_tree_agrees_with_the_whole_tree(text: str, data: st.DataObject) -> None:
    root = etree.fromstring(text.encode())  # well-formed by construction: lxml agrees
    elements_ = list(root.iter(etree.Element))
    full = tree.parse(text)
    assert len(full.parsed) == len(elements_)
    for _ in range(3):
        reached = data.draw(st.sets(st.integers(0, len(elements_) - 1), min_size=1, max_size=3))
        expand: set[int] = set()
        for i in reached:  # the edits' elements and their ancestors, as Index.expand gives
            el: etree._Element | None = elements_[i]
            while el is not None:
                expand.add(elements_.index(el))
                el = el.getparent()
        opened = data.draw(st.sets(st.sampled_from(sorted(expand)), max_size=2))
        _agrees(text, full, expand, opened)
