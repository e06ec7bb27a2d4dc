"""What ``lossless.edit`` does to whitespace, case by case (libcst's removal-behaviour tests
are the model): inserting into an empty, self-closing, tab-indented or CRLF parent,
removing a first, last or only child, attributes in the file's quotes and libvirt's order.

Each case is the source text, the edits (elements named by document-order position) and
the exact text expected; every case is also checked to leave the other lines untouched.
"""

from __future__ import annotations

import pytest
from lxml import etree

from xmlnest.engine.lossless import edit, render, tree
from xmlnest.engine.lossless.style import sniff_style
from xmlnest.engine.plan import (
    Edit,
    Index,
    Insert,
    NewElement,
    Remove,
    RemoveAttr,
    SetAttr,
    SetText,
)

PASSTHROUGH = NewElement("cpu", (("mode", "host-passthrough"),))
VMX = NewElement("feature", (("policy", "require"), ("name", "vmx")))
NESTED_HV = NewElement("nested-hv", (("state", "on"),))


def edited(text: str, *edits: Edit) -> str:
    doc = tree.parse(text)
    edit.apply(doc, doc.parsed, edits, sniff_style(doc, text))
    return tree.serialize(doc)


CASES: list[tuple[str, str, tuple[Edit, ...], str]] = [
    (
        "insert into a self-closing parent",
        "<domain type='kvm'>\n  <os>\n    <type arch='ppc64le'>hvm</type>\n  </os>\n  <features/>\n</domain>\n",
        (Insert(3, NESTED_HV),),
        "<domain type='kvm'>\n  <os>\n    <type arch='ppc64le'>hvm</type>\n  </os>\n  <features>\n    <nested-hv state='on'/>\n  </features>\n</domain>\n",
    ),
    (
        "insert into an empty parent",
        "<domain type='kvm'>\n  <os>\n    <type arch='ppc64le'>hvm</type>\n  </os>\n  <features></features>\n</domain>\n",
        (Insert(3, NESTED_HV),),
        "<domain type='kvm'>\n  <os>\n    <type arch='ppc64le'>hvm</type>\n  </os>\n  <features>\n    <nested-hv state='on'/>\n  </features>\n</domain>\n",
    ),
    (
        "insert into a parent holding only blank lines",
        "<domain type='kvm'>\n  <features>\n\n  </features>\n</domain>\n",
        (Insert(1, NESTED_HV),),
        "<domain type='kvm'>\n  <features>\n    <nested-hv state='on'/>\n  </features>\n</domain>\n",
    ),
    (
        "insert into a tab-indented parent, after its libvirt predecessor",
        "<domain type='kvm'>\n\t<os>\n\t\t<type arch='x86_64'>hvm</type>\n\t</os>\n\t<features>\n\t\t<acpi/>\n\t</features>\n</domain>\n",
        (Insert(0, PASSTHROUGH),),
        "<domain type='kvm'>\n\t<os>\n\t\t<type arch='x86_64'>hvm</type>\n\t</os>\n\t<features>\n\t\t<acpi/>\n\t</features>\n\t<cpu mode='host-passthrough'/>\n</domain>\n",
    ),
    (
        "insert a nested element into a tab-indented parent, before its libvirt successor",
        "<domain type='kvm'>\n\t<os>\n\t\t<type arch='ppc64le'>hvm</type>\n\t</os>\n\t<devices/>\n</domain>\n",
        (Insert(0, NewElement("features", children=(NESTED_HV,))),),
        "<domain type='kvm'>\n\t<os>\n\t\t<type arch='ppc64le'>hvm</type>\n\t</os>\n\t<features>\n\t\t<nested-hv state='on'/>\n\t</features>\n\t<devices/>\n</domain>\n",
    ),
    (
        "insert a nested element with four-space indentation",
        "<domain type='kvm'>\n    <os>\n        <type arch='ppc64le'>hvm</type>\n    </os>\n    <devices/>\n</domain>\n",
        (Insert(0, NewElement("features", children=(NESTED_HV,))),),
        "<domain type='kvm'>\n    <os>\n        <type arch='ppc64le'>hvm</type>\n    </os>\n    <features>\n        <nested-hv state='on'/>\n    </features>\n    <devices/>\n</domain>\n",
    ),
    (
        "insert into a CRLF parent",
        "<domain type='kvm'>\r\n  <cpu mode='custom'>\r\n    <model>Haswell</model>\r\n  </cpu>\r\n</domain>\r\n",
        (Insert(1, VMX),),
        "<domain type='kvm'>\r\n  <cpu mode='custom'>\r\n    <model>Haswell</model>\r\n    <feature policy='require' name='vmx'/>\r\n  </cpu>\r\n</domain>\r\n",
    ),
    (
        "insert into a self-closing CRLF parent",
        "<domain type='kvm'>\r\n  <cpu mode='host-model'/>\r\n</domain>\r\n",
        (Insert(1, VMX),),
        "<domain type='kvm'>\r\n  <cpu mode='host-model'>\r\n    <feature policy='require' name='vmx'/>\r\n  </cpu>\r\n</domain>\r\n",
    ),
    (
        "insert into a document on one line: no line breaks added",
        "<domain type='kvm'><os><type arch='x86_64'>hvm</type></os></domain>",
        (Insert(0, PASSTHROUGH),),
        "<domain type='kvm'><os><type arch='x86_64'>hvm</type></os><cpu mode='host-passthrough'/></domain>",
    ),
    (
        "new elements take the file's double quotes",
        '<domain type="kvm">\n  <os>\n    <type arch="x86_64">hvm</type>\n  </os>\n</domain>\n',
        (Insert(0, PASSTHROUGH),),
        '<domain type="kvm">\n  <os>\n    <type arch="x86_64">hvm</type>\n  </os>\n  <cpu mode="host-passthrough"/>\n</domain>\n',
    ),
    (
        "remove the last child: its line goes",
        "<domain>\n  <cpu mode='custom'>\n    <model>Haswell</model>\n    <feature policy='disable' name='vmx'/>\n  </cpu>\n</domain>\n",
        (Remove(3),),
        "<domain>\n  <cpu mode='custom'>\n    <model>Haswell</model>\n  </cpu>\n</domain>\n",
    ),
    (
        "remove the first child: its line goes, the next keeps its indentation",
        "<domain>\n  <cpu mode='custom'>\n    <model>Haswell</model>\n    <feature policy='disable' name='vmx'/>\n  </cpu>\n</domain>\n",
        (Remove(2),),
        "<domain>\n  <cpu mode='custom'>\n    <feature policy='disable' name='vmx'/>\n  </cpu>\n</domain>\n",
    ),
    (
        "remove the only child: the parent collapses to a self-closing tag",
        "<domain>\n  <cpu mode='host-model'>\n    <feature policy='disable' name='vmx'/>\n  </cpu>\n</domain>\n",
        (Remove(2),),
        "<domain>\n  <cpu mode='host-model'/>\n</domain>\n",
    ),
    (
        "remove every child: the parent collapses",
        "<domain>\n  <cpu mode='host-model'>\n    <feature policy='disable' name='vmx'/>\n    <feature policy='disable' name='svm'/>\n  </cpu>\n</domain>\n",
        (Remove(2), Remove(3)),
        "<domain>\n  <cpu mode='host-model'/>\n</domain>\n",
    ),
    (
        "remove the last child of a CRLF parent: CRLF stays whole",
        "<domain>\r\n  <cpu>\r\n    <model>A</model>\r\n    <feature name='vmx'/>\r\n  </cpu>\r\n</domain>\r\n",
        (Remove(3),),
        "<domain>\r\n  <cpu>\r\n    <model>A</model>\r\n  </cpu>\r\n</domain>\r\n",
    ),
    (
        "remove after a bare CR: it does not fuse with the next LF into one CRLF",
        "<domain><a/>\r\r  <b/>\n</domain>",
        (Remove(2),),
        "<domain><a/>\r\n\n</domain>",  # three line breaks less the one of <b/>
    ),
    (
        "remove a child on the parent's line: nothing else moves",
        "<domain>\n  <cpu><feature name='vmx'/><model>A</model></cpu>\n</domain>\n",
        (Remove(2),),
        "<domain>\n  <cpu><model>A</model></cpu>\n</domain>\n",
    ),
    (
        "a new attribute goes in libvirt's order, in the element's own quotes",
        '<domain type=\'kvm\'>\n  <cpu mode="host-model" check="partial"/>\n</domain>\n',
        (SetAttr(1, "match", "exact"),),
        '<domain type=\'kvm\'>\n  <cpu mode="host-model" match="exact" check="partial"/>\n</domain>\n',
    ),
    (
        "a changed attribute keeps its quotes; the quote in the value is escaped",
        "<domain type='kvm'>\n  <cpu mode='host-model'/>\n</domain>\n",
        (SetAttr(1, "mode", "it's"),),
        "<domain type='kvm'>\n  <cpu mode='it&apos;s'/>\n</domain>\n",
    ),
    (
        "a removed attribute takes its leading space",
        "<domain type='kvm'>\n  <cpu mode='custom'  match='exact' check='none'/>\n</domain>\n",
        (RemoveAttr(1, "match"),),
        "<domain type='kvm'>\n  <cpu mode='custom' check='none'/>\n</domain>\n",
    ),
    (
        "text into a self-closing element opens it",
        "<domain>\n  <cpu mode='custom'>\n    <model fallback='allow'/>\n  </cpu>\n</domain>\n",
        (SetText(2, "Haswell<&>"),),
        "<domain>\n  <cpu mode='custom'>\n    <model fallback='allow'>Haswell&lt;&amp;&gt;</model>\n  </cpu>\n</domain>\n",
    ),
]


