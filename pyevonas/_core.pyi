# Stubs of the private Rust extension (rust/src/py/). Types only: the user-facing
# documentation lives in pyevonas/metric/api.py and pyevonas/metric/_compiled.py, which wrap these.
from collections.abc import Callable, Sequence
from typing import Any, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "SMALL_CELLS",
    "Archive",
    "Encoder",
    "GraphBatch",
    "GraphCostTable",
    "PairKit",
    "Population",
    "ScoreTable",
    "__version__",
    "default_threads",
    "graph_distance",
    "graph_matrix",
    "install_similarity",
    "matrix_here",
    "max_threads",
    "pair_align",
    "pair_similarity",
    "plain_matrix",
    "remember_file",
    "remember_schema",
    "similarity",
]
__version__: str
SMALL_CELLS: int

def default_threads() -> int: ...
def max_threads() -> int: ...

@final
class ScoreTable:
    def __new__(
        cls,
        base: NDArray[np.float64],
        term_param: NDArray[np.int64],
        term_weight: NDArray[np.float64],
        term_norm: NDArray[np.float64],
        n_params: int,
        gap_open: float,
        gap_extend: float,
        lower_bound: str,
    ) -> ScoreTable: ...
    @property
    def n_types(self) -> int: ...
    @property
    def n_params(self) -> int: ...
    @property
    def symmetric(self) -> bool: ...
    @property
    def gap_open(self) -> float: ...
    @property
    def gap_extend(self) -> float: ...
    def substitutions(
        self,
        codes_a: NDArray[np.uint32],
        params_a: NDArray[np.float64],
        codes_b: NDArray[np.uint32],
        params_b: NDArray[np.float64],
    ) -> NDArray[np.float64]: ...
    def normalise(self, score: float, len_a: int, len_b: int, self_a: float, self_b: float) -> float: ...
    def align_dense(
        self, sub: NDArray[np.float64], traced: bool
    ) -> tuple[list[int] | None, list[float] | None, float]: ...
    def substitution(self, ta: int, pa: Sequence[float], tb: int, pb: Sequence[float]) -> float: ...

@final
class Encoder:
    def __new__(
        cls,
        ignore: list[str],
        layers: list[tuple[str, list[tuple[int, list[tuple[str, Any]], list[tuple[str, int]]]]]],
        n_params: int,
    ) -> Encoder: ...
    def encode(self, archs: Any) -> tuple[NDArray[np.uint32], NDArray[np.float64], NDArray[np.int64]] | None: ...

@final
class Population:
    def __new__(
        cls,
        table: ScoreTable,
        codes: NDArray[np.uint32],
        params: NDArray[np.float64],
        offsets: NDArray[np.int64],
    ) -> Population: ...
    def __len__(self) -> int: ...
    @property
    def n_distinct_genes(self) -> int: ...
    def matrix(
        self,
        split: int | None = None,
        float32: bool = False,
        n_threads: int | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> NDArray[Any]: ...
    def condensed(
        self,
        float32: bool = False,
        n_threads: int | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> NDArray[Any]: ...
    def scores(self, split: int | None = None, n_threads: int | None = None) -> NDArray[np.float64]: ...
    def nearest(
        self,
        k: int,
        split: int | None = None,
        n_threads: int | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]: ...
    def align(self, i: int, j: int) -> tuple[list[tuple[int, int]], list[float], float, float]: ...

# a, b: a plain chromosome (encoded in Rust; None comes back when it needs the Python path) or
# a (codes uint32, params float64 2-D) tuple.
def pair_similarity(table: ScoreTable, encoder: Encoder, a: object, b: object) -> float | None: ...
def pair_align(
    table: ScoreTable, encoder: Encoder, a: object, b: object
) -> tuple[list[int], list[float], float, float] | None: ...

@final
class PairKit:
    def __new__(cls, table: ScoreTable, encoder: Encoder) -> PairKit: ...

# pyevonas.similarity itself; the Python implementation behind it is installed once by
# pyevonas.metric.api (slow(a, b, schema) for whatever the fast lane leaves).
def install_similarity(named: dict[str, PairKit], slow: Callable[[Any, Any, Any], float]) -> None: ...
def remember_schema(schema: object, kit: PairKit) -> None: ...
def remember_file(key: tuple[int, int, int, int], kit: PairKit) -> None: ...
def similarity(a: object, b: object, schema: object = "default") -> float: ...
def plain_matrix(
    table: ScoreTable,
    encoder: Encoder,
    archs: list[Any],
    split: int | None = None,
    float32: bool = False,
    condensed: bool = False,
    n_threads: int | None = None,
) -> NDArray[Any] | tuple[NDArray[np.uint32], NDArray[np.float64], NDArray[np.int64]] | None: ...
def matrix_here(
    table: ScoreTable,
    codes: NDArray[np.uint32],
    params: NDArray[np.float64],
    offsets: NDArray[np.int64],
    split: int | None = None,
    float32: bool = False,
    condensed: bool = False,
    n_threads: int | None = None,
) -> NDArray[Any]: ...

@final
class Archive:
    def __new__(cls, table: ScoreTable) -> Archive: ...
    def __len__(self) -> int: ...
    @property
    def n_genes(self) -> int: ...
    def add(self, codes: NDArray[np.uint32], params: NDArray[np.float64], offsets: NDArray[np.int64]) -> int: ...
    def add_plain(self, encoder: Encoder, archs: object) -> int | None: ...
    def matrix(
        self,
        codes: NDArray[np.uint32],
        params: NDArray[np.float64],
        offsets: NDArray[np.int64],
        float32: bool = False,
        n_threads: int | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> NDArray[Any]: ...
    def nearest(
        self,
        codes: NDArray[np.uint32],
        params: NDArray[np.float64],
        offsets: NDArray[np.int64],
        k: int,
        n_threads: int | None = None,
        progress: Callable[[int, int], Any] | None = None,
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]: ...

@final
class GraphCostTable:
    def __new__(
        cls,
        node_sub: NDArray[np.float64],
        node_del: NDArray[np.float64],
        node_ins: NDArray[np.float64],
        edge_sub: NDArray[np.float64],
        edge_del: NDArray[np.float64],
        edge_ins: NDArray[np.float64],
    ) -> GraphCostTable: ...
    @property
    def symmetric(self) -> bool: ...

@final
class GraphBatch:
    def __new__(
        cls,
        arch_cells: NDArray[np.int64],
        cell_nodes: NDArray[np.int64],
        labels: NDArray[np.uint32],
        cell_edges: NDArray[np.int64],
        edges: NDArray[np.uint32],
        pins: NDArray[np.int64],
        keys: NDArray[np.uint64] | None = None,
    ) -> GraphBatch: ...
    def __len__(self) -> int: ...

def graph_distance(
    costs: GraphCostTable,
    a: GraphBatch,
    i: int,
    b: GraphBatch,
    j: int,
    method: str = "auto",
    exact_limit: int = 12,
) -> tuple[float, float, bool]: ...
def graph_matrix(
    costs: GraphCostTable,
    rows: GraphBatch,
    cols: GraphBatch | None = None,
    *,
    values: str = "similarity",
    method: str = "auto",
    exact_limit: int = 12,
    float32: bool = False,
    condensed: bool = False,
    n_threads: int | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> tuple[NDArray[Any], int]: ...
