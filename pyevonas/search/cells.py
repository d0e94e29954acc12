"""Cell search spaces: NAS-Bench-201's cell, or DAG cells of one's own, inside a macro skeleton.

A cell space file (the built-in ``nb201`` ships as ``schemas/space.nb201.json``)::

    {"schema_version": 1, "kind": "cell", "name": "nb201",
     "cell": {"format": "nb201", "nodes": 4,
              "ops": ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]},
     "skeleton": {"channels": 16, "cells_per_stage": 1, "stages": 3}}

or, for DAG cells (``"format": "dag"``), ``ops_on`` (``edges`` or ``nodes``), the ops (a list of
names; on nodes, an object of name -> parameter value sets such as ``{"conv": {"kernel_size":
{"choices": [1, 3, 5]}}}``), ``min_nodes``, ``max_nodes`` (input and output included) and
``max_edges``. The op names are those :mod:`pyevonas.training.cell_ops` builds.

An architecture of a cell space is a **chromosome** (a list of layer dicts), so the run store,
the reports and ``pyevonas train`` take it as they take chains. It is the skeleton around one
cell, NAS-Bench-201's macro structure::

    C_2D(channels, 3, 1), BN_2D,                                 the stem
    cell x cells_per_stage, RED_2D(2 x channels),                stage 1, reduction
    cell x cells_per_stage, RED_2D(4 x channels), ...            stage 2, ...
    cell x cells_per_stage, BN_2D, R_2D, GAP_2D                  last stage, BN-ReLU, pooling

(the classifier is appended by ``build_model``). Every cell gene holds the same cell under
``"cell"``: a NAS-Bench-201 string, or a dag JSON object with its nodes numbered in topological
order, ``inputs: [0]`` and ``outputs: [last]``. The similarity sees the cell in every cell gene
(a hybrid chain under the ``cells`` scoring schema, ``pyevonas.metric.hybrid``); the skeleton is
the same for every architecture of a space, so only the cells make two of them differ.

Every random draw goes through an explicit ``numpy.random.Generator``; a bad file is refused with
one line naming its JSON path (:class:`~pyevonas.errors.SearchSpaceError`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pyevonas._userfiles import UserFileError, read_json
from pyevonas.errors import ConfigError, GraphError, SearchSpaceError
from pyevonas.metric._compiled import Chromosome
from pyevonas.metric.graphs import NB201_OPS, parse_graph
from pyevonas.search.space import ParamSpec, Scalar, SearchSpace, builtin_space_path, expand_values, values_match
from pyevonas.training.cell_ops import op_spec

#: The layer name of a cell gene and of NAS-Bench-201's reduction block.
CELL_LAYER = "cell"
REDUCTION_LAYER = "RED_2D"
#: The scoring schema a cell-space run uses unless one is given: ``default`` plus these two genes.
CELL_SCHEMA = "cells"
#: The most nodes a dag cell may have (the isomorphism check tries orders of the inner nodes).
MAX_CELL_NODES = 12
_SAMPLE_ATTEMPTS = 200


class SkeletonSpec(BaseModel):
    """The macro skeleton: stem width, cells per stage and stages (reduction blocks between)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: int = Field(16, ge=1, le=1024)
    cells_per_stage: int = Field(1, ge=1, le=32)
    stages: int = Field(3, ge=1, le=6)


