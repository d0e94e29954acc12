"""The scoring schema: pydantic models of the JSON file that defines how genes are compared.

A schema names the gene types (one letter each, the layer they come from, the parameters that
count with their ranges), the rules that score a pair of gene types (``base`` minus weighted,
normalised parameter differences), each gene's mismatch score, the gap scores and the lower
bound used to normalise a score into a similarity. See ``docs/scoring_schema.md``. An optional
``graph`` section holds the edit costs of graph architectures
(:class:`~pyevonas.metric.graph_costs.GraphCosts`).

``Scoring.load(path)`` validates a file and raises :class:`~pyevonas.errors.SchemaError` with one
line per problem, each naming its JSON path. The JSON Schema of the format is published as
``schemas/scoring.schema.json`` (regenerate with ``pyevonas schema export``).
"""

from __future__ import annotations

import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    model_validator,
)

from pyevonas.errors import SchemaError
from pyevonas.metric._graph_cost_model import GraphCosts
from pyevonas.metric._json_model import JsonFileModel

BUILTIN_SCHEMAS = ("default", "paper")
#: Built-in schemas with cell genes (the genes of cell search spaces). They resolve by name like the
#: others but are kept out of BUILTIN_SCHEMAS, whose names take the native fast lane of
#: ``pyevonas.similarity``: that lane scores genes without their cells.
CELL_SCHEMAS = ("cells",)

#: How one gene type scores against another: ``(base, ((param, weight, norm), ...))``.
PairRule = tuple[float, tuple[tuple[str, float, float], ...]]

#: Characters that cannot be gene letters: the gap symbol and the text-notation syntax.
_RESERVED_LETTERS = set("-(),;[]{}#") | {" ", "\t", "\n"}

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, populate_by_name=True)


class ParamRange(BaseModel):
    """The range of one parameter in the search space, from which normalisers are derived.

    Same-type rules normalise by ``max(max - min, step)``; cross-type rules by
    ``max(max_x - min_y, max_y - min_x, 1)``, as the paper's code does.
    """

    model_config = _MODEL_CONFIG

    min: float = Field(description="Smallest value in the search space.")
    max: float = Field(description="Largest value in the search space.")
    step: float | None = Field(default=None, gt=0, description="Grid step, if the values lie on a grid.")


class GeneType(BaseModel):
    """One gene type: the layer it comes from, its one-letter code and the parameters that count."""

    model_config = _MODEL_CONFIG

    letter: str = Field(min_length=1, max_length=1, description="One-character code of the gene in sequences.")
    layer: str = Field(min_length=1, description="Value of the layer dict's 'layer' key, e.g. 'C_2D'.")
    name: str | None = Field(default=None, description="Human-readable name, e.g. 'Conv2D'.")
    when: dict[str, int | float | str | bool] = Field(
        default_factory=dict,
        description="Extra key/value conditions that select this gene type for the layer, "
        "e.g. {'skip_connection': 1} (also written by the text notation).",
    )
    params: dict[str, ParamRange] = Field(
        default_factory=dict,
        description="Parameters that count, with their ranges, in text-notation order.",
    )
    mismatch: float = Field(description="Score of this gene (as the first) against a gene type it has no rule with.")
    cell: bool | None = Field(
        default=None,
        description="true: a cell gene: its layer dict holds a cell or graph architecture under 'cell' (a DAG, "
        "NAS-Bench-201/101 cell or DARTS genotype), and two cell genes score "
        "mismatch + (rule base - mismatch) * graph similarity of their cells (the hybrid chain of cells).",
    )


class Term(BaseModel):
    """One weighted parameter difference of a rule: ``|x_p - y_p| * weight / norm``."""

    model_config = _MODEL_CONFIG

    param: str = Field(description="Parameter name; both gene types must list it.")
    weight: float = Field(ge=0, description="Weight of the normalised difference (>= 0).")
    norm: float | None = Field(
        default=None, gt=0, description="Explicit normaliser; by default derived from the parameter ranges."
    )


