"""Structured diff: deepdiff over a stable flattening of the document, one JSON line per input.

Flattening maps every element to a path and every attribute and non-blank text to a leaf:
``/domain/cpu/@mode``, ``/domain/cpu/feature[@name='vmx']/@policy``,
``/domain/devices/disk[2]/source/@file``, ``/domain/name/text()``. An element is keyed by
its ``name`` attribute whenever that is unique among same-named siblings, else by its bare
name when it is the only one, else by a 1-based position, so adding a ``<feature>`` never
renames the others. deepdiff is imported only when ``--diff=json`` is used.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from typing import Any

from lxml import etree

from xmlnest.convert import Outcome


def _name(el: etree._Element) -> str:
    local = str(el.tag).rpartition("}")[2]  # not etree.QName: it refuses odd names
    return f"{el.prefix}:{local}" if el.prefix else local


def flatten(root: etree._Element) -> dict[str, str]:
    """Every attribute and text leaf of the tree, keyed by a stable path."""
    out: dict[str, str] = {}
    stack: list[tuple[etree._Element, str]] = [(root, "/" + _name(root))]
    while stack:
        el, path = stack.pop()
        for k, v in el.attrib.items():
            out[f"{path}/@{str(k).rpartition('}')[2]}"] = v
        if el.text and el.text.strip():
            out[f"{path}/text()"] = el.text.strip()
        kids = [c for c in el if isinstance(c.tag, str)]
        counts = Counter(_name(c) for c in kids)
        names = Counter((_name(c), c.get("name")) for c in kids if c.get("name") is not None)
        seen: Counter[str] = Counter()
        for c in kids:
            n = _name(c)
            seen[n] += 1
            if c.get("name") is not None and names[(n, c.get("name"))] == 1:
                key = f"{n}[@name='{c.get('name')}']"
            elif counts[n] == 1:
                key = n
            else:
                key = f"{n}[{seen[n]}]"
            stack.append((c, f"{path}/{key}"))
    return dict(sorted(out.items()))


def changes(before: etree._Element, after: etree._Element) -> dict[str, Any]:
    """deepdiff's report over the two flattenings, with plain string keys, sorted."""
    from deepdiff import DeepDiff

    a, b = flatten(before), flatten(after)
    diff = DeepDiff(a, b, verbose_level=2)
    report: dict[str, Any] = {}
    for category, items in diff.items():
        entries: dict[str, Any] = {}
        for key, value in items.items():
            leaf = ast.literal_eval(key[len("root[") : -1]) if key.startswith("root[") else key
            entries[leaf] = value
        report[category] = dict(sorted(entries.items()))
    return dict(sorted(report.items()))


def json_line(path: str, outcome: Outcome) -> str:
    """One JSON object (one line) for a changed input; ``action`` says which way nesting
    went (``enable``, or ``disable`` with ``--disable``)."""
    record = {
        "action": outcome.plan.action,
        "path": path,
        "changes": changes(outcome.source.root, outcome.result.root),
    }
    return json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
