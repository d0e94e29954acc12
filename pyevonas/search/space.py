"""Chain search space: the gene pool, random sampling and the validity rules of a chromosome.

A search space is a declarative JSON file (the paper's ships as ``schemas/space.paper.json``)
validated by pydantic. It names

* ``genes``: every layer type with its ``role`` (``start``, ``feature``, ``pooling`` or ``dense``),
  its parameters (``{"range": [start, stop, step]}`` with the stop value *included*, or
  ``{"choices": [...]}``) and its ``successors`` (the layers allowed directly after it);
* ``start``: the gene every sampled chromosome begins with (the paper's ``Rescaling``);
* ``sampling``: how many feature and dense genes a fresh random chromosome has;
* ``limits``: the lengths :meth:`SearchSpace.check` accepts (``null`` = unbounded).

A chromosome is ``[start] + features + [pooling] + dense``. No feature gene lists a pooling gene
as a successor (as in the original rule set); the junction *feature -> pooling* is always allowed,
because the sampler places the pooling gene itself. ``check`` also accepts a chromosome without the
start gene (the text notation has none), provided its first gene may follow the start gene.

Every random draw goes through an explicit ``numpy.random.Generator``: same seed, same chromosomes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pyevonas._userfiles import UserFileError, read_json
from pyevonas.errors import SearchSpaceError
from pyevonas.metric._compiled import Chromosome

Role = Literal["start", "feature", "pooling", "dense"]
Scalar = str | int | float | bool

_SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
_RESERVED_PARAMS = frozenset({"layer", "f_name"})
# A range may not expand into more values than this (a typo like step 1e-9 would eat the memory).
_MAX_VALUES = 100_000
# Float parameters are stored rounded, so 0.1 * 3 is written 0.3, not 0.30000000000000004.
_FLOAT_DIGITS = 10


class ParamSpec(BaseModel):
    """One parameter of a gene: an inclusive ``range`` [start, stop, step] or a ``choices`` list."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    range: tuple[int | float, int | float, int | float] | None = None
    choices: list[Scalar] | None = None

    @model_validator(mode="before")
    @classmethod
    def _numbers_only(cls, data: Any) -> Any:
        # Refuse "16" and true here: lax coercion would otherwise turn them into numbers.
        if (
            isinstance(data, Mapping)
            and isinstance(data.get("range"), (list, tuple))
            and any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in data["range"])
        ):
            raise ValueError("range must be three numbers [start, stop, step]")
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> ParamSpec:
        if (self.range is None) == (self.choices is None):
            raise ValueError('give exactly one of "range": [start, stop, step] or "choices": [...]')
        if self.range is not None:
            start, stop, step = self.range
            if not (step > 0):
                raise ValueError(f"range step must be > 0, got {step}")
            if stop < start:
                raise ValueError(f"range stop {stop} is below start {start}")
            if (stop - start) / step + 1 > _MAX_VALUES:
                raise ValueError(f"range {list(self.range)} has more than {_MAX_VALUES} values")
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices must not be empty")
            if len({repr(c) for c in self.choices}) != len(self.choices):
                raise ValueError(f"choices {self.choices} contain duplicates")
        return self


def expand_values(spec: ParamSpec) -> list[Scalar]:
    """The value set of a parameter: all ints give ints, any float gives rounded floats."""
    if spec.choices is not None:
        return list(spec.choices)
    assert spec.range is not None
    start, stop, step = spec.range
    if all(isinstance(v, int) for v in spec.range):
        return list(range(int(start), int(stop) + 1, int(step)))
    count = math.floor((stop - start) / step + 1e-9) + 1
    return [round(start + i * step, _FLOAT_DIGITS) for i in range(count)]


class GeneSpec(BaseModel):
    """One layer type of the gene pool."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    f_name: str | None = None
    params: dict[str, ParamSpec] = Field(default_factory=dict)
    successors: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _params_named_well(self) -> GeneSpec:
        bad = _RESERVED_PARAMS & set(self.params)
        if bad:
            raise ValueError(f"parameter names {sorted(bad)} are reserved")
        if len(set(self.successors)) != len(self.successors):
            raise ValueError(f"successors {self.successors} contain duplicates")
        return self


class LengthRange(BaseModel):
    """How many feature and dense genes a chromosome has (``None`` = no upper bound)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_feature_layers: int = Field(ge=1)
    max_feature_layers: int | None = Field(default=None, ge=1)
    min_dense_layers: int = Field(default=0, ge=0)
    max_dense_layers: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> LengthRange:
        if self.max_feature_layers is not None and self.max_feature_layers < self.min_feature_layers:
            raise ValueError("max_feature_layers is below min_feature_layers")
        if self.max_dense_layers is not None and self.max_dense_layers < self.min_dense_layers:
            raise ValueError("max_dense_layers is below min_dense_layers")
        return self


