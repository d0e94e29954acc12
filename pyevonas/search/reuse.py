"""Near-duplicate reuse: a child very similar to an architecture evaluated earlier is not trained.

With ``reuse_similarity = T`` below 1, a child whose similarity (the run's scoring schema; the
child is the first sequence) to an architecture evaluated in an earlier generation is at least
``T`` is not trained:

* ``near_duplicates = "reuse"`` (default): it takes the result of the most similar one (ties: the
  earliest), with status ``reused``, ``cached_from`` set to that individual's id and the
  similarity in its metrics (``reused_similarity``);
* ``near_duplicates = "resample"``: breeding draws another child instead, up to
  :data:`pyevonas.search.operators.MAX_RESAMPLE_ATTEMPTS` times; a child still that close after
  them is kept and trains.

The archive is every architecture that was evaluated itself (status ``ok`` or ``oversized``, not a
copy) in a generation before the one being evaluated (or bred from), one per architecture. It
never includes the candidate's own generation, so the decisions do not depend on the order in
which a generation's candidates finish, and a resumed run makes the same ones.

``T = 1`` (the default) keeps the exact cache only: an identical architecture (same
:func:`~pyevonas.runs.records.canonical_key`) is ``cached``. The similarity metric can rate two
different architectures 1.0 (it ignores padding and activations), so ``T = 1`` is not "similarity
at least 1"; under ``resample`` it re-breeds exact duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyevonas.metric import Chromosome, nearest
from pyevonas.runs.records import EVALUATED_STATUSES, Individual, canonical_key

#: Metrics key of the similarity between a reused individual and the one whose result it took.
SIMILARITY_KEY = "reused_similarity"


def evaluated_archive(individuals: Sequence[Individual], before_generation: int) -> list[Individual]:
    """Individuals evaluated themselves before ``before_generation``, one per architecture, earliest first."""
    seen: set[str] = set()
    out = []
    for ind in sorted(individuals, key=lambda i: i.id):
        if ind.generation >= before_generation or ind.status not in EVALUATED_STATUSES:
            continue
        if ind.canonical_key in seen:
            continue
        seen.add(ind.canonical_key)
        out.append(ind)
    return out


class NearDuplicates:
    """Finds, for a chromosome, the most similar archived architecture at or above the threshold."""

    def __init__(self, threshold: float, archive: Sequence[Individual], scoring: Any) -> None:
        """Args: threshold: ``reuse_similarity``; archive: see :func:`evaluated_archive`; scoring: the run's schema."""
        self.threshold = float(threshold)
        self.archive = list(archive)
        self.scoring = scoring
        self._chromosomes = [ind.chromosome for ind in self.archive]
        self._keys = {ind.canonical_key for ind in self.archive}

    def matches(self, chromosomes: Sequence[Chromosome]) -> list[tuple[Individual, float] | None]:
        """For each chromosome, ``(archived individual, similarity)`` when it is a near duplicate, else None.

        Only for a threshold below 1; at 1 the exact cache decides, and every entry is None.
        """
        if self.threshold >= 1.0 or not self._chromosomes or not chromosomes:
            return [None] * len(chromosomes)
        indices, sims = nearest(list(chromosomes), 1, others=self._chromosomes, schema=self.scoring)
        out: list[tuple[Individual, float] | None] = []
        for row in range(len(chromosomes)):
            sim = float(sims[row, 0])
            out.append((self.archive[int(indices[row, 0])], sim) if sim >= self.threshold else None)
        return out

    def accepts(self, chromosome: Chromosome) -> bool:
        """Whether breeding may keep ``chromosome``: it is neither an archived architecture nor a near duplicate of one."""
        if canonical_key(chromosome) in self._keys:
            return False
        return self.matches([chromosome])[0] is None


__all__ = ["SIMILARITY_KEY", "NearDuplicates", "evaluated_archive"]
