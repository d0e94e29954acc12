"""The hand-written stubs of the Rust extension (pyevonas/_core.pyi) match the compiled module.

In the fast tier, so that a changed ``_core`` signature fails ``make test``: the stub's names and
every function's, constructor's and method's parameters (names, kinds, defaults) are compared with
what the compiled module says of itself (``inspect.signature``, from the text signatures PyO3
writes), in milliseconds. mypy's stubtest, which checks the types too, takes half a minute: it runs
in the slow tier.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import pyevonas
from pyevonas import _core

STUB = Path(pyevonas.__file__).resolve().parent / "_core.pyi"

NO_DEFAULT = "<no default>"
ANY_DEFAULT = "<a default>"  # the stub's ``= ...``
Param = tuple[str, str, Any]  # name, kind (inspect.Parameter kind name), default
# What a compiled class has without the stub declaring it (its constructor is the class's signature).
IMPLICIT_MEMBERS = {"__doc__", "__module__", "__new__", "__dict__", "__weakref__", "__qualname__"}


def _default(node: ast.expr | None) -> Any:
    if node is None:
        return NO_DEFAULT
    value = ast.literal_eval(node)
    return ANY_DEFAULT if value is Ellipsis else value


def _stub_params(fn: ast.FunctionDef, drop_first: bool) -> list[Param]:
    """The parameters a stub ``def`` declares (without ``self``/``cls`` when ``drop_first``)."""
    args = fn.args
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params: list[Param] = [
        (a.arg, "POSITIONAL_ONLY" if i < len(args.posonlyargs) else "POSITIONAL_OR_KEYWORD", _default(d))
        for i, (a, d) in enumerate(zip(positional, defaults, strict=True))
    ]
    if args.vararg is not None:
        params.append((args.vararg.arg, "VAR_POSITIONAL", NO_DEFAULT))
    params += [(a.arg, "KEYWORD_ONLY", _default(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True)]
    if args.kwarg is not None:
        params.append((args.kwarg.arg, "VAR_KEYWORD", NO_DEFAULT))
    return params[1:] if drop_first else params


def _compiled_params(obj: Any, drop_first: bool) -> list[Param] | str:
    """The parameters of a compiled callable, or why there are none to compare."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError) as exc:
        return f"no signature ({exc})"
    params = [
        (p.name, p.kind.name, NO_DEFAULT if p.default is inspect.Parameter.empty else p.default)
        for p in signature.parameters.values()
    ]
    return params[1:] if drop_first else params


def _same_params(stub: list[Param], compiled: list[Param]) -> bool:
    if len(stub) != len(compiled):
        return False
    for (s_name, s_kind, s_default), (c_name, c_kind, c_default) in zip(stub, compiled, strict=True):
        if (s_name, s_kind) != (c_name, c_kind):
            return False
        if s_default == ANY_DEFAULT:
            if c_default == NO_DEFAULT:
                return False
        elif s_default != c_default or type(s_default) is not type(c_default):
            return False
    return True


def _decorators(fn: ast.FunctionDef) -> set[str]:
    return {d.id if isinstance(d, ast.Name) else ast.unparse(d) for d in fn.decorator_list}


def _render(params: list[Param]) -> str:
    """The parameters as a signature reads, with the kinds the markers say."""
    parts, seen_star = [], False
    for i, (name, kind, default) in enumerate(params):
        if kind == "KEYWORD_ONLY" and not seen_star:
            parts.append("*")
        seen_star = seen_star or kind in ("KEYWORD_ONLY", "VAR_POSITIONAL")
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind, "")
        parts.append(prefix + name + ("" if default == NO_DEFAULT else f"={default!r}"))
        if kind == "POSITIONAL_ONLY" and (i + 1 == len(params) or params[i + 1][1] != "POSITIONAL_ONLY"):
            parts.append("/")
    return "(" + ", ".join(parts) + ")"


def _compare_callable(where: str, fn: ast.FunctionDef, obj: Any, stub_self: bool, compiled_self: bool) -> list[str]:
    """Compare a stub ``def`` with a compiled callable, leaving out ``self``/``cls`` where they have it."""
    if "overload" in _decorators(fn):
        return []
    stub = _stub_params(fn, stub_self)
    compiled = _compiled_params(obj, compiled_self)
    if isinstance(compiled, str):
        return [f"{where}: the stub declares {_render(stub)}, the compiled one has {compiled}"]
    if not _same_params(stub, compiled):
        return [f"{where}: the stub declares {_render(stub)}, the compiled one takes {_render(compiled)}"]
    return []


