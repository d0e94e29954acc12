"""Reading the published cell formats: NAS-Bench-201 strings, NAS-Bench-101 specs, DARTS genotypes
(private; see ``graphs``)."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pyevonas.metric._graph_cells import (
    DARTS_FIELDS,
    DARTS_OPS,
    NB101_MAX_EDGES,
    NB101_MAX_NODES,
    NB101_OPS,
    NB201_OPS,
    Cell,
    Edge,
    GraphArch,
    Node,
    fail,
    is_genotype_tuple,
    is_integer,
    key_text,
    show_value,
)


# ---------------------------------------------------------------------- nb201
def _edge(k: int, entry: str) -> str:
    """An edge of an NB201 string as an error names it (made only when there is an error)."""
    return f"edge {k} ({show_value(entry)})"


def read_nb201(obj: Any, at: str) -> GraphArch:
    """A NAS-Bench-201 / NATS topology string: node i's group lists ``op~j`` for its inputs j < i."""
    if not isinstance(obj, str):
        fail(at, f"expected the topology string '|op~0|+|op~0|op~1|+...', got {type(obj).__name__}")
    text = obj.strip()
    if not text:
        fail(at, "empty")
    edges: list[Edge] = []
    k = 0
    groups = text.split("+")
    for i, group in enumerate(groups):
        target = i + 1
        if len(group) < 3 or group[0] != "|" or group[-1] != "|":
            fail(at, f"node {target}: {show_value(group)} is not of the form |op~j|op~j|...|")
        seen: set[int] = set()
        for entry in group[1:-1].split("|"):
            op, tilde, index = entry.partition("~")
            k += 1
            if not tilde or not index.isdigit() or len(index) > 6:
                fail(at, f"{_edge(k - 1, entry)}: expected op~j with j the index of an earlier node")
            if op not in NB201_OPS:
                fail(at, f"{_edge(k - 1, entry)}: unknown operation {show_value(op)} (known: {', '.join(NB201_OPS)})")
            source = int(index)
            if source >= target:
                fail(at, f"{_edge(k - 1, entry)}: node {source} is not before node {target}")
            if source in seen:
                fail(at, f"{_edge(k - 1, entry)}: a second edge from node {source} to node {target}")
            seen.add(source)
            if op != "none":
                edges.append(Edge(source, target, op))
    n_nodes = len(groups) + 1
    nodes = (Node("input"), *(Node("node") for _ in range(n_nodes - 2)), Node("output"))
    cell = Cell(nodes, tuple(sorted(edges, key=lambda e: (e.source, e.target))), (0,), (n_nodes - 1,))
    return GraphArch(cells=(cell,), format="nb201", cell_names=("cell",))


# ---------------------------------------------------------------------- nb101
def read_nb101(obj: Any, at: str) -> GraphArch:
    """A NAS-Bench-101 spec, checked and pruned as NAS-Bench-101's ModelSpec and API do."""
    if not isinstance(obj, Mapping):
        fail(at, f"expected a JSON object with matrix and ops, got {type(obj).__name__}")
    for key in obj:
        if key not in ("matrix", "ops"):
            fail(at, f"{key_text(key)}: unknown key (a NAS-Bench-101 cell has matrix and ops)")
    for key in ("matrix", "ops"):
        if key not in obj:
            fail(at, f"{key}: missing")
    matrix = _nb101_matrix(obj["matrix"], at)
    ops = _nb101_ops(obj["ops"], len(matrix), at)
    keep = _nb101_kept(matrix)
    if len(keep) < 2:
        fail(at, "invalid spec: no path from the input to the output")
    index = {old: new for new, old in enumerate(keep)}
    edges = tuple(Edge(index[s], index[t]) for s in keep for t in keep if matrix[s][t])
    if len(edges) > NB101_MAX_EDGES:
        fail(at, f"{len(edges)} edges after pruning; NAS-Bench-101 cells have at most {NB101_MAX_EDGES} edges")
    nodes = tuple(Node(ops[v]) for v in keep)
    cell = Cell(nodes, edges, (0,), (len(nodes) - 1,))
    return GraphArch(cells=(cell,), format="nb101", cell_names=("cell",))


