"""Where elements end, found without tokenizing them: one element, or a run of siblings.

The token tree (``lossless.tree``) keeps what no edit reaches as source slices; this
module finds their ends with ``str.find`` and counts, in C, instead of a token each.
"""

from __future__ import annotations

import re

from xmlnest.engine.lossless.nodes import ATTR, NAME, WS

# A leaf: an element that is empty or holds only text. A run of them, blank text between.
_LEAF = "<(?P<{0}>" + NAME + ")(?:" + ATTR + ")*" + WS + "*(?:/>|>[^<]*</(?P={0})" + WS + "*>)"
_LEAVES = re.compile(WS + "*" + _LEAF.format("a") + "(?:" + WS + "*" + _LEAF.format("b") + ")*")
_ONE_LEAF = re.compile(WS + "*" + _LEAF.format("a"))
_START_TAG = re.compile(WS + "*<(?P<name>" + NAME + ")(?:" + ATTR + ")*" + WS + "*>")


def siblings(text: str, pos: int, index: int, stop: int) -> tuple[int, int]:
    """Skip whole sibling elements from ``pos``, the start of element ``index``, up to
    element ``stop`` (the next one to tokenize): ``(end, count)``, ``end`` just past the
    last element skipped, ``count`` the elements skipped, descendants included (0: none).

    Blank text between them goes with the run, blank text after the last does not. A
    run of leaves is matched at once; any other element is skimmed (:func:`element`). A
    run ends at anything else: the parent's end tag, a comment, CDATA or PI, other
    text, or an element :func:`element` will not vouch for.
    """
    count = 0
    end = at = pos
    while index + count < stop:
        m = _LEAVES.match(text, at)
        if m is not None:
            after = m.end()
            n = text.count("<", at, after) - text.count("</", at, after)
            if index + count + n > stop:  # element ``stop`` is among them: stop before it
                for _ in range(stop - index - count):
                    m = _ONE_LEAF.match(text, at)
                    assert m is not None
                    at = m.end()
                return at, stop - index
            count += n
            end = at = after
            continue
        m = _START_TAG.match(text, at)
        if m is None:
            break
        skim = element(text, m.group("name"), m.end())
        if skim is None or index + count + 1 + skim[2] > stop:
            break
        count += 1 + skim[2]
        end = at = skim[1]
    return end, count


def rest_of_root(text: str, pos: int, name: str) -> tuple[int, int] | None:
    """Like :func:`siblings` for the last run among the root's children, when nothing
    after ``pos`` is to be tokenized: ``(end, count)`` found in one step from the root's
    end tag, the last ``</NAME>`` of the document. ``None`` where that is not plain: a
    comment, CDATA or PI in the run (which could hide a ``<``), or no element in it. (A
    ``</NAME>`` in a comment or PI after the root would be found instead, but then that
    comment's ``<!`` or PI's ``<?`` is in the run: ``None`` too.)"""
    closing = text.rfind("</" + name)
    if closing < pos:
        return None
    after = closing + 2 + len(name)
    while text[after : after + 1] in _WHITE:
        after += 1
    if not text.startswith(">", after):
        return None
    end = closing
    while end > pos and text[end - 1] in _WHITE:
        end -= 1
    if end <= pos or text.find("<!", pos, end) >= 0 or text.find("<?", pos, end) >= 0:
        return None
    return end, text.count("<", pos, end) - text.count("</", pos, end)


def element(text: str, name: str, pos: int) -> tuple[int, int, int] | None:
    """Where the element whose content starts at ``pos`` ends, without tokenizing it:
    ``(end tag start, end tag end, elements inside)``; ``None`` when its content holds a
    comment, CDATA section or PI (which could hide a fake tag) or an element of the
    same name (whose end tag would be found first). In well-formed XML every other
    ``<`` in content opens a tag, so the counts are exact. (``str.find`` rather than a
    regex per name: compiling one costs more than skimming.)
    """
    closing = "</" + name
    stop = text.find(closing, pos)
    while stop >= 0:
        end = stop + len(closing)
        while text[end : end + 1] in _WHITE:
            end += 1
        if text.startswith(">", end):
            break
        stop = text.find(closing, stop + 1)
    if stop < 0:
        return None
    if text.find("<!", pos, stop) >= 0 or text.find("<?", pos, stop) >= 0:
        return None
    opened = "<" + name
    at = text.find(opened, pos, stop)
    while at >= 0:
        after = at + len(opened)
        if after == stop or text[after] in " \t\r\n/>":
            return None
        at = text.find(opened, after, stop)
    inside = text.count("<", pos, stop) - text.count("</", pos, stop)
    return stop, end + 1, inside


_WHITE = (" ", "\t", "\r", "\n")
