"""Validation choice, the structured diff, folders and jobs, the host check from the CLI,
and the README's promises (Quick start == CI, exit codes)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import REPO, Run, require_corpus, run_cli
from tests.strategies import domains
from xmlnest.cli.structured import flatten
from xmlnest.engine import core, document
from xmlnest.engine.plan import Insert, Remove, RemoveAttr, SetAttr, SetText
from xmlnest.model import Options

SAMPLES = REPO / "samples"


def test_auto_uses_libvirt_rng_when_present_and_says_so_once_with_v(tmp_path: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"{i}.xml"
        f.write_bytes((SAMPLES / "intel-l1.xml").read_bytes())
        files.append(str(f))
    r = run_cli(["--arch", "intel", "-v", "--check", *files])
    notes = [ln for ln in r.err_lines if ln.startswith("xmlnest: validating")]
    assert notes == ["xmlnest: validating against libvirt's /usr/share/libvirt/schemas/domain.rng"]
    # The expected case is not news: a pipe or a hook stays quiet about it.
    r = run_cli(["--arch", "intel", str(files[0])])
    assert r.code == 0 and not [ln for ln in r.err_lines if ln.startswith("xmlnest:")], r.err
    # -q hides warnings and notes, not the result: the files that would change.
    quiet = run_cli(["--arch", "intel", "-q", "--check", *files])
    assert quiet.code == 1
    assert quiet.err_lines == [f"{f}: would change" for f in files]


def test_auto_falls_back_to_the_bundled_xsd_naming_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("XMLNEST_SCHEMA_DIR", str(empty))
    r = run_cli(["--arch", "intel", str(SAMPLES / "intel-l1.xml")])
    assert r.code == 0
    assert [ln for ln in r.err_lines if ln.startswith("xmlnest:")] == [
        f"xmlnest: libvirt's domain.rng not found (looked for {empty}/domain.rng (from "
        "XMLNEST_SCHEMA_DIR)); validating against the bundled XSD (install libvirt's schemas, "
        "e.g. Debian's libvirt0, for the full check)"
    ]


@pytest.mark.parametrize("kind", ["auto", "rng", "xsd"])
def test_an_explicit_schema_dir_without_domain_rng_is_a_usage_error(
    tmp_path: Path, kind: str
) -> None:
    r = run_cli(["--validate", kind, "--schema-dir", str(tmp_path), str(SAMPLES / "intel-l1.xml")])
    assert r.code == 2 and r.out == b""
    assert r.err_lines == [
        f"xmlnest: --schema-dir {tmp_path} has no domain.rng; point it at the folder holding "
        "libvirt's domain.rng (e.g. /usr/share/libvirt/schemas)"
    ]
    missing = run_cli(["--schema-dir", str(tmp_path / "nope"), "-"], b"")
    assert missing.code == 2 and "is not a folder" in missing.err


def test_validate_rng_without_a_schema_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XMLNEST_SCHEMA_DIR", str(tmp_path))
    r = run_cli(["--validate", "rng", "-"], b"")
    assert r.code == 2
    assert r.err_lines == [
        f"xmlnest: --validate rng: no domain.rng found; looked for {tmp_path}/domain.rng "
        "(from XMLNEST_SCHEMA_DIR)"
    ]


def test_xsd_never_turns_valid_into_invalid(tmp_path: Path) -> None:
    bad = (
        (SAMPLES / "intel-l1.xml")
        .read_bytes()
        .replace(
            b"<cpu mode='host-model' check='partial'/>",
            b"<cpu mode='custom'>\n    <model>Haswell</model>\n    <feature name='pcid'/>\n  </cpu>",
        )
    )
    r = run_cli(["--arch", "intel", "--validate", "xsd", "-"], bad)
    assert r.code == 0
    assert "XN211" in r.err and "policy" in r.err  # already invalid: warned, still done


def test_json_diff_is_one_object_per_changed_input(tmp_path: Path) -> None:
    a, b = tmp_path / "a.xml", tmp_path / "b.xml"
    a.write_bytes((SAMPLES / "amd-l1.xml").read_bytes())
    b.write_bytes((SAMPLES / "intel-l1.xml").read_bytes())
    r = run_cli(
        [
            "--arch",
            "auto",
            "--host-root",
            str(REPO / "tests/hosts/intel-on"),
            "--diff=json",
            str(a),
            str(b),
        ]
    )
    assert r.code == 0, r.err
    lines = r.out.decode().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["path"] == str(a)
    assert first["changes"] == {
        "values_changed": {
            "/domain/cpu/feature[@name='svm']/@policy": {
                "new_value": "require",
                "old_value": "disable",
            }
        }
    }
    assert lines[0] == json.dumps(first, sort_keys=True, ensure_ascii=False)


def _element_paths(flat: dict[str, str]) -> set[str]:
    return {re.sub(r"/(@[^/]+|text\(\))$", "", k) for k in flat}


def test_deepdiff_paths_are_exactly_the_edited_elements() -> None:
    """Independent check: what deepdiff reports == what the plan says it edited."""
    from hypothesis import given, settings

    from xmlnest.cli.structured import changes

    @settings(max_examples=150, deadline=None)
    @given(domains())
    def check(g):  # type: ignore[no-untyped-def]
        try:
            out = core.process(g.xml, Options(arch=g.target))
        except Exception:
            return
        if not out.changed:
            return
        before = out.source.root
        after = document.parse(out.output).root
        reported: set[str] = set()
        for items in changes(before, after).values():
            reported |= _element_paths(dict.fromkeys(items, ""))
        edited: set[str] = set()
        flat_before, flat_after = flatten(before), flatten(after)
        els = list(before.iter(etree.Element))
        paths_before = _paths_of(before)
        paths_after = _paths_of(after)
        for e in out.plan.edits:
            if isinstance(e, SetAttr | RemoveAttr | SetText):
                edited.add(paths_before[id(els[e.target])])
            elif isinstance(e, Remove):
                edited |= {
                    p
                    for p in _element_paths(flat_before)
                    if p.startswith(paths_before[id(els[e.target])])
                }
            elif isinstance(e, Insert):
                parent = paths_before[id(els[e.parent])]
                edited |= {
                    p
                    for p in _element_paths(flat_after) - _element_paths(flat_before)
                    if p.startswith(parent)
                }
        edited &= _element_paths(flat_before) | _element_paths(flat_after)
        assert reported == edited, (reported, edited, paths_after)

    check()


def _paths_of(root) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """Element path per element, using the flattening's own naming (via a marker attr)."""
    out: dict[int, str] = {}
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        el.set("xn-probe", "1")
        key = next(k for k in flatten(root) if k.endswith("/@xn-probe"))
        del el.attrib["xn-probe"]
        out[id(el)] = key[: -len("/@xn-probe")]
    return out


