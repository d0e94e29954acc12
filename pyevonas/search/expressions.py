"""Control expressions: safe arithmetic of ``gen`` and ``n_gen`` written in run.toml."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

from pyevonas.errors import ConfigError

# ---------------------------------------------------------------------- control expressions
# A control margin can be written in run.toml as an expression of `gen` and `n_gen`, e.g.
# control_upper = "0.1 - 0.2*(gen/n_gen)**2 if gen < n_gen/2 else 0.05". Only arithmetic,
# comparisons, `x if c else y`, and min/max/abs are allowed: the expression is evaluated by
# walking its AST, never by eval(), so a config file cannot run code.
_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
    ast.Mod: lambda a, b: a % b,
    ast.FloorDiv: lambda a, b: a // b,
}
_CMPOPS: dict[type, Callable[[float, float], bool]] = {
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
}
_FUNCS: dict[str, Callable[..., float]] = {
    "min": min,
    "max": max,
    "abs": abs,
    "sqrt": math.sqrt,
}
_NAMES = ("gen", "n_gen")


def compile_expression(text: str) -> Callable[[int, int], float]:
    """Compile a margin expression of ``gen`` and ``n_gen`` into a function.

    Raises:
        ConfigError: a syntax error, or a name, function or operator that is not allowed.
    """
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ConfigError(f"not a valid expression {text!r}: {exc.msg}") from None
    _validate_node(tree.body, text)

    def evaluate(gen: int, n_gen: int) -> float:
        return float(_eval_node(tree.body, {"gen": float(gen), "n_gen": float(n_gen)}))

    evaluate.__doc__ = text
    # Evaluate once so that e.g. a division by zero at gen=1 surfaces now, not mid-run.
    try:
        evaluate(1, 20)
    except (ArithmeticError, ValueError) as exc:
        raise ConfigError(f"expression {text!r} fails at gen=1, n_gen=20: {exc}") from None
    return evaluate


def _validate_node(node: ast.AST, text: str) -> None:
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
            raise ConfigError(f"only numbers are allowed as constants in {text!r}")
    elif isinstance(node, ast.Name):
        if node.id not in _NAMES:
            raise ConfigError(f"unknown name {node.id!r} in {text!r} (use gen and n_gen)")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise ConfigError(f"operator {type(node.op).__name__} is not allowed in {text!r}")
        _validate_node(node.left, text)
        _validate_node(node.right, text)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ConfigError(f"operator {type(node.op).__name__} is not allowed in {text!r}")
        _validate_node(node.operand, text)
    elif isinstance(node, ast.Compare):
        if any(type(op) not in _CMPOPS for op in node.ops):
            raise ConfigError(f"comparison not allowed in {text!r}")
        for child in (node.left, *node.comparators):
            _validate_node(child, text)
    elif isinstance(node, ast.IfExp):
        for child in (node.test, node.body, node.orelse):
            _validate_node(child, text)
    elif isinstance(node, ast.BoolOp):
        for child in node.values:
            _validate_node(child, text)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS or node.keywords:
            raise ConfigError(f"only min(), max(), abs() and sqrt() may be called in {text!r}")
        for child in node.args:
            _validate_node(child, text)
    else:
        raise ConfigError(f"{type(node).__name__} is not allowed in {text!r}")


def _eval_node(node: ast.AST, env: dict[str, float]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return env[node.id]
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval_node(node.left, env), _eval_node(node.right, env))
    if isinstance(node, ast.UnaryOp):
        value = _eval_node(node.operand, env)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Compare):
        left = _eval_node(node.left, env)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval_node(comparator, env)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval_node(node.body if _eval_node(node.test, env) else node.orelse, env)
    if isinstance(node, ast.BoolOp):
        values = [_eval_node(v, env) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCS[node.func.id](*(_eval_node(a, env) for a in node.args))
    raise AssertionError(f"unvalidated node {type(node).__name__}")  # _validate_node rejects these