def _nb101_matrix(raw: Any, at: str) -> list[list[int]]:
    if hasattr(raw, "tolist") and not isinstance(raw, list):  # a numpy array, as NAS-Bench-101 gives it
        raw = raw.tolist()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        fail(at, f"matrix: expected a square list of 0/1 rows, got {type(raw).__name__}")
    n = len(raw)
    if n == 0:
        fail(at, "matrix: empty (the graph has no nodes)")
    if n > NB101_MAX_NODES:  # before reading the rows, which may be as many
        fail(at, f"matrix is {n}x{n}; NAS-Bench-101 cells have at most {NB101_MAX_NODES} nodes")
    rows: list[list[int]] = []
    for i, row in enumerate(raw):
        if not isinstance(row, Sequence) or isinstance(row, str):
            fail(at, f"matrix[{i}]: expected a row of 0/1, got {show_value(row)}")
        if len(row) != n:
            fail(at, f"matrix[{i}]: {len(row)} entries in a matrix of {n} rows (it must be square)")
        rows.append(list(row))
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value not in (0, 1) or not isinstance(value, int):
                fail(at, f"matrix[{i}][{j}]: {show_value(value)} is not 0 or 1")
            if value and j <= i:
                fail(at, f"matrix[{i}][{j}]: an edge on or below the diagonal (the matrix must be upper triangular)")
    return [[int(v) for v in row] for row in rows]


def _nb101_ops(raw: Any, n: int, at: str) -> list[str]:
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        fail(at, f"ops: expected a list of operation names, got {type(raw).__name__}")
    if len(raw) != n:
        fail(at, f"ops: {len(raw)} operations for a {n}x{n} matrix (one per node)")
    for i, op in enumerate(raw):
        want = "input" if i == 0 else "output" if i == n - 1 else None
        if want is not None and op != want:
            fail(at, f"ops[{i}]: {show_value(op)}: the {'first' if i == 0 else 'last'} node's op must be {want!r}")
        if want is None and op not in NB101_OPS:
            fail(at, f"ops[{i}]: unknown operation {show_value(op)} (known: {', '.join(NB101_OPS)})")
    return [str(op) for op in raw]


def _nb101_kept(matrix: list[list[int]]) -> list[int]:
    """The nodes on a path from the input to the output, as NAS-Bench-101's ModelSpec keeps them."""
    n = len(matrix)
    from_input = _reach(0, lambda v: (w for w in range(v + 1, n) if matrix[v][w]))
    to_output = _reach(n - 1, lambda v: (w for w in range(v) if matrix[w][v]))
    return sorted(from_input & to_output)


def _reach(start: int, step: Callable[[int], Iterable[int]]) -> set[int]:
    seen = {start}
    frontier = [start]
    while frontier:
        for w in step(frontier.pop()):
            if w not in seen:
                seen.add(w)
                frontier.append(w)
    return seen


# ---------------------------------------------------------------------- darts
def read_darts(obj: Any, at: str) -> GraphArch:
    """A DARTS genotype (text, namedtuple or JSON object): the normal and the reduce cell."""
    if isinstance(obj, str):
        data = _genotype_text(obj, at)
    elif is_genotype_tuple(obj):
        data = dict(obj._asdict())
    elif isinstance(obj, Mapping):
        data = dict(obj)
    else:
        fail(at, f"expected a 'Genotype(...)' text or a JSON object with normal and reduce, got {type(obj).__name__}")
    for key in data:
        if key not in DARTS_FIELDS:
            fail(at, f"{key_text(key)}: unknown key (a genotype has {', '.join(DARTS_FIELDS)})")
    for key in DARTS_FIELDS:
        if key not in data:
            fail(at, f"{key}: missing")
    cells = (
        _darts_cell(data["normal"], data["normal_concat"], at, "normal"),
        _darts_cell(data["reduce"], data["reduce_concat"], at, "reduce"),
    )
    return GraphArch(cells=cells, format="darts", cell_names=("normal", "reduce"))