class SamplingCounts(LengthRange):
    """Lengths of a freshly sampled chromosome: both maxima are required."""

    max_feature_layers: int = Field(ge=1)
    max_dense_layers: int = Field(ge=0)


class SpaceSpec(BaseModel):
    """The whole search-space file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    name: str = Field(min_length=1)
    description: str = ""
    start: str
    genes: dict[str, GeneSpec]
    sampling: SamplingCounts
    limits: LengthRange

    @model_validator(mode="after")
    def _consistent(self) -> SpaceSpec:
        self._check_roles()
        self._check_successors()
        self._check_chains()
        self._check_sampling_within_limits()
        return self

    def _check_roles(self) -> None:
        """Exactly one start gene, the declared one, and at least one feature and one pooling gene."""
        genes = self.genes
        if self.start not in genes:
            raise ValueError(f"start gene {self.start!r} is not in genes")
        if genes[self.start].role != "start":
            raise ValueError(f"start gene {self.start!r} must have role 'start'")
        starts = [n for n, g in genes.items() if g.role == "start"]
        if starts != [self.start]:
            raise ValueError(f"exactly one gene may have role 'start', found {starts}")
        for role in ("feature", "pooling"):
            if not any(g.role == role for g in genes.values()):
                raise ValueError(f"the space needs at least one {role} gene")

    def _check_successors(self) -> None:
        """Every successor is a known gene of a role that may follow its predecessor's role."""
        genes = self.genes
        allowed_next: dict[str, tuple[str, ...]] = {
            "start": ("feature",),
            "feature": ("feature",),
            "pooling": ("dense",),
            "dense": ("dense",),
        }
        for name, gene in genes.items():
            for nxt in gene.successors:
                if nxt not in genes:
                    raise ValueError(f"genes.{name}.successors: unknown gene {nxt!r}")
                if genes[nxt].role not in allowed_next[gene.role]:
                    raise ValueError(
                        f"genes.{name}.successors: {nxt!r} is a {genes[nxt].role} gene, "
                        f"but a {gene.role} gene may only be followed by "
                        f"{' or '.join(allowed_next[gene.role])} genes"
                    )

    def _check_chains(self) -> None:
        """Every chain the sampler walks must be able to continue as long as it is asked to."""
        genes = self.genes
        if not genes[self.start].successors:
            raise ValueError(f"genes.{self.start}.successors: the start gene needs successors")
        if self.sampling.max_feature_layers > 1:
            for name, gene in genes.items():
                if gene.role == "feature" and not gene.successors:
                    raise ValueError(f"genes.{name}.successors: a feature gene needs successors")
        if self.sampling.max_dense_layers >= 1:
            for name, gene in genes.items():
                if gene.role == "pooling" and not gene.successors:
                    raise ValueError(
                        f"genes.{name}.successors: sampling asks for dense layers, "
                        "so every pooling gene needs successors"
                    )
        if self.sampling.max_dense_layers >= 2:
            for name, gene in genes.items():
                if gene.role == "dense" and not gene.successors:
                    raise ValueError(
                        f"genes.{name}.successors: sampling asks for up to "
                        f"{self.sampling.max_dense_layers} dense layers, so every dense gene "
                        "needs successors"
                    )

    def _check_sampling_within_limits(self) -> None:
        """The sampling counts lie within the limits, so that a sampled chromosome passes check()."""
        s, lim = self.sampling, self.limits
        if s.min_feature_layers < lim.min_feature_layers or (
            lim.max_feature_layers is not None and s.max_feature_layers > lim.max_feature_layers
        ):
            raise ValueError("sampling feature-layer counts must lie within limits")
        if s.min_dense_layers < lim.min_dense_layers or (
            lim.max_dense_layers is not None and s.max_dense_layers > lim.max_dense_layers
        ):
            raise ValueError("sampling dense-layer counts must lie within limits")


