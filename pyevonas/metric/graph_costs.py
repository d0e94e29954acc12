"""Graph edit costs: the cost model of the distance between two cells.

A :class:`GraphCosts` says what each edit of a cell costs: substituting one node label (an op and
its params) for another, inserting or deleting a node, and the same for edge labels (an op, or
none for a plain edge). Identical labels cost 0; labels of one op differ by the op's parameter
terms (or ``same_op``); labels of two ops by their pair cost (or ``substitute``). See
``docs/graphs.md``.

The shipped cost sets (:data:`BUILTIN_GRAPH_COSTS`) are the JSON files
``schemas/graph_costs.NAME.json``; each is a metric, so the edit distance is one too. A cost file
is checked like a scoring schema: :class:`~pyevonas.errors.SchemaError` with one line per problem,
each naming its JSON path. The format is published as ``schemas/graph_costs.schema.json``
(``pyevonas schema export --graph-costs``). A scoring schema may carry graph costs as its ``graph``
section.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pyevonas._userfiles import UserFileError, read_json
from pyevonas.errors import GraphError, SchemaError
from pyevonas.metric._graph_cost_model import (
    BUILTIN_GRAPH_COSTS,
    MAX_COST,
    CostTerm,
    EditCosts,
    GraphCosts,
    OpCosts,
    PairCost,
)
from pyevonas.metric.graphs import GRAPH_FORMATS
from pyevonas.metric.schema import Scoring

#: The cost set each graph format is compared with unless the caller names one.
_DEFAULT_FOR = {"dag": "unit", "nb201": "nb201", "nb101": "nb101", "darts": "darts"}


def default_costs_for(format: str) -> str:
    """The built-in cost set for graphs of this format: nb201, nb101 and darts have their own; dag is ``unit``.

    Example:
        >>> default_costs_for("nb201"), default_costs_for("dag")
        ('nb201', 'unit')
    """
    try:
        return _DEFAULT_FOR[format]
    except (KeyError, TypeError):
        raise GraphError(f"unknown graph format {format!r} (choose from {', '.join(GRAPH_FORMATS)})") from None


def resolve_graph_costs(costs: str | Path | GraphCosts | Scoring | Mapping[str, Any]) -> GraphCosts:
    """Turn the ``costs`` argument of the graph API into a GraphCosts.

    Accepts a built-in name (``unit``, ``nb201``, ``nb101``, ``darts``), a path to a JSON file
    holding either graph costs or a whole scoring schema with a ``graph`` section, a parsed dict of
    either, a GraphCosts, or a Scoring with a ``graph`` section.

    Raises:
        SchemaError: not a name or a file, an invalid file (one line per problem, each naming its JSON
            path), or a scoring schema without a graph section.
    """
    if isinstance(costs, GraphCosts):
        return costs
    if isinstance(costs, Scoring):
        return _graph_section(costs, f"scoring schema {costs.name!r}")
    if isinstance(costs, Mapping):
        return _from_data(dict(costs), "<dict>")
    if isinstance(costs, str) and costs in BUILTIN_GRAPH_COSTS:
        return GraphCosts.builtin(costs)
    if isinstance(costs, str | Path):
        path = Path(costs)
        if path.is_file():
            try:
                data = read_json(path)
            except UserFileError as exc:
                raise SchemaError(f"cannot read graph costs {str(path)!r}: {exc}") from None
            return _from_data(data, str(path))
        raise SchemaError(
            f"no graph costs {str(costs)!r}: not a built-in name ({', '.join(BUILTIN_GRAPH_COSTS)}) and no file there"
        )
    raise SchemaError(
        f"graph costs must be a name, a path, a dict, a GraphCosts or a Scoring, got {type(costs).__name__}"
    )


def _from_data(data: Any, source: str) -> GraphCosts:
    if isinstance(data, dict) and "genes" in data:  # a whole scoring schema: checked whole
        return _graph_section(Scoring.from_dict(data, source=source), f"scoring schema {source}")
    return GraphCosts.from_dict(data, source=source)


def _graph_section(scoring: Scoring, what: str) -> GraphCosts:
    if scoring.graph is None:
        raise SchemaError(f"{what} has no graph section, so it holds no graph costs")
    return scoring.graph


def graph_costs_json_schema() -> dict[str, Any]:
    """The JSON Schema of graph cost files (published as schemas/graph_costs.schema.json)."""
    schema = GraphCosts.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://pyevonas.dev/schemas/graph_costs.schema.json"
    return schema


__all__ = [
    "BUILTIN_GRAPH_COSTS",
    "MAX_COST",
    "CostTerm",
    "EditCosts",
    "GraphCosts",
    "OpCosts",
    "PairCost",
    "default_costs_for",
    "graph_costs_json_schema",
    "resolve_graph_costs",
]
