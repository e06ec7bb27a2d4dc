"""Unified diffs (``a/PATH``, ``b/PATH``, no timestamps) between input and output bytes."""

from __future__ import annotations

from xmlnest.engine.document import Source


def unified(path: str, source: Source, output: bytes) -> str:
    """A git-style unified diff of the decoded texts; empty when nothing changed."""
    import difflib  # only diff runs pay for it

    if output == source.raw:
        return ""
    before = source.text
    after = output[len(source.bom) :].decode(source.encoding)
    a = before.splitlines(keepends=True)
    b = after.splitlines(keepends=True)
    name = path.lstrip("/")
    lines = list(difflib.unified_diff(a, b, f"a/{name}", f"b/{name}", n=3, lineterm="\n"))
    out: list[str] = []
    for ln in lines:
        if ln.endswith("\n"):
            out.append(ln)
        else:
            out.append(ln + "\n\\ No newline at end of file\n")
    return "".join(out)
