"""The scoring schema compiled for the Rust core: score table, gene encoder and text-notation parser."""

from __future__ import annotations

import math
import numbers
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas import _core
from pyevonas.errors import EncodingError, GraphError
from pyevonas.metric.graphs import looks_like_graph
from pyevonas.metric.schema import BUILTIN_SCHEMAS, Scoring, resolve_scoring

Chromosome = list[dict[str, Any]]
Arch = str | Sequence[Mapping[str, Any]]
#: Encoded architectures: type codes (uint32), parameter rows (float64), offsets (int64).
Encoded = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Distinct text-notation strings whose encoding a compiled schema keeps for the per-call path.
_TEXT_CACHE_SIZE = 512


@dataclass(frozen=True)
class Gene:
    """One gene of a sequence: its letter, the layer it came from and the parameters that count."""

    letter: str
    layer: str
    params: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.params:
            return self.letter
        return f"{self.letter}({','.join(_fmt_number(v) for v in self.params.values())})"


def _fmt_number(v: float) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v) if isinstance(v, float) else str(v)


class CompiledScoring:
    """A Scoring compiled for the Rust core: type codes, parameter columns and the score table."""

    def __init__(self, scoring: Scoring) -> None:
        self.scoring = scoring
        self.letters = [g.letter for g in scoring.genes]
        self.code_of = {g.letter: i for i, g in enumerate(scoring.genes)}
        self.param_names: list[str] = []
        for g in scoring.genes:
            for p in g.params:
                if p not in self.param_names:
                    self.param_names.append(p)
        self.column_of = {p: i for i, p in enumerate(self.param_names)}
        self.by_layer: dict[str, list[int]] = {}
        for i, g in enumerate(scoring.genes):
            self.by_layer.setdefault(g.layer, []).append(i)
        # More specific selectors (more conditions) win over a catch-all for the same layer.
        for codes in self.by_layer.values():
            codes.sort(key=lambda c: -len(scoring.genes[c].when))
        self.ignore = set(scoring.ignore_layers)
        self.table = self._build_table()
        self._text_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        #: The fast path of `population` for lists of plain chromosomes, in Rust: per layer name,
        #: the gene types it can be (most specific first) with their conditions and columns.
        self.encoder = _core.Encoder(
            sorted(self.ignore),
            [
                (
                    name,
                    [
                        (
                            c,
                            list(scoring.genes[c].when.items()),
                            [(p, self.column_of[p]) for p in scoring.genes[c].params],
                        )
                        for c in codes
                    ],
                )
                for name, codes in self.by_layer.items()
            ],
            len(self.param_names),
        )
        #: ``pair_fast(a, b)``: the similarity of two plain chromosomes, or None when either
        #: needs the validating path (one C-level call: the per-call path's fast lane).
        self.pair_fast: Callable[[Any, Any], float | None] = partial(_core.pair_similarity, self.table, self.encoder)
        #: ``traced_fast(a, b)``: likewise, the traced alignment (see :meth:`traced`) or None.
        self.traced_fast: Callable[[Any, Any], tuple[list[int], list[float], float, float] | None] = partial(
            _core.pair_align, self.table, self.encoder
        )
        #: What ``pyevonas.similarity`` (in Rust) needs to compute a pair without Python.
        self.kit = _core.PairKit(self.table, self.encoder)

    def _build_table(self) -> _core.ScoreTable:
        s = self.scoring
        n = len(s.genes)
        pairs = s.pair_rules()
        max_terms = max((len(r.terms) for r in s.rules), default=0) or 1
        base = np.empty((n, n), dtype=np.float64)
        tp = np.full((n, n, max_terms), -1, dtype=np.int64)
        tw = np.zeros((n, n, max_terms), dtype=np.float64)
        tn = np.ones((n, n, max_terms), dtype=np.float64)
        for x in range(n):
            for y in range(n):
                base[x, y], terms = pairs[x][y]
                for k, (param, weight, norm) in enumerate(terms):
                    tp[x, y, k] = self.column_of[param]
                    tw[x, y, k] = weight
                    tn[x, y, k] = norm
        return _core.ScoreTable(base, tp, tw, tn, len(self.param_names), s.gap.open, s.gap.extend, s.lower_bound)

    # --- chromosome -> genes -------------------------------------------------------------
    def gene_of(self, layer: Any, index: int) -> Gene | None:
        """The gene of one layer dict (None for an ignored layer); EncodingError if it has none."""
        if not isinstance(layer, Mapping):
            raise EncodingError(f"layer {index}: expected a layer dict, got {type(layer).__name__}")
        name = layer.get("layer")
        if not isinstance(name, str):
            raise EncodingError(f"layer {index}: the layer dict has no 'layer' name: {dict(layer)!r}")
        if name in self.ignore:
            return None
        codes = self.by_layer.get(name)
        if codes is None:
            known = ", ".join(sorted(self.by_layer))
            raise EncodingError(
                f"layer {index}: unknown layer {name!r} (scoring schema {self.scoring.name!r} knows {known})"
            )
        for code in codes:
            g = self.scoring.genes[code]
            if all(_same(layer.get(k, _MISSING), v) for k, v in g.when.items()):
                return Gene(g.letter, name, self._params(g.params, layer, index, name))
        conds = "; ".join(", ".join(f"{k}={v!r}" for k, v in self.scoring.genes[c].when.items()) for c in codes)
        got = {k: layer.get(k) for c in codes for k in self.scoring.genes[c].when}
        raise EncodingError(f"layer {index} ({name}): {got} matches no gene type (expected {conds})")

    @staticmethod
    def _params(spec: Mapping[str, Any], layer: Mapping[str, Any], index: int, name: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in spec:
            if p not in layer:
                raise EncodingError(f"layer {index} ({name}): missing parameter {p!r}")
            v = layer[p]
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise EncodingError(f"layer {index} ({name}): parameter {p!r} must be a number, got {v!r}")
            fv = float(v)
            if not math.isfinite(fv):
                raise EncodingError(f"layer {index} ({name}): parameter {p!r} is {fv} (must be finite)")
            out[p] = fv
        return out

    def genes(self, arch: Arch) -> list[Gene]:
        """The genes of an architecture (chromosome or text notation)."""
        if isinstance(arch, str):
            return self.parse_genes(arch)
        if isinstance(arch, Mapping) or not isinstance(arch, Sequence):
            raise EncodingError(
                f"an architecture must be a list of layer dicts or a text-notation string, got {type(arch).__name__}"
            )
        out = [g for i, layer in enumerate(arch) if (g := self.gene_of(layer, i)) is not None]
        if not out:
            raise EncodingError(
                "empty architecture: no gene to align"
                + (f" (only ignored layers: {', '.join(sorted(self.ignore))})" if len(arch) else "")
            )
        return out

    def encode_genes(self, genes: Sequence[Gene]) -> tuple[np.ndarray, np.ndarray]:
        """Type codes (uint32) and parameter rows (float64, NaN = absent) of genes."""
        codes = np.fromiter((self.code_of[g.letter] for g in genes), dtype=np.uint32, count=len(genes))
        params = np.full((len(genes), len(self.param_names)), np.nan, dtype=np.float64)
        for r, g in enumerate(genes):
            for p, v in g.params.items():
                params[r, self.column_of[p]] = v
        return codes, params

    def encode(self, archs: Sequence[Arch], split: int | None = None) -> Encoded:
        """Encode many architectures: (type codes uint32, parameter rows float64, offsets int64).

        Plain chromosomes go through the Rust encoder; if anything in the list is not plain
        (a text-notation string, a tuple, a bad value), the whole list takes the validating
        path, which raises the precise error or handles the other representations. With
        ``split``, entries from ``split`` on are the ``others`` of a call and are named so in errors.
        """
        fast = self.encoder.encode(archs if isinstance(archs, list) else list(archs))
        if fast is not None:
            return fast
        genes: list[Gene] = []
        offsets = [0]
        for n, arch in enumerate(archs):
            try:
                genes.extend(self.genes(arch))
            except EncodingError as exc:
                where = f"architecture {n}" if split is None or n < split else f"others[{n - split}]"
                if looks_like_graph(arch):  # a graph among chains (graphs first go to the graph API)
                    raise GraphError(
                        f"{where}: expected a chain (a list of layer dicts or text notation), got a graph architecture; "
                        "chains and graphs cannot be compared with each other"
                    ) from None
                raise EncodingError(f"{where}: {exc}") from None
            offsets.append(len(genes))
        codes, params = self.encode_genes(genes)
        return codes, params, np.asarray(offsets, dtype=np.int64)

    def population(self, archs: Sequence[Arch], split: int | None = None) -> _core.Population:
        """Encode many architectures into one Population for the Rust core (see :meth:`encode`)."""
        return _core.Population(self.table, *self.encode(archs, split))

    # --- one pair, per call ----------------------------------------------------------------
    def encoded_one(self, arch: Arch, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(codes, params) of one architecture by the validating path; ``n`` numbers it in errors.

        Text notation is parsed once per distinct string (the last few hundred are kept), so a
        loop that compares the same strings again and again does not parse them again.
        """
        if isinstance(arch, str):
            hit = self._text_cache.get(arch)
            if hit is None:
                hit = self._text_cache[arch] = self._encode_validating(arch, n)
                if len(self._text_cache) > _TEXT_CACHE_SIZE:
                    del self._text_cache[next(iter(self._text_cache))]
            return hit
        return self._encode_validating(arch, n)

    def _encode_validating(self, arch: Arch, n: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self.encode_genes(self.genes(arch))
        except EncodingError as exc:
            raise EncodingError(f"architecture {n}: {exc}") from None

    def similarity(self, a: Arch, b: Arch) -> float:
        """Similarity of one pair, computed on the calling thread (see ``pyevonas.similarity``)."""
        sim = self.pair_fast(a, b)
        return sim if sim is not None else self.pair_validating(a, b)

    def pair_validating(self, a: Arch, b: Arch) -> float:
        """Similarity of one pair encoded by the validating path (text notation, odd values)."""
        sim = _core.pair_similarity(self.table, self.encoder, self.encoded_one(a, 0), self.encoded_one(b, 1))
        return sim  # type: ignore[return-value]  # never None for encoded input

    def traced(self, a: Arch, b: Arch) -> tuple[list[int], list[float], float, float]:
        """Traced alignment of one pair: (pairs flattened as [i0, j0, i1, j1, ...] with -1 for a
        gap, column scores, raw score, similarity)."""
        out = self.traced_fast(a, b)
        if out is None:
            out = _core.pair_align(self.table, self.encoder, self.encoded_one(a, 0), self.encoded_one(b, 1))
        return out  # type: ignore[return-value]  # never None for encoded input

    # --- text notation -------------------------------------------------------------------
    _TOKEN = re.compile(r"\s*(?P<letter>[^\s(),])\s*(?:\((?P<args>[^()]*)\))?\s*")

    def parse_genes(self, text: str) -> list[Gene]:
        """Parse the text notation into genes."""
        genes: list[Gene] = []
        pos = 0
        text_s = text.strip()
        if not text_s:
            raise EncodingError("empty architecture: the text notation has no gene")
        while pos < len(text_s):
            m = self._TOKEN.match(text_s, pos)
            if m is None or m.end() == pos:
                raise EncodingError(f"cannot read the architecture text at character {pos}: {text_s[pos : pos + 12]!r}")
            letter, args = m.group("letter"), m.group("args")
            index = len(genes)
            if args is None and text_s.startswith("(", m.end()):
                raise EncodingError(
                    f"gene {index} ({letter}): unbalanced parenthesis at character {m.end()}: "
                    f"{text_s[m.end() : m.end() + 12]!r}"
                )
            code = self.code_of.get(letter)
            if code is None:
                raise EncodingError(
                    f"gene {index}: unknown letter {letter!r} (scoring schema {self.scoring.name!r} "
                    f"has {''.join(self.letters)})"
                )
            gt = self.scoring.genes[code]
            names = list(gt.params)
            values = [a.strip() for a in args.split(",")] if args is not None and args.strip() else []
            if len(values) != len(names):
                want = f"({', '.join(names)})" if names else "no parameters"
                raise EncodingError(f"gene {index} ({letter}): expected {want}, got {len(values)} value(s)")
            params: dict[str, float] = {}
            for name, raw in zip(names, values, strict=True):
                # Plain ASCII decimals only: float() would also take '３２', '3_2' and ' 32 '.
                if not _NUMBER.fullmatch(raw):
                    raise EncodingError(f"gene {index} ({letter}): {name} {raw!r} is not a number")
                v = float(raw)
                if not math.isfinite(v):
                    raise EncodingError(f"gene {index} ({letter}): {name} is {raw} (must be finite)")
                params[name] = v
            genes.append(Gene(letter, gt.layer, params))
            pos = m.end()
        return genes

    def to_layer(self, gene: Gene) -> dict[str, Any]:
        """A layer dict in the paper's format for a gene (integral values as int)."""
        gt = self.scoring.gene(gene.letter)
        out: dict[str, Any] = {"layer": gt.layer}
        out.update(gt.when)
        for k, v in gene.params.items():
            out[k] = int(v) if float(v).is_integer() and _is_int_range(gt.params[k]) else v
        return out


def _is_int_range(r: Any) -> bool:
    return all(float(x).is_integer() for x in (r.min, r.max, r.step or 1))


_MISSING = object()
# A number in the text notation: ASCII digits, an optional fraction and exponent, or nan/inf
# (refused as not finite with their own message).
_NUMBER = re.compile(r"[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|nan|inf)", re.ASCII)


def _same(a: Any, b: Any) -> bool:
    # Plain equality: a condition {"skip_connection": 1} also matches 1.0 and True.
    return a is not _MISSING and bool(a == b)


# --- public helpers ----------------------------------------------------------------------
# Compiled schemas are cached: a built-in name maps straight to its compiled form, a Scoring
# keeps its own, and a file is compiled once per version of its content, keyed by the file's
# identity and modification (device, inode, mtime in ns, size): a new or edited file is read
# again, an unchanged one costs one stat() per call.
COMPILED_BY_NAME: dict[str, CompiledScoring] = {}
#: The built-in names' pair kits, read by ``pyevonas.similarity`` (Rust) as it fills.
KITS_BY_NAME: dict[str, _core.PairKit] = {}
_BY_FILE: dict[tuple[int, int, int, int], CompiledScoring] = {}
_MAX_FILES = 32


def compiled(schema: str | Path | Scoring | Any = "default") -> CompiledScoring:
    """The compiled form of a ``schema`` argument, built once and cached (see above)."""
    if schema.__class__ is str:
        hit = COMPILED_BY_NAME.get(schema)
        if hit is not None:
            return hit
        if schema in BUILTIN_SCHEMAS:
            hit = COMPILED_BY_NAME[schema] = _of_scoring(Scoring.builtin(schema))
            KITS_BY_NAME[schema] = hit.kit
            return hit
        return _of_file(schema)
    # A path before a Scoring: the per-call functions come here for every path, and an
    # isinstance check against a pydantic model class costs a Python-level call.
    if isinstance(schema, (str, Path)):
        return _of_file(schema)
    if isinstance(schema, Scoring):
        return _of_scoring(schema)
    return _of_scoring(resolve_scoring(schema))


def _of_scoring(scoring: Scoring) -> CompiledScoring:
    # The private attribute read straight from pydantic's store: ``scoring._compiled`` goes
    # through BaseModel.__getattr__, which costs more than a whole similarity call.
    private = scoring.__pydantic_private__
    cached = private.get("_compiled") if private is not None else None
    if cached is None:
        cached = scoring._compiled = CompiledScoring(scoring)
    return cached


def _of_file(path: str | Path) -> CompiledScoring:
    return file_entry(path)[1]


def file_entry(path: str | Path) -> tuple[tuple[int, int, int, int] | None, CompiledScoring]:
    """The compiled schema file at ``path`` with the key it is cached under (device, inode,
    modification time in ns, size, as ``os.stat`` gives them; None when it is not cached)."""
    try:
        st = os.stat(path)
    except OSError:
        return None, _of_scoring(resolve_scoring(path))  # raises the precise SchemaError
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _BY_FILE.get(key)
    if hit is None:
        # Only a regular file is ever cached (a file's identity keeps its type), so this is
        # checked on a miss only: the per-call path pays one stat() and one lookup.
        if not stat.S_ISREG(st.st_mode):
            return None, _of_scoring(resolve_scoring(path))  # raises the precise SchemaError
        hit = CompiledScoring(Scoring.load(path))
        if len(_BY_FILE) >= _MAX_FILES:
            del _BY_FILE[next(iter(_BY_FILE))]
        _BY_FILE[key] = hit
    return key, hit
