"""Import the paper's published evolution runs (``.evonas`` files or their plain-JSON extracts) into a run store.

Two input formats are read (both described in ``docs/original.md#the-published-runs``):

* the original code's ``results_compressed_<name>.evonas`` export: one JSON document whose
  ``total`` and ``Generation_<g>`` entries hold some values as *pandas DataFrames serialised to
  JSON strings*; those are parsed with :func:`json.loads` (never pandas, which re-parses floats with
  1-ulp errors), and
* the neutral per-run JSON extracts (``{"run", "dataset", "seed", "diversity_control",
  "generations": [...]}``) of the same 50 runs.

Both are first parsed and validated completely into an :class:`ImportedRun` (plain data, no I/O),
and only then written to a :class:`~pyevonas.runs.store.RunStore`. Writing goes to a temporary sibling
folder that is renamed into place at the end, so a malformed file or a crash imports nothing.

Conventions of the published runs kept here:

* population order is the order of ``sequences`` (the order of the stored similarity matrix), not
  ``individuals_names`` (an ``os.listdir`` order);
* fitness ``-10001`` marks a failed training (status ``"failed"``); an individual with only
  ``{memory_footprint_h5, fitness: 0}`` and a footprint above ``max_memory_footprint`` was never
  trained (status ``"oversized"``);
* size is the untrained Keras ``.h5`` footprint, stored as ``size_mb`` = bytes / 10**6, and
  latency is the original one-image ``model.predict`` wall time, stored as ``latency_ms``;
* the crossover log is labelled with the *parents'* generation, so a record labelled ``g`` gives
  the parents of a child of generation ``g + 1``;
* the diversity-control window of generation ``g + 1`` is not stored in the file; it is derived
  from the original control formulas (``docs/original.md#diversity-control``) and the full-matrix median of
  generation ``g``, which is the statistic the original control compared.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pyevonas._userfiles import UserFileError, parse_json, read_json
from pyevonas.errors import PyevonasError, RunStoreError
from pyevonas.metric.schema import Scoring
from pyevonas.runs.records import Status
from pyevonas.runs.staging import staging_dir
from pyevonas.runs.store import RunStore
from pyevonas.search.control import ORIGINAL_RIGID, ORIGINAL_SOFT

#: The fitness the original code stores for a failed training (its fitness.py): a marker read in
#: imported files, not a fitness. pyevonas stores a failure as status ``failed`` instead.
ORIGINAL_FAILED_FITNESS = -10001.0
# Used when a file's params lack `max_memory_footprint` (the value of all 50 published runs).
DEFAULT_MAX_MEMORY_FOOTPRINT = 40_000_000
# The original control hard-codes the number of generations in its margins (docs/original.md#diversity-control).
ORIGINAL_CONTROL_GENERATIONS = 20
_ORIGINAL_CONTROLS = {"rigid": ORIGINAL_RIGID, "soft": ORIGINAL_SOFT}

_CONTROL_BY_SUFFIX = (("_div_soft", "soft"), ("_div", "rigid"))
_PARENT_RE = re.compile(r"^Parent_([12]):\s*\((.+),\s*(-?\d+)\)\s*$")
_CHILD_RE = re.compile(r"^New_Individual:\s*(.+?)\s*$")
_LABEL_RE = re.compile(r"^Generation:\s*(\d+)\s*$")
_GEN_KEY_RE = re.compile(r"^Generation_(\d+)$")


class RunImportError(PyevonasError, ValueError):
    """A run file cannot be imported: unreadable, not a known format, or inconsistent (the message says where)."""


@dataclass(frozen=True)
class ImportedIndividual:
    """One individual of an imported generation, in population order."""

    name: str
    index: int
    chromosome: list[dict[str, Any]]
    sequence: str
    status: Status  # ok, failed or oversized
    fitness: float | None
    val_accuracy: float | None
    val_accuracy_per_epoch: list[float]
    size_bytes: int | None
    latency_s: float | None
    parents: dict[str, Any] | None = None
    error: str | None = None

    def metrics(self) -> dict[str, Any]:
        """The individual's results as a ``Metrics``-shaped dict (see ``docs/contracts.md``)."""
        return {
            "status": self.status,
            "error": self.error,
            "fitness": self.fitness,
            "val_accuracy": self.val_accuracy,
            "test_accuracy": None,
            "val_accuracy_per_epoch": list(self.val_accuracy_per_epoch),
            "params": None,  # the original runs stored no parameter count
            "size_mb": None if self.size_bytes is None else self.size_bytes / 1e6,
            "latency_ms": None if self.latency_s is None else self.latency_s * 1e3,
            "flops": None,
            "train_seconds": None,
        }


