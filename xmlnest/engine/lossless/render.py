"""Edits -> text: tokenize what the edits reach, apply them in the file's style, serialize.

Untouched elements are copied from the source text as slices, so their bytes survive.
"""

from __future__ import annotations

from collections.abc import Collection

from xmlnest.engine.lossless import edit, nodes, tree
from xmlnest.engine.lossless.style import sniff_style
from xmlnest.engine.plan import Edit
from xmlnest.errors import InputError, XmlnestError


def render(
    text: str,
    edits: tuple[Edit, ...],
    expand: Collection[int],
    elements: int,
    opened: Collection[int] | None = None,
) -> str:
    """``text`` with ``edits`` made; ``expand``: the positions the edits reach and their
    ancestors, ``opened``: those whose children an edit works among (see
    :func:`tree.parse`); ``elements``: how many the planned tree has."""
    doc = lossless_tree(text, expand, opened)
    if len(doc.parsed) != elements:
        raise XmlnestError(
            "internal error: the token tree and the parsed tree disagree",
            hint="nothing was written; please report this input",
        )
    edit.apply(doc, doc.parsed, edits, sniff_style(doc, text))
    return tree.serialize(doc)


def lossless_tree(
    text: str, expand: Collection[int], opened: Collection[int] | None = None
) -> nodes.Document:
    """The byte-keeping token tree of ``text``, tokenized where ``expand`` and ``opened``
    say."""
    try:
        return tree.parse(text, expand, opened)
    except tree.CstError as exc:
        raise InputError(
            f"cannot keep this file's bytes intact ({exc})",
            hint="please report this input",
            line=text.count("\n", 0, exc.offset) + 1,
        ) from None
