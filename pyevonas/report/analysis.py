"""The numbers of a report: runs read from their stores, per-generation statistics, Table 3, similar pairs.

Reading only: a report never trains and never writes to a run. Per generation it takes the
similarity matrix stored by the run, or recomputes every matrix with a given scoring schema
(``schema="paper"`` reproduces the original metric; the paper's Table 3 was computed that way).

Definitions (those of the authors' dashboard, ``docs/original.md#the-dashboard``):

* *best fitness* of a generation: the highest fitness among individuals that trained
  (:func:`~pyevonas.runs.records.is_trained`: status ``ok``, or ``cached`` from an ``ok`` result);
  failed and oversized individuals, and cached copies of oversized ones, are left out;
* *median similarity* of a generation: by default the median of the strict upper triangle of its
  matrix (``np.triu(·, k=1)``), as the dashboard plotted it; ``median="offdiag"`` or ``"full"``
  choose the other conventions of :func:`pyevonas.diversity`;
* *recomputed matrices* under the ``paper`` schema are rounded to 3 decimals with Python's
  ``round``, as the original code stored every similarity; other schemas are not rounded;
* *Pearson r* of a run (paper Table 3): the correlation between best fitness and median similarity
  over the generations where both exist;
* *similar pairs with a fitness gap* (Fig. 20): within a generation, ordered pairs (a, b) of trained
  individuals with ``min_similarity < S[a, b] < 1`` and ``min_gap < fitness(a) - fitness(b) < 1``,
  most similar first (the dashboard's "wrong design" table);
* *chance level* of a dataset: ``1 / classes``; a trained individual whose fitness is at most
  :func:`pyevonas.runs.records.chance_threshold` (0.12 for 10 classes, 0.03 for 100; the live view
  marks the same) collapsed to chance (0.10 on CIFAR-10, 0.01 on CIFAR-100 in the
  published runs), and ``similar_pairs(..., skip_chance=True)`` leaves it out;
* *a run's name* in a report: its folder's name (``runs/digits_rigid_s0-2`` is
  ``digits_rigid_s0-2``), never the name stored in its metadata, which several runs can share.
"""

from __future__ import annotations

import difflib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas.errors import SchemaError
from pyevonas.metric import DIVERSITY_KINDS, DiversityHow, compiled, diversity, round3, similarity_matrix
from pyevonas.metric.api import SchemaArg
from pyevonas.metric.schema import Scoring
from pyevonas.runs.records import Status, cell_notation, chance_threshold, is_trained, outcome
from pyevonas.runs.settings import SEARCH_SETTINGS, TRAIN_EXECUTION_SETTINGS
from pyevonas.runs.simulation import Simulation, coverage_stats
from pyevonas.runs.store import RunStore

#: ``meta["source"]`` of runs imported from the original code (their latencies are its timings).
IMPORTED_SOURCES = ("evonas", "paper_runs_json")


@dataclass(frozen=True)
class GenerationData:
    """One generation as the report reads it.

    Attributes:
        generation: 1-based number.
        individuals: Objects with the attributes of :class:`pyevonas.runs.records.Individual` (name,
            index, chromosome, sequence, status, fitness, size_mb, latency_ms...), population order.
        matrix: The similarity matrix the run stored, or None.
        diversity: The statistic the run's diversity control compared, or None.
        window: The control window of this generation, or None.
        decision: The control's decision dict, or None.
        control_iterations: How many candidate populations the diversity control bred for this
            generation (0 when none were recorded).
    """

    generation: int
    individuals: list[Any]
    matrix: np.ndarray | None = None
    diversity: float | None = None
    window: tuple[float, float] | None = None
    decision: dict[str, Any] | None = None
    control_iterations: int = 0


