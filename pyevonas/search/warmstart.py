"""Warm start: the first generation seeded with given architectures (``init`` / ``--init``).

The source is a JSON file or another run's folder:

* a JSON file holds a list whose entries are chromosomes (lists of gene objects, or objects with
  a ``chromosome`` key, as ``pyevonas export`` writes them) or text-notation strings (read with
  the run's scoring schema); a file holding one chromosome is a list of one;
* a run folder gives its best ``population`` individuals by fitness (ranked as the loop ranks,
  :func:`pyevonas.search.halving.rank_key`), one per architecture; reused individuals, whose
  fitness is a neighbour's, are left out.

Each architecture is completed as the text notation needs (the start gene, constant parameters;
:meth:`SearchSpace.normalize`) and checked against the run's search space; in a cell space an
entry may also be a cell alone (a NAS-Bench-201 string, a dag object), put into the space's
skeleton (:meth:`~pyevonas.search.cells.CellSpace.normalize`); the first that breaks a
rule stops the run before anything is written, with an error naming it. With fewer architectures
than the population the rest is sampled as usual; with more, the first ones are taken. The
architectures are saved in the run's metadata, so a resumed run never reads the source again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyevonas._userfiles import UserFileError, read_json
from pyevonas.errors import ConfigError, EncodingError, RunStoreError, SearchSpaceError
from pyevonas.metric import Chromosome, parse_arch
from pyevonas.metric.graphs import looks_like_graph
from pyevonas.runs.records import Status, canonical_key, is_trained
from pyevonas.runs.store import DB_NAME, RunStore
from pyevonas.search.cells import AnySpace, CellSpace
from pyevonas.search.halving import rank_key

#: Key of the run metadata that keeps the warm start.
META_KEY = "init"


@dataclass(frozen=True)
class InitialArchitectures:
    """The architectures that open the first generation, checked against the search space.

    Attributes:
        chromosomes: at most ``population`` chromosomes, in order.
        origins: where each came from (``"entry 3"``, ``"g4-2 (fitness 0.9312)"``).
        source: what was given: a file, a run folder, or ``"python"``.
        given: how many the source held (more than ``len(chromosomes)`` when cut to the population).
    """

    chromosomes: list[Chromosome]
    origins: list[str]
    source: str
    given: int

    def to_meta(self) -> dict[str, Any]:
        """The JSON kept in the run's metadata."""
        return {
            "source": self.source,
            "given": self.given,
            "chromosomes": self.chromosomes,
            "origins": self.origins,
        }

    @classmethod
    def from_meta(cls, data: Mapping[str, Any]) -> InitialArchitectures:
        """Read back :meth:`to_meta`."""
        chromosomes = [list(c) for c in data.get("chromosomes") or []]
        return cls(
            chromosomes=chromosomes,
            origins=[str(o) for o in data.get("origins") or [""] * len(chromosomes)],
            source=str(data.get("source", "")),
            given=int(data.get("given", len(chromosomes))),
        )


def load_initial(source: str | Path, space: AnySpace, schema: Any, population: int) -> InitialArchitectures:
    """Read and check the architectures of ``--init FILE|RUN_DIR``.

    Args:
        source: a JSON file or a run folder.
        space: the run's search space.
        schema: the run's scoring schema (the letters of the text notation).
        population: the population size (the most taken).

    Raises:
        ConfigError: the source is missing, unreadable or holds no architecture.
        SearchSpaceError, EncodingError: an architecture breaks a rule of the space or cannot be
            read; the message names it.
    """
    path = Path(source).expanduser()
    label = str(source)
    if path.is_dir():
        if (path / DB_NAME).exists() and not RunStore.is_run(path):
            try:  # the store's own words for what is wrong with the file
                RunStore.open(path, readonly=True).close()
            except RunStoreError as exc:
                raise ConfigError(f"--init {label}: {exc}") from None
        if not RunStore.is_run(path):
            raise ConfigError(f"--init {label}: a folder, but not a pyevonas run (it has no {DB_NAME})")
        return _from_run(path, label, space, population)
    if not path.exists():
        raise ConfigError(f"--init {label}: no such file or run folder")
    if not path.is_file():  # a FIFO would wait for a writer, a device such as /dev/zero never ends
        raise ConfigError(f"--init {label}: not a regular file (give a JSON file or a run folder)")
    try:
        data = read_json(path)
    except UserFileError as exc:
        raise ConfigError(f"--init {label}: {exc}") from None
    return from_architectures(_entries(data, label), space, schema, population, source=label)


