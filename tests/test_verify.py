"""The checks every output passes, each made to fire: one step is broken on purpose and an
in-place run on a real file must stop with exit 3 and leave the file as it was.

Each test also shows that its own net is the one that catches the break (the message
is that net's), and, where another net would not catch it, that without this one the
broken output would reach the file. The indent unit has no net of its own: the golden
pairs in 4-space and tab files are what catch it, as the last test shows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Run, require_libvirt_schema, run_cli
from tests.test_golden import _args
from xmlnest.engine import core as core_module
from xmlnest.engine import plan, transforms, verify
from xmlnest.engine.lossless import edit, render
from xmlnest.engine.lossless.style import Style, sniff_style
from xmlnest.engine.plan import Insert
from xmlnest.engine.transforms import x86
from xmlnest.engine.transforms.common import Builder, Context

# Needs an Insert under <cpu>: the custom model lacks the vmx feature.
CUSTOM = b"""<domain type='kvm'>
  <name>verify</name>
  <memory unit='KiB'>1048576</memory>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <features>
    <acpi/>
  </features>
  <cpu mode='custom' match='exact' check='partial'>
    <model fallback='allow'>Haswell-noTSX</model>
  </cpu>
  <clock offset='utc'/>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
  </devices>
</domain>
"""
FIXED = CUSTOM.replace(
    b"</model>\n", b"</model>\n    <feature policy='require' name='vmx'/>\n"
)  # what the unbroken code writes
OLD = 10**18  # an mtime no rewrite can produce by accident
ARGS = ["--arch", "intel", "--no-validate", "-i"]
MEANING = "internal error: the rewritten XML does not match the planned edit"
SECOND_RUN = "internal error: a second run would change the output again"
TOKEN_TREE = "internal error: the token tree and the parsed tree disagree"


def _file(tmp_path: Path, data: bytes = CUSTOM) -> Path:
    f = tmp_path / "vm.xml"
    f.write_bytes(data)
    os.utime(f, ns=(OLD, OLD))
    return f


def _refused_untouched(r: Run, f: Path, message: str, data: bytes = CUSTOM) -> None:
    """Exit 3, one line with the net's message, and the file exactly as it was."""
    assert r.code == 3, r.err
    assert r.out == b""
    assert r.err_lines == [f"{f}: {message}; nothing was written; please report this input"]
    assert f.read_bytes() == data
    assert os.stat(f).st_mtime_ns == OLD
    assert [p.name for p in f.parent.iterdir()] == [f.name]  # no temp file left


def test_unbroken_the_file_is_fixed(tmp_path: Path) -> None:
    """The control: the same run without a break rewrites the file."""
    f = _file(tmp_path)
    r = run_cli([*ARGS, str(f)])
    assert r.code == 0, r.err
    assert f.read_bytes() == FIXED


# ------------------------------------------------------------------------- meaning check


def _apply_also_under_root(real: Callable[..., None]) -> Callable[..., None]:
    """edit.apply, broken: every insert also lands under the root (a wrong parent)."""

    def broken(doc: Any, els: Any, edits: tuple[plan.Edit, ...], style: Style) -> None:
        strays = tuple(Insert(0, e.element) for e in edits if isinstance(e, Insert) and e.parent)
        real(doc, els, edits + strays, style)

    return broken


def test_meaning_check_catches_an_insert_under_the_wrong_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edit, "apply", _apply_also_under_root(edit.apply))
    f = _file(tmp_path)
    _refused_untouched(run_cli([*ARGS, str(f)]), f, MEANING)


def test_without_the_meaning_check_that_insert_would_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stray <feature> under <domain> needs no further nesting edit, so only the
    meaning check stands between it and the file."""
    monkeypatch.setattr(edit, "apply", _apply_also_under_root(edit.apply))
    monkeypatch.setattr(verify, "check_meaning", lambda *a: None)
    f = _file(tmp_path)
    r = run_cli([*ARGS, str(f)])
    assert r.code == 0, r.err
    assert f.read_bytes().count(b"name='vmx'") == 2


# -------------------------------------------------------------------- re-parse


def test_reparse_catches_a_rendering_that_is_not_well_formed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The output is parsed again by lxml before anything else looks at it: a rendering
    that drops a closing '>' is refused as xmlnest's own fault, not the input's."""
    real = render.render

    def broken(*args: Any) -> str:
        return real(*args).replace("</cpu>", "</cpu", 1)

    monkeypatch.setattr(core_module, "render", broken)
    f = _file(tmp_path)
    r = run_cli([*ARGS, str(f)])
    assert r.code == 3, r.err
    assert r.err_lines[0].startswith(f"{f}: internal error: the rewritten XML is not well-formed (")
    assert r.err_lines[0].endswith("; nothing was written; please report this input")
    assert f.read_bytes() == CUSTOM and os.stat(f).st_mtime_ns == OLD


# -------------------------------------------------------------------- idempotence re-plan


