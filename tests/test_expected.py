"""The meaning check's model (``expected``), case by case: for each plan, the true
rendering passes, and each way of getting it wrong is caught, including where the
model keeps only the tag of an untouched child; the source tree is never changed.
(What is inside an untouched child is not compared: the renderer copies it as a source
slice, and the golden and property tests hold every untouched line to its bytes.)

Each case names its edits by document-order position in ``BASE`` (or its own text);
the renderer makes the true output, and each tamper is a text replacement of it.
"""

from __future__ import annotations

import pytest
from lxml import etree

from xmlnest.engine import document
from xmlnest.engine.lossless.render import render
from xmlnest.engine.plan import (
    Edit,
    Index,
    Insert,
    NewElement,
    Plan,
    Remove,
    RemoveAttr,
    SetAttr,
    SetText,
)
from xmlnest.engine.verify import check_meaning
from xmlnest.errors import XmlnestError

BASE = """<domain type='kvm'>
  <name>m</name>
  <os>
    <type arch='x86_64'>hvm</type>
  </os>
  <features>
    <acpi/>
  </features>
  <cpu mode='custom' match='exact'>
    <model fallback='allow'>Haswell</model>
    <feature policy='disable' name='vmx'/>
  </cpu>
  <clock offset='utc'/>
  <devices>
    <disk type='file'/>
  </devices>
</domain>
"""
# Positions in BASE: 0 domain, 1 name, 2 os, 3 type, 4 features, 5 acpi, 6 cpu, 7 model,
# 8 feature, 9 clock, 10 devices, 11 disk.
NO_CPU = BASE[: BASE.index("  <cpu")] + BASE[BASE.index("  <clock") :]
# In NO_CPU: 0 domain, 1 name, 2 os, 3 type, 4 features, 5 acpi, 6 clock, 7 devices, 8 disk.
VMX = NewElement("feature", (("policy", "require"), ("name", "vmx")))
PASSTHROUGH = NewElement("cpu", (("mode", "host-passthrough"),))

# (name, source text, edits, tampers: (old, new) replacements each the check must catch)
CASES: list[tuple[str, str, tuple[Edit, ...], list[tuple[str, str]]]] = [
    (
        "an attribute inside a child of the root",
        BASE,
        (SetAttr(8, "policy", "require"),),
        [
            ("policy='require'", "policy='force'"),  # the wrong value
            ("fallback='allow'", "fallback='forbid'"),  # a sibling changed with it
            ("  <clock offset='utc'/>\n", ""),  # an untouched child lost
            ("<clock offset='utc'/>", "<clocks offset='utc'/>"),  # an untouched child renamed
            ("<domain type='kvm'>", "<domain type='qemu'>"),  # the root changed
            ("<name>m</name>", "<name>m</name><name>m</name>"),  # a child doubled
        ],
    ),
    (
        "a new child of the root, in libvirt's place",
        NO_CPU,
        (Insert(0, PASSTHROUGH),),
        [
            ("  <cpu mode='host-passthrough'/>\n", ""),  # not inserted
            ("host-passthrough", "host-model"),  # inserted wrong
            ("<devices>", "<cpu mode='host-passthrough'/><devices>"),  # also elsewhere
        ],
    ),
    (
        "a removal and an insertion in one child",
        BASE,
        (Remove(8), Insert(6, VMX)),
        [
            ("policy='require'", "policy='disable'"),
            ("<model fallback='allow'>Haswell</model>", ""),  # a sibling lost with it
        ],
    ),
    (
        "a removed child of the root",
        BASE,
        (Remove(9),),
        [
            ("<devices>", "<clock offset='utc'/>\n  <devices>"),  # not removed
            ("  <features>\n    <acpi/>\n  </features>\n", ""),  # another removed as well
        ],
    ),
    (
        "a removed child of the root after stray text (a character reference in it)",
        "<domain>\n  <a/>x&#10;  <b/>y\n</domain>\n",
        (Remove(2),),
        [("<a/>", "<z/>"), ("y\n</domain>", "y\n<b/></domain>")],
    ),
    (
        "a removed child of the root after a sibling an edit reaches",
        "<domain>\n  <a/>x\n  <b/>y\n  <c/>\n</domain>\n",
        (SetAttr(1, "k", "v"), Remove(2)),
        [("y", ""), ("k='v'", "k='w'")],  # the stray text after <b/> joins <a>'s tail
    ),
    (
        "the root's own attribute, and a text",
        BASE,
        (SetAttr(0, "id", "7"), RemoveAttr(6, "match"), SetText(7, "Skylake")),
        [
            (" id='7'", ""),
            (" id='7'", " id='8'"),
            ("Skylake", "Haswell"),
            ("<cpu mode='custom'>", "<cpu mode='custom' match='exact'>"),
        ],
    ),
]


def _tamper_ids() -> list[tuple[str, str, tuple[Edit, ...], str, str]]:
    return [(name, text, edits, old, new) for name, text, edits, ts in CASES for old, new in ts]


def _check(source_text: str, edits: tuple[Edit, ...], output: str) -> None:
    source = document.parse(source_text.encode())
    plan = Plan(target="intel", edits=edits, elements=Index(source.root))
    before = etree.tostring(source.root)
    try:
        check_meaning(source, plan, document.parse(output.encode()))
    finally:
        assert etree.tostring(source.root) == before  # the source tree is never changed


def _rendered(source_text: str, edits: tuple[Edit, ...]) -> str:
    index = Index(document.parse(source_text.encode()).root)
    return render(source_text, edits, index.expand(edits), len(index), index.opened(edits))


@pytest.mark.parametrize(("text", "edits"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_the_true_rendering_passes(text: str, edits: tuple[Edit, ...]) -> None:
    out = _rendered(text, edits)
    assert out != text
    _check(text, edits, out)


@pytest.mark.parametrize(
    ("text", "edits", "old", "new"),
    [t[1:] for t in _tamper_ids()],
    ids=[f"{t[0]}: {t[3]!r}" for t in _tamper_ids()],
)
def test_each_wrong_rendering_is_caught(
    text: str, edits: tuple[Edit, ...], old: str, new: str
) -> None:
    out = _rendered(text, edits)
    assert old in out
    with pytest.raises(XmlnestError, match="does not match the planned edit"):
        _check(text, edits, out.replace(old, new, 1))


def test_blank_text_does_not_count() -> None:
    """Whitespace is the renderer's to choose: re-indenting the output is no change."""
    edits: tuple[Edit, ...] = (Insert(6, VMX),)
    out = _rendered(BASE, edits)
    _check(BASE, edits, out.replace("\n    <feature policy='require'", "<feature policy='require'"))


def test_removing_the_first_child_keeps_the_text_after_it() -> None:
    """Stray text after a removed first child joins the root's text, as in the file."""
    text = "<domain type='kvm'>\n  <cpu mode='custom'/> stray\n  <clock/>\n</domain>"
    edits: tuple[Edit, ...] = (Remove(1),)
    out = _rendered(text, edits)
    assert "stray" in out
    _check(text, edits, out)
    with pytest.raises(XmlnestError):
        _check(text, edits, out.replace("stray", ""))
