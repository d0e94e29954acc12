"""The similarity metric: scoring schemas, encoding, and the similarity API (never imports torch).

- :mod:`~pyevonas.metric.schema`: the scoring schema (pydantic models of the JSON file) and its
  JSON Schema.
- :mod:`~pyevonas.metric._compiled`: a schema compiled for the Rust core (score table, gene
  encoder, text-notation parser).
- :mod:`~pyevonas.metric.encode`: architectures as genes, letters and the text notation.
- :mod:`~pyevonas.metric.api`: similarity, matrices, nearest neighbours, alignments, diversity.
- :mod:`~pyevonas.metric.graphs`, :mod:`~pyevonas.metric.graph_costs`,
  :mod:`~pyevonas.metric.graph_api`: cell and graph architectures (NAS-Bench-201/101, DARTS, any
  DAG), their edit costs, and the graph edit distance and similarity.
- :mod:`~pyevonas.metric.archive`: ``Archive``, architectures encoded once for novelty search,
  deduplication and k-NN queries.

This is the only package that imports the Rust extension ``pyevonas._core``.
"""

from __future__ import annotations

from pyevonas.metric._compiled import Arch, Chromosome, Gene, compiled
from pyevonas.metric.api import (
    DIVERSITY_KINDS,
    Alignment,
    DiversityHow,
    align,
    diversity,
    nearest,
    round3,
    score_matrix,
    similarity,
    similarity_matrix,
)
from pyevonas.metric.archive import Archive
from pyevonas.metric.encode import format_arch, genes, parse_arch, sequence
from pyevonas.metric.graph_api import (
    ApproximationWarning,
    EditDistance,
    graph_edit_distance,
    graph_nearest,
    graph_similarity,
    graph_similarity_matrix,
)
from pyevonas.metric.graph_costs import BUILTIN_GRAPH_COSTS, GraphCosts
from pyevonas.metric.graphs import GRAPH_FORMATS, GraphArch, parse_graph
from pyevonas.metric.schema import BUILTIN_SCHEMAS, Scoring, json_schema, resolve_scoring

__all__ = [
    "BUILTIN_GRAPH_COSTS",
    "BUILTIN_SCHEMAS",
    "GRAPH_FORMATS",
    "ApproximationWarning",
    "EditDistance",
    "GraphArch",
    "GraphCosts",
    "graph_edit_distance",
    "graph_nearest",
    "graph_similarity",
    "graph_similarity_matrix",
    "parse_graph",
    "DIVERSITY_KINDS",
    "Alignment",
    "Arch",
    "Archive",
    "Chromosome",
    "DiversityHow",
    "Gene",
    "Scoring",
    "align",
    "compiled",
    "diversity",
    "format_arch",
    "genes",
    "json_schema",
    "nearest",
    "parse_arch",
    "resolve_scoring",
    "round3",
    "score_matrix",
    "sequence",
    "similarity",
    "similarity_matrix",
]
