"""Labelled data that no scorer trained on (another generator's, a lab's recordings through `valgusml convert`),
scored whole by every scorer at its own threshold: the transfer table's columns between in-distribution and the
shifts (`valgusml evaluate transfer.other_data=[DIR, ...]`).

Each data set gives presence AUROC and mechanism macro-F1 with 95% athlete-bootstrap CIs, and the two things a
set's mean hides: the task it reads worst (AUROC) and the mechanism class it reads worst (F1). Where the set
records the rule's angle (a generator's `meta["measured"]`, the rule's `meta["rule"]`), presence is also ranked
over the limbs the rule calls clear of its threshold (`valgus_auroc_clear`, `clear_share`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from valgusml.errors import ConfigError, InputError
from valgusml.sequence import KeypointSequence

log = logging.getLogger("valgusml.evaluate")

# presence ranking, the mechanism call, whether the probabilities keep their meaning on data not trained on, and
# presence ranked over the limbs the rule calls clear of its threshold (where the set records the rule's angle)
OTHER_DATA_METRICS = ("valgus_auroc", "mechanism_macro_f1", "valgus_ece", "valgus_auroc_clear")


def other_data_folders(paths: Sequence[str | Path]) -> dict[str, Path]:
    """Each data set folder under its folder name (with its parent's where two share one). A folder that is not
    there is an error: unlike the real-motion defaults, these were asked for by name."""
    folders = [Path(str(p)).expanduser() for p in paths]
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"transfer.other_data: {folder} is not a data set folder")
    names = [f.name for f in folders]
    names = [f"{f.parent.name}/{f.name}" if names.count(f.name) > 1 else f.name for f in folders]
    if len(set(names)) < len(names):
        raise ConfigError(f"transfer.other_data names one data set twice: {[str(f) for f in folders]}")
    return dict(zip(names, folders, strict=True))


def open_other_data(paths: Sequence[str | Path], max_athletes: int | None = None) -> dict[str, list[KeypointSequence]]:
    """Every sequence of each data set folder (of its first `max_athletes` athletes by id, if given), under its
    `other_data_folders` name."""
    from valgusml.data import open_dataset

    out = {}
    for name, folder in other_data_folders(paths).items():
        ds = open_dataset(folder)
        out[name] = sequences_of_first(ds, ds.athletes, max_athletes)
    return out


def sequences_of_first(dataset: Any, athletes: Iterable[str], max_athletes: int | None = None) -> list[KeypointSequence]:
    """Every sequence of `athletes` in `dataset`, of the first `max_athletes` of them by id when given: a capped
    evaluation scores the same athletes whichever order the split lists them in."""
    chosen = sorted(athletes)
    return dataset.sequences_of(chosen[: int(max_athletes)] if max_athletes else chosen)


def other_data_rows(
    datasets: Mapping[str, Sequence[KeypointSequence]],
    scorers: Mapping[str, Any],
    thresholds: Mapping[str, float],
    n_boot: int = 300,
    seed: int = 0,
    paired_to: str | None = None,
    ci_level: float = 0.95,
) -> pd.DataFrame:
    """One row per (data set, scorer): `valgus_auroc`, `mechanism_macro_f1`, `valgus_ece` (each with `_lo`, `_hi`), the
    worst task's AUROC and the worst mechanism class's F1 (as "0.705 (walking)"), and the set's size. With
    `paired_to` (a scorer's name), every other scorer's row also holds each metric minus that scorer's on the
    same sequences, `<metric>_minus_paired` with its athlete-paired CI (`_lo`, `_hi`; `bootstrap.paired_bootstrap`).
    Intervals at `ci_level`."""
    from valgusml.evaluation.bootstrap import athlete_bootstrap, paired_bootstrap
    from valgusml.evaluation.metrics import worst_mechanism_f1, worst_task_auroc
    from valgusml.scoring.arrays import LabelArrays

    if paired_to is not None and paired_to not in scorers:
        raise ValueError(f"paired_to={paired_to!r} is not one of the scorers {list(scorers)}")
    # The reference first, so every other scorer can be paired to its scores.
    order = [paired_to] * (paired_to is not None) + [name for name in scorers if name != paired_to]
    rows = []
    for dataset, sequences in datasets.items():
        labels = LabelArrays.from_sequences(list(sequences))
        reference = None
        for name in order:
            try:
                scores = scorers[name].predict(list(sequences))
            except InputError as exc:  # a scorer that cannot read this data says so; the others go on
                log.warning("other data %s: %s failed: %s", dataset, name, exc)
                continue
            threshold = thresholds[name]
            estimates = athlete_bootstrap(labels, scores, threshold, n_boot=n_boot, seed=seed, level=ci_level,
                                          metrics=OTHER_DATA_METRICS)
            row: dict[str, Any] = {"dataset": dataset, "scorer": name, "n_sequences": len(sequences),
                                   "n_athletes": len(set(labels.athlete_id)),
                                   "clear_share": labels.clear_share()}
            for metric, estimate in estimates.items():
                row.update(estimate.columns(metric))
            if name == paired_to:
                reference = (scores, threshold)
            elif reference is not None:
                differences = paired_bootstrap(labels, scores, threshold, *reference, n_boot=n_boot, seed=seed,
                                               level=ci_level, metrics=OTHER_DATA_METRICS)
                for metric, estimate in differences.items():
                    row.update(estimate.columns(f"{metric}_minus_paired"))
            for column, worst in (("worst_task", worst_task_auroc(labels, scores, threshold)),
                                  ("worst_mechanism", worst_mechanism_f1(labels, scores, threshold))):
                row[column] = f"{worst[0]:.3f} ({worst[1]})" if worst is not None else None
            rows.append(row)
    return pd.DataFrame(rows)