def _genotype_text(text: str, at: str) -> dict[str, Any]:
    """The fields of a ``Genotype(...)`` text, read as literals with :mod:`ast` (nothing is evaluated)."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        # A SyntaxError's first clause ("Exceeds the limit (4300 digits) for integer string conversion").
        reason = exc.msg.split(":")[0] if isinstance(exc, SyntaxError) else "too large or too deeply nested"
        fail(at, f"cannot read the Genotype text ({reason})")
    call = tree.body
    func = call.func if isinstance(call, ast.Call) else None
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if not isinstance(call, ast.Call) or name != "Genotype":
        fail(at, "expected the text Genotype(normal=[...], normal_concat=[...], reduce=[...], reduce_concat=[...])")
    if len(call.args) > len(DARTS_FIELDS):
        fail(at, f"Genotype takes {len(DARTS_FIELDS)} fields, got {len(call.args)} positional values")
    fields: list[tuple[str, ast.expr]] = list(zip(DARTS_FIELDS, call.args, strict=False))
    for kw in call.keywords:
        if kw.arg is None:
            fail(at, "Genotype(**...) cannot be read; write the fields out")
        fields.append((kw.arg, kw.value))
    data: dict[str, Any] = {}
    for key, node in fields:
        if key in data:
            fail(at, f"{key}: given twice")
        data[key] = _literal(node, at, key)
    return data


def _literal(node: ast.expr, at: str, key: str) -> Any:
    # range(2, 6) is how many published genotypes write their concat lists.
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and not node.keywords:
        bounds = [int(a.value) for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, int)]
        if len(bounds) == len(node.args) and 1 <= len(bounds) <= 2 and all(abs(b) < 1000 for b in bounds):
            return list(range(*bounds))
        fail(at, f"{key}: only range(stop) or range(start, stop) with small integers can be read")
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        fail(at, f"{key}: not a literal list (only lists, tuples, strings and integers can be read)")


def _darts_cell(ops: Any, concat: Any, at: str, name: str) -> Cell:
    if not isinstance(ops, Sequence) or isinstance(ops, str):
        fail(at, f"{name}: expected a list of (op, input) pairs, got {type(ops).__name__}")
    if not ops or len(ops) % 2:
        fail(at, f"{name}: {len(ops)} operations; each intermediate node takes two (an even number, at least 2)")
    n_steps = len(ops) // 2
    output = n_steps + 2
    edges: list[Edge] = []
    first: dict[tuple[int, int], int] = {}
    for i, pair in enumerate(ops):
        where = f"{name}[{i}]"
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            fail(at, f"{where}: expected an (op, input) pair, got {show_value(pair)}")
        op, source = pair
        target = i // 2 + 2
        if op not in DARTS_OPS:
            fail(at, f"{where}: unknown operation {show_value(op)} (known: {', '.join(DARTS_OPS)})")
        if not is_integer(source) or not 0 <= source < target:
            fail(at, f"{where}: input {show_value(source)} is not a node before node {target} (0 to {target - 1})")
        if op == "none":
            continue
        source = int(source)  # numpy's integers too
        if (source, target) in first:
            fail(
                at,
                f"{where}: ({op!r}, {source}) is a second edge from node {source} to node {target} "
                f"(also {name}[{first[source, target]}]); a graph has one edge per pair of nodes",
            )
        first[source, target] = i
        edges.append(Edge(source, target, op))
    key = f"{name}_concat"
    if not isinstance(concat, Sequence) or isinstance(concat, str) or not concat:
        fail(at, f"{key}: expected a non-empty list of the nodes the output concatenates, got {show_value(concat)}")
    seen: set[int] = set()
    for i, node in enumerate(concat):
        if not is_integer(node) or not 0 <= node < output:
            fail(at, f"{key}[{i}]: {show_value(node)} is not a node of the cell (0 to {output - 1})")
        if node in seen:
            fail(at, f"{key}[{i}]: node {node} is listed twice")
        seen.add(node)
        edges.append(Edge(int(node), output))
    nodes = (Node("input"), Node("input"), *(Node("node") for _ in range(n_steps)), Node("output"))
    return Cell(nodes, tuple(sorted(edges, key=lambda e: (e.source, e.target))), (0, 1), (output,))
