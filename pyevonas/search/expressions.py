"""Control expressions: safe arithmetic of ``gen`` and ``n_gen`` written in run.toml."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from typing import Any

from pyevonas.errors import ConfigError

# A control margin can be written in run.toml as an expression of `gen` and `n_gen`, e.g.
# control_upper = "0.1 - 0.2*(gen/n_gen)**2 if gen < n_gen/2 else 0.05". Only arithmetic,
# comparisons, `x if c else y`, and min/max/abs/sqrt are allowed: the expression is evaluated by
# walking its AST, never by eval(), so a config file cannot run code. Every value is a float, so
# no operation can build an unbounded integer (`2**2**40` overflows at once instead of eating
# memory), and the size of an expression is bounded.

#: Longest expression accepted, in characters.
MAX_LENGTH = 1000
#: Most AST nodes (numbers, names, operators...) in one expression.
MAX_NODES = 200
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
# How many arguments each function takes: (fewest, most).
_ARITY: dict[str, tuple[int, int]] = {"min": (2, MAX_NODES), "max": (2, MAX_NODES), "abs": (1, 1), "sqrt": (1, 1)}
_NAMES = ("gen", "n_gen")


def compile_expression(text: str) -> Callable[[int, int], float]:
    """Compile a margin expression of ``gen`` and ``n_gen`` into a function.

    The function raises :class:`~pyevonas.errors.ConfigError` when the expression fails or is not
    finite at the generation asked for; :func:`check_margins` evaluates a pair of margins over
    every generation of a run up front.

    Raises:
        ConfigError: a syntax error, an expression that is too long, or a name, function, operator
            or argument count that is not allowed.
    """
    if len(text) > MAX_LENGTH:
        raise ConfigError(f"expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ConfigError(f"not a valid expression {_shown(text)!r}: {getattr(exc, 'msg', exc)}") from None
    except RecursionError:
        raise ConfigError(f"expression {_shown(text)!r} is nested too deeply") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ConfigError(f"expression {_shown(text)!r} is too large (at most {MAX_NODES} terms)")
    _validate_node(tree.body, text)

    def evaluate(gen: int, n_gen: int) -> float:
        try:
            value = float(_eval_node(tree.body, {"gen": float(gen), "n_gen": float(n_gen)}))
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise ConfigError(f"expression {_shown(text)!r} fails at gen={gen}, n_gen={n_gen}: {_why(exc)}") from None
        if not math.isfinite(value):
            raise ConfigError(f"expression {_shown(text)!r} is not finite at gen={gen}, n_gen={n_gen} ({value})")
        return value

    evaluate.__doc__ = text
    # Evaluate once so that e.g. a division by zero at gen=1 surfaces now; check_margins covers a run.
    evaluate(1, 20)
    return evaluate


def _shown(text: str) -> str:
    """An expression as quoted in an error: long ones are cut."""
    return text if len(text) <= 60 else text[:57] + "..."


def _why(exc: BaseException) -> str:
    if isinstance(exc, OverflowError):
        return "a value overflows (too large for a float)"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    return str(exc)


def check_margins(lower: Callable[[int, int], float], upper: Callable[[int, int], float], n_gen: int) -> None:
    """Check a control's margins at every generation of a run of ``n_gen`` generations.

    The control window after generation ``gen`` (1..n_gen-1) is ``(s + lower, s + upper]``: both
    margins must be finite numbers with ``lower < upper`` at every one of them.

    Raises:
        ConfigError: naming the first generation where a margin fails, is not finite, or
            ``lower >= upper``.
    """
    for gen in range(1, max(n_gen, 2)):
        lo, hi = float(lower(gen, n_gen)), float(upper(gen, n_gen))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ConfigError(f"control margins at gen={gen}, n_gen={n_gen} are not finite: ({lo}, {hi}]")
        if lo >= hi:
            raise ConfigError(f"control margins at gen={gen}, n_gen={n_gen}: lower {lo:g} must be below upper {hi:g}")


def _validate_node(node: ast.AST, text: str) -> None:
    """Refuse any node but numbers, gen/n_gen, the allowed operators and calls, depth first."""
    for kind, check in _NODE_CHECKS:
        if isinstance(node, kind):
            for child in check(node, text):
                _validate_node(child, text)
            return
    raise ConfigError(f"{type(node).__name__} is not allowed in {_shown(text)!r}")


def _check_constant(node: ast.Constant, text: str) -> tuple[ast.expr, ...]:
    """A constant must be a number (not a bool); it has no children."""
    if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
        raise ConfigError(f"only numbers are allowed as constants in {_shown(text)!r}")
    return ()


def _check_name(node: ast.Name, text: str) -> tuple[ast.expr, ...]:
    """A name must be gen or n_gen."""
    if node.id not in _NAMES:
        raise ConfigError(f"unknown name {node.id!r} in {_shown(text)!r} (use gen and n_gen)")
    return ()


def _check_binop(node: ast.BinOp, text: str) -> tuple[ast.expr, ...]:
    """A binary operator must be arithmetic; its operands are checked next."""
    if type(node.op) not in _BINOPS:
        raise ConfigError(f"operator {type(node.op).__name__} is not allowed in {_shown(text)!r}")
    return (node.left, node.right)


def _check_unaryop(node: ast.UnaryOp, text: str) -> tuple[ast.expr, ...]:
    """A unary operator must be a sign; its operand is checked next."""
    if not isinstance(node.op, (ast.USub, ast.UAdd)):
        raise ConfigError(f"operator {type(node.op).__name__} is not allowed in {_shown(text)!r}")
    return (node.operand,)


def _check_compare(node: ast.Compare, text: str) -> tuple[ast.expr, ...]:
    """A comparison must use the allowed comparison operators; its operands are checked next."""
    if any(type(op) not in _CMPOPS for op in node.ops):
        raise ConfigError(f"comparison not allowed in {_shown(text)!r}")
    return (node.left, *node.comparators)


def _check_ifexp(node: ast.IfExp, text: str) -> tuple[ast.expr, ...]:
    """``x if c else y`` is allowed; its three parts are checked next."""
    return (node.test, node.body, node.orelse)


def _check_boolop(node: ast.BoolOp, text: str) -> tuple[ast.expr, ...]:
    """``and``/``or`` are allowed; their operands are checked next."""
    return tuple(node.values)


def _check_call(node: ast.Call, text: str) -> tuple[ast.expr, ...]:
    """A call must be of min, max, abs or sqrt, positional, with their argument count; the arguments follow."""
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCS or node.keywords:
        raise ConfigError(f"only min(), max(), abs() and sqrt() may be called in {_shown(text)!r}")
    fewest, most = _ARITY[node.func.id]
    if not fewest <= len(node.args) <= most or any(isinstance(a, ast.Starred) for a in node.args):
        wanted = f"{fewest}" if fewest == most else f"at least {fewest}"
        raise ConfigError(f"{node.func.id}() takes {wanted} argument(s), got {len(node.args)} in {_shown(text)!r}")
    return tuple(node.args)


# Per allowed node type (tried in this order), its own check, which returns the children to check next.
_NODE_CHECKS: tuple[tuple[type[ast.AST], Callable[[Any, str], tuple[ast.expr, ...]]], ...] = (
    (ast.Constant, _check_constant),
    (ast.Name, _check_name),
    (ast.BinOp, _check_binop),
    (ast.UnaryOp, _check_unaryop),
    (ast.Compare, _check_compare),
    (ast.IfExp, _check_ifexp),
    (ast.BoolOp, _check_boolop),
    (ast.Call, _check_call),
)


def _eval_node(node: ast.AST, env: dict[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # a number (_validate_node); floats only: no unbounded integers
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


__all__ = ["MAX_LENGTH", "MAX_NODES", "check_margins", "compile_expression"]