class Rule(BaseModel):
    """Score of pairs of gene types: ``base - sum(terms)``, accumulated in the listed order."""

    model_config = _MODEL_CONFIG

    pairs: list[tuple[str, str]] = Field(min_length=1, description="Pairs of letters (first gene, second gene).")
    base: float = Field(description="Score when every listed parameter is equal.")
    terms: list[Term] = Field(default_factory=list, description="Parameter differences subtracted from base.")
    directed: bool = Field(
        default=False,
        description="If true the rule applies only with the letters in the listed order; "
        "otherwise to the reversed pair as well.",
    )


class Gaps(BaseModel):
    """Gap scores (<= 0): a gap of length k scores ``open + (k - 1) * extend``."""

    model_config = _MODEL_CONFIG

    open: float = Field(le=0, description="Score of the first gapped position of a gap.")
    extend: float = Field(le=0, description="Score of each further gapped position (open <= extend).")

    @model_validator(mode="after")
    def _open_costs_at_least_extend(self) -> Gaps:
        if self.open > self.extend:
            raise ValueError(
                f"open ({self.open}) must be <= extend ({self.extend}): opening a gap may not cost less "
                "than extending one (the affine-gap recursion relies on it)"
            )
        return self


class Scoring(JsonFileModel):
    """A complete scoring schema (see the module docstring and ``docs/scoring_schema.md``)."""

    model_config = _MODEL_CONFIG
    file_kind: ClassVar[str] = "scoring schema"
    file_kind_one: ClassVar[str] = "a scoring schema"

    json_schema: str | None = Field(default=None, alias="$schema", description="Optional JSON Schema reference.")
    schema_version: Literal[1] = Field(description="Version of this file format.")
    name: str = Field(min_length=1, description="Short name of the schema.")
    description: str = ""
    ignore_layers: list[str] = Field(
        default_factory=lambda: ["Rescaling", "MAG"],
        description="Layers that are not genes and are skipped when encoding.",
    )
    gap: Gaps
    lower_bound: Literal["paper", "all_gaps"] = Field(
        default="paper",
        description="'paper': the score of one gap as long as the longer sequence (the paper's Eq. 1; "
        "odd pairs fall below it and are clamped to 0). 'all_gaps': every gene of both sequences "
        "against a gap, a true lower bound.",
    )
    pair_mismatch: Literal["first", "min"] = Field(
        default="min",
        description="Score of two gene types without a rule: 'first': the first gene's mismatch score "
        "(the authors' code; makes the table directed when mismatch scores differ); 'min': the lower "
        "of the two genes' mismatch scores (symmetric).",
    )
    genes: list[GeneType] = Field(min_length=1)
    rules: list[Rule] = Field(default_factory=list)
    graph: GraphCosts | None = Field(
        default=None,
        description="Optional: the edit costs with which graph architectures (cells) are compared; "
        "chain architectures never read it. See docs/graphs.md.",
    )

    _compiled: Any = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        # Two schemas are equal when their content is; the compiled cache does not count.
        if not isinstance(other, Scoring):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _check(self) -> Scoring:
        problems = _semantic_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # --- loading: load, from_json, from_dict (JsonFileModel) ------------------------------
    @classmethod
    def builtin(cls, name: str) -> Scoring:
        """One of the shipped schemas: ``"default"``, ``"paper"`` or ``"cells"`` (with cell genes)."""
        if name not in BUILTIN_SCHEMAS + CELL_SCHEMAS:
            raise SchemaError(
                f"no built-in scoring schema {name!r} (choose from {', '.join(BUILTIN_SCHEMAS + CELL_SCHEMAS)})"
            )
        return _load_builtin(name)

    def to_json(self) -> str:
        """The schema as JSON text (round-trips through :meth:`from_json`)."""
        return self.model_dump_json(indent=2, by_alias=True, exclude_none=True)

    def to_dict(self) -> dict[str, Any]:
        """The schema as a JSON-compatible dict."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    # --- derived values ------------------------------------------------------------------
    def gene(self, letter: str) -> GeneType:
        """The gene type with this letter."""
        for g in self.genes:
            if g.letter == letter:
                return g
        raise SchemaError(f"schema {self.name!r} has no gene with letter {letter!r}")

    def gene_names(self) -> dict[str, str]:
        """A display name for every gene letter: its ``name``, else its layer with its conditions.

        Example:
            >>> Scoring.builtin("default").gene_names()["T"]
            'BottleneckBlock'
        """
        out = {}
        for g in self.genes:
            when = ", ".join(f"{k}={v}" for k, v in g.when.items())
            out[g.letter] = g.name or (f"{g.layer} ({when})" if when else g.layer)
        return out

    @property
    def symmetric(self) -> bool:
        """True when every rule applies in both directions and all mismatches are symmetric in effect."""
        table = self.pair_rules()
        n = len(table)
        return all(table[x][y] == table[y][x] for x in range(n) for y in range(x + 1, n))

    def pair_rules(self) -> list[list[PairRule]]:
        """How each gene type ``x`` (sequence A) scores against each ``y`` (B): ``table[x][y]``.

        Each entry is ``(base, ((param, weight, norm), ...))``: the score of two genes is
        ``base - sum(|a[param] - b[param]| * weight / norm)``, accumulated left to right. A pair
        without a rule has its mismatch score as ``base`` and no terms. This is the schema as
        plain data; the Rust core's score table is built from it.
        """
        rules = expanded_rules(self)
        table: list[list[PairRule]] = []
        for gx in self.genes:
            row: list[PairRule] = []
            for gy in self.genes:
                found = rules.get((gx.letter, gy.letter))
                if found is None:
                    base = gx.mismatch if self.pair_mismatch == "first" else min(gx.mismatch, gy.mismatch)
                    row.append((base, ()))
                else:
                    rule = found[1]
                    row.append((rule.base, tuple((t.param, t.weight, term_norm(gx, gy, t)) for t in rule.terms)))
            table.append(row)
        return table


@cache
def _load_builtin(name: str) -> Scoring:
    text = resources.files("pyevonas").joinpath("schemas").joinpath(f"{name}.json").read_text(encoding="utf-8")
    return Scoring.from_json(text, source=f"schemas/{name}.json")


def resolve_scoring(schema: str | Path | Scoring | dict[str, Any]) -> Scoring:
    """Turn the ``schema`` argument of the public API into a Scoring.

    Accepts ``"default"``, ``"paper"``, ``"cells"``, a path to a JSON file, a parsed dict, or a Scoring.
    """
    if isinstance(schema, Scoring):
        return schema
    if isinstance(schema, dict):
        return Scoring.from_dict(schema)
    if isinstance(schema, str) and schema in BUILTIN_SCHEMAS + CELL_SCHEMAS:
        return Scoring.builtin(schema)
    if isinstance(schema, (str, Path)):
        p = Path(schema)
        if p.is_file():
            return Scoring.load(p)
        raise SchemaError(
            f"no scoring schema {str(schema)!r}: not a built-in name ({', '.join(BUILTIN_SCHEMAS + CELL_SCHEMAS)}) "
            "and no file there"
        )
    raise SchemaError(f"schema must be a name, a path or a Scoring, got {type(schema).__name__}")


# --- normalisers -------------------------------------------------------------------------
def same_type_norm(r: ParamRange) -> float:
    """Normaliser of a parameter compared within one gene type: ``max(max - min, step)``."""
    return max(r.max - r.min, r.step or 0.0)


def cross_type_norm(rx: ParamRange, ry: ParamRange) -> float:
    """Normaliser across two gene types: ``max(max_x - min_y, max_y - min_x, 1)``."""
    return max(rx.max - ry.min, ry.max - rx.min, 1.0)


def term_norm(x: GeneType, y: GeneType, term: Term) -> float:
    """The normaliser a term uses for the ordered pair (x, y)."""
    if term.norm is not None:
        return term.norm
    if x.letter == y.letter:
        return same_type_norm(x.params[term.param])
    return cross_type_norm(x.params[term.param], y.params[term.param])


def expanded_rules(scoring: Scoring) -> dict[tuple[str, str], tuple[int, Rule]]:
    """Every ordered pair of letters that has a rule, with the rule's index."""
    out: dict[tuple[str, str], tuple[int, Rule]] = {}
    for ri, rule in enumerate(scoring.rules):
        for x, y in rule.pairs:
            out.setdefault((x, y), (ri, rule))
            if not rule.directed:
                out.setdefault((y, x), (ri, rule))
    return out


