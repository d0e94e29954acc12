"""The pydantic models of graph edit costs (the public face is :mod:`pyevonas.metric.graph_costs`).

They live apart from ``graph_costs`` so that the scoring schema can hold a ``graph`` section of this
type while ``graph_costs`` reads whole scoring schemas: each module imports only the one below it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from pyevonas.errors import SchemaError
from pyevonas.metric._json_model import JsonFileModel
from pyevonas.metric.graphs import Node, ParamValue

BUILTIN_GRAPH_COSTS = ("unit", "nb201", "nb101", "darts")

#: Bound on every cost and weight: a graph's edit cost sums at most one cost per node and edge, so
#: every distance stays finite.
MAX_COST = 1e12

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)

_Cost = Annotated[float, Field(ge=0, le=MAX_COST)]
_OpName = Annotated[str, Field(min_length=1)]

#: A label as the costs see it: its op (None for a plain edge) and its parameters.
_Label = tuple[str | None, Mapping[str, ParamValue]]


class CostTerm(BaseModel):
    """One parameter's share of a substitution: ``weight * min(|a - b| / norm, 1)``.

    Numbers differ by ``|a - b|``; any other values (strings, booleans, a number against a string)
    cost the full weight when they differ.
    """

    model_config = _MODEL_CONFIG

    param: str = Field(min_length=1, description="Parameter name (a key of the nodes' params).")
    weight: _Cost = Field(description="Cost of a full difference in this parameter (>= 0).")
    norm: float = Field(
        default=1.0, gt=0, le=MAX_COST, description="A difference of norm or more counts in full (> 0; default 1)."
    )


class OpCosts(BaseModel):
    """The costs of one op: insertion and deletion overrides, and how its parameters count."""

    model_config = _MODEL_CONFIG

    insert: _Cost | None = Field(default=None, description="Cost of inserting a node or edge with this op.")
    delete: _Cost | None = Field(default=None, description="Cost of deleting a node or edge with this op.")
    terms: list[CostTerm] = Field(
        default_factory=list,
        description="Two labels of this op with different params cost the sum of these terms "
        "(a param only one of them has costs the term's full weight); without terms they cost same_op.",
    )


class PairCost(BaseModel):
    """The cost of substituting one op for another: ``cost`` plus its terms over the params both labels have."""

    model_config = _MODEL_CONFIG

    pairs: list[tuple[_OpName, _OpName]] = Field(min_length=1, description="Pairs of different ops [a, b].")
    cost: _Cost = Field(description="Cost of the substitution a -> b (>= 0).")
    terms: list[CostTerm] = Field(
        default_factory=list, description="Parameter differences added to cost (params both labels have)."
    )
    directed: bool = Field(
        default=False, description="If true the cost applies only to a -> b; otherwise to b -> a as well."
    )


class EditCosts(BaseModel):
    """The edit costs of nodes, or of edges: substitution, insertion and deletion of labels.

    A label is an op and its parameters (a node), or an op or nothing (an edge; a plain edge, without
    op, takes the defaults). Identical labels cost 0. Two labels of the same op cost the op's terms
    if it lists any, else ``same_op``; of different ops, the matching pair's cost (plus its terms),
    else ``substitute``.
    """

    model_config = _MODEL_CONFIG

    substitute: _Cost = Field(default=1.0, description="Cost of substituting two different ops without a pair cost.")
    same_op: _Cost = Field(
        default=1.0, description="Cost of two labels of one op with different params, when the op lists no terms."
    )
    insert: _Cost = Field(default=1.0, description="Cost of inserting a label (unless its op says otherwise).")
    delete: _Cost = Field(default=1.0, description="Cost of deleting a label (unless its op says otherwise).")
    ops: dict[_OpName, OpCosts] = Field(default_factory=dict, description="Per op: insert/delete overrides and terms.")
    pairs: list[PairCost] = Field(default_factory=list, description="Substitution costs of pairs of different ops.")

    _pair_index: dict[tuple[str, str], PairCost] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        for rule in self.pairs:
            for a, b in rule.pairs:
                self._pair_index.setdefault((a, b), rule)
                if not rule.directed:
                    self._pair_index.setdefault((b, a), rule)

    # --- one label, one pair ---------------------------------------------------------------
    def substitution(self, a: Node | str | None, b: Node | str | None) -> float:
        """The cost of substituting label ``b`` for label ``a`` (0 when they are identical)."""
        return self._substitution(_label(a), _label(b))

    def insertion(self, label: Node | str | None) -> float:
        """The cost of inserting ``label``."""
        op = _label(label)[0]
        spec = self.ops.get(op) if op is not None else None
        return self.insert if spec is None or spec.insert is None else spec.insert

    def deletion(self, label: Node | str | None) -> float:
        """The cost of deleting ``label``."""
        op = _label(label)[0]
        spec = self.ops.get(op) if op is not None else None
        return self.delete if spec is None or spec.delete is None else spec.delete

    def tables(self, labels: Sequence[Node | str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(sub [L, L], delete [L], insert [L])`` of these labels: ``sub[i, j]`` = labels[i] -> labels[j]."""
        split = [_label(x) for x in labels]
        n = len(split)
        sub = np.zeros((n, n), dtype=np.float64)
        for i, a in enumerate(split):
            for j, b in enumerate(split):
                if i != j:
                    sub[i, j] = self._substitution(a, b)
        delete = np.array([self.deletion(x) for x in labels], dtype=np.float64).reshape(n)
        insert = np.array([self.insertion(x) for x in labels], dtype=np.float64).reshape(n)
        return np.ascontiguousarray(sub), delete, insert

    @property
    def symmetric(self) -> bool:
        """Every substitution costs what its reverse does, and every insertion what the matching deletion does."""
        if self.insert != self.delete or any(self.insertion(op) != self.deletion(op) for op in self.ops):
            return False
        for (a, b), rule in self._pair_index.items():
            back = self._pair_index.get((b, a))
            if back is None:
                if rule.cost != self.substitute or rule.terms:
                    return False
            elif back is not rule and (back.cost, _term_set(back.terms)) != (rule.cost, _term_set(rule.terms)):
                return False
        return True

    def _substitution(self, a: _Label, b: _Label) -> float:
        (op_a, pa), (op_b, pb) = a, b
        if op_a == op_b:
            if pa == pb:
                return 0.0
            spec = self.ops.get(op_a) if op_a is not None else None
            if spec is None or not spec.terms:
                return self.same_op
            total = 0.0
            for t in spec.terms:
                total += _term_cost(t, pa, pb, one_sided=True)
            return total
        rule = self._pair_index.get((op_a, op_b)) if op_a is not None and op_b is not None else None
        if rule is None:
            return self.substitute
        total = rule.cost
        for t in rule.terms:
            total += _term_cost(t, pa, pb, one_sided=False)
        return total


