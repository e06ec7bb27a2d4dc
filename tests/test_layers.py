"""The lossless engine is layered: every import goes down, never up or around.

``python tests/test_layers.py`` prints the import graph of the whole package.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "xmlnest"

# The engine, lowest layer first. A module may import only modules of lower layers; the
# transforms package is one layer (its modules may import each other, acyclically).
# Modules not listed are the shell (cli, options, sources, host, ...): the engine never
# imports them.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "engine.layout", "engine.problems", "engine.cpumap"),
    ("engine.plan",),
    ("engine.lossless", "engine.lossless.nodes"),
    ("engine.lossless.skim",),
    ("engine.lossless.tree",),
    ("engine.lossless.style",),
    ("engine.lossless.edit",),
    ("engine.lossless.render",),
    ("engine.document",),
    ("engine.xsd",),
    ("engine.validate",),
    ("engine.expected",),
    ("engine.verify",),
    ("engine.transforms",),
    ("engine.core",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports, at its top or inside a function."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            mod = name.removeprefix("xmlnest.")
            if mod == name:
                continue  # not ours
            # ``from xmlnest.engine.plan import Plan`` names the module plan, not plan.Plan.
            while mod and mod not in known:
                mod = mod.rpartition(".")[0]
            if mod:
                out.add(mod)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, known) - {name} for name, path in mods.items()}


def rank(name: str) -> int | None:
    """The module's layer; ``None`` for the shell."""
    while name:
        if name in RANK:
            return RANK[name]
        name = name.rpartition(".")[0]
    return None


def test_the_layer_table_names_real_modules_and_all_of_lossless() -> None:
    mods = modules()
    assert set(RANK) <= set(mods)
    assert {m for m in mods if m.startswith("engine.lossless")} <= set(RANK)
    assert len(graph()["engine.core"]) >= 4  # the parser sees the imports at all


def test_an_upward_import_is_seen(tmp_path: Path) -> None:
    """What the checks below would see if plan.py reached into the token tree."""
    bad = tmp_path / "plan.py"
    bad.write_text(
        "from xmlnest.engine.lossless import tree\n"
        "def f():\n"
        "    from xmlnest.engine.lossless.edit import without_last_indent\n"
        "    import xmlnest.engine.verify\n"
    )
    found = imports(bad, set(modules()))
    assert found == {"engine.lossless.tree", "engine.lossless.edit", "engine.verify"}
    layers = [rank(t) for t in found]
    assert all(r is not None and r > RANK["engine.plan"] for r in layers)


def test_the_engine_imports_only_lower_layers() -> None:
    wrong = []
    for mod, targets in graph().items():
        here = rank(mod)
        if here is None:
            continue
        for target in sorted(targets):
            there = rank(target)
            same_package = mod.split(".")[:2] == target.split(".")[:2] == ["engine", "transforms"]
            if there is None or (there >= here and not same_package):
                wrong.append(f"{mod} (layer {here}) imports {target} (layer {there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_in_the_engine() -> None:
    g = {
        m: {t for t in ts if rank(t) is not None}
        for m, ts in graph().items()
        if rank(m) is not None
    }
    done: set[str] = set()

    def visit(mod: str, path: tuple[str, ...]) -> None:
        assert mod not in path, "import cycle: " + " -> ".join((*path, mod))
        if mod in done:
            return
        for target in sorted(g.get(mod, ())):
            visit(target, (*path, mod))
        done.add(mod)

    for mod in sorted(g):
        visit(mod, ())


def test_the_plan_never_imports_the_token_tree() -> None:
    assert not {t for t in graph()["engine.plan"] if t.startswith("engine.lossless")}


def test_engine_modules_stay_small_and_say_their_job() -> None:
    for mod, path in modules().items():
        if rank(mod) is None or mod.startswith("engine.transforms"):
            continue  # the transforms' sizes are their own engineers' business
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 300, f"{mod}: over 300 lines"
        doc = ast.get_docstring(ast.parse(text))
        assert doc and doc.splitlines()[0].strip(), f"{mod}: no one-line docstring"


if __name__ == "__main__":
    for mod, targets in sorted(
        graph().items(), key=lambda kv: (rank(kv[0]) is None, rank(kv[0]) or 0, kv[0])
    ):
        layer = rank(mod)
        where = "shell" if layer is None else f"layer {layer}"
        print(f"{mod:20} [{where}] -> {', '.join(sorted(targets)) or '-'}")
