"""The package is layered: the folder tree is the architecture, and imports follow it.

Between packages: the engine imports only ``errors`` and ``model`` outside itself;
``hostcheck`` and ``libvirt`` never import ``cli``; nothing imports ``cli`` (but the
``python -m xmlnest`` entry); outside the engine only ``convert`` runs it (imports
``engine.core``): the API, the CLI and domains by name convert through one converter;
the whole package has no import cycle. Inside the engine,
every import goes down its layer table, never up or around.

``python tests/test_layers.py`` prints the import graph of the whole package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xmlnest"

# The engine, lowest layer first. A module may import only modules of lower layers; the
# transforms package is one layer (its modules may import each other, acyclically).
# Modules not listed are outside the engine (cli, files, hostcheck, libvirt, api): the
# engine never imports them.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "model", "engine.hints", "engine.layout", "engine.problems", "engine.cpumap"),
    ("engine.plan", "engine.rules"),
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


def package_rule_breaks(g: dict[str, set[str]]) -> list[str]:
    """Each import that breaks a rule between packages, as ``A imports B: rule``."""
    wrong = []
    for mod, targets in sorted(g.items()):
        top = mod.split(".")[0]
        for target in sorted(targets):
            there = target.split(".")[0]
            if top == "engine" and there not in {"engine", "errors", "model"}:
                wrong.append(f"{mod} imports {target}: the engine imports only errors and model")
            elif top in {"hostcheck", "libvirt"} and there == "cli":
                wrong.append(f"{mod} imports {target}: {top} never imports the CLI")
            elif there == "cli" and top not in {"cli", "__main__"}:
                wrong.append(f"{mod} imports {target}: nothing imports the CLI")
            elif target == "engine.core" and top not in {"engine", "convert"}:
                wrong.append(f"{mod} imports {target}: only convert runs the engine")
    return wrong


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``g`` (its strongly connected parts of two or more modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(g.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_packages_keep_their_layer_rules() -> None:
    g = graph()
    assert {m.split(".")[0] for m in g} >= {"engine", "hostcheck", "libvirt", "files", "cli"}
    assert not package_rule_breaks(g), "\n".join(package_rule_breaks(g))


def test_the_package_has_no_import_cycle() -> None:
    assert not cycles(graph())


@pytest.mark.parametrize(
    ("mod", "target", "rule"),
    [
        ("engine.core", "hostcheck.cpu", "the engine imports only errors and model"),
        ("engine.plan", "files", "the engine imports only errors and model"),
        ("hostcheck.report", "cli.report", "hostcheck never imports the CLI"),
        ("libvirt.status", "cli.report", "libvirt never imports the CLI"),
        ("api", "cli.config", "nothing imports the CLI"),
        ("files.atomic", "cli.sink", "nothing imports the CLI"),
        ("cli.worker", "engine.core", "only convert runs the engine"),
        ("libvirt.source", "engine.core", "only convert runs the engine"),
    ],
)
def test_each_package_rule_fires(mod: str, target: str, rule: str) -> None:
    """One forbidden import added to the real graph is caught, with the rule it breaks."""
    g = {m: set(ts) for m, ts in graph().items()}
    g[mod].add(target)
    assert package_rule_breaks(g) == [f"{mod} imports {target}: {rule}"]


def test_a_cycle_is_seen() -> None:
    g = {m: set(ts) for m, ts in graph().items()}
    g["cli.worker"].add("cli.parallel")  # worker and parallel importing each other
    assert ["cli.parallel", "cli.worker"] in cycles(g)


def test_engine_modules_stay_small_and_say_their_job() -> None:
    for mod, path in modules().items():
        if rank(mod) is None or mod.startswith("engine.transforms") or mod == "engine.rules":
            continue  # the transforms' sizes are their own engineers' business; rules is data
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