# --- validation --------------------------------------------------------------------------
#: Bound on the magnitude of every base, mismatch and gap score and every term weight (the Rust
#: table checks it too). An alignment of m and n genes sums at most m + n scores, so every raw
#: score and normalisation bound stays below (m + n) * 1e12: finite for any length, which keeps
#: sim(S, S) == 1 (a base of 1e308 used to overflow and make it 0).
MAX_SCORE = 1e12


def _magnitude_problems(s: Scoring) -> list[str]:
    values = [("gap.open", s.gap.open), ("gap.extend", s.gap.extend)]
    values += [(f"genes[{i}].mismatch", g.mismatch) for i, g in enumerate(s.genes)]
    for ri, rule in enumerate(s.rules):
        values.append((f"rules[{ri}].base", rule.base))
        values += [(f"rules[{ri}].terms[{ti}].weight", t.weight) for ti, t in enumerate(rule.terms)]
    return [
        f"{where}: {v:g} is beyond ±{MAX_SCORE:g}, the bound on every score and weight "
        "(it keeps alignment scores finite)"
        for where, v in values
        if abs(v) > MAX_SCORE
    ]


def _semantic_problems(s: Scoring) -> list[str]:
    """What is wrong with a schema's meaning, by stage: genes, rules, self matches, similarity bounds."""
    problems = _gene_problems(s)
    if problems:
        return problems
    problems = _rule_problems(s)
    if problems:
        return problems
    rules = expanded_rules(s)
    self_match, problems = _self_matches(s, rules)
    if problems:
        return problems
    return _bound_problems(s, rules, self_match)


