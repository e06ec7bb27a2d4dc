"""Independent checks used by several test modules."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys

from lxml import etree

from xmlnest.engine.document import Source
from xmlnest.engine.lossless import tree as cst
from xmlnest.engine.plan import Insert, Plan, Remove, RemoveAttr, SetAttr, SetText
from xmlnest.libvirt.connection import BACKEND_ENV


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def allowed_lines(source: Source, plan: Plan) -> set[int]:
    """Input lines an edit may rewrite: start/end tags of edited elements and their parents."""
    parsed = cst.parse(source.text).parsed
    els = [e for e in parsed if e is not None]  # a full parse skims nothing
    assert len(els) == len(parsed)
    parent_of: dict[int, int] = {}
    for i, el in enumerate(els):
        for child in el.element_children():
            parent_of[next(k for k, e in enumerate(els) if e is child)] = i
    allowed: set[int] = set()

    def tags(i: int) -> None:
        el = els[i]
        allowed.update(range(_line(source.text, el.offset), _line(source.text, el.start_end) + 1))
        allowed.add(_line(source.text, max(el.end - 1, 0)))

    for e in plan.edits:
        if isinstance(e, SetAttr | RemoveAttr | SetText):
            tags(e.target)
            if isinstance(e, SetText):
                el = els[e.target]
                allowed.update(range(_line(source.text, el.offset), _line(source.text, el.end) + 1))
        elif isinstance(e, Remove):
            el = els[e.target]
            allowed.update(range(_line(source.text, el.offset), _line(source.text, el.end) + 1))
            tags(parent_of[e.target])
        elif isinstance(e, Insert):
            tags(e.parent)
    return allowed


def changed_input_lines(before: bytes, after: bytes) -> set[int]:
    """1-based input lines that do not survive byte-for-byte into the output."""
    a = before.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    gone: set[int] = set()
    for tag, i1, i2, _j1, _j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag in ("replace", "delete"):
            gone.update(range(i1 + 1, i2 + 1))
    return gone


_FORCED = re.compile(rb"""(policy=['"])force(['"] name=['"](?:vmx|svm)['"])""")


def round_trip_expectation(enabled: bytes) -> bytes | None:
    """What enabling returns after --disable turned ``enabled`` off: the enabled bytes,
    except where the enabled CPU spelled out the nesting feature in a way a disabled
    feature cannot remember. A ``force`` comes back as ``require``; an explicit vmx/svm in
    host-passthrough or maximum (which pass it anyway) does not come back: ``None``, as
    the bytes are then not predictable from the enabled ones alone."""
    root = etree.fromstring(enabled)
    cpu = root.find("cpu")
    if cpu is not None and cpu.get("mode") in ("host-passthrough", "maximum"):
        named = [f for f in cpu.findall("feature") if f.get("name") in ("vmx", "svm")]
        if any(f.get("policy") not in ("disable", "forbid") for f in named):
            return None
    return _FORCED.sub(rb"\1require\2", enabled)


# Loaded by site on some interpreters (an editable install's finder imports pathlib):
# the probe drops them first, so a module that reappears was imported by the run.
LIGHT = ("pathlib", "dataclasses", "json", "subprocess", "secrets", "difflib")
PROBE = """\
import os, sys
for m in {light!r}:
    sys.modules.pop(m, None)
from xmlnest.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(sorted(m for m in {watch!r} if m in sys.modules))
"""


def loaded_by(args: list[str], watch: tuple[str, ...], backend: str | None = None) -> list[str]:
    """Which of ``watch`` a fresh interpreter has imported after ``xmlnest ARGS`` (with the
    libvirt backend forced, if given)."""
    env = dict(os.environ)
    if backend is not None:
        env[BACKEND_ENV] = backend
    code = PROBE.format(light=LIGHT, watch=watch)
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env
    )
    assert out.stdout.strip(), out.stderr
    loaded: list[str] = eval(out.stdout.strip().splitlines()[-1])  # a list of names we printed
    return loaded
