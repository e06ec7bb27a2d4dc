"""The reference stays true: generated pages equal the code, the man page renders cleanly,
links resolve, the README's Layout is the package tree, completion works as documented."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, need
from tools import gen_docs
from xmlnest.engine.rules import RULES

DOCS = REPO / "docs"
README = REPO / "README.md"

# Pages other branches add; the README links them already. Whoever merges one removes it
# here (the last test below fails once a pending page exists).
PENDING: set[str] = set()


# --- generated pages -------------------------------------------------------------------


def test_generated_pages_are_the_committed_ones(tmp_path: Path) -> None:
    """Regenerated into a temp folder, every page equals the committed one, and docs/rules
    holds no page the rules table does not make."""
    gen_docs.write(tmp_path)
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert made == sorted(gen_docs.pages())
    assert len([m for m in made if m.startswith("rules/XN")]) == len(RULES)
    for name in made:
        committed = DOCS / name
        assert committed.is_file(), f"{committed} missing: run python tools/gen_docs.py"
        assert committed.read_text() == (tmp_path / name).read_text(), (
            f"{committed} is stale: run python tools/gen_docs.py"
        )
    committed_rules = {p.name for p in (DOCS / "rules").iterdir()}
    assert committed_rules == {Path(m).name for m in made if m.startswith("rules/")}


def test_a_stale_or_extra_page_is_seen_and_rewritten(tmp_path: Path) -> None:
    gen_docs.write(tmp_path)
    assert gen_docs.stale(tmp_path) == []
    (tmp_path / "rules" / "XN101.md").write_text("edited by hand\n")
    (tmp_path / "rules" / "XN999.md").write_text("a rule that is gone\n")
    (tmp_path / "xmlnest.1").unlink()
    assert gen_docs.stale(tmp_path) == ["rules/XN101.md", "rules/XN999.md", "xmlnest.1"]
    assert gen_docs.main(["--check", "--docs", str(tmp_path)]) == 1
    assert gen_docs.main(["--docs", str(tmp_path)]) == 0
    assert gen_docs.stale(tmp_path) == []
    assert not (tmp_path / "rules" / "XN999.md").exists()


def test_each_rule_page_shows_what_explain_prints() -> None:
    from xmlnest.engine.rules import explain

    for rule_id in RULES:
        page = (DOCS / "rules" / f"{rule_id}.md").read_text()
        assert (explain(rule_id) or "x").rstrip("\n") in page, rule_id
        assert f"[{rule_id}]({rule_id}.md)" in (DOCS / "rules" / "index.md").read_text()


def test_roff_escapes_what_roff_would_read_as_markup() -> None:
    assert gen_docs.roff(".x -y \\z") == "\\&.x \\-y \\ez"
    assert gen_docs.roff("'quoted'") == "\\&'quoted'"
    assert gen_docs.roff("a → b") == "a \\[u2192] b"


# --- the man page ----------------------------------------------------------------------


def _groff(source: Path) -> subprocess.CompletedProcess[str]:
    groff = shutil.which("groff")
    if groff is None:
        need("groff", "apt-get install groff-base")
        raise AssertionError("unreachable")
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80"}
    # -ww: every warning; -P-cbou: plain text, no bold or underline sequences.
    return subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-P-cbou", str(source)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_man_page_renders_without_warnings_and_says_everything() -> None:
    shown = _groff(DOCS / "xmlnest.1")
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    text = shown.stdout
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "RULES"):
        assert f"\n{section}\n" in text, section
    assert "SHELL COMPLETION" in text and "_XMLNEST_COMPLETE=bash_source xmlnest" in text
    options = text[text.index("\nOPTIONS\n") : text.index("\nEXIT STATUS\n")]
    command, ctx = gen_docs._command()
    names = [n for p in command.get_params(ctx) for n in (*p.opts, *p.secondary_opts)]
    assert len(names) > 30
    for name in names:
        if name.startswith("-"):
            assert re.search(rf"(^|[\s,]){re.escape(name)}\b", options, re.M), name
    exit_status = text[text.index("\nEXIT STATUS\n") : text.index("\nRULES\n")]
    for code in (0, 1, 2, 3, 130):
        assert re.search(rf"^\s+{code}\s", exit_status, re.M), code
    for rule_id in RULES:
        assert rule_id in text
    synopsis = " ".join(gen_docs.SYNOPSIS)
    named = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", synopsis))
    assert named and named <= set(names), named - set(names)


def test_a_man_page_warning_is_seen(tmp_path: Path) -> None:
    """The check above would see a roff mistake: a broken page makes groff warn."""
    broken = tmp_path / "broken.1"
    source = (DOCS / "xmlnest.1").read_text()
    broken.write_text(source.replace(".SH OPTIONS", ".SH OPTIONS\n.XQ not a macro\n\\fQ", 1))
    assert _groff(broken).stderr != ""


# --- completion ------------------------------------------------------------------------


def test_shell_completion_works_as_documented() -> None:
    for page in (DOCS / "cli.md", DOCS / "xmlnest.1"):
        text = page.read_text().replace("\\-", "-")
        for shell in ("bash", "zsh", "fish"):
            assert f"_XMLNEST_COMPLETE={shell}_source xmlnest" in text, (page, shell)
    env = {**os.environ, "_XMLNEST_COMPLETE": "bash_source"}
    cmd = [sys.executable, "-m", "xmlnest"]
    script = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=REPO)
    assert script.returncode == 0
    assert "_XMLNEST_COMPLETE=bash_complete" in script.stdout
    asked = {**os.environ, "_XMLNEST_COMPLETE": "bash_complete"}
    asked.update(COMP_WORDS="xmlnest --arch ", COMP_CWORD="2")
    arches = subprocess.run(cmd, env=asked, capture_output=True, text=True, check=False)
    assert "plain,intel" in arches.stdout.splitlines()


def _rules(prefix: str, *, errors: bool = True) -> list[str]:
    return [
        f"plain,{r.id}"
        for r in sorted(RULES.values(), key=lambda r: r.id)
        if r.id.startswith(prefix) and (errors or r.level != "error")
    ]


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["sam"], ["file,sam"]),  # PATH: the shell's own file names
        (["--check", "samples/intel-l1.xml", "sa"], ["file,sa"]),
        (["-o", "ou"], ["dir,ou"]),
        (["--schema-dir", ""], ["dir,"]),
        (["--host-root", "tests/h"], ["dir,tests/h"]),
        (["--explain", "xn11"], _rules("XN11")),
        (["--ignore", "XN1"], []),  # errors cannot be ignored
        (["--ignore", "XN22"], _rules("XN22", errors=False)),
    ],
)
def test_completion_of_values(words: list[str], expected: list[str]) -> None:
    from click.testing import CliRunner

    from xmlnest.cli.command import _command

    env = {
        "_XMLNEST_COMPLETE": "bash_complete",
        "COMP_WORDS": " ".join(["xmlnest", *words]),
        "COMP_CWORD": str(len(words)),
    }
    result = CliRunner().invoke(_command(), [], prog_name="xmlnest", env=env)
    assert result.exit_code == 0
    assert [ln for ln in result.output.splitlines() if ln] == expected


# --- README and links ------------------------------------------------------------------


def test_the_readme_stays_short() -> None:
    assert len(README.read_bytes()) <= 13_000, "the reference belongs in docs/"


def test_the_readme_layout_is_the_package_tree() -> None:
    text = README.read_text()
    block = re.search(r"## Layout\n\n```\n(.*?)```", text, re.S)
    assert block
    listed = re.findall(r"^xmlnest/(\S+)", block.group(1), re.M)
    package = REPO / "xmlnest"
    actual = [
        p.name + ("/" if p.is_dir() else "")
        for p in sorted(package.iterdir())
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and not p.name.startswith("__"))
    ]
    assert sorted(listed) == sorted(actual)


def test_the_architecture_page_names_every_module() -> None:
    text = (DOCS / "architecture.md").read_text()
    tree = text[text.index("## The tree") : text.index("## The layer rules")]
    missing = [
        p.relative_to(REPO).as_posix()
        for p in sorted((REPO / "xmlnest").rglob("*.py"))
        if p.name != "__init__.py" and p.name not in tree
    ]
    assert not missing, f"docs/architecture.md does not name {missing}"


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    return [t for t in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text) if "://" not in t]


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in [README, *sorted(DOCS.rglob("*.md"))]:
        for target in _links(page):
            resolved = (page.parent / target).resolve()
            name = resolved.relative_to(REPO).as_posix() if resolved.is_relative_to(REPO) else ""
            if not resolved.exists() and name not in PENDING:
                broken.append(f"{page.relative_to(REPO)}: {target}")
    assert not broken


def test_pending_pages_are_still_pending() -> None:
    """A page another branch adds is then checked like the others: drop it from PENDING."""
    assert not [p for p in sorted(PENDING) if (REPO / p).exists()]
    assert {
        (README.parent / t).resolve().relative_to(REPO).as_posix() for t in _links(README)
    } >= PENDING