def _label(label: Node | str | None) -> _Label:
    if isinstance(label, Node):
        return label.op, dict(label.params)
    return label, {}


def _term_set(terms: Sequence[CostTerm]) -> list[tuple[str, float, float]]:
    return sorted((t.param, t.weight, t.norm) for t in terms)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _term_cost(t: CostTerm, pa: Mapping[str, ParamValue], pb: Mapping[str, ParamValue], *, one_sided: bool) -> float:
    """One term's cost; a param only one label has costs the full weight if ``one_sided``, else nothing."""
    if t.param not in pa or t.param not in pb:
        return t.weight if one_sided and (t.param in pa or t.param in pb) else 0.0
    va, vb = pa[t.param], pb[t.param]
    if _is_number(va) and _is_number(vb):
        return t.weight * min(abs(float(va) - float(vb)) / t.norm, 1.0)
    return 0.0 if va == vb else t.weight


class GraphCosts(JsonFileModel):
    """The costs of the graph edit distance: how nodes and edges are substituted, inserted, deleted.

    See ``docs/graphs.md``. Load a file with :meth:`load`, a shipped set with :meth:`builtin`, or
    anything the API accepts with :func:`~pyevonas.metric.graph_costs.resolve_graph_costs`.
    """

    model_config = _MODEL_CONFIG
    file_kind: ClassVar[str] = "graph costs"
    file_kind_one: ClassVar[str] = "graph costs"

    json_schema: str | None = Field(default=None, alias="$schema", description="Optional JSON Schema reference.")
    schema_version: Literal[1] = Field(default=1, description="Version of this file format.")
    name: str = Field(min_length=1, description="Short name of the cost set.")
    description: str = ""
    node: EditCosts = Field(default_factory=EditCosts, description="Edit costs of nodes (labels: op and params).")
    edge: EditCosts = Field(default_factory=EditCosts, description="Edit costs of edges (labels: op, or none).")

    __hash__ = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _check(self) -> GraphCosts:
        problems = _cost_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # --- loading: load, from_json, from_dict (JsonFileModel) ------------------------------
    @classmethod
    def builtin(cls, name: str) -> GraphCosts:
        """One of the shipped cost sets: ``"unit"``, ``"nb201"``, ``"nb101"`` or ``"darts"``."""
        if name not in BUILTIN_GRAPH_COSTS:
            raise SchemaError(f"no built-in graph costs {name!r} (choose from {', '.join(BUILTIN_GRAPH_COSTS)})")
        return _load_builtin(name)

    def to_json(self) -> str:
        """The costs as JSON text (round-trips through :meth:`from_json`)."""
        return self.model_dump_json(indent=2, by_alias=True, exclude_none=True)

    def to_dict(self) -> dict[str, Any]:
        """The costs as a JSON-compatible dict."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    # --- what the edit distance reads ----------------------------------------------------
    def matrices(
        self, node_labels: Sequence[Node], edge_labels: Sequence[str | None]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The costs of these labels as dense float64 arrays (C-contiguous).

        Returns:
            ``(node_sub [L, L], node_del [L], node_ins [L], edge_sub [K, K], edge_del [K], edge_ins [K])``
            for L node labels and K edge labels; ``node_sub[i, j]`` substitutes ``node_labels[j]`` for
            ``node_labels[i]``. Identical labels cost exactly 0.

        Example:
            >>> m = GraphCosts.builtin("nb201").matrices([Node("input")], ["nor_conv_1x1", "nor_conv_3x3", None])
            >>> m[3].tolist()
            [[0.0, 0.4, 1.0], [0.4, 0.0, 1.0], [1.0, 1.0, 0.0]]
        """
        return (*self.node.tables(node_labels), *self.edge.tables(edge_labels))

    @property
    def symmetric(self) -> bool:
        """The edit distance is symmetric: every substitution costs what its reverse does (no directed
        pair cost) and every insertion what the matching deletion does, for nodes and edges."""
        return self.node.symmetric and self.edge.symmetric


