"""The package's shape: no import cycle between its modules, and an honest public/private line.

* No module-level import cycle among pyevonas modules (imports under ``if TYPE_CHECKING:`` do not
  run, so they do not count). The packages' layering is import-linter's (pyproject.toml); this is
  the finer check, module by module, that a package and its own modules do not import each other
  either (as ``pyevonas.cli`` and its command modules once did).
* Every non-private module says what it offers in ``__all__``, and each name there exists.
* No module imports another module's private (``_underscore``) names; the compiled extension
  ``pyevonas._core`` is the one private name that is imported.
* The code of README.md and docs/*.md imports only names that their module lists in ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import grimp
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "pyevonas"
#: Optional stacks: a module that needs one that is not installed is not checked here.
OPTIONAL = {
    "torch", "torchvision", "matplotlib", "scipy", "ray", "sklearn", "ptflops",
    "pymoo", "deap", "optuna", "tensorboard", "mlflow", "onnx", "onnxruntime",
}  # fmt: skip


def _graph() -> Any:
    # No cache: grimp's cache would be written into the repository and can go stale between runs.
    return grimp.build_graph("pyevonas", exclude_type_checking_imports=True, cache_dir=None)


GRAPH = _graph()


def _cycles(graph: Any) -> list[list[str]]:
    """The strongly connected components of the module graph that hold a cycle (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.find_modules_directly_imported_by(node):
                    found.append(sorted(component))
    return found


def _describe(graph: Any, component: list[str]) -> str:
    edges = []
    for importer in component:
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported in component:
                lines = [d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)]
                edges.append(f"  {importer} -> {imported} (line {', '.join(map(str, lines))})")
    return "\n".join(edges)


def test_no_import_cycle() -> None:
    # pyproject.toml's layers contract ignores one edge, pyevonas.runs.importer -> pyevonas.search.control
    # (the importer derives the original runs' control windows with the search's control functions).
    # Nothing of the search imports the importer, so that edge is in no cycle and needs no exception here.
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles among pyevonas modules:\n" + "\n".join(_describe(GRAPH, c) for c in cycles)


def test_the_cycle_check_sees_cycles() -> None:
    class Graph:
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}

        def find_modules_directly_imported_by(self, module: str) -> set[str]:
            return self.edges.get(module, set())

    assert _cycles(Graph()) == [["a", "b", "c"], ["d"]]


# ---------------------------------------------------------------------- __all__
def _is_private(module: str) -> bool:
    return any(part.startswith("_") for part in module.split("."))


PUBLIC_MODULES = sorted(m for m in GRAPH.modules if not _is_private(m))


def _import(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OPTIONAL:
            pytest.skip(f"{module} needs {exc.name}")
        raise


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_module_lists_its_names(name: str) -> None:
    module = _import(name)
    names = getattr(module, "__all__", None)
    assert isinstance(names, list | tuple), f"{name} has no __all__"
    assert all(isinstance(n, str) for n in names)
    assert len(set(names)) == len(names), f"{name}.__all__ repeats a name"
    private = [n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))]
    assert not private, f"{name}.__all__ lists private names {private}"
    missing = []
    for n in names:
        try:
            getattr(module, n)
        except ModuleNotFoundError as exc:  # a lazy name of the package whose stack is missing
            if (exc.name or "").split(".")[0] not in OPTIONAL:
                raise
        except AttributeError:
            missing.append(n)
    assert not missing, f"{name}.__all__ lists names it does not define: {missing}"


def test_the_public_modules_are_found() -> None:
    assert {"pyevonas", "pyevonas.cli", "pyevonas.metric.api", "pyevonas.training.loop"} <= set(PUBLIC_MODULES)
    assert "pyevonas.cli._common" not in PUBLIC_MODULES and "pyevonas.__main__" not in PUBLIC_MODULES


# ---------------------------------------------------------------------- private names
def _private_imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pyevonas":
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__") and alias.name != "_core":
                    out.append(f"{path.relative_to(REPO)}:{node.lineno}: from {node.module} import {alias.name}")
    return out


def test_no_module_imports_private_names_of_another() -> None:
    found = [hit for path in sorted(PACKAGE.rglob("*.py")) for hit in _private_imports(path)]
    assert not found, "private names imported across modules (make them public or move them):\n" + "\n".join(found)


# ---------------------------------------------------------------------- docs
_FENCE = re.compile(r"^```[\w-]*\n(?P<code>.*?)^```", re.DOTALL | re.MULTILINE)
_FROM_IMPORT = re.compile(
    r"^\W*from\s+(?P<module>pyevonas[\w.]*)\s+import\s+(?P<names>\([^)]*\)|[^\n#]+)", re.MULTILINE
)
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _module_file(module: str) -> Path | None:
    base = REPO.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _static_all(path: Path) -> list[str] | None:
    """A module's ``__all__``, read from its source (no import: the training modules need torch)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert node.value is not None
            return [str(v) for v in ast.literal_eval(node.value)]
    return None


def _doc_imports(page: Path) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of every ``from pyevonas... import name`` in a page's code blocks."""
    text = page.read_text(encoding="utf-8")
    out = []
    for block in _FENCE.finditer(text):
        for match in _FROM_IMPORT.finditer(block["code"]):
            line = text.count("\n", 0, block.start("code") + match.start()) + 1
            for item in match["names"].strip("()").split(","):
                name = item.split(" as ")[0].strip()
                if name:
                    out.append((line, match["module"], name))
    return out


def test_docs_import_only_public_names() -> None:
    problems = []
    seen = 0
    for page in PAGES:
        for line, module, name in _doc_imports(page):
            seen += 1
            where = f"{page.relative_to(REPO)}:{line}: from {module} import {name}"
            path = _module_file(module)
            if path is None:
                problems.append(f"{where}: no such module")
                continue
            if _module_file(f"{module}.{name}") is not None and not name.startswith("_"):
                continue  # a submodule
            names = _static_all(path)
            if names is None:
                problems.append(f"{where}: {module} has no __all__")
            elif name not in names:
                problems.append(f"{where}: not in {module}.__all__")
    assert seen > 10, "the docs' imports were not found"
    assert not problems, "\n".join(problems)
