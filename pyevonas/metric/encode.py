"""Encoding: architectures into gene sequences, and the text notation.

The representations of an architecture, and how to move between them:

- **Chromosome**: ``list[dict]`` of layer dicts in the paper's format,
  ``[{"layer": "C_2D", "filters": 32, "kernel_size": 3, "strides": 1, ...}, ...]``. Layers in the
  schema's ``ignore_layers`` (``Rescaling``, ``MAG``) are not genes.
- **Text notation**: ``"C(32,3,1) B L M(2) g F(64)"``: one letter per gene, its counted
  parameters in parentheses in the schema's order (``parse_arch`` / ``format_arch``).
- **Letters**: ``"CBLMgF"``, the sequence without parameters (``sequence``).
- **Genes**: ``list[Gene]`` (letter, layer, counted parameters): ``genes``.
- **Encoded**: type codes (uint32) and a parameter matrix (float64, NaN where a gene lacks a
  column), the only form the Rust core sees (``CompiledScoring.encode``).
"""

from __future__ import annotations

from typing import Any

from pyevonas.metric._compiled import Arch, Chromosome, Gene, compiled
from pyevonas.metric.schema import Scoring


def genes(arch: Arch, schema: str | Scoring | Any = "default") -> list[Gene]:
    """The genes of an architecture under a scoring schema.

    Example:
        >>> [str(g) for g in genes("C(32,3,1) B L g F(64)")]
        ['C(32,3,1)', 'B', 'L', 'g', 'F(64)']
    """
    return compiled(schema).genes(arch)


def sequence(arch: Arch, schema: str | Scoring | Any = "default") -> str:
    """The letter sequence of an architecture, e.g. ``"TTrMCDICRMGF"``."""
    return "".join(g.letter for g in compiled(schema).genes(arch))


def parse_arch(text: str, schema: str | Scoring | Any = "default") -> Chromosome:
    """Turn the text notation into a chromosome (list of layer dicts in the paper's format).

    Example:
        >>> parse_arch("C(32,3,1) M(2) g F(64)")[0]
        {'layer': 'C_2D', 'filters': 32, 'kernel_size': 3, 'strides': 1}
    """
    c = compiled(schema)
    return [c.to_layer(g) for g in c.parse_genes(text)]


def format_arch(arch: Arch, schema: str | Scoring | Any = "default") -> str:
    """The text notation of an architecture, e.g. ``"C(32,3,1) B L M(2) g F(64)"``."""
    return " ".join(str(g) for g in compiled(schema).genes(arch))


__all__ = ["format_arch", "genes", "parse_arch", "sequence"]