@dataclass(frozen=True)
class RunData:
    """A run as the report reads it (built from a run store by :func:`load_run`, or by hand)."""

    name: str
    path: str
    meta: dict[str, Any]
    scoring: dict[str, Any]
    generations: list[GenerationData]
    #: The settings saved with the run (``RunConfig.to_dict()``; an imported run's own); may lack
    #: settings newer than the run, which it was made with the defaults of.
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def dataset(self) -> str:
        """The run's dataset ("unknown" when not recorded)."""
        return str(self.meta.get("dataset") or self.meta.get("config_dataset") or "unknown")

    @property
    def control(self) -> str:
        """The run's diversity-control mode ("none" when not recorded)."""
        return str(self.meta.get("control") or "none")

    @property
    def simulation(self) -> Simulation | None:
        """The surrogate that scored the run's candidates instead of training them (None: trained)."""
        return Simulation.from_meta(self.meta)

    @property
    def imported(self) -> bool:
        """Whether the run was imported from the original code (its latencies are the original's)."""
        return self.meta.get("source") in IMPORTED_SOURCES

    @property
    def chance(self) -> float | None:
        """The dataset's chance-level accuracy ``1 / classes``, or None for an unknown dataset."""
        return chance_level(self.dataset)


#: Classes of the built-in datasets (as ``pyevonas.training.data.dataset_info`` has them; a test
#: keeps the two equal): a report reads run stores and never imports the training side.
DATASET_CLASSES = {"digits": 10, "cifar10": 10, "cifar100": 100, "imagenet16-120": 120}


def chance_level(dataset: str) -> float | None:
    """``1 / classes`` of a built-in dataset (0.1 for CIFAR-10), None for any other."""
    key = dataset.strip().lower().replace("_", "-")
    key = {"cifar-10": "cifar10", "cifar-100": "cifar100", "imagenet16": "imagenet16-120"}.get(key, key)
    classes = DATASET_CLASSES.get(key)
    return None if classes is None else 1.0 / classes


def chance_limit(chance: float) -> float:
    """The highest fitness that counts as chance level for a chance of ``chance`` (the live view's rule)."""
    return chance_threshold(round(1.0 / chance))


def at_chance(ind: Any, chance: float | None) -> bool:
    """Whether a trained individual's fitness is at chance level (a collapsed training)."""
    return chance is not None and is_trained(ind) and ind.fitness <= chance_limit(chance)


def load_run(path: str | os.PathLike[str]) -> RunData:
    """Read a run store (read-only) into a :class:`RunData`.

    Raises:
        RunStoreError: the folder is missing, not a run, or corrupt.
    """

    store = RunStore.open(path, readonly=True)
    try:
        meta = dict(store.meta)
        if "dataset" not in meta and isinstance(store.config.get("dataset"), str):
            meta["config_dataset"] = store.config["dataset"]
        if "seed" not in meta and store.config.get("seed") is not None:
            meta["seed"] = store.config.get("seed")
        # The hypervolume reference a run was configured with lives in its config, not its meta.
        if "reference_point" not in meta and store.config.get("reference_point"):
            meta["reference_point"] = store.config["reference_point"]
        gens = []
        for g in store.generations():
            rec = store.generation_record(g)
            gens.append(
                GenerationData(
                    generation=g,
                    individuals=store.individuals(g),
                    matrix=rec.matrix,
                    diversity=rec.diversity,
                    window=rec.window,
                    decision=rec.decision,
                    control_iterations=len(store.control_iterations(g)),
                )
            )
        # The folder's name: the stored name is the one the run was started with, which copies,
        # resumed forks and several imports of one file share.
        name = Path(path).resolve().name or str(meta.get("name") or "run")
        config = store.config
        return RunData(
            name=name,
            path=str(path),
            meta=meta,
            scoring=dict(store.scoring),
            generations=gens,
            config=dict(config) if isinstance(config, dict) else {},
        )
    finally:
        store.close()


# ------------------------------------------------------------------------------------------
# analysis


@dataclass(frozen=True)
class GenerationStats:
    """Per-generation numbers of one run.

    ``n_trained`` counts :func:`~pyevonas.runs.records.is_trained` individuals; ``n_failed`` and
    ``n_oversized`` count by :func:`~pyevonas.runs.records.outcome`, so a cached copy of an
    oversized result counts as oversized.
    """

    generation: int
    n: int
    n_trained: int
    n_failed: int
    n_oversized: int
    max_fitness: float | None
    median_fitness: float | None
    best: Any | None
    median_similarity: float | None
    control_statistic: float | None
    window: tuple[float, float] | None
    accepted: bool | None
    control_iterations: int = 0

    def to_dict(self, schema: Any = "default") -> dict[str, Any]:
        """JSON-able form (the best individual reduced by :func:`individual_summary` under ``schema``)."""
        b = self.best
        return {
            "generation": self.generation,
            "n": self.n,
            "n_trained": self.n_trained,
            "n_failed": self.n_failed,
            "n_oversized": self.n_oversized,
            "max_fitness": self.max_fitness,
            "median_fitness": self.median_fitness,
            "median_similarity": self.median_similarity,
            "control_statistic": self.control_statistic,
            "window": None if self.window is None else list(self.window),
            "window_accepted": self.accepted,
            "control_iterations": self.control_iterations,
            "best": None if b is None else individual_summary(b, schema),
        }


