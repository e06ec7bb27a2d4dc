"""``--output-dir``: where each input's copy goes, refused before writing if one would be lost."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from xmlnest.errors import UsageError
from xmlnest.files.inputs import Input

if TYPE_CHECKING:
    from pathlib import Path


def mirror(item: Input) -> Path:
    """Where ``--output-dir`` puts an input's copy, below the output folder: the path
    below the walked folder; a named file's relative path, or its name when the path is
    absolute or climbs out (``..``), so that a copy never lands outside the folder."""
    from pathlib import Path  # only -o runs ask (pathlib stays off the pipe path)

    assert item.path is not None
    if item.base is not None:
        return Path(item.path).relative_to(item.base)
    rel = os.path.normpath(item.path)
    if os.path.isabs(rel) or rel.split(os.sep, 1)[0] == os.pardir:
        return Path(os.path.basename(rel))
    return Path(rel)


def check_output_dir(items: Sequence[Input], output_dir: Path) -> None:
    """Refuse (before anything is written) an ``--output-dir`` run that would lose a file:
    two inputs whose copies go to the same path, or a copy that would overwrite an input
    (``-o .`` over the inputs themselves)."""
    inputs = {os.path.realpath(i.path): i.name for i in items if i.path is not None}
    targets: dict[str, str] = {}
    for item in items:
        if item.path is None:
            continue
        shown = os.path.join(output_dir, mirror(item))
        out = os.path.realpath(shown)
        if out in inputs:
            same = inputs[out] == item.name
            raise UsageError(
                f"--output-dir {output_dir}: the copy of {item.name} would overwrite "
                + ("the file itself" if same else f"the input {inputs[out]}")
                + ", but -o keeps the originals; use -i to rewrite files in place, "
                "or an output folder outside the inputs"
            )
        if out in targets:
            raise UsageError(
                f"--output-dir {output_dir}: {targets[out]} and {item.name} would both be "
                f"written to {shown}; give each folder its own run and output folder"
            )
        targets[out] = item.name
