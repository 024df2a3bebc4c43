"""The house rules, checked on the source: the agent and the controller share only the API and the common
leaf; only the harness imports both; the common leaf imports neither; no module-level import cycles."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"agent": "pagetide.agent", "controller": "pagetide.controller", "harness": "pagetide.harness",
            "proto/pagetide/common": "pagetide.common"}


def modules():
    """module name -> (path, every pagetide import anywhere in it, module-level imports outside TYPE_CHECKING)."""
    out = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            tree = ast.parse(path.read_text())
            every, top = set(), set()
            for node in ast.walk(tree):
                every |= _imported(node, name, path.name == "__init__.py")
            for node in tree.body:
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    continue
                top |= _imported(node, name, path.name == "__init__.py")
            out[name] = (path, every, top)
    return out


def _imported(node, name, is_package):
    found = set()
    if isinstance(node, ast.Import):
        found |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            pkg = name.split(".") if is_package else name.split(".")[:-1]
            base = ".".join(pkg[:len(pkg) - node.level + 1] + ([base] if base else []))
        found.add(base)
        found |= {f"{base}.{a.name}" for a in node.names}
    elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
        if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add(node.args[0].value)
    return {m for m in found if m.startswith("pagetide")}


MODULES = modules()


def test_every_module_of_the_house_is_seen():
    assert {"pagetide.agent.server", "pagetide.controller.controller", "pagetide.harness.sim",
            "pagetide.common.units"} <= set(MODULES)


@pytest.mark.parametrize("side, forbidden", [
    ("pagetide.controller", ("pagetide.agent", "pagetide.harness")),
    ("pagetide.agent", ("pagetide.controller", "pagetide.harness")),
    ("pagetide.common", ("pagetide.agent", "pagetide.controller", "pagetide.harness")),
])
def test_a_side_never_imports_the_other(side, forbidden):
    bad = sorted(f"{m} imports {i}" for m, (_, every, _) in MODULES.items() if m.startswith(side)
                 for i in every if i.startswith(forbidden))
    assert not bad, bad


def test_there_are_no_module_level_import_cycles():
    graph = {m: {i for i in top if i in MODULES and i != m} for m, (_, _, top) in MODULES.items()}
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "active"
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "active":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_the_readme_table_names_every_module():
    readme = (ROOT / "README.md").read_text()
    missing = sorted(str(p.relative_to(ROOT)) for p, _, _ in MODULES.values()
                     if p.name != "__init__.py" and f"`{p.relative_to(ROOT)}`" not in readme
                     and f"`{p.parent.relative_to(ROOT)}/`" not in readme)
    assert not missing, missing
