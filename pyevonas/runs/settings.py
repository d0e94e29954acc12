"""Which settings of a run change what its search finds, and which only say how it was run.

A run's settings (``RunConfig``, saved with the run) fall into three kinds:

* *execution settings* (:data:`EXECUTION_SETTINGS`): where and how candidates are evaluated
  (workers, executor, device, time limits, Ray's retries and resources, loggers). The search
  finds the same with any of them, so ``--resume`` may change them and ``report`` never groups
  runs by them;
* *a run's own identity* (:data:`RUN_IDENTITY`): its name, folder, seed, where its dataset's files
  lie, and the hypervolume reference it is measured against. Runs that differ only in these are
  seeds of one setting (``evolve --seeds``);
* *search settings* (:data:`SEARCH_SETTINGS`, with their defaults, and ``dataset`` and
  ``control``): everything else. ``report`` groups runs by every one of them; a store written
  before a setting existed lacks it, and the run was made with its default.

In the ``[train]`` table (``train``), :data:`TRAIN_EXECUTION_SETTINGS` are execution settings
and every other key is a search setting.

This module imports nothing: ``pyevonas.search.config`` (``RunConfig``) and the reports both
read it (a test keeps :data:`SEARCH_SETTINGS` equal to ``RunConfig``'s defaults, and every
setting of ``RunConfig`` in one kind).
"""

from __future__ import annotations

from typing import Any

#: The settings of what a candidate's Ray task asks, how often it is retried, and what code and
#: environment the job brings to the nodes (execution settings).
RAY_SETTINGS = ("max_retries", "cpus_per_candidate", "gpus_per_candidate", "ray_code", "ray_runtime_env")
#: Settings that only say how to execute a search; ``--resume`` may change them (e.g. on another machine).
EXECUTION_SETTINGS = ("device", "workers", "executor", "address", "candidate_timeout", *RAY_SETTINGS, "log")
#: Settings that tell runs of one setting apart without changing what is searched or how.
RUN_IDENTITY = ("name", "seed", "run_dir", "data_dir", "reference_point")
#: The settings of the ``[train]`` table that only say how to execute a training.
TRAIN_EXECUTION_SETTINGS = ("num_workers", "download", "autotune", "channels_last", "eval_batch_size")
#: The search settings besides ``dataset`` and ``control``, with ``RunConfig``'s defaults (a run
#: store written before one of them existed was made with its default). In the order a report
#: names them.
SEARCH_SETTINGS: dict[str, Any] = {
    "budget": "full",
    "init": None,
    "epochs": 12,
    "generations": 20,
    "population": 25,
    "top_k": 5,
    "elitism": 0,
    "objectives": ["val_accuracy"],
    "selection": "topk",
    "tiebreak": "crowding",
    "neighbours": 3,
    "archive": None,
    "space": "paper",
    "schema": "default",
    "diversity": "offdiag",
    "control_upper": None,
    "control_lower": None,
    "p_mutation": 0.2,
    "mutation_decay": 0.02,
    "decay_every": 5,
    "max_control_iterations": 30,
    "reuse_similarity": 1.0,
    "near_duplicates": "reuse",
    "image_size": None,
    "evaluator": "train",
    "train": {},
}


__all__ = ["EXECUTION_SETTINGS", "RAY_SETTINGS", "RUN_IDENTITY", "SEARCH_SETTINGS", "TRAIN_EXECUTION_SETTINGS"]
