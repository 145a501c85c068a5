"""The import layering of docs/architecture.md, checked on the source of every module (ast, no import).

Layers, lowest first; a module may import its own layer and the layers below, never a layer above:

0. foundation: the package itself, ``errors``, ``storage``, ``run_layout``, ``plotting``, ``formats``
1. genetics: ``genetics`` (pure array functions: imports nothing else of genosynth)
2. domain: models, phenotypes, gwas, compare, datasets, report (pages and plots), prep and cost helpers,
   the typed run state and the run configuration
3. steps: the modules named by a target in ``pipeline.STEPS`` (no step imports another step)
4. orchestration: ``pipeline`` and ``runners``
5. cli: ``cli`` and ``__main__``
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "genosynth"
SOURCE = Path(__file__).resolve().parents[2] / "services" / PACKAGE

FOUNDATION, GENETICS, DOMAIN, STEPS, ORCHESTRATION, CLI = range(6)
LAYER_NAMES = ("foundation", "genetics", "domain", "steps", "orchestration", "cli")
# First matching prefix wins (longest first); "genosynth" alone is the package's __init__.
PREFIXES = {
    "genosynth": FOUNDATION,
    "genosynth.errors": FOUNDATION,
    "genosynth.storage": FOUNDATION,
    "genosynth.run_layout": FOUNDATION,
    "genosynth.plotting": FOUNDATION,
    "genosynth.formats": FOUNDATION,
    "genosynth.genetics": GENETICS,
    "genosynth.models": DOMAIN,
    "genosynth.phenotypes": DOMAIN,
    "genosynth.gwas": DOMAIN,
    "genosynth.compare": DOMAIN,
    "genosynth.datasets": DOMAIN,
    "genosynth.report": DOMAIN,
    "genosynth.prep": DOMAIN,
    "genosynth.train": DOMAIN,
    "genosynth.generate": DOMAIN,
    "genosynth.cost": DOMAIN,
    "genosynth.run_state": DOMAIN,
    "genosynth.run_config": DOMAIN,
    "genosynth.resources": DOMAIN,
    "genosynth.compare_records": DOMAIN,
    "genosynth.pipeline": ORCHESTRATION,
    "genosynth.runners": ORCHESTRATION,
    "genosynth.cli": CLI,
    "genosynth.__main__": CLI,
}

# Imports that break the layering today, each with the reason it is still there. Fixing one means
# deleting its line here; adding one needs a reason a reviewer accepts.
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}


def module_name(path: Path, root: Path = SOURCE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The longest prefix of ``name`` that is one of our modules (``a.b.c`` -> module ``a.b`` when c is
    an attribute of it)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(source: str, importer: str, modules: set[str]) -> set[str]:
    """Our modules that ``source`` imports anywhere (top level, in functions, under TYPE_CHECKING)."""
    package = importer if f"{importer}.__init__" in modules else importer.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against the importer's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                target = _resolve(name, modules)
                if target is not None and target != importer:
                    found.add(target)
    return found


def import_graph(root: Path = SOURCE) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports, for every ``.py`` file under ``root``."""
    files = {module_name(p, root): p for p in root.rglob("*.py")}
    modules = set(files) | {f"{m}.__init__" for m, p in files.items() if p.name == "__init__.py"}
    return {m: imports_of(p.read_text(encoding="utf-8"), m, modules) for m, p in files.items()}


def layer_of(module: str, steps: set[str]) -> int:
    if module in steps:
        return STEPS
    for prefix in sorted(PREFIXES, key=len, reverse=True):
        # The bare package name stands for its __init__ only, not for every module under it.
        if module == prefix or (prefix != PACKAGE and module.startswith(prefix + ".")):
            return PREFIXES[prefix]
    raise KeyError(f"{module} is in no layer: add it to PREFIXES and docs/architecture.md")


def violations(graph: dict[str, set[str]], steps: set[str]) -> set[tuple[str, str]]:
    """Every import ``(importer, imported)`` that breaks a rule of the layering."""
    bad = set()
    for importer, targets in graph.items():
        own = layer_of(importer, steps)
        for target in targets:
            if layer_of(target, steps) > own:
                bad.add((importer, target))  # upwards
            elif own == GENETICS and layer_of(target, steps) != GENETICS:
                bad.add((importer, target))  # genetics stays pure: no storage, formats or Dataset
            elif importer in steps and target in steps:
                bad.add((importer, target))  # steps share through a lower layer, never each other
    return bad


def step_modules() -> set[str]:
    from genosynth.pipeline import STEPS as DAG

    return {step.target.partition(":")[0] for step in DAG}


def test_every_module_is_in_a_layer():
    steps = step_modules()
    for module in import_graph():
        layer_of(module, steps)


def test_no_import_breaks_the_layering():
    found = violations(import_graph(), step_modules())
    unexpected = sorted(found - set(KNOWN_VIOLATIONS))
    stale = sorted(set(KNOWN_VIOLATIONS) - found)
    assert not stale, f"known violations that no longer occur (remove them): {stale}"
    assert not unexpected, "imports against docs/architecture.md:\n" + "\n".join(
        f"  {a} ({LAYER_NAMES[layer_of(a, step_modules())]}) imports {b}" for a, b in unexpected)


def test_the_genetics_core_imports_only_itself():
    graph = import_graph()
    genetics = {m for m in graph if m.startswith("genosynth.genetics")}
    assert genetics, "no genetics module found"
    assert all(t.startswith("genosynth.genetics") for m in genetics for t in graph[m])


def test_the_graph_sees_lazy_relative_and_type_checking_imports(tmp_path):
    root = tmp_path / PACKAGE
    (root / "gwas").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "storage.py").write_text("")
    (root / "gwas" / "__init__.py").write_text("")
    (root / "gwas" / "step.py").write_text("")
    (root / "gwas" / "engine.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import step\n"
        "if TYPE_CHECKING:\n    from genosynth import storage\n"
        "def f():\n    import genosynth.gwas.step as s\n")
    graph = import_graph(root)
    assert graph["genosynth.gwas.engine"] == {"genosynth.gwas.step", "genosynth.storage"}


@pytest.mark.parametrize(("importer", "imported", "rule"), [
    ("genosynth.genetics.kinship", "genosynth.formats.dataset", "genetics is pure"),
    ("genosynth.gwas.engine", "genosynth.runners.local", "upwards"),
    ("genosynth.formats.bimbam", "genosynth.genetics.dosages", "upwards"),
    ("genosynth.prep.step", "genosynth.train.step", "step imports step"),
    ("genosynth.compare.privacy", "genosynth.cli", "upwards"),
])
def test_the_checker_fails_on_a_violation(importer, imported, rule):
    steps = {"genosynth.prep.step", "genosynth.train.step"}
    graph = {importer: {imported}, "genosynth.gwas.lmm": {"genosynth.genetics.device"},
             "genosynth.train.step": {"genosynth.models.base", "genosynth.storage"},
             "genosynth.cli.data_commands": {"genosynth.prep.step"}}
    assert violations(graph, steps) == {(importer, imported)}, rule


def test_unknown_modules_must_be_placed():
    with pytest.raises(KeyError, match="no layer"):
        layer_of("genosynth.new_module", set())
    with pytest.raises(KeyError, match="no layer"):
        layer_of("genosynth_extra.thing", set())
    assert layer_of("genosynth", set()) == FOUNDATION