def from_architectures(
    archs: Sequence[Any], space: AnySpace, schema: Any, population: int, source: str = "python"
) -> InitialArchitectures:
    """Check given architectures (chromosomes or text notation) and keep the first ``population``.

    Raises:
        ConfigError: ``archs`` is empty.
        SearchSpaceError, EncodingError: naming the first architecture that breaks a rule.
    """
    if isinstance(archs, (str, bytes)) or not isinstance(archs, Sequence):
        raise ConfigError(f"--init {source}: expected a list of architectures, got {type(archs).__name__}")
    if not archs:
        raise ConfigError(f"--init {source}: holds no architecture")
    chosen = list(archs[:population])
    chromosomes = [_checked(arch, f"entry {k}", source, space, schema) for k, arch in enumerate(chosen)]
    return InitialArchitectures(chromosomes, [f"entry {k}" for k in range(len(chosen))], source, len(archs))


def _entries(data: Any, label: str) -> list[Any]:
    if isinstance(data, Mapping) and "chromosome" in data:
        data = [data]
    if not isinstance(data, list):
        raise ConfigError(
            f"--init {label}: expected a JSON list of chromosomes or text-notation strings, got a {type(data).__name__}"
        )
    if data and isinstance(data[0], Mapping) and "layer" in data[0]:
        return [data]  # one chromosome
    out = []
    for k, entry in enumerate(data):
        if isinstance(entry, Mapping) and "chromosome" in entry:
            entry = entry["chromosome"]
        if not isinstance(entry, (str, list)) and not looks_like_graph(entry):
            raise ConfigError(
                f"--init {label}: entry {k} is a {type(entry).__name__}; expected a chromosome "
                "(a list of gene objects) or a text-notation string"
            )
        out.append(entry)
    return out


def _checked(arch: Any, name: str, source: str, space: AnySpace, schema: Any) -> Chromosome:
    if isinstance(space, CellSpace):
        try:
            chrom = space.normalize(arch if isinstance(arch, str | Mapping) else [dict(g) for g in arch])
            space.check(chrom)
        except (SearchSpaceError, TypeError, ValueError) as exc:
            raise SearchSpaceError(f"--init {source}: {name} breaks a rule of the search space: {exc}") from None
        return chrom
    try:
        if isinstance(arch, str):
            genes: Sequence[Any] = parse_arch(arch, schema=schema)
        else:
            genes = arch
        if isinstance(genes, (str, bytes)) or not isinstance(genes, Sequence):
            raise SearchSpaceError(f"a chromosome must be a list of gene dicts, got {type(genes).__name__}")
        if not all(isinstance(g, Mapping) for g in genes):
            raise SearchSpaceError("a chromosome must be a list of gene objects")
        chrom = space.normalize([dict(g) for g in genes])
        space.check(chrom)
    except EncodingError as exc:
        raise EncodingError(f"--init {source}: {name} cannot be read: {exc}") from None
    except SearchSpaceError as exc:
        raise SearchSpaceError(f"--init {source}: {name} breaks a rule of the search space: {exc}") from None
    return chrom


def _from_run(path: Path, label: str, space: AnySpace, population: int) -> InitialArchitectures:
    try:
        with RunStore.open(path, readonly=True) as store:
            default_budget = int(store.config.get("epochs") or 0)
            candidates = [ind for ind in store.individuals() if is_trained(ind) and ind.status is not Status.REUSED]
    except RunStoreError as exc:  # e.g. a damaged record: say which argument holds it
        raise RunStoreError(f"--init {label}: {exc}") from None
    except (TypeError, ValueError) as exc:  # a config whose epochs is not a number
        raise RunStoreError(f"--init {label}: its run.sqlite is damaged: the saved config's epochs ({exc})") from None
    candidates.sort(key=lambda ind: (*(-v for v in rank_key(ind, default_budget)), ind.id))
    best = []
    seen: set[str] = set()
    for ind in candidates:
        key = canonical_key(ind.chromosome)
        if key not in seen:
            seen.add(key)
            best.append(ind)
    if not best:
        raise ConfigError(f"--init {label}: the run has no trained individual to start from")
    chosen = best[:population]
    chromosomes = [_checked(ind.chromosome, f"{ind.name} (id {ind.id})", label, space, None) for ind in chosen]
    origins = [f"{ind.name} (fitness {ind.fitness:.4f})" for ind in chosen]
    return InitialArchitectures(chromosomes, origins, label, len(best))


__all__ = ["META_KEY", "InitialArchitectures", "from_architectures", "load_initial"]