@dataclass(frozen=True)
class RunStats:
    """A run with the matrices the report used and its per-generation numbers."""

    run: RunData
    matrices: dict[int, np.ndarray]
    matrix_source: str
    generations: list[GenerationStats]
    pearson: float | None
    schema: Any
    sequences: dict[int, list[str]] = field(default_factory=dict)
    #: The run's own scoring schema (its sequences' letters and text notation), whatever ``schema``.
    run_schema: Any = "default"

    @property
    def best(self) -> Any | None:
        """The run's best trained individual (highest fitness; the earliest on ties)."""
        cands = [g.best for g in self.generations if g.best is not None]
        return max(cands, key=lambda i: i.fitness) if cands else None


def gene_texts(ind: Any, schema: Any = "default") -> list[str] | None:
    """Each gene of an individual in text notation (``["C(32,3,1)", "B", ...]``), in the order of
    its stored sequence; None when its chromosome does not read under ``schema`` as that sequence."""
    try:
        genes = compiled(schema).genes(ind.chromosome)
    except (ValueError, TypeError, KeyError):
        return None
    if "".join(g.letter for g in genes) != ind.sequence:
        return None
    return [str(g) for g in genes]


def architecture(ind: Any, schema: Any = "default") -> str | None:
    """The text notation with parameters of an individual (``pyevonas.format_arch``), or None; a
    cell-space architecture's cell (:func:`~pyevonas.runs.records.cell_notation`)."""
    cell = cell_notation(ind.chromosome) if isinstance(getattr(ind, "chromosome", None), list) else None
    if cell is not None:
        return cell
    texts = gene_texts(ind, schema)
    return None if texts is None else " ".join(texts)


def individual_summary(ind: Any, schema: Any = "default") -> dict[str, Any]:
    """An individual as the report's JSON shows it: metrics and its architecture in text notation
    (under ``schema``, the run's own; ``pyevonas train`` and ``pyevonas.parse_arch`` read it)."""
    return {
        "generation": getattr(ind, "generation", None),
        "name": ind.name,
        "fitness": ind.fitness,
        "val_accuracy": getattr(ind, "val_accuracy", None),
        "test_accuracy": getattr(ind, "test_accuracy", None),
        "params": getattr(ind, "params", None),
        "sequence": ind.sequence,
        "architecture": architecture(ind, schema),
        "size_mb": getattr(ind, "size_mb", None),
        "latency_ms": getattr(ind, "latency_ms", None),
    }