@pytest.mark.parametrize(
    ("before", "edits", "after"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_edit(before: str, edits: tuple[Edit, ...], after: str) -> None:
    assert edited(before, *edits) == after


@pytest.mark.parametrize(
    ("before", "edits", "after"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_same_edit_on_the_tree_the_renderer_builds(
    before: str, edits: tuple[Edit, ...], after: str
) -> None:
    """The renderer tokenizes only what the edits reach, runs of untouched siblings kept
    as one slice (``tree.parse`` with ``expand`` and ``opened``): every case comes out
    byte for byte the same as on the whole tree."""
    index = Index(etree.fromstring(before.encode()))
    text = render.render(before, edits, index.expand(edits), len(index), index.opened(edits))
    assert text == after


def test_no_edit_changes_no_byte() -> None:
    for _, before, _, _ in CASES:
        assert edited(before) == before


@pytest.mark.parametrize(
    ("text", "quote"),
    [
        ("<domain type='kvm'><cpu mode=\"custom\" check='none'/></domain>", "'"),
        ('<domain type="kvm"><cpu mode="custom" check=\'none\'/></domain>', '"'),
        # A blank after '=' in most attributes: str.count alone would say the other quote.
        *(
            (f"<domain type=\"kvm\"><cpu a={b}'1' b={b}'2' c={b}'3'/></domain>", "'")
            for b in (" ", "\t", "\n", "\r")
        ),
    ],
)
def test_the_quote_is_the_one_most_attributes_use(text: str, quote: str) -> None:
    """Counted with or without blanks between ``=`` and the quote (the fast count is
    only used where there are none)."""
    assert sniff_style(tree.parse(text), text).quote == quote