@dataclass(frozen=True)
class ImportedGeneration:
    """One generation: individuals in population order and the similarity matrix stored by the run."""

    generation: int
    individuals: list[ImportedIndividual]
    matrix: np.ndarray | None
    window: tuple[float, float] | None = None
    diversity: float | None = None
    decision: dict[str, Any] | None = None


@dataclass(frozen=True)
class ImportedRun:
    """A whole published run, parsed and validated, ready to be written to a run store."""

    name: str
    source: str
    source_file: str
    dataset: str
    seed: int | None
    control: str  # "naive" | "rigid" | "soft"
    params: dict[str, Any]
    space: dict[str, Any]
    generations: list[ImportedGeneration] = field(default_factory=list)

    def meta(self) -> dict[str, Any]:
        """The run store's ``meta`` dict."""
        return {
            "source": self.source,
            "source_file": self.source_file,
            "dataset": self.dataset,
            "control": self.control,
            "seed": self.seed,
            "name": self.name,
        }

    def config(self) -> dict[str, Any]:
        """The run store's ``config`` dict: the main settings plus the original ``params`` verbatim."""
        p = self.params
        return {
            "dataset": self.dataset,
            "seed": self.seed,
            "control": self.control,
            "population_size": p.get("population_size"),
            "generations": p.get("generations", len(self.generations)),
            "epochs": p.get("nb_epochs"),
            "n_parents": p.get("nb_best_models_crossover"),
            "mutation_rate": p.get("mutation_rate"),
            "max_memory_footprint": p.get("max_memory_footprint"),
            "original_params": p,
        }


# --------------------------------------------------------------------------------------------
# small validated accessors: every failure names the file and the JSON path


def _fail(where: str, what: str) -> RunImportError:
    return RunImportError(f"{where}: {what}")


def _get(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise _fail(where, f"expected an object, got {type(obj).__name__}")
    if key not in obj:
        raise _fail(where, f"missing key {key!r}")
    return obj[key]


def _as_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"expected an object, got {type(value).__name__}")
    return value


def _as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list, got {type(value).__name__}")
    return value