def _gene_problems(s: Scoring) -> list[str]:
    """Out-of-bound scores, and genes with a bad or duplicate letter or selector, an empty range or an ignored layer."""
    problems: list[str] = _magnitude_problems(s)
    letters: dict[str, int] = {}
    selectors: dict[tuple[str, tuple[tuple[str, Any], ...]], int] = {}
    for i, g in enumerate(s.genes):
        if g.letter in _RESERVED_LETTERS:
            problems.append(f"genes[{i}].letter: {g.letter!r} is reserved (gap symbol or notation syntax)")
        elif g.letter.isspace() or not g.letter.isprintable():
            # A no-break space or a control character looks like nothing in the notation.
            problems.append(f"genes[{i}].letter: {g.letter!r} is a space or an invisible character")
        if g.letter in letters:
            problems.append(f"genes[{i}].letter: duplicate letter {g.letter!r} (also genes[{letters[g.letter]}])")
        else:
            letters[g.letter] = i
        key = (g.layer, tuple(sorted(g.when.items())))
        if key in selectors:
            problems.append(
                f"genes[{i}]: layer {g.layer!r} with conditions {g.when} is already genes[{selectors[key]}]"
            )
        selectors[key] = i
        for p, r in g.params.items():
            if r.min > r.max:
                problems.append(f"genes[{i}].params.{p}: min {r.min} is greater than max {r.max}")
        if g.layer in s.ignore_layers:
            problems.append(f"genes[{i}].layer: {g.layer!r} is also listed in ignore_layers")
        if g.cell and g.params:
            problems.append(
                f"genes[{i}].params: a cell gene has no parameters (its cell is compared by graph similarity)"
            )
    return problems