def pearson(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    """Pearson correlation over the positions where both values exist; None if undefined.

    Undefined means fewer than 3 common points or a constant series.
    """
    pts = [
        (a, b)
        for a, b in zip(x, y, strict=False)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
    ]
    if len(pts) < 3:
        return None
    a = np.array([p[0] for p in pts], dtype=np.float64)
    b = np.array([p[1] for p in pts], dtype=np.float64)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def schema_of(run: RunData, schema: SchemaArg | None) -> SchemaArg:
    """The schema to (re)compute similarities with: the given one, else the run's own scoring."""
    if schema is not None:
        return schema
    scoring = run.scoring or {}
    builtin = scoring.get("builtin")
    if isinstance(builtin, str):
        return builtin
    if scoring:
        try:
            # One Scoring object per run: it compiles its score table once.
            return Scoring.from_dict(scoring, source=f"{run.path} (stored scoring)")
        except SchemaError:
            pass  # an unreadable stored scoring: fall back to the default below
    return "default"


def analyse_run(run: RunData, schema: Any = None, median: DiversityHow = "upper") -> RunStats:
    """Compute a run's per-generation numbers and Pearson r.

    Args:
        run: The run.
        schema: If given, every matrix is recomputed from the chromosomes with this scoring
            schema ("paper", "default", a path or a ``Scoring``); otherwise stored matrices are
            used and only missing ones are computed (with the run's own scoring).
        median: "upper" (strict upper triangle, the paper's dashboard), "offdiag" or "full".

    Returns:
        The run's statistics.
    """
    if median not in DIVERSITY_KINDS:
        raise ValueError(f"median must be one of {', '.join(DIVERSITY_KINDS)}, got {median!r}")
    matrices: dict[int, np.ndarray] = {}
    sequences: dict[int, list[str]] = {}
    sources: set[str] = set()
    used_schema = schema_of(run, schema)
    stats = []
    for gen in run.generations:
        inds = gen.individuals
        m = gen.matrix if schema is None else None
        if m is not None and m.shape != (len(inds), len(inds)):
            m = None  # a stored matrix that does not match the population is not trusted
        if m is not None:
            sources.add("stored")
        elif inds:
            m = compute_matrix([i.chromosome for i in inds], used_schema)
            sources.add(f"recomputed ({schema_name(used_schema)} schema)")
        if m is not None:
            matrices[gen.generation] = m
        sequences[gen.generation] = [i.sequence for i in inds]
        trained = [i for i in inds if is_trained(i)]
        best = None
        if trained:
            best = trained[0]
            for ind in trained[1:]:
                if ind.fitness > best.fitness:
                    best = ind
        fits = [i.fitness for i in trained]
        accepted = None  # only meaningful against a window
        if gen.window is not None and gen.decision is not None and isinstance(gen.decision.get("accepted"), bool):
            accepted = gen.decision["accepted"]
        stats.append(
            GenerationStats(
                generation=gen.generation,
                n=len(inds),
                n_trained=len(trained),
                n_failed=sum(outcome(i) is Status.FAILED for i in inds),
                n_oversized=sum(outcome(i) is Status.OVERSIZED for i in inds),
                max_fitness=None if best is None else float(best.fitness),
                median_fitness=float(np.median(fits)) if fits else None,
                best=best,
                median_similarity=_median(m, median),
                control_statistic=gen.diversity,
                window=gen.window,
                accepted=accepted,
                control_iterations=gen.control_iterations,
            )
        )
    r = pearson([s.max_fitness for s in stats], [s.median_similarity for s in stats])
    source = " + ".join(sorted(sources)) or "none"
    run_schema = used_schema if schema is None else schema_of(run, None)
    return RunStats(run, matrices, source, stats, r, used_schema, sequences, run_schema)


def schema_name(schema: Any) -> str:
    """A schema argument's name: a built-in name as is, else the Scoring's ``name`` (or its type)."""
    if isinstance(schema, str):
        return schema
    return str(getattr(schema, "name", None) or type(schema).__name__)


def _median(m: np.ndarray | None, how: DiversityHow) -> float | None:
    if m is None or m.shape[0] < 2:
        return None
    return float(diversity(m, how=how))


def compute_matrix(chromosomes: list[list[dict[str, Any]]], schema: Any) -> np.ndarray:
    """Similarity matrix; under the `paper` schema rounded to 3 decimals, as the original stored it."""

    m = np.asarray(similarity_matrix(chromosomes, schema=schema), dtype=np.float64)
    # round3 is Python's round() on the exact double, as the original code (np.round differs on ~1
    # value in 2,000); without it one published Table 3 value (CIFAR-100 naive, seed 6) moves by 0.01.
    return np.asarray(round3(m)) if schema_name(schema) == "paper" else m


# ------------------------------------------------------------------------------------------
# Fig. 20 pairs


@dataclass(frozen=True)
class Pair:
    """Two individuals of one generation: very similar, far apart in fitness."""

    generation: int
    better: Any
    worse: Any
    similarity: float
    gap: float

    def edits(self) -> dict[str, list[str]]:
        """Substitutions, insertions and deletions turning the better sequence into the worse one.

        From difflib's opcodes on the letter strings, as in the paper's dashboard.
        """
        a, b = self.better.sequence, self.worse.sequence
        out: dict[str, list[str]] = {"substitutions": [], "insertions": [], "deletions": []}
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
            if tag == "replace":
                out["substitutions"].append(f"{a[i1:i2]}→{b[j1:j2]}@{i1}")
            elif tag == "insert":
                out["insertions"].append(f"+{b[j1:j2]}@{i1}")
            elif tag == "delete":
                out["deletions"].append(f"-{a[i1:i2]}@{i1}")
        return out

    def to_dict(self, schema: Any = "default", chance: float | None = None) -> dict[str, Any]:
        """JSON-able form; ``worse_at_chance`` says whether the worse one collapsed to ``chance``."""
        return {
            "generation": self.generation,
            "better": individual_summary(self.better, schema),
            "worse": individual_summary(self.worse, schema),
            "similarity": self.similarity,
            "fitness_gap": self.gap,
            "worse_at_chance": at_chance(self.worse, chance),
            **self.edits(),
        }


def similar_pairs(
    stats: RunStats,
    min_similarity: float = 0.8,
    min_gap: float = 0.1,
    max_pairs: int = 12,
    *,
    skip_chance: bool = False,
) -> list[Pair]:
    """Pairs with high similarity but a large fitness gap (paper Fig. 20, appendix F).

    A pair of identical sequences is shown once per generation at most; so is a pair of sequences
    already listed in another generation.

    Args:
        stats: The analysed run.
        min_similarity: Keep ``S[better, worse]`` strictly above this (and below 1).
        min_gap: Keep a fitness difference strictly above this (and below 1).
        max_pairs: At most this many pairs, most similar first, then largest gap.
        skip_chance: Leave out individuals whose fitness is at chance level (a collapsed
            training; :func:`at_chance`), which otherwise make most of the pairs of the
            published runs. No effect on a run whose dataset's class count is unknown.
    """
    chance = stats.run.chance if skip_chance else None
    found: list[Pair] = []
    for gen in stats.run.generations:
        m = stats.matrices.get(gen.generation)
        if m is None:
            continue
        inds = gen.individuals
        trained = [k for k, i in enumerate(inds) if is_trained(i) and not at_chance(i, chance)]
        for a in trained:
            for b in trained:
                gap = inds[a].fitness - inds[b].fitness
                s = float(m[a, b])
                if a != b and min_similarity < s < 1.0 and min_gap < gap < 1.0:
                    found.append(Pair(gen.generation, inds[a], inds[b], s, float(gap)))
    found.sort(key=lambda p: (-p.similarity, -p.gap, p.generation))
    seen: set[tuple[str, str]] = set()
    out = []
    for p in found:
        key = (p.better.sequence, p.worse.sequence)
        if key in seen:
            continue
        seen.add(key)
        out.append(p)
        if len(out) == max_pairs:
            break
    return out


# ------------------------------------------------------------------------------------------
# summary.json

#: Version of ``summary.json``'s layout. 2: Table 3 lists runs (not seeds, which several runs can
#: share), individuals carry their architecture and accuracies, ``warnings`` is new. 3: a group is
#: one setting (dataset, control and every other search setting), its entry names it (``label``,
#: ``settings``).
SUMMARY_FORMAT_VERSION = 3


@dataclass(frozen=True)
class Group:
    """The runs of one setting: one dataset, one control mode and every other search setting alike
    (:func:`run_settings`); one column of the paper's Table 3.

    ``settings`` holds the settings that tell the group apart from the other groups of its dataset
    (``{"budget": "halving"}``; empty when the dataset's groups differ in their control only), and
    :attr:`label` names them."""

    dataset: str
    control: str
    members: list[RunStats]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The control mode and the settings that tell the group apart: ``rigid · budget halving``."""
        return " · ".join([self.control, *(describe_setting(k, v) for k, v in self.settings.items())])

    @property
    def lengths(self) -> list[int]:
        """The distinct run lengths (generations) in the group, shortest first."""
        return sorted({len(m.generations) for m in self.members})

    def warning(self) -> str | None:
        """Why the group's runs do not compare generation by generation, or None if they do."""
        if len(self.lengths) < 2:
            return None
        spans = []
        for n in reversed(self.lengths):
            names = [m.run.name for m in self.members if len(m.generations) == n]
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            spans.append(f"{n} generations: {shown}")
        return (
            f"{self.dataset} · {self.label}: the runs differ in length ({'; '.join(spans)}). "
            "Their Pearson r cover different spans, and Fig. 12 draws one band per length instead of pooling them."
        )


#: The value :func:`run_settings` gives ``code``: runs imported from the authors' code, and pyevonas's.
ORIGINAL_CODE, PYEVONAS_CODE = "original", "pyevonas"
#: A ``[train]`` setting a run left unset (the training's default).
TRAIN_DEFAULT = "default"


def run_settings(run: RunData) -> dict[str, Any]:
    """The settings a report groups a run by besides its dataset and control: every search setting
    (:data:`pyevonas.runs.settings.SEARCH_SETTINGS`; one a store lacks counts as its default), and
    the ``[train]`` table's settings as ``train.NAME``, with ``code`` (``pyevonas``).

    Not the seed, the run's name and folders, nor execution settings (workers, executor, device,
    time limits, Ray's resources and retries: ``--resume`` may change those). The evaluator of a
    simulated run (``surrogate:MODEL``; its control is labelled ``· simulated`` apart from trained
    runs). An imported run is ``{"code": "original"}``: the original code's settings are its own,
    and its runs group by dataset and control only."""
    if run.imported:
        return {"code": ORIGINAL_CODE}
    config = run.config
    out: dict[str, Any] = {"code": PYEVONAS_CODE}
    for key, default in SEARCH_SETTINGS.items():
        if key in ("train", "evaluator"):
            continue
        if key == "schema" and key not in config:
            out[key] = config.get("schema_name", default)
        else:
            out[key] = config.get(key, default)
    sim = run.simulation
    if sim is not None:
        out["evaluator"] = f"surrogate:{sim.model}"
    train = config.get("train")
    if isinstance(train, dict):
        for key in sorted(train, key=str):
            if key not in TRAIN_EXECUTION_SETTINGS:
                out[f"train.{key}"] = train[key]
    return out


def describe_setting(key: str, value: Any) -> str:
    """A setting as a group's label names it: ``budget halving``, ``init seeds.json`` (a path by
    its last part), ``batch size 32`` (``train.batch_size``), ``original code``."""
    if key == "code":
        return "original code" if value == ORIGINAL_CODE else str(value)
    name = key.removeprefix("train.").replace("_", " ")
    return f"{name} {_setting_text(value)}"


def _setting_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_setting_text(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={_setting_text(v)}" for k, v in value.items())
    text = str(value)
    if "/" in text or os.sep in text:
        # A path by its last part; a prefix such as surrogate: or npz: kept.
        prefix, colon, rest = text.partition(":")
        if colon and rest and not any(c in prefix for c in "/\\"):
            return f"{prefix}:{Path(rest).name or rest}"
        return Path(text).name or text
    return text


def _setting_key(value: Any) -> str:
    """A hashable, order-independent form of a setting's value (values come from JSON)."""
    return json.dumps(value, sort_keys=True, default=repr)


#: What :func:`_setting_of` returns for a setting a group does not have (an imported run's).
_ABSENT = object()


def _setting_of(settings: dict[str, Any], key: str) -> Any:
    if key in settings:
        return settings[key]
    if key.startswith("train.") and settings.get("code") == PYEVONAS_CODE:
        return TRAIN_DEFAULT
    return _ABSENT


def groups(all_stats: Sequence[RunStats]) -> list[Group]:
    """The runs grouped by dataset, control and :func:`run_settings` (never by seed or execution
    settings), sorted by dataset and control, then in the order of their first runs; runs keep the
    order given.

    Each group's ``settings`` are those that differ among the groups of its dataset (a setting
    only some groups have, such as an imported run's lack of a budget, differs when the groups
    that have it differ in it; an unset ``[train]`` setting is ``"default"``).

    Simulated runs (:attr:`RunData.simulation`) form groups of their own, their control labelled
    ``rigid · simulated``: predicted accuracies never pool with trained ones."""
    by_key: dict[tuple[str, str, str], list[RunStats]] = {}
    settings: dict[tuple[str, str, str], dict[str, Any]] = {}
    for st in all_stats:
        run_set = run_settings(st.run)
        key = (*_group_key(st.run), _setting_key(run_set))
        by_key.setdefault(key, []).append(st)
        settings[key] = run_set
    by_dataset: dict[str, list[tuple[str, str, str]]] = {}
    for key in by_key:
        by_dataset.setdefault(key[0], []).append(key)
    out = []
    for keys in by_dataset.values():
        names: list[str] = []
        for key in keys:
            names += [k for k in settings[key] if k not in names]
        differ = []
        for name in names:
            values = {_setting_key(v) for key in keys if (v := _setting_of(settings[key], name)) is not _ABSENT}
            if len(values) > 1:
                differ.append(name)
        for key in keys:
            shown = {n: v for n in differ if (v := _setting_of(settings[key], n)) is not _ABSENT}
            out.append(Group(key[0], key[1], by_key[key], shown))
    first = {id(st): k for k, st in enumerate(all_stats)}
    return sorted(out, key=lambda g: (g.dataset, g.control, first[id(g.members[0])]))


def _group_key(run: RunData) -> tuple[str, str]:
    return run.dataset, run.control + (" · simulated" if run.simulation is not None else "")


def coverage_summary(run: RunData) -> list[dict[str, Any]] | None:
    """Per generation of a simulated run, how many candidates lie where the surrogate extrapolates
    (coverage below its threshold; :func:`pyevonas.runs.simulation.coverage_stats`); None for a
    trained run."""
    sim = run.simulation
    if sim is None:
        return None
    return [
        {"generation": g.generation, **coverage_stats(g.individuals, sim.coverage_threshold).to_dict()}
        for g in run.generations
    ]


def summary(all_stats: Sequence[RunStats], pairs: dict[str, list[Pair]] | None = None) -> dict[str, Any]:
    """The report's machine-readable summary: per run, per generation and per group (:func:`groups`:
    dataset, control and every other search setting).

    ``table3`` holds the paper's Table 3, one entry per group: its ``label`` and the ``settings``
    that tell it apart from the other groups of its dataset, each run's Pearson r (one entry per
    run, even where runs share a seed) and their mean. ``warnings`` says what does not compare
    (runs of one group that differ in length).
    """
    runs = []
    for st in all_stats:
        best = st.best
        chance = st.run.chance
        runs.append(
            {
                "name": st.run.name,
                "path": st.run.path,
                "meta": st.run.meta,
                "dataset": st.run.dataset,
                "control": st.run.control,
                "seed": st.run.meta.get("seed"),
                "imported": st.run.imported,
                "simulated": None if st.run.simulation is None else st.run.simulation.notice,
                "coverage": coverage_summary(st.run),
                "chance_level": chance,
                "matrix_source": st.matrix_source,
                "n_generations": len(st.generations),
                "n_individuals": sum(g.n for g in st.generations),
                "n_failed": sum(g.n_failed for g in st.generations),
                "n_oversized": sum(g.n_oversized for g in st.generations),
                "best": None if best is None else individual_summary(best, st.run_schema),
                "pearson_fitness_similarity": st.pearson,
                "generations": [g.to_dict(st.run_schema) for g in st.generations],
                "similar_pairs": [p.to_dict(st.run_schema, chance) for p in (pairs or {}).get(st.run.name, [])],
            }
        )
    table3 = []
    warnings = []
    for group in groups(all_stats):
        rs = [m.pearson for m in group.members if m.pearson is not None]
        warning = group.warning()
        if warning:
            warnings.append(warning)
        table3.append(
            {
                "dataset": group.dataset,
                "control": group.control,
                "label": group.label,
                "settings": group.settings,
                "runs": [
                    {
                        "name": m.run.name,
                        "seed": m.run.meta.get("seed"),
                        "n_generations": len(m.generations),
                        "pearson": m.pearson,
                    }
                    for m in group.members
                ],
                "n_generations": group.lengths,
                "mean_pearson": float(np.mean(rs)) if rs else None,
                "warning": warning,
            }
        )
    return {
        "format": "pyevonas-report",
        "format_version": SUMMARY_FORMAT_VERSION,
        "runs": runs,
        "table3": table3,
        "warnings": warnings,
    }


__all__ = [
    "DATASET_CLASSES",
    "IMPORTED_SOURCES",
    "SUMMARY_FORMAT_VERSION",
    "GenerationData",
    "GenerationStats",
    "Group",
    "Pair",
    "RunData",
    "RunStats",
    "analyse_run",
    "architecture",
    "at_chance",
    "chance_level",
    "chance_limit",
    "compute_matrix",
    "coverage_summary",
    "describe_setting",
    "gene_texts",
    "groups",
    "individual_summary",
    "load_run",
    "pearson",
    "run_settings",
    "schema_name",
    "schema_of",
    "similar_pairs",
    "summary",
]