def _as_number(value: Any, where: str, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(where, f"expected a finite number, got {value!r}")
    return float(value)


def _dataframe(text: Any, where: str) -> dict[str, dict[str, Any]]:
    """Parse a ``DataFrame.to_json()`` string (orient="columns") into ``{column: {row: value}}``."""
    if not isinstance(text, str):
        raise _fail(where, f"expected a DataFrame serialised as a JSON string, got {type(text).__name__}")
    try:
        frame = parse_json(text)
    except UserFileError as exc:
        raise _fail(where, f"embedded DataFrame is {exc}") from None
    if not isinstance(frame, dict) or not all(isinstance(c, dict) for c in frame.values()):
        raise _fail(where, "embedded DataFrame is not {column: {row: value}}")
    return frame


def _column(frame: dict[str, dict[str, Any]], column: str, where: str) -> list[Any]:
    """A DataFrame column as a list ordered by its integer row labels."""
    col = _get(frame, column, where)
    try:
        rows = sorted(col.items(), key=lambda kv: int(kv[0]))
    except ValueError:
        raise _fail(where, f"column {column!r} has non-integer row labels") from None
    return [v for _, v in rows]


def _chromosome(value: Any, where: str) -> list[dict[str, Any]]:
    genes = _as_list(value, where)
    if not genes:
        raise _fail(where, "empty chromosome")
    for k, gene in enumerate(genes):
        if not isinstance(gene, dict) or not isinstance(gene.get("layer"), str):
            raise _fail(f"{where}[{k}]", "a gene must be an object with a string 'layer'")
    return genes


def _matrix(rows: Any, n: int, where: str) -> np.ndarray:
    try:
        m = np.asarray(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(where, "similarity matrix is not numeric") from None
    if m.shape != (n, n):
        raise _fail(where, f"similarity matrix has shape {m.shape}, expected ({n}, {n})")
    if not np.all(np.isfinite(m)):
        raise _fail(where, "similarity matrix has non-finite values")
    return m


def _classify(
    fitness: float | None, val_acc: float | None, size: int | None, max_footprint: float
) -> tuple[Status, float | None, str | None]:
    """Map the original result fields to (status, fitness, error)."""
    if fitness is not None and fitness == ORIGINAL_FAILED_FITNESS:
        return Status.FAILED, None, "training failed in the original run (fitness -10001)"
    if val_acc is None:
        if size is not None and size > max_footprint:
            return (
                Status.OVERSIZED,
                None,
                f"not trained: model footprint {size} bytes exceeds max_memory_footprint {int(max_footprint)}",
            )
        return Status.FAILED, None, "not trained in the original run (no val_acc stored)"
    return Status.OK, fitness, None


# --------------------------------------------------------------------------------------------
# control mode and window


def _control_from_name(name: str) -> str | None:
    for suffix, mode in _CONTROL_BY_SUFFIX:
        if name.endswith(suffix):
            return mode
    if re.search(r"_s\d+$", name):
        return "naive"
    return None


def _control_from_params(params: dict[str, Any]) -> str:
    """Fallback when the file name does not tell: `both_control` marks soft, a short exploration rigid."""
    if params.get("both_control") is True:
        return "soft"
    generations = params.get("generations")
    exploration = params.get("exploration_generations")
    if isinstance(generations, int) and isinstance(exploration, int) and exploration < generations:
        return "rigid"
    return "naive"


def control_window(control: str, parent_generation: int, last_median: float) -> tuple[float, float] | None:
    """The original diversity-control acceptance window for the children of ``parent_generation``.

    The original accepts a candidate population whose full-matrix median ``cur`` satisfies
    ``lo < cur <= hi``; the margins are Eq. 2 and 3 with 20 generations hard-coded, in the
    original's own arithmetic (:data:`~pyevonas.search.control.ORIGINAL_RIGID` and
    :data:`~pyevonas.search.control.ORIGINAL_SOFT`; ``docs/original.md#diversity-control``).

    Args:
        control: "naive", "rigid" or "soft".
        parent_generation: the generation the children are bred from (1-based).
        last_median: the parents' generation's median similarity (full matrix, diagonal included).

    Returns:
        ``(lo, hi)``, or None for a naive run.
    """
    function = _ORIGINAL_CONTROLS.get(control)
    if function is None:
        return None
    return function.window(last_median, parent_generation, ORIGINAL_CONTROL_GENERATIONS)


def _with_windows(run_generations: list[ImportedGeneration], control: str) -> list[ImportedGeneration]:
    out: list[ImportedGeneration] = []
    last: float | None = None
    for gen in run_generations:
        window = decision = None
        cur = float(np.median(gen.matrix)) if gen.matrix is not None else None
        if last is not None and cur is not None and control != "naive":
            window = control_window(control, gen.generation - 1, last)
            if window is not None:
                decision = {
                    "derived": True,
                    "statistic": "median of the full matrix (diagonal included), as the original control",
                    "accepted": bool(window[0] < cur <= window[1]),
                }
        out.append(replace(gen, window=window, diversity=cur, decision=decision))
        last = cur
    return out


# --------------------------------------------------------------------------------------------
# parents


def _crossover_records(text: Any, where: str) -> list[tuple[int, str, dict[str, Any]]]:
    """Parse the header-less crossover log into (parents' generation, child name, parents)."""
    frame = _dataframe(text, where)
    columns = list(frame)
    if len(columns) != 4:
        raise _fail(where, f"crossover log has {len(columns)} columns, expected 4")
    # read_csv without header turned the first record into the column names.
    records = [columns] + [list(r) for r in zip(*(_column(frame, c, where) for c in columns), strict=False)]
    out = []
    for k, rec in enumerate(records):
        out.append(_parse_crossover_record(rec, f"{where} record {k}"))
    return out


def _parse_crossover_record(rec: list[Any], where: str) -> tuple[int, str, dict[str, Any]]:
    texts = [str(x) for x in rec]
    label = _LABEL_RE.match(texts[0])
    p1 = _PARENT_RE.match(texts[1])
    p2 = _PARENT_RE.match(texts[2])
    child = _CHILD_RE.match(texts[3])
    if not (label and p1 and p2 and child) or p1.group(1) != "1" or p2.group(1) != "2":
        raise _fail(where, f"unreadable crossover record {texts!r}")
    parents = {
        "parent_1": p1.group(2).strip(),
        "parent_1_split": int(p1.group(3)),
        "parent_2": p2.group(2).strip(),
        "parent_2_split": int(p2.group(3)),
    }
    return int(label.group(1)), child.group(1), parents


def _attach_parents(
    generations: list[ImportedGeneration], records: list[tuple[int, str, dict[str, Any]]]
) -> list[ImportedGeneration]:
    """Give each child the parents logged for it; children the log does not name keep None.

    A record labelled g names a child of generation g+1 and parents of generation g. Records whose
    child or parents do not exist (a generation regenerated after a restart) are ignored.
    """
    by_gen = {g.generation: g for g in generations}
    links: dict[tuple[int, str], dict[str, Any]] = {}
    for label, child, parents in records:
        prev = by_gen.get(label)
        if prev is None:
            continue
        names = {ind.name for ind in prev.individuals}
        if parents["parent_1"] in names and parents["parent_2"] in names:
            links[(label + 1, child)] = parents
    out = []
    for gen in generations:
        inds = [
            ind if (p := links.get((gen.generation, ind.name))) is None else replace(ind, parents=dict(p))
            for ind in gen.individuals
        ]
        out.append(replace(gen, individuals=inds))
    return out


# --------------------------------------------------------------------------------------------
# the two formats


def _parse_evonas(doc: dict[str, Any], path: Path) -> ImportedRun:
    where = str(path)
    total = _as_dict(_get(doc, "total", where), f"{where}: total")
    params = _as_dict(_get(total, "params", f"{where}: total"), f"{where}: total.params")
    max_footprint = float(params.get("max_memory_footprint", DEFAULT_MAX_MEMORY_FOOTPRINT))
    gen_keys = sorted((int(m.group(1)), k) for k in doc if (m := _GEN_KEY_RE.match(k)))
    unknown = [k for k in doc if k != "total" and not _GEN_KEY_RE.match(k)]
    if unknown:
        raise _fail(where, f"unexpected top-level keys {unknown[:5]!r}")
    if not gen_keys:
        raise _fail(where, "no Generation_<g> entries")
    numbers = [g for g, _ in gen_keys]
    if numbers != list(range(1, len(numbers) + 1)):
        raise _fail(where, f"generations must be numbered 1..n without gaps, got {numbers}")

    generations = []
    for g, key in gen_keys:
        generations.append(_parse_evonas_generation(doc[key], g, f"{where}: {key}", max_footprint))

    records = _crossover_records(_get(total, "crossover", f"{where}: total"), f"{where}: total.crossover")
    name = _run_name(path)
    control = _control_from_name(name) or _control_from_params(params)
    return ImportedRun(
        name=name,
        source="evonas",
        source_file=str(path),
        dataset=str(params.get("dataset", "unknown")),
        seed=_seed(params.get("random_seed"), where),
        control=control,
        params=params,
        space={"gene_pool": total.get("gene_pool"), "rule_set": total.get("rule_set")},
        generations=_with_windows(_attach_parents(generations, records), control),
    )


def _parse_evonas_generation(gen: Any, g: int, where: str, max_footprint: float) -> ImportedGeneration:
    gen = _as_dict(gen, where)
    sequences = _as_dict(_get(gen, "sequences", where), f"{where}.sequences")
    chromosomes = _as_dict(_get(gen, "chromosomes", where), f"{where}.chromosomes")
    results = _as_dict(_get(gen, "individuals_results", where), f"{where}.individuals_results")
    acc_epochs = _as_dict(gen.get("acc_epochs", {}), f"{where}.acc_epochs")
    order = list(sequences)  # population order = the similarity matrix's order
    if not order:
        raise _fail(where, "empty generation")
    for label, d in (("chromosomes", chromosomes), ("individuals_results", results)):
        if set(d) != set(order):
            missing = sorted(set(order) ^ set(d))[:5]
            raise _fail(f"{where}.{label}", f"names differ from 'sequences' ({missing!r})")

    frame = _dataframe(_get(gen, "similarity", where), f"{where}.similarity")
    row_names = _column(frame, "Unnamed: 0", f"{where}.similarity")
    col_names = [c for c in frame if c != "Unnamed: 0"]
    if row_names != order or col_names != order:
        raise _fail(f"{where}.similarity", "row/column names are not the population order of 'sequences'")
    if not _has_rows(frame, col_names, len(order)):
        raise _fail(f"{where}.similarity", "similarity DataFrame does not have rows 0..n-1 in every column")
    rows = [[frame[c][str(i)] for c in col_names] for i in range(len(order))]
    matrix = _matrix(rows, len(order), f"{where}.similarity")

    individuals = []
    for index, name in enumerate(order):
        w = f"{where} individual {name!r}"
        res = _as_dict(results[name], f"{w} results")
        size = res.get("memory_footprint_h5")
        size_i = None if size is None else int(_as_number(size, f"{w} memory_footprint_h5") or 0)
        fitness = _as_number(_get(res, "fitness", f"{w} results"), f"{w} fitness")
        val_acc = _as_number(res.get("val_acc"), f"{w} val_acc", allow_none=True)
        latency = _as_number(res.get("inference_time"), f"{w} inference_time", allow_none=True)
        epochs = [
            float(_as_number(x, f"{w} acc_epochs") or 0.0)
            for x in _as_list(acc_epochs.get(name, []), f"{w} acc_epochs")
        ]
        status, fit, error = _classify(fitness, val_acc, size_i, max_footprint)
        seq = sequences[name]
        if not isinstance(seq, str):
            raise _fail(f"{w} sequence", f"expected a string, got {type(seq).__name__}")
        individuals.append(
            ImportedIndividual(
                name=name,
                index=index,
                chromosome=_chromosome(chromosomes[name], f"{w} chromosome"),
                sequence=seq,
                status=status,
                fitness=fit,
                val_accuracy=val_acc if status is Status.OK else None,
                val_accuracy_per_epoch=epochs if status is Status.OK else [],
                size_bytes=size_i,
                latency_s=latency,
                error=error,
            )
        )
    return ImportedGeneration(g, individuals, matrix)


def _has_rows(frame: dict[str, dict[str, Any]], cols: list[str], n: int) -> bool:
    keys = {str(i) for i in range(n)}
    return all(set(frame[c]) == keys for c in cols)


def _parse_paper_json(doc: dict[str, Any], path: Path) -> ImportedRun:
    where = str(path)
    params = _as_dict(doc.get("params", {}), f"{where}: params")
    max_footprint = float(params.get("max_memory_footprint", DEFAULT_MAX_MEMORY_FOOTPRINT))
    gens = _as_list(_get(doc, "generations", where), f"{where}: generations")
    if not gens:
        raise _fail(where, "no generations")
    generations = []
    for k, gen in enumerate(gens):
        w = f"{where}: generations[{k}]"
        gen = _as_dict(gen, w)
        g = _get(gen, "generation", w)
        if g != k + 1:
            raise _fail(w, f"generation number {g!r}, expected {k + 1}")
        inds = _as_list(_get(gen, "individuals", w), f"{w}.individuals")
        order = _get(gen, "population_order", w)
        by_index = sorted(inds, key=lambda d: d.get("population_index", -1) if isinstance(d, dict) else -1)
        if not inds or [_get(d, "name", w) for d in by_index] != order:
            raise _fail(w, "individuals do not match 'population_order'")
        individuals = []
        for index, d in enumerate(by_index):
            wi = f"{w} individual {d.get('name')!r}"
            if d.get("population_index") != index:
                raise _fail(wi, f"population_index {d.get('population_index')!r}, expected {index}")
            size = d.get("memory_footprint_h5")
            size_i = None if size is None else int(_as_number(size, f"{wi} memory_footprint_h5") or 0)
            fitness = _as_number(d.get("fitness"), f"{wi} fitness", allow_none=True)
            val_acc = _as_number(d.get("val_acc"), f"{wi} val_acc", allow_none=True)
            latency = _as_number(d.get("inference_time"), f"{wi} inference_time", allow_none=True)
            epochs = [
                float(_as_number(x, f"{wi} val_accuracy_per_epoch") or 0.0)
                for x in _as_list(d.get("val_accuracy_per_epoch", []), f"{wi} val_accuracy_per_epoch")
            ]
            status, fit, error = _classify(fitness, val_acc, size_i, max_footprint)
            parents = d.get("parents")
            if parents is not None:
                parents = _as_dict(parents, f"{wi} parents")
                parents = {
                    k: parents[k] for k in ("parent_1", "parent_1_split", "parent_2", "parent_2_split") if k in parents
                }
            seq = _get(d, "sequence", wi)
            if not isinstance(seq, str):
                raise _fail(f"{wi} sequence", f"expected a string, got {type(seq).__name__}")
            individuals.append(
                ImportedIndividual(
                    name=str(d["name"]),
                    index=index,
                    chromosome=_chromosome(_get(d, "chromosome", wi), f"{wi} chromosome"),
                    sequence=seq,
                    status=status,
                    fitness=fit,
                    val_accuracy=val_acc if status is Status.OK else None,
                    val_accuracy_per_epoch=epochs if status is Status.OK else [],
                    size_bytes=size_i,
                    latency_s=latency,
                    parents=parents or None,
                    error=error,
                )
            )
        raw = gen.get("similarity_matrix")
        matrix = None if raw is None else _matrix(raw, len(individuals), f"{w}.similarity_matrix")
        generations.append(ImportedGeneration(k + 1, individuals, matrix))

    name = str(doc.get("run") or path.stem)
    declared = doc.get("diversity_control")
    if declared is not None and declared not in ("naive", "rigid", "soft"):
        raise _fail(where, f"diversity_control {declared!r} is not naive, rigid or soft")
    control = declared or _control_from_name(name) or _control_from_params(params)
    return ImportedRun(
        name=name,
        source="paper_runs_json",
        source_file=str(doc.get("source_file") or path),
        dataset=str(doc.get("dataset") or params.get("dataset", "unknown")),
        seed=_seed(doc.get("seed", params.get("random_seed")), where),
        control=control,
        params=params,
        space={},
        generations=_with_windows(generations, control),
    )


def _seed(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"seed {value!r} is not an integer")
    return value


def _run_name(path: Path) -> str:
    # The dashboard names a study by the file name without `results_compressed_` and `.evonas`.
    stem = path.name
    if stem.endswith(".evonas"):
        stem = stem[: -len(".evonas")]
    stem = stem.removeprefix("results_compressed_")
    return stem.removeprefix("paper_")


def read_run(path: str | os.PathLike[str]) -> ImportedRun:
    """Parse and validate a published run file without writing anything.

    Args:
        path: an ``.evonas`` file or a plain-JSON extract of one run (``<run>.json``).

    Returns:
        The run, with individuals in population order.

    Raises:
        RunImportError: the file is missing, not JSON, of an unknown layout, or inconsistent.
    """
    p = Path(path)
    if p.is_dir():
        raise RunImportError(f"{p}: is a directory, expected a .evonas or .json run file")
    try:
        doc = read_json(p)
    except UserFileError as exc:
        raise RunImportError(f"{p}: {exc}") from None
    if not isinstance(doc, dict):
        raise RunImportError(f"{p}: expected a JSON object at the top level")
    if "total" in doc:
        return _parse_evonas(doc, p)
    if "generations" in doc:
        return _parse_paper_json(doc, p)
    raise RunImportError(
        f"{p}: neither an .evonas export (no 'total' key) nor a paper-run JSON extract (no 'generations' key)"
    )


# --------------------------------------------------------------------------------------------
# writing


def write_run(run: ImportedRun, run_dir: str | os.PathLike[str]) -> Path:
    """Write a parsed run into a new run store at ``run_dir``, atomically.

    The store is built in a temporary sibling folder and renamed into place only when complete,
    so a failure leaves ``run_dir`` untouched.

    Args:
        run: the parsed run.
        run_dir: the run folder to create; it must not exist or be an empty folder.

    Returns:
        The run folder.

    Raises:
        RunStoreError: ``run_dir`` exists and is not empty, or the store cannot be written.
    """

    target = Path(run_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RunStoreError(f"{target}: exists and is not an empty folder; choose a new --run-dir")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = staging_dir(target.parent, f"{target.name}.importing")
    try:
        staging = tmp / "run"
        store = RunStore.create(
            staging,
            config=run.config(),
            # The original metric: the stored matrices were computed with it.
            scoring=Scoring.builtin("paper").to_dict(),
            space=run.space,
            meta=run.meta(),
        )
        try:
            _fill_store(store, run)
        finally:
            store.close()
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _fill_store(store: Any, run: ImportedRun) -> None:
    # One transaction: an import is one state change, and one commit is much faster than 10,000.
    with store.transaction():
        for gen in run.generations:
            cuts: dict[str, list[int]] = {}
            for ind in gen.individuals:
                parents = None
                if ind.parents is not None:
                    parents = [ind.parents["parent_1"], ind.parents["parent_2"]]
                    if "parent_1_split" in ind.parents and "parent_2_split" in ind.parents:
                        cuts[ind.name] = [ind.parents["parent_1_split"], ind.parents["parent_2_split"]]
                ident = store.add_individual(
                    gen.generation, ind.index, ind.name, ind.chromosome, ind.sequence, parents=parents
                )
                store.set_result(ident, ind.metrics())
            store.save_generation(
                gen.generation,
                matrix=gen.matrix,
                diversity=gen.diversity,
                window=gen.window,
                decision=gen.decision,
                extras={
                    "matrix_source": "stored by the original run (rounded to 3 decimals)",
                    "diversity_statistic": "full",
                    # The crossover log's cut points: parent 1 up to cut 1, parent 2 from cut 2.
                    "crossover_cuts": cuts,
                },
            )


def import_run(path: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> ImportedRun:
    """Import a published run file into a new run store (``pyevonas import``).

    Args:
        path: an ``.evonas`` file or a plain-JSON extract.
        run_dir: the run folder to create (must not exist, or be empty).

    Returns:
        The parsed run that was written.

    Raises:
        RunImportError: the file is malformed; nothing is written.
        RunStoreError: ``run_dir`` is not free, or writing failed; nothing is left behind.
    """
    run = read_run(path)
    write_run(run, run_dir)
    return run


__all__ = [
    "DEFAULT_MAX_MEMORY_FOOTPRINT",
    "ORIGINAL_CONTROL_GENERATIONS",
    "ORIGINAL_FAILED_FITNESS",
    "ImportedGeneration",
    "ImportedIndividual",
    "ImportedRun",
    "RunImportError",
    "control_window",
    "import_run",
    "read_run",
    "write_run",
]