def _rule_problems(s: Scoring) -> list[str]:
    """Rules naming an unknown letter or parameter, with a term that cannot normalise, or for a pair ruled twice."""
    problems: list[str] = []
    by_letter = {g.letter: g for g in s.genes}
    seen: dict[tuple[str, str], str] = {}
    for ri, rule in enumerate(s.rules):
        for pi, (x, y) in enumerate(rule.pairs):
            bad = False
            for side, letter in ((0, x), (1, y)):
                if letter not in by_letter:
                    problems.append(f"rules[{ri}].pairs[{pi}][{side}]: unknown letter {letter!r}")
                    bad = True
            if bad:
                continue
            gx, gy = by_letter[x], by_letter[y]
            for ti, t in enumerate(rule.terms):
                missing = [g.letter for g in (gx, gy) if t.param not in g.params]
                if missing:
                    problems.append(
                        f"rules[{ri}].terms[{ti}].param: unknown parameter {t.param!r} for gene "
                        f"{' and '.join(repr(m) for m in missing)} (pair {x}{y})"
                    )
                    continue
                n = term_norm(gx, gy, t)
                if not (n > 0 and math.isfinite(n)):
                    problems.append(
                        f"rules[{ri}].terms[{ti}]: the range of {t.param!r} is empty, so it cannot "
                        f"normalise pair {x}{y} (give a non-empty range, a step, or an explicit norm)"
                    )
            for pair in ((x, y),) if rule.directed or x == y else ((x, y), (y, x)):
                where = f"rules[{ri}].pairs[{pi}]"
                if pair in seen:
                    problems.append(f"{where}: pair {pair[0]}{pair[1]} already has a rule ({seen[pair]})")
                else:
                    seen[pair] = where
    return problems


def _self_matches(s: Scoring, rules: dict[tuple[str, str], tuple[int, Rule]]) -> tuple[dict[str, float], list[str]]:
    """Each letter's self-match score, and the genes whose self match is not positive."""
    problems: list[str] = []
    self_match: dict[str, float] = {}
    for i, g in enumerate(s.genes):
        own = rules.get((g.letter, g.letter))
        score = own[1].base if own else g.mismatch
        self_match[g.letter] = score
        if score <= 0:
            why = f"its rule's base is {score}" if own else f"no rule scores it, so it is the mismatch score {score}"
            problems.append(f"genes[{i}]: the self match of {g.letter!r} is not positive ({why})")
    return self_match, problems


def _bound_problems(
    s: Scoring, rules: dict[tuple[str, str], tuple[int, Rule]], self_match: dict[str, float]
) -> list[str]:
    """Pair rules and mismatch scores above a self match, which would allow similarities above 1."""
    problems: list[str] = []
    for (x, y), (ri, rule) in sorted(rules.items()):
        limit = min(self_match[x], self_match[y])
        if x != y and rule.base > limit:
            problems.append(
                f"rules[{ri}]: pair {x}{y} can score {rule.base}, above the self match of "
                f"{x if self_match[x] <= self_match[y] else y!r} ({limit}); that would allow similarities above 1"
            )
    lowest_self = min(self_match.values())
    for i, g in enumerate(s.genes):
        if g.mismatch > lowest_self:
            low = min(self_match, key=lambda k: self_match[k])
            problems.append(
                f"genes[{i}].mismatch: {g.mismatch} is above the self match of {low!r} ({lowest_self}); "
                "that would allow similarities above 1"
            )
    return problems


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the scoring-schema format (published as schemas/scoring.schema.json)."""
    schema = Scoring.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://pyevonas.dev/schemas/scoring.schema.json"
    return schema


__all__ = [
    "BUILTIN_SCHEMAS",
    "CELL_SCHEMAS",
    "MAX_SCORE",
    "Gaps",
    "GeneType",
    "PairRule",
    "ParamRange",
    "Rule",
    "Scoring",
    "Term",
    "cross_type_norm",
    "expanded_rules",
    "json_schema",
    "resolve_scoring",
    "same_type_norm",
    "term_norm",
]