class CellSpec(BaseModel):
    """The cell: its format and ops, and for dag cells where the ops sit and the size limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["nb201", "dag"]
    ops: list[str] | dict[str, dict[str, ParamSpec]] | None = None
    ops_on: Literal["edges", "nodes"] | None = None
    nodes: int | None = Field(None, ge=2, le=MAX_CELL_NODES)
    min_nodes: int | None = Field(None, ge=2, le=MAX_CELL_NODES)
    max_nodes: int | None = Field(None, ge=2, le=MAX_CELL_NODES)
    max_edges: int | None = Field(None, ge=1)

    @field_validator("ops")
    @classmethod
    def _ops_named_well(cls, ops: Any) -> Any:
        names = list(ops) if ops is not None else []
        if ops is not None and not names:
            raise ValueError("give at least one op")
        if isinstance(ops, list) and len(set(ops)) != len(ops):
            raise ValueError(f"{ops} contains duplicates")
        return ops

    @model_validator(mode="after")
    def _consistent(self) -> CellSpec:
        if self.format == "nb201":
            self._check_nb201()
        else:
            self._check_dag()
        return self

    def _check_nb201(self) -> None:
        for key in ("ops_on", "min_nodes", "max_nodes", "max_edges"):
            if getattr(self, key) is not None:
                raise ValueError(f"{key}: not a setting of an nb201 cell (its ops sit on the edges of all node pairs)")
        if isinstance(self.ops, dict):
            raise ValueError("ops: an nb201 cell takes a list of op names")
        for i, op in enumerate(self.ops or []):
            if op not in NB201_OPS:
                raise ValueError(f"ops[{i}]: {op!r} is not a NAS-Bench-201 op ({', '.join(NB201_OPS)})")
        if self.ops is not None and len([op for op in self.ops if op != "none"]) == 0:
            raise ValueError("ops: an nb201 cell needs an op other than none")

    def _check_dag(self) -> None:
        if self.nodes is not None:
            raise ValueError("nodes: a dag cell has min_nodes and max_nodes")
        for key in ("ops", "ops_on", "max_nodes", "max_edges"):
            if getattr(self, key) is None:
                raise ValueError(f"{key}: missing (a dag cell needs ops, ops_on, max_nodes and max_edges)")
        low, high = self.min_nodes or 3, self.max_nodes or 3
        if high < low:
            raise ValueError(f"max_nodes ({high}) is below min_nodes ({low})")
        if self.max_edges is not None and self.max_edges < high - 1:
            raise ValueError(
                f"max_edges ({self.max_edges}) is below max_nodes - 1 ({high - 1}): no path through every node"
            )
        ops = self.ops if isinstance(self.ops, dict) else dict.fromkeys(self.ops or [], {})
        for name, params in ops.items():
            if self.ops_on == "edges" and params:
                raise ValueError(
                    f"ops.{name}: ops on edges take no parameters (an edge label is an op name); "
                    "put the ops on nodes or name the size, e.g. conv_3x3"
                )
            if name in ("input", "output", "node"):
                raise ValueError(f"ops.{name}: a structural label, not an op")
            values = {p: expand_values(spec) for p, spec in params.items()}
            for combo in _combinations(values):
                try:
                    op_spec(name, combo)
                except ValueError as exc:
                    raise ValueError(f"ops.{name}: {exc}") from None


def _combinations(values: Mapping[str, list[Scalar]]) -> list[dict[str, Scalar]]:
    """Every assignment of the parameters' values (one empty one without parameters)."""
    combos: list[dict[str, Scalar]] = [{}]
    for name, options in values.items():
        combos = [{**c, name: v} for c in combos for v in options]
    return combos