@cache
def _load_builtin(name: str) -> GraphCosts:
    file = f"graph_costs.{name}.json"
    text = resources.files("pyevonas").joinpath("schemas").joinpath(file).read_text(encoding="utf-8")
    return GraphCosts.from_json(text, source=f"schemas/{file}")


# --- validation ------------------------------------------------------------------------------
def _cost_problems(c: GraphCosts) -> list[str]:
    """Repeated terms, pair costs that pair an op with itself, and ordered pairs given two costs."""
    problems: list[str] = []
    for side, costs in (("node", c.node), ("edge", c.edge)):
        for op, spec in costs.ops.items():
            problems += _term_problems(spec.terms, f"{side}.ops.{_key(op)}.terms")
        seen: dict[tuple[str, str], str] = {}
        for ri, rule in enumerate(costs.pairs):
            problems += _term_problems(rule.terms, f"{side}.pairs[{ri}].terms")
            for pi, (a, b) in enumerate(rule.pairs):
                where = f"{side}.pairs[{ri}].pairs[{pi}]"
                if a == b:
                    problems.append(
                        f"{where}: pairs {a!r} with itself (the costs of one op's params are {side}.ops.{_key(a)}.terms)"
                    )
                    continue
                directions = ((a, b),) if rule.directed else ((a, b), (b, a))
                clash = next((p for p in directions if p in seen), None)
                if clash is not None:
                    problems.append(f"{where}: {clash[0]!r} -> {clash[1]!r} already has a cost ({seen[clash]})")
                for pair in directions:
                    seen.setdefault(pair, where)
    return problems


def _term_problems(terms: Sequence[CostTerm], where: str) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for ti, t in enumerate(terms):
        if t.param in first:
            problems.append(f"{where}[{ti}].param: {t.param!r} is listed twice (also {where}[{first[t.param]}])")
        else:
            first[t.param] = ti
    return problems


def _key(key: str) -> str:
    return key if key.isprintable() and "." not in key else repr(key)


__all__ = [
    "BUILTIN_GRAPH_COSTS",
    "MAX_COST",
    "CostTerm",
    "EditCosts",
    "GraphCosts",
    "OpCosts",
    "PairCost",
]