def _flipping(ctx: Context, b: Builder) -> None:
    """The Intel transform, broken: it also flips <clock offset> on every run."""
    x86.plan(ctx, "intel", b)
    clock = ctx.child(ctx.root, "clock")
    assert clock is not None
    b.set(clock, "offset", "localtime" if clock.get("offset") == "utc" else "utc")


def test_idempotence_replan_catches_a_transform_that_never_settles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        transforms.REGISTRY, "intel", transforms.REGISTRY["intel"]._replace(enable=_flipping)
    )
    f = _file(tmp_path)
    _refused_untouched(run_cli([*ARGS, str(f)]), f, SECOND_RUN)


def test_without_the_replan_the_flip_would_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flip is the planned edit, so the meaning check accepts it: only the re-plan
    notices that the next run would flip it back."""
    monkeypatch.setitem(
        transforms.REGISTRY, "intel", transforms.REGISTRY["intel"]._replace(enable=_flipping)
    )
    real_plan = transforms.plan

    def no_replan(*args: Any, advice: bool = True, **kw: Any) -> plan.Plan:
        if not advice:  # the idempotence re-plan
            return plan.Plan(target="intel")
        return real_plan(*args, advice=advice, **kw)

    monkeypatch.setattr(transforms, "plan", no_replan)  # the module core.py plans through
    f = _file(tmp_path)
    r = run_cli([*ARGS, str(f)])
    assert r.code == 0, r.err
    assert f.read_bytes() == FIXED.replace(b"offset='utc'", b"offset='localtime'")


# ------------------------------------------------------------------------ token tree


def test_token_tree_that_loses_an_element_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tokenizer, broken: it misses <name>, so every later index is off by one."""
    real = render.lossless_tree

    def losing(*args: Any) -> Any:
        doc = real(*args)
        del doc.parsed[1]
        return doc

    monkeypatch.setattr(render, "lossless_tree", losing)
    f = _file(tmp_path)
    _refused_untouched(run_cli([*ARGS, str(f)]), f, TOKEN_TREE)


# ------------------------------------------------------------------------ schema check


NO_FEATURE_RNG = """<grammar xmlns="http://relaxng.org/ns/structure/1.0">
  <start><ref name="any"/></start>
  <define name="any">
    <element><anyName><except><name>feature</name></except></anyName>
      <zeroOrMore><choice><attribute><anyName/></attribute><text/><ref name="any"/></choice>
      </zeroOrMore>
    </element>
  </define>
</grammar>
"""


def test_schema_check_refuses_an_output_that_breaks_a_valid_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A schema that forbids <feature>: the input passes it, the output cannot (XN110).
    Without the check (second run) the invalid output would be written."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "domain.rng").write_text(NO_FEATURE_RNG)
    folder = tmp_path / "vms"
    folder.mkdir()
    f = _file(folder)
    args = ["--arch", "intel", "--schema-dir", str(schemas), "-i", str(f)]
    r = run_cli(args)
    assert r.code == 3, r.err
    assert len(r.err_lines) == 1 and r.err.startswith(f"{f}:"), r.err
    assert ": XN110 the result would not validate against" in r.err
    assert "nothing was written" in r.err
    assert f.read_bytes() == CUSTOM and os.stat(f).st_mtime_ns == OLD
    assert [p.name for p in folder.iterdir()] == ["vm.xml"]
    monkeypatch.setattr(verify, "check_valid", lambda *a: ())
    assert run_cli(args).code == 0
    assert f.read_bytes() == FIXED


# ------------------------------------------------------------------------ indent unit

GOLDEN = REPO / "tests" / "golden"
INSERTS_WITH_CHILDREN = ["intel/model-arg-no-cpu-4space", "power9/no-features-tabs"]


@pytest.mark.parametrize("case", INSERTS_WITH_CHILDREN)
def test_goldens_catch_an_indent_unit_forced_to_two_spaces(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The style sniffer, broken: the indent unit is always two spaces. The children of
    an inserted element then sit at the wrong depth, and the golden pair (4-space, tab)
    no longer matches; unbroken, it does."""
    require_libvirt_schema()
    folder = GOLDEN / case
    args = [*_args(folder), "--schema-dir", "/usr/share/libvirt/schemas"]
    src = (folder / "input.xml").read_bytes()
    expected = (folder / "expected.xml").read_bytes()
    assert run_cli([*args, "-"], src).out == expected
    real = sniff_style  # render.py's own name for it is the seam patched below
    monkeypatch.setattr(render, "sniff_style", lambda *a: real(*a)._replace(indent_unit="  "))
    broken = run_cli([*args, "-"], src)
    assert broken.code == 0, broken.err  # no net notices: the meaning is the same
    assert broken.out != expected
    outer = b"    " if b"    <os>" in src else b"\t"
    assert outer + b"  <" in broken.out  # a child one two-space unit deeper than its parent