def values_match(value: Any, allowed: Sequence[Scalar]) -> bool:
    """Whether ``value`` is one of ``allowed`` (numbers within a relative 1e-9, other values by type and equality)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return any(type(value) is type(a) and value == a for a in allowed)
    # Numbers compare with a tolerance: the original stores 0.30000000000000004 for 0.3.
    return any(not isinstance(a, (bool, str)) and math.isclose(value, a, rel_tol=1e-9, abs_tol=1e-12) for a in allowed)


def builtin_space_path(name: str) -> Path | None:
    """The file of the built-in space ``name`` (``schemas/space.NAME.json``), or None."""
    path = _SCHEMA_DIR / f"space.{name}.json"
    return path if path.is_file() else None


class SearchSpace:
    """A validated chain search space (see the module docstring for the file format).

    Attributes:
        name: the space's name.
        start_layer: the gene a sampled chromosome starts with (``"Rescaling"``).
        first_layers: layers allowed right after the start gene.
        feature_layers / pooling_layers / dense_layers: layer names by role, in file order.
        min_feature_layers / max_feature_layers / min_dense_layers / max_dense_layers: the length
            limits :meth:`check` enforces (a maximum may be ``None``: unbounded).
        sampling: the counts :meth:`sample` draws from (``min/max_feature_layers``,
            ``min/max_dense_layers``).
    """

    def __init__(self, spec: SpaceSpec) -> None:
        """Wrap a validated :class:`SpaceSpec` (use :meth:`load` or :meth:`from_dict` instead)."""
        self.spec = spec
        self._values: dict[str, dict[str, list[Scalar]]] = {
            layer: {p: expand_values(ps) for p, ps in gene.params.items()} for layer, gene in spec.genes.items()
        }
        self.name = spec.name
        self.start_layer = spec.start
        self.first_layers = list(spec.genes[spec.start].successors)
        self.feature_layers = [n for n, g in spec.genes.items() if g.role == "feature"]
        self.pooling_layers = [n for n, g in spec.genes.items() if g.role == "pooling"]
        self.dense_layers = [n for n, g in spec.genes.items() if g.role == "dense"]
        self.sampling = spec.sampling
        self.min_feature_layers = spec.limits.min_feature_layers
        self.max_feature_layers = spec.limits.max_feature_layers
        self.min_dense_layers = spec.limits.min_dense_layers
        self.max_dense_layers = spec.limits.max_dense_layers

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | SearchSpace = "paper") -> SearchSpace:
        """Load a built-in space by name (``"paper"``), a JSON file, or a dict.

        Raises:
            SearchSpaceError: the file is missing, is not JSON, or breaks the format (the message
                names the file and the offending field).
        """
        if isinstance(source, SearchSpace):
            return source
        if isinstance(source, Mapping):
            return cls.from_dict(source)
        text_source = str(source)
        builtin = None if isinstance(source, Path) else builtin_space_path(text_source)
        if text_source == "default":
            builtin = builtin_space_path("paper")
        path = builtin or Path(text_source)
        if not path.is_file():
            names = sorted(p.name[len("space.") : -len(".json")] for p in _SCHEMA_DIR.glob("space.*.json"))
            raise SearchSpaceError(
                f"search space {text_source!r} is neither a built-in space ({', '.join(names)}) "
                f"nor a file (looked at {path.resolve()})"
            )
        try:
            data = read_json(path)
        except UserFileError as exc:
            raise SearchSpaceError(f"{path}: cannot read the search-space file: {exc}") from None
        if not isinstance(data, Mapping):
            raise SearchSpaceError(f"{path}: a search-space file must hold a JSON object")
        return cls.from_dict(data, origin=str(path))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "search space") -> SearchSpace:
        """Validate a search space given as a dict (the format of :meth:`to_dict`).

        Raises:
            SearchSpaceError: naming the offending field.
        """
        if data.get("kind") == "cell":
            raise SearchSpaceError(
                f"{origin}: a cell search space; load it with pyevonas.search.cells.load_space or CellSpace"
            )
        try:
            spec = SpaceSpec.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors()[:5]:
                loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
                problems.append(f"{loc}: {err['msg']}")
            more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
            raise SearchSpaceError(f"{origin}: invalid search space: {'; '.join(problems)}{more}") from None
        return cls(spec)

    def to_dict(self) -> dict[str, Any]:
        """The space as a JSON-able dict that :meth:`from_dict` reads back unchanged."""
        return self.spec.model_dump(mode="json", exclude_none=True)

    # ------------------------------------------------------------------ queries

    @property
    def layers(self) -> list[str]:
        """Every layer name of the gene pool, in file order."""
        return list(self.spec.genes)

    def role(self, layer: str) -> str:
        """The role of a layer: ``start``, ``feature``, ``pooling`` or ``dense``."""
        return self._gene(layer).role

    def successors(self, layer: str) -> list[str]:
        """Layers the rules allow directly after ``layer`` (the file's list, in order).

        The implicit junction from a feature gene to a pooling gene is not listed here; use
        :meth:`can_follow` for the full rule.
        """
        return list(self._gene(layer).successors)

    def can_follow(self, previous: str, layer: str) -> bool:
        """Whether ``layer`` may come directly after ``previous`` (the rule :meth:`check` applies)."""
        prev_gene = self._gene(previous)
        gene = self._gene(layer)
        if prev_gene.role == "feature" and gene.role == "pooling":
            return True
        return layer in prev_gene.successors

    def param_values(self, layer: str) -> dict[str, list[Scalar]]:
        """Every parameter of ``layer`` with the list of values it may take."""
        self._gene(layer)
        return {p: list(v) for p, v in self._values[layer].items()}

    def _gene(self, layer: str) -> GeneSpec:
        gene = self.spec.genes.get(layer)
        if gene is None:
            raise SearchSpaceError(
                f"unknown layer {layer!r} in search space {self.name!r} (known: {', '.join(self.spec.genes)})"
            )
        return gene

    # ------------------------------------------------------------------ sampling

    def random_gene(self, layer: str, rng: np.random.Generator) -> dict[str, Any]:
        """A fresh gene of type ``layer``, each parameter drawn uniformly from its value set."""
        gene = self._gene(layer)
        out: dict[str, Any] = {"layer": layer, "f_name": gene.f_name or layer}
        for pname, values in self._values[layer].items():
            out[pname] = values[int(rng.integers(len(values)))]
        return out

    def _pick(self, options: Sequence[str], rng: np.random.Generator) -> str:
        return options[int(rng.integers(len(options)))]

    def sample(self, rng: np.random.Generator) -> Chromosome:
        """A random chromosome drawn as the original does.

        The start gene; ``n`` feature genes (``n`` uniform in the sampling range), each uniform over
        the successors of the previous one; one pooling gene uniform over the pooling layers; then
        ``m`` dense genes chained the same way from the pooling gene.
        """
        s = self.sampling
        chrom: Chromosome = [self.random_gene(self.start_layer, rng)]
        layer = self.start_layer
        for _ in range(int(rng.integers(s.min_feature_layers, s.max_feature_layers + 1))):
            layer = self._pick(self.successors(layer), rng)
            chrom.append(self.random_gene(layer, rng))
        layer = self._pick(self.pooling_layers, rng)
        chrom.append(self.random_gene(layer, rng))
        for _ in range(int(rng.integers(s.min_dense_layers, s.max_dense_layers + 1))):
            layer = self._pick(self.successors(layer), rng)
            chrom.append(self.random_gene(layer, rng))
        return chrom

    # ------------------------------------------------------------------ validity

    def check(self, chrom: Sequence[Mapping[str, Any]]) -> None:
        """Raise if ``chrom`` breaks a rule of this space; return ``None`` if it is valid.

        Rules: every gene is a dict with a known ``layer`` and parameters from the gene pool; the
        first gene is the start gene (or a layer allowed right after it); each gene may follow
        the previous one; exactly one pooling gene, with only dense genes after it; the feature
        and dense counts lie within the limits.

        Raises:
            SearchSpaceError: naming the gene index, its layer and the broken rule.
        """
        if isinstance(chrom, (str, bytes)) or not isinstance(chrom, Sequence):
            raise SearchSpaceError(f"a chromosome must be a list of gene dicts, got {type(chrom).__name__}")
        if len(chrom) == 0:
            raise SearchSpaceError("the chromosome is empty")
        layers: list[str] = []
        for i, gene in enumerate(chrom):
            layers.append(self._check_gene(i, gene))

        pools = [i for i, name in enumerate(layers) if self.role(name) == "pooling"]
        if not pools:
            raise SearchSpaceError(
                f"the chromosome has no global pooling gene (one of {', '.join(self.pooling_layers)})"
            )
        if len(pools) > 1:
            raise SearchSpaceError(
                f"the chromosome has {len(pools)} global pooling genes (at {', '.join(map(str, pools))}); "
                "exactly one is allowed"
            )
        pool_at = pools[0]

        for i, name in enumerate(layers):
            role = self.role(name)
            if role == "start" and i != 0:
                raise SearchSpaceError(f"gene {i} ({name}): the start gene may only come first")
            if role == "feature" and i > pool_at:
                raise SearchSpaceError(f"gene {i} ({name}): a feature gene after the global pooling (gene {pool_at})")
            if role == "dense" and i < pool_at:
                raise SearchSpaceError(f"gene {i} ({name}): a dense gene before the global pooling (gene {pool_at})")

        first = layers[0]
        if first != self.start_layer and first not in self.first_layers:
            raise SearchSpaceError(
                f"gene 0 ({first}): a chromosome must start with {self.start_layer} or one of "
                f"{', '.join(self.first_layers)}"
            )
        for i in range(1, len(layers)):
            if not self.can_follow(layers[i - 1], layers[i]):
                allowed = self.successors(layers[i - 1])
                if self.role(layers[i - 1]) == "feature":
                    allowed = allowed + self.pooling_layers
                raise SearchSpaceError(
                    f"gene {i} ({layers[i]}) may not follow gene {i - 1} ({layers[i - 1]}); "
                    f"allowed after {layers[i - 1]}: {', '.join(allowed) or 'nothing'}"
                )

        n_feature = sum(1 for name in layers if self.role(name) == "feature")
        n_dense = len(layers) - pool_at - 1
        self._check_count("feature", n_feature, self.min_feature_layers, self.max_feature_layers)
        self._check_count("dense", n_dense, self.min_dense_layers, self.max_dense_layers)

    def _check_gene(self, i: int, gene: Any) -> str:
        if not isinstance(gene, Mapping):
            raise SearchSpaceError(f"gene {i}: expected a dict with a 'layer' key, got {type(gene).__name__}")
        name = gene.get("layer")
        if not isinstance(name, str):
            raise SearchSpaceError(f"gene {i}: missing or non-string 'layer'")
        if name not in self.spec.genes:
            raise SearchSpaceError(
                f"gene {i} ({name}): unknown layer in search space {self.name!r} (known: {', '.join(self.spec.genes)})"
            )
        for pname, allowed in self._values[name].items():
            if pname not in gene:
                if len(allowed) == 1:
                    continue  # a constant such as padding "same" is implied (the text notation omits it)
                raise SearchSpaceError(f"gene {i} ({name}): missing parameter {pname!r}")
            if not values_match(gene[pname], allowed):
                shown = ", ".join(map(str, allowed[:12])) + (", ..." if len(allowed) > 12 else "")
                raise SearchSpaceError(f"gene {i} ({name}): {pname}={gene[pname]!r} is not one of {shown}")
        return name

    @staticmethod
    def _check_count(kind: str, n: int, low: int, high: int | None) -> None:
        if n < low:
            raise SearchSpaceError(f"the chromosome has {n} {kind} genes; at least {low} required")
        if high is not None and n > high:
            raise SearchSpaceError(f"the chromosome has {n} {kind} genes; at most {high} allowed")

    def normalize(self, chrom: Sequence[Mapping[str, Any]]) -> Chromosome:
        """A copy of ``chrom`` in the sampler's form: the start gene first, ``f_name`` and implied constants filled in.

        Use it on chromosomes from the text notation (no start gene, no ``padding``/``activation``)
        before mixing them with sampled ones. Genes keep their own values; unknown layers are
        copied unchanged (``check`` reports them).
        """
        out: Chromosome = []
        for gene in chrom:
            copy = dict(gene)
            spec = self.spec.genes.get(str(copy.get("layer")))
            if spec is not None:
                full: dict[str, Any] = {"layer": copy["layer"], "f_name": spec.f_name or copy["layer"]}
                for pname, allowed in self._values[copy["layer"]].items():
                    if pname not in copy and len(allowed) == 1:
                        full[pname] = allowed[0]
                full.update(copy)
                copy = full
            out.append(copy)
        if not out or out[0].get("layer") != self.start_layer:
            start = self.random_gene(self.start_layer, np.random.default_rng(0)) if self._start_is_constant() else None
            if start is None:
                raise SearchSpaceError(
                    f"cannot add the start gene {self.start_layer}: its parameters are not constants"
                )
            out.insert(0, start)
        return out

    def _start_is_constant(self) -> bool:
        return all(len(v) == 1 for v in self._values[self.start_layer].values())

    def is_valid(self, chrom: Sequence[Mapping[str, Any]]) -> bool:
        """``True`` if :meth:`check` accepts ``chrom``."""
        try:
            self.check(chrom)
        except SearchSpaceError:
            return False
        return True

    def __repr__(self) -> str:
        return (
            f"SearchSpace(name={self.name!r}, genes={len(self.spec.genes)}, "
            f"features={self.min_feature_layers}..{self.max_feature_layers}, "
            f"dense={self.min_dense_layers}..{self.max_dense_layers})"
        )


__all__ = [
    "GeneSpec",
    "LengthRange",
    "ParamSpec",
    "Role",
    "SamplingCounts",
    "Scalar",
    "SearchSpace",
    "SpaceSpec",
    "builtin_space_path",
    "expand_values",
    "values_match",
]