class CellSpaceSpec(BaseModel):
    """The whole cell-space file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    kind: Literal["cell"]
    name: str = Field(min_length=1)
    description: str = ""
    cell: CellSpec
    skeleton: SkeletonSpec = Field(default_factory=SkeletonSpec)


# ---------------------------------------------------------------------- the dag form of a cell
@dataclass
class DagCell:
    """A dag cell being edited: node labels (op, params) in topological order, edges by pair.

    Node 0 is the input, the last node the output; edges go from a lower to a higher index.
    """

    nodes: list[tuple[str, dict[str, Scalar]]]
    edges: dict[tuple[int, int], str | None]

    @classmethod
    def read(cls, cell: Any) -> DagCell:
        graph = parse_graph(cell, where="").cells[0]
        return cls(
            [(n.op, dict(n.params)) for n in graph.nodes],
            {(e.source, e.target): e.op for e in graph.edges},
        )

    def to_json(self) -> dict[str, Any]:
        nodes: list[Any] = [op if not params else {"op": op, "params": dict(params)} for op, params in self.nodes]
        edges = [[s, t] if op is None else [s, t, op] for (s, t), op in sorted(self.edges.items())]
        return {"nodes": nodes, "edges": edges, "inputs": [0], "outputs": [len(self.nodes) - 1]}

    def copy(self) -> DagCell:
        return DagCell([(op, dict(p)) for op, p in self.nodes], dict(self.edges))


# ---------------------------------------------------------------------- the space
class CellSpace:
    """A validated cell search space (see the module docstring for the file format).

    Attributes:
        name: the space's name.
        kind: ``"cell"`` (a chain space's :class:`~pyevonas.search.space.SearchSpace` has none).
        format: ``"nb201"`` or ``"dag"``.
        ops: the op names, in file order.
        skeleton: the macro skeleton's settings.
    """

    kind = "cell"

    def __init__(self, spec: CellSpaceSpec) -> None:
        """Wrap a validated :class:`CellSpaceSpec` (use :meth:`load` or :meth:`from_dict`)."""
        self.spec = spec
        self.name = spec.name
        cell = spec.cell
        self.format = cell.format
        self.skeleton = spec.skeleton
        if cell.format == "nb201":
            self.ops = list(cell.ops or NB201_OPS)
            self.n_nodes = cell.nodes or 4
            self.ops_on: str = "edges"
            self.min_nodes = self.max_nodes = self.n_nodes
            self.max_edges = self.n_nodes * (self.n_nodes - 1) // 2
            self.op_values: dict[str, dict[str, list[Scalar]]] = {op: {} for op in self.ops}
        else:
            raw = cell.ops if isinstance(cell.ops, dict) else dict.fromkeys(cell.ops or [], {})
            self.op_values = {name: {p: expand_values(s) for p, s in params.items()} for name, params in raw.items()}
            self.ops = list(raw)
            self.ops_on = cell.ops_on or "edges"
            self.min_nodes, self.max_nodes = cell.min_nodes or 3, cell.max_nodes or 3
            self.max_edges = cell.max_edges or 1

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | CellSpace = "nb201") -> CellSpace:
        """A built-in cell space by name (``"nb201"``), a JSON file, or a dict.

        Raises:
            SearchSpaceError: missing file, not JSON, or a field breaks the format (named).
        """
        space = load_space(source)
        if not isinstance(space, CellSpace):
            raise SearchSpaceError(f"search space {space.name!r} is a chain space, not a cell space")
        return space

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "search space") -> CellSpace:
        """Validate a cell space given as a dict (the format of :meth:`to_dict`).

        Raises:
            SearchSpaceError: one line naming the offending field.
        """
        try:
            spec = CellSpaceSpec.model_validate(data)
        except ValidationError as exc:
            raise SearchSpaceError(f"{origin}: invalid search space: {_problems(exc)}") from None
        return cls(spec)

    def to_dict(self) -> dict[str, Any]:
        """The space as a JSON-able dict that :meth:`from_dict` reads back unchanged."""
        return self.spec.model_dump(mode="json", exclude_none=True)

    # ------------------------------------------------------------------ chromosomes
    def chromosome(self, cell: Any) -> Chromosome:
        """The skeleton around ``cell`` (a cell of this space, written as the space writes it)."""
        sk = self.skeleton
        genes: Chromosome = [
            {"layer": "C_2D", "filters": sk.channels, "kernel_size": 3, "strides": 1},
            {"layer": "BN_2D"},
        ]
        for stage in range(sk.stages):
            if stage:
                genes.append({"layer": REDUCTION_LAYER, "filters": sk.channels * 2**stage})
            genes += [{"layer": CELL_LAYER, "cell": _copy_cell(cell)} for _ in range(sk.cells_per_stage)]
        return [*genes, {"layer": "BN_2D"}, {"layer": "R_2D"}, {"layer": "GAP_2D"}]

    @staticmethod
    def cell_of(chrom: Sequence[Mapping[str, Any]]) -> Any:
        """The cell of a chromosome of a cell space (its first cell gene's).

        Raises:
            SearchSpaceError: the chromosome holds no cell gene.
        """
        for gene in chrom:
            if isinstance(gene, Mapping) and gene.get("layer") == CELL_LAYER and "cell" in gene:
                return gene["cell"]
        raise SearchSpaceError("the chromosome has no cell gene (a layer 'cell' holding its cell under 'cell')")

    def describe(self, chrom: Sequence[Mapping[str, Any]]) -> str:
        """The cell of a chromosome as text: its NAS-Bench-201 string, or compact dag JSON."""
        return cell_text(self.cell_of(chrom))

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator) -> Chromosome:
        """A random architecture: the skeleton around :meth:`sample_cell`."""
        return self.chromosome(self.sample_cell(rng))

    def sample_cell(self, rng: np.random.Generator) -> Any:
        """A random cell of the space.

        nb201: every edge's op uniform over the space's ops. dag: the number of nodes uniform in
        ``[min_nodes, max_nodes]``; each forward edge present with probability 1/2, each op (with
        its params) uniform, until the cell is valid (every node on a path from the input to the
        output, at most ``max_edges`` edges); after 200 draws, the path through every node.
        """
        if self.format == "nb201":
            return nb201_string([self.random_op(rng) for _ in range(self.max_edges)], self.n_nodes)
        n = int(rng.integers(self.min_nodes, self.max_nodes + 1))
        for _ in range(_SAMPLE_ATTEMPTS):
            cell = DagCell(self.random_nodes(n, rng), {})
            for s in range(n):
                for t in range(s + 1, n):
                    if rng.random() < 0.5:
                        cell.edges[(s, t)] = self.random_edge_op(rng)
            if self.dag_problem(cell) is None:
                return cell.to_json()
        cell = DagCell(self.random_nodes(n, rng), {(v, v + 1): self.random_edge_op(rng) for v in range(n - 1)})
        return cell.to_json()

    def random_op(self, rng: np.random.Generator, other_than: str | None = None) -> str:
        """An op name uniform over the space's (other than ``other_than``, when there is another)."""
        options = [op for op in self.ops if op != other_than] or self.ops
        return options[int(rng.integers(len(options)))]

    def random_node(self, rng: np.random.Generator) -> tuple[str, dict[str, Scalar]]:
        """An inner node's label: ``node`` for ops on edges, else an op with its params drawn."""
        if self.ops_on == "edges":
            return ("node", {})
        op = self.random_op(rng)
        return op, {p: v[int(rng.integers(len(v)))] for p, v in self.op_values[op].items()}

    def random_nodes(self, n: int, rng: np.random.Generator) -> list[tuple[str, dict[str, Scalar]]]:
        """The labels of a cell of ``n`` nodes: input, ``n - 2`` random inner nodes, output."""
        return [("input", {}), *(self.random_node(rng) for _ in range(n - 2)), ("output", {})]

    def random_edge_op(self, rng: np.random.Generator) -> str | None:
        """An edge's op: uniform over the space's ops for ops on edges, else none (a plain edge)."""
        return self.random_op(rng) if self.ops_on == "edges" else None

    # ------------------------------------------------------------------ validity
    def check_cell(self, cell: Any) -> None:
        """Raise if ``cell`` is not a cell of this space.

        Raises:
            SearchSpaceError: naming the problem (an unknown op, a node on no path, a limit...).
        """
        if self.format == "nb201":
            self._check_nb201(cell)
            return
        if not isinstance(cell, Mapping):
            raise SearchSpaceError(f"cell: expected a dag JSON object with nodes and edges, got {type(cell).__name__}")
        try:
            parsed = parse_graph(cell, "dag", where="cell")
        except GraphError as exc:
            raise SearchSpaceError(str(exc)) from None
        n = len(parsed.cells[0].nodes) if len(parsed.cells) == 1 else 0
        if len(parsed.cells) != 1 or parsed.cells[0].inputs != (0,) or parsed.cells[0].outputs != (n - 1,):
            raise SearchSpaceError(
                "cell: a cell of this space has one cell with inputs [0] and outputs [its last node]"
            )
        problem = self.dag_problem(DagCell.read(cell))
        if problem is not None:
            raise SearchSpaceError(f"cell: {problem}")

    def _check_nb201(self, cell: Any) -> None:
        if not isinstance(cell, str):
            raise SearchSpaceError(f"cell: expected a NAS-Bench-201 string, got {type(cell).__name__}")
        try:
            graph = parse_graph(cell, "nb201", where="cell")
        except GraphError as exc:
            raise SearchSpaceError(str(exc)) from None
        n = len(graph.cells[0].nodes)
        if n != self.n_nodes:
            raise SearchSpaceError(f"cell: {n} nodes; the cells of space {self.name!r} have {self.n_nodes}")
        ops = nb201_ops(cell)
        for k, op in enumerate(ops):
            if op not in self.ops:
                raise SearchSpaceError(f"cell: edge {k} is {op!r}, not one of the space's ops ({', '.join(self.ops)})")
        if cell != nb201_string(ops, n):
            raise SearchSpaceError(f"cell: write it as the space writes it: {nb201_string(ops, n)!r}")

    def dag_problem(self, cell: DagCell) -> str | None:
        """What makes a dag cell invalid in this space, or None: the rules every operator keeps."""
        n = len(cell.nodes)
        if not self.min_nodes <= n <= self.max_nodes:
            return f"{n} nodes; the space allows {self.min_nodes} to {self.max_nodes} (input and output included)"
        if len(cell.edges) > self.max_edges:
            return f"{len(cell.edges)} edges; the space allows at most {self.max_edges}"
        if cell.nodes[0] != ("input", {}) or cell.nodes[-1] != ("output", {}):
            return "the first node must be 'input' and the last 'output'"
        for v, (op, params) in enumerate(cell.nodes[1:-1], start=1):
            problem = self._node_problem(op, params)
            if problem is not None:
                return f"node {v}: {problem}"
        for (s, t), edge_op in sorted(cell.edges.items()):
            if s >= t:
                return f"edge [{s}, {t}] goes backwards: nodes are numbered in topological order"
            if self.ops_on == "edges" and edge_op not in self.ops:
                return f"edge [{s}, {t}]: op {edge_op!r} is not one of the space's ops ({', '.join(self.ops)})"
            if self.ops_on == "nodes" and edge_op is not None:
                return f"edge [{s}, {t}]: the ops of this space sit on nodes; its edges are plain"
        stranded = _off_path(n, list(cell.edges))
        if stranded:
            return f"node {stranded[0]} lies on no path from the input to the output"
        return None

    def _node_problem(self, op: str, params: Mapping[str, Any]) -> str | None:
        if self.ops_on == "edges":
            return None if (op, dict(params)) == ("node", {}) else f"{op!r}: the ops of this space sit on edges"
        if op not in self.op_values:
            return f"op {op!r} is not one of the space's ops ({', '.join(self.ops)})"
        values = self.op_values[op]
        if set(params) != set(values):
            return f"op {op!r} takes the parameters {sorted(values) or 'none'}, got {sorted(params) or 'none'}"
        for name, value in params.items():
            if not values_match(value, values[name]):
                return f"op {op!r}: {name}={value!r} is not one of {values[name]}"
        return None

    def check(self, chrom: Sequence[Mapping[str, Any]]) -> None:
        """Raise if ``chrom`` is not an architecture of this space: the skeleton around one valid cell.

        Raises:
            SearchSpaceError: naming the gene index and the rule.
        """
        if isinstance(chrom, (str, bytes)) or not isinstance(chrom, Sequence):
            raise SearchSpaceError(f"a chromosome must be a list of gene dicts, got {type(chrom).__name__}")
        cell = self.cell_of(chrom)
        self.check_cell(cell)
        expected = self.chromosome(cell)
        if len(chrom) != len(expected):
            raise SearchSpaceError(
                f"the chromosome has {len(chrom)} genes; the skeleton of space {self.name!r} has {len(expected)} "
                f"({self.skeleton.stages} stages of {self.skeleton.cells_per_stage} cells)"
            )
        for i, (gene, want) in enumerate(zip(chrom, expected, strict=True)):
            if not isinstance(gene, Mapping):
                raise SearchSpaceError(f"gene {i}: expected a dict with a 'layer' key, got {type(gene).__name__}")
            got = {k: v for k, v in gene.items() if k != "f_name"}
            if _plain(got) != _plain(want):
                if want.get("layer") == CELL_LAYER and gene.get("layer") == CELL_LAYER:
                    raise SearchSpaceError(f"gene {i} (cell): every cell gene holds the same cell (that of gene 2)")
                raise SearchSpaceError(
                    f"gene {i} ({gene.get('layer')}): the skeleton of space {self.name!r} has {json.dumps(want)} here"
                )

    def is_valid(self, chrom: Sequence[Mapping[str, Any]]) -> bool:
        """``True`` if :meth:`check` accepts ``chrom``."""
        try:
            self.check(chrom)
        except SearchSpaceError:
            return False
        return True

    def normalize(self, arch: Any) -> Chromosome:
        """A chromosome of this space from a chromosome (copied) or from a cell alone (the skeleton
        put around it; a NAS-Bench-201 string is rewritten as the space writes it)."""
        if isinstance(arch, str) and self.format == "nb201":
            try:
                return self.chromosome(str(parse_graph(arch, "nb201", where="cell")))
            except GraphError as exc:
                raise SearchSpaceError(str(exc)) from None
        if isinstance(arch, Mapping):
            return self.chromosome(arch)
        genes = [dict(gene) for gene in arch]
        for gene in genes:
            if self.format == "nb201" and gene.get("layer") == CELL_LAYER and isinstance(gene.get("cell"), str):
                with contextlib.suppress(GraphError):  # check() names what is wrong with it
                    gene["cell"] = str(parse_graph(gene["cell"], "nb201", where="cell"))
        return genes

    def __repr__(self) -> str:
        sk = self.skeleton
        return (
            f"CellSpace(name={self.name!r}, format={self.format!r}, ops={len(self.ops)}, "
            f"nodes={self.min_nodes}..{self.max_nodes}, skeleton={sk.stages}x{sk.cells_per_stage} "
            f"cells from {sk.channels} channels)"
        )


AnySpace = SearchSpace | CellSpace


# ---------------------------------------------------------------------- loading any space
def load_space(source: str | Path | Mapping[str, Any] | AnySpace = "paper") -> AnySpace:
    """A chain or cell search space: a built-in name (``paper``, ``nb201``), a JSON file, or a dict.

    A file or dict with ``"kind": "cell"`` is a cell space; anything else a chain space.

    Raises:
        SearchSpaceError: as :meth:`SearchSpace.load` and :meth:`CellSpace.from_dict`.
    """
    if isinstance(source, SearchSpace | CellSpace):
        return source
    if isinstance(source, Mapping):
        return space_from_dict(source)
    text = str(source)
    builtin = None if isinstance(source, Path) else builtin_space_path("paper" if text == "default" else text)
    path = builtin or Path(text)
    if not path.is_file():
        return SearchSpace.load(source)  # its message lists the built-in spaces
    try:
        data = read_json(path)
    except UserFileError as exc:
        raise SearchSpaceError(f"{path}: cannot read the search-space file: {exc}") from None
    if not isinstance(data, Mapping):
        raise SearchSpaceError(f"{path}: a search-space file must hold a JSON object")
    return space_from_dict(data, origin=str(path))


def space_from_dict(data: Mapping[str, Any], origin: str = "search space") -> AnySpace:
    """A chain or cell space from its dict (the ``to_dict`` of either), by its ``kind``."""
    kind = data.get("kind")
    if kind == "cell":
        return CellSpace.from_dict(data, origin)
    if "kind" in data:
        raise SearchSpaceError(
            f"{origin}: invalid search space: kind: Input should be 'cell' (a cell space), got {kind!r}; "
            "a chain space has no kind"
        )
    return SearchSpace.from_dict(data, origin)


def is_cell_space(source: Any) -> bool:
    """Whether ``source`` (a name, a path or a dict) names a cell space; cheap, and False for
    anything unreadable (loading it reports the problem)."""
    if isinstance(source, CellSpace):
        return True
    if isinstance(source, Mapping):
        return source.get("kind") == "cell"
    if not isinstance(source, (str, Path)):
        return False
    builtin = None if isinstance(source, Path) else builtin_space_path(str(source))
    path = builtin or Path(str(source)).expanduser()
    try:
        data = read_json(path) if path.is_file() else None
    except (UserFileError, OSError):
        return False
    return isinstance(data, Mapping) and data.get("kind") == "cell"


def check_schema(space: AnySpace, scoring: Any) -> None:
    """Refuse a scoring schema that cannot read the architectures of a cell space.

    Raises:
        ConfigError: the schema has no cell gene type for layer ``cell`` or no gene type for
            ``RED_2D`` (when the skeleton has reductions).
    """
    if not isinstance(space, CellSpace):
        return
    layers = {g.layer: g for g in scoring.genes}
    cell = layers.get(CELL_LAYER)
    missing = []
    if cell is None or not cell.cell:
        missing.append(f'a cell gene type ("cell": true) for layer {CELL_LAYER!r}')
    if space.skeleton.stages > 1 and REDUCTION_LAYER not in layers:
        missing.append(f"a gene type for layer {REDUCTION_LAYER!r}")
    if missing:
        raise ConfigError(
            f"invalid setting 'schema': the cell space {space.name!r} needs a scoring schema with "
            f"{' and '.join(missing)}; {scoring.name!r} has none. Use schema = {CELL_SCHEMA!r} (the default "
            "for a cell space) or a copy of it"
        )


# ---------------------------------------------------------------------- helpers
def nb201_ops(cell: str) -> list[str]:
    """The op of every edge of a NAS-Bench-201 string, in its order (``none`` included)."""
    return [entry.partition("~")[0] for group in cell.strip().split("+") for entry in group[1:-1].split("|")]


def nb201_string(ops: Sequence[str], n_nodes: int = 4) -> str:
    """The NAS-Bench-201 string of the edge ops in its order (node 1's inputs, node 2's, ...)."""
    groups, k = [], 0
    for target in range(1, n_nodes):
        groups.append("|" + "|".join(f"{ops[k + j]}~{j}" for j in range(target)) + "|")
        k += target
    return "+".join(groups)


def cell_text(cell: Any) -> str:
    """A cell as one line: a NAS-Bench-201 string as it is, anything else as compact JSON."""
    return cell if isinstance(cell, str) else json.dumps(cell, separators=(",", ":"))


def _copy_cell(cell: Any) -> Any:
    return json.loads(json.dumps(cell)) if isinstance(cell, Mapping) else cell


def _plain(value: Any) -> Any:
    """JSON-equal values compare equal (32.0 and 32, a tuple and a list)."""
    return json.loads(json.dumps(value, sort_keys=True))


def _off_path(n: int, pairs: Sequence[tuple[int, int]]) -> list[int]:
    """The nodes that lie on no path from node 0 to node n - 1 (the output itself when none exists)."""
    out: list[list[int]] = [[] for _ in range(n)]
    into: list[list[int]] = [[] for _ in range(n)]
    for s, t in pairs:
        out[s].append(t)
        into[t].append(s)
    reached = _reach(0, out)
    reaches = _reach(n - 1, into)
    if n - 1 not in reached:
        return [n - 1]
    return [v for v in range(n) if v not in reached or v not in reaches]


def _reach(start: int, adjacency: Sequence[Sequence[int]]) -> set[int]:
    seen, todo = {start}, [start]
    while todo:
        for w in adjacency[todo.pop()]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def _problems(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("list[", "dict[", "function-"))) or (
            "(top level)"
        )
        problems.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(problems) + more


__all__ = [
    "CELL_LAYER",
    "CELL_SCHEMA",
    "MAX_CELL_NODES",
    "REDUCTION_LAYER",
    "AnySpace",
    "CellSpace",
    "CellSpaceSpec",
    "CellSpec",
    "DagCell",
    "SkeletonSpec",
    "cell_text",
    "check_schema",
    "is_cell_space",
    "load_space",
    "nb201_ops",
    "nb201_string",
    "space_from_dict",
]