def _tree(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "web").mkdir(parents=True)
    (root / "db").mkdir()
    (root / "web" / "a.xml").write_bytes((SAMPLES / "intel-l1.xml").read_bytes())
    (root / "db" / "b.xml").write_bytes((SAMPLES / "intel-l1.xml").read_bytes())
    (root / "db" / "net.xml").write_bytes(b"<network><name>default</name></network>\n")
    (root / "web" / "notes.txt").write_text("not xml")
    return root


def test_folder_is_walked_sorted_skipping_non_domains(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    r = run_cli(["--arch", "intel", "--check", str(root)])
    assert r.code == 1
    verdicts = [ln for ln in r.err_lines if ": warning: " not in ln]  # XN203: host-model
    assert verdicts[-3:-1] == [
        f"{root}/db/b.xml: would change",
        f"{root}/web/a.xml: would change",
    ]
    assert re.match(
        r"xmlnest: 2 would change, 0 already nested, 1 skipped, 0 rejected in ", verdicts[-1]
    )


def test_named_non_domain_is_still_rejected(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    assert run_cli(["--check", str(root / "db" / "net.xml")]).code == 3
    r = run_cli(["--check", "--skip-non-domain", str(root / "db" / "net.xml")])
    assert r.code == 0
    assert r.err_lines == []  # a single input: no summary line


def test_include_exclude(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    r = run_cli(["--arch", "intel", "--check", "--include", "web/*", str(root)])
    assert [ln for ln in r.err_lines if ln.endswith(": would change")] == [
        f"{root}/web/a.xml: would change"
    ]
    r = run_cli(["--arch", "intel", "--check", "--exclude", "a.xml", str(root)])
    assert f"{root}/web/a.xml: would change" not in r.err_lines


def test_output_dir_mirrors_the_tree_and_keeps_originals(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    out = tmp_path / "out"
    r = run_cli(["--arch", "intel", "-o", str(out), str(root)])
    assert r.code == 0, r.err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.xml")) == [
        "db/b.xml",
        "web/a.xml",
    ]
    assert b"host-passthrough" in (out / "web" / "a.xml").read_bytes()
    assert (root / "web" / "a.xml").read_bytes() == (SAMPLES / "intel-l1.xml").read_bytes()


def test_jobs_give_the_same_output_in_the_same_order(tmp_path: Path) -> None:
    corpus = require_corpus()
    files = sorted((corpus / "libvirt").glob("*.xml"))[:80]
    one = run_cli(["--arch", "intel", "--diff", "-j", "1", *map(str, files)])
    two = run_cli(["--arch", "intel", "--diff", "-j", "2", *map(str, files)])
    assert one.code == two.code
    assert one.out == two.out and one.out

    def strip(run: Run) -> list[str]:
        return [ln for ln in run.err_lines if " in " not in ln]

    assert strip(one) == strip(two)


def test_host_check_from_the_cli() -> None:
    r = run_cli(["--host-check", "--host-root", str(REPO / "tests/hosts/amd-off")])
    assert r.code == 1
    assert b"modprobe kvm_amd nested=1" in r.out
    j = run_cli(["--host-check", "--json", "--host-root", str(REPO / "tests/hosts/arm")])
    assert j.code == 3
    assert json.loads(j.out)["supported"] is False


def test_readme_quick_start_is_what_ci_runs() -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Quick start\n\n```sh\n(.*?)```", readme, re.S)
    assert block
    commands = [ln for ln in block.group(1).splitlines() if ln.strip()]
    assert len(commands) == 2
    assert commands[0].startswith("pip install . && xmlnest ")
    assert commands[1] in (REPO / ".ci" / "run").read_text()


def test_readme_and_help_list_the_exit_codes_of_the_one_enum() -> None:
    from xmlnest.cli.report import markdown_table
    from xmlnest.errors import ExitCode

    assert markdown_table() in (REPO / "README.md").read_text()
    shown = run_cli(["--help"]).out.decode()
    for code in ExitCode:
        first_words = " ".join(code.meaning.replace("`", "").split()[:4])
        assert f"  {code.value}  {first_words}" in shown, code
    assert [c.value for c in ExitCode] == [0, 1, 2, 3, 130]


def test_progress_bar_on_a_terminal_only(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess
    import sys

    for i in range(60):
        (tmp_path / f"{i:02d}.xml").write_bytes((SAMPLES / "intel-l1.xml").read_bytes())
    cmd = [
        sys.executable,
        "-m",
        "xmlnest",
        "--arch",
        "intel",
        "--no-validate",
        "--check",
        str(tmp_path),
    ]
    master, slave = pty.openpty()
    # Read while it runs: a full terminal buffer would block the child's stderr.
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    on_tty = b"".join(chunks).decode(errors="replace")
    assert proc.wait(timeout=60) == 1
    assert "\rxmlnest [" in on_tty and "] 60/60" in on_tty  # the sink's bar
    piped = subprocess.run(cmd, cwd=REPO, capture_output=True, check=False)
    assert b"[" not in piped.stderr and b"60 would change" in piped.stderr


def test_readme_hook_ids_exist_in_the_manifest() -> None:
    import yaml  # type: ignore[import-untyped]  # pre-commit brings PyYAML

    manifest = {h["id"] for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"- id: ([\w-]+)", readme))
    assert named and named <= manifest
    assert manifest == {"xmlnest", "xmlnest-check"}


def test_a_missing_corpus_skips_even_under_ci_true_and_fails_only_when_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """GitHub and GitLab set CI=true: that alone must not turn a missing ../shared into
    failures; only the project's own XMLNEST_REQUIRE_CORPUS=1 (set by .ci/run) does."""
    from tests import conftest

    monkeypatch.setattr(conftest, "CORPUS", tmp_path / "no-corpus")
    monkeypatch.setenv("CI", "true")
    monkeypatch.delenv("XMLNEST_REQUIRE_CORPUS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs the shared corpus"):
        conftest.require_corpus()
    monkeypatch.setenv("XMLNEST_REQUIRE_CORPUS", "1")
    with pytest.raises(pytest.fail.Exception, match="XMLNEST_REQUIRE_CORPUS=1 forbids"):
        conftest.require_corpus()