def _compare_class(name: str, node: ast.ClassDef, cls: Any) -> list[str]:
    problems: list[str] = []
    declared: set[str] = set()
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            declared.add(item.target.id)
            if not hasattr(cls, item.target.id):
                problems.append(f"{name}.{item.target.id}: in the stub, not in the compiled class")
        if not isinstance(item, ast.FunctionDef):
            continue
        declared.add(item.name)
        where = f"{name}.{item.name}"
        if item.name == "__new__":
            # The class's own signature is its constructor's, without cls.
            problems += _compare_callable(f"{name}()", item, cls, stub_self=True, compiled_self=False)
            continue
        if item.name not in vars(cls):
            problems.append(f"{where}: in the stub, not in the compiled class")
            continue
        member = inspect.getattr_static(cls, item.name)
        decorators = _decorators(item)
        is_property = isinstance(member, property | types.GetSetDescriptorType | types.MemberDescriptorType)
        if ("property" in decorators) != is_property:
            problems.append(f"{where}: a property in one, a method in the other")
        elif not is_property:
            if "classmethod" in decorators:  # bound: its signature has no cls
                problems += _compare_callable(where, item, getattr(cls, item.name), stub_self=True, compiled_self=False)
            else:
                has_self = "staticmethod" not in decorators
                problems += _compare_callable(where, item, member, stub_self=has_self, compiled_self=has_self)
    for extra in sorted(set(vars(cls)) - declared - IMPLICIT_MEMBERS):
        problems.append(f"{name}.{extra}: in the compiled class, not in the stub")
    return problems


def stub_mismatches(stub_text: str, module: types.ModuleType) -> list[str]:
    """Where a stub disagrees with the compiled module: each line names the place and both sides."""
    tree = ast.parse(stub_text)
    problems: list[str] = []
    declared: set[str] = set()
    stub_all: list[str] | None = None
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]:
            stub_all = ast.literal_eval(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            declared.add(name)
            if not hasattr(module, name):
                problems.append(f"{name}: in the stub, not in the compiled module")
                continue
            expected = getattr(builtins, ast.unparse(node.annotation), None)
            value = getattr(module, name)
            if isinstance(expected, type) and type(value) is not expected:
                problems.append(f"{name}: the stub says {expected.__name__}, the module holds a {type(value).__name__}")
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            declared.add(node.name)
            if not hasattr(module, node.name):
                problems.append(f"{node.name}: in the stub, not in the compiled module")
            elif isinstance(node, ast.ClassDef):
                problems += _compare_class(node.name, node, getattr(module, node.name))
            else:
                problems += _compare_callable(
                    f"{node.name}()", node, getattr(module, node.name), stub_self=False, compiled_self=False
                )
    public = {n for n in vars(module) if not n.startswith("_") or n == "__version__"}
    for extra in sorted(public - declared):
        problems.append(f"{extra}: in the compiled module, not in the stub")
    compiled_all = getattr(module, "__all__", None)
    if compiled_all is not None and (stub_all is None or sorted(stub_all) != sorted(compiled_all)):
        problems.append(f"__all__: the stub's {stub_all} is not the module's {sorted(compiled_all)}")
    return problems


def test_core_stub_signatures_match_the_compiled_module() -> None:
    problems = stub_mismatches(STUB.read_text(), _core)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        ("def substitution(self, ta: int,", "def substitution(self, type_a: int,", "ScoreTable.substitution"),
        ('schema: object = "default"', 'schema: object = "paper"', "similarity()"),
        ("def scores(self, split: int | None = None, n_threads", "def scores(self, n_threads", "Population.scores"),
        ("def __new__(cls, table: ScoreTable) -> Archive", "def __new__(cls, table: ScoreTable, k: int) -> Archive",
         "Archive()"),
        ("def max_threads() -> int: ...", "", "max_threads: in the compiled module, not in the stub"),
        ("def max_threads() -> int: ...", "def max_threads() -> int: ...\ndef min_threads() -> int: ...",
         "min_threads: in the stub, not in the compiled module"),
        ("    def n_genes(self) -> int: ...", "    def n_genes(self) -> int: ...\n    def clear(self) -> None: ...",
         "Archive.clear: in the stub"),
        ("SMALL_CELLS: int", "SMALL_CELLS: str", "SMALL_CELLS: the stub says str"),
        ('    "max_threads",\n', "", "__all__"),
    ],
)  # fmt: skip
def test_a_stub_that_disagrees_with_the_module_is_caught(old: str, new: str, named: str) -> None:
    text = STUB.read_text()
    assert old in text, f"the stub no longer has {old!r}: update this example"
    problems = stub_mismatches(text.replace(old, new, 1), _core)
    assert any(named in line for line in problems), problems


@pytest.mark.slow
def test_core_stubs_pass_mypy_stubtest() -> None:
    pytest.importorskip("mypy.stubtest")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "pyevonas._core"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
