"""Splits BY ATHLETE: no athlete's recordings may appear in two of train / val / test.

Three methods, all fixed by a seed:
  - `fractions`: shuffle the athletes and cut val and test fractions off the front;
  - `group_kfold`: fold `k` of a shuffled GroupKFold over athletes is the test set (sequence counts balanced
    across folds), and a val fraction of the remaining athletes is held out for model selection;
  - `leave_one_out`: one named athlete is the test set; val is a fraction of the others.

`splits.json` = {"train": [...], "val": [...], "test": [...], "dataset_fingerprint": ..., "method": ...} is
written beside each checkpoint and logged with the run. Torch-free.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.errors import ConfigError, FormatError, InputError

METHODS = ("fractions", "group_kfold", "leave_one_out")
SPLIT_NAMES = ("train", "val", "test")
MIN_ATHLETES = len(SPLIT_NAMES)  # one athlete at least on each side


@dataclass(frozen=True)
class Split:
    train: list[str]
    val: list[str]
    test: list[str]
    method: str
    dataset_fingerprint: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert_disjoint(self)

    def athletes(self, name: str) -> list[str]:
        if name not in SPLIT_NAMES:
            raise ConfigError(f"unknown split {name!r}; expected one of {SPLIT_NAMES}")
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Split:
        missing = [k for k in (*SPLIT_NAMES, "method") if k not in d]
        if missing:
            raise FormatError(f"split is missing {missing}")
        return cls(
            train=list(d["train"]),
            val=list(d["val"]),
            test=list(d["test"]),
            method=str(d["method"]),
            dataset_fingerprint=d.get("dataset_fingerprint"),
            params=dict(d.get("params") or {}),
        )


def assert_disjoint(split: Split | dict[str, Sequence[str]]) -> None:
    """Refuse any athlete listed in two splits (or twice in one)."""
    get = (lambda k: split[k]) if isinstance(split, dict) else (lambda k: getattr(split, k))
    seen: dict[str, str] = {}
    for name in SPLIT_NAMES:
        for athlete in get(name):
            if athlete in seen:
                where = "twice in" if seen[athlete] == name else f"in both {seen[athlete]!r} and"
                raise InputError(f"athlete {athlete!r} is {where} {name!r}: splits must be disjoint by athlete")
            seen[athlete] = name


def _n_of(fraction: float, n: int, what: str) -> int:
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"split.{what} must be in [0, 1), got {fraction}")
    # At least one athlete whenever a non-zero fraction is asked for: a split is never silently empty.
    return max(1, round(fraction * n)) if fraction > 0 else 0


def split_athletes(
    athlete_ids: Iterable[str],
    method: str = "fractions",
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.2,
    n_folds: int = 5,
    fold: int = 0,
    athlete: str | None = None,
    seed: int = 0,
    dataset_fingerprint: str | None = None,
) -> Split:
    """Split athletes into train/val/test.

    `athlete_ids` is one id per SEQUENCE (so group_kfold can balance sequence counts) or the unique ids.
    Raises `ConfigError` for bad parameters and `InputError` when a split would be empty.
    """
    ids = np.asarray([str(a) for a in athlete_ids])
    athletes = sorted(set(ids.tolist()))
    if method not in METHODS:
        raise ConfigError(f"split.method must be one of {METHODS}, got {method!r}")
    if len(athletes) < MIN_ATHLETES:
        raise InputError(
            f"need at least {MIN_ATHLETES} athletes to split into train/val/test, the dataset has {len(athletes)} "
            f"({', '.join(athletes[:MIN_ATHLETES])}); no athlete may be on two sides, so add people, or train on "
            "it beside another dataset (data.extra_train_dirs) or score it whole (valgusml evaluate split=all)"
        )
    rng = np.random.default_rng(seed)
    params: dict[str, Any] = {"seed": int(seed), "val_fraction": float(val_fraction)}

    if method == "fractions":
        n_test = _n_of(test_fraction, len(athletes), "test_fraction")
        n_val = _n_of(val_fraction, len(athletes), "val_fraction")
        order = [athletes[i] for i in rng.permutation(len(athletes))]
        test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
        params["test_fraction"] = float(test_fraction)
    elif method == "group_kfold":
        from sklearn.model_selection import GroupKFold

        if not 2 <= n_folds <= len(athletes):
            raise ConfigError(f"split.n_folds must be in [2, {len(athletes)}] (number of athletes), got {n_folds}")
        if not 0 <= fold < n_folds:
            raise ConfigError(f"split.fold must be in [0, {n_folds - 1}], got {fold}")
        folds = GroupKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(ids, groups=ids)
        _, test_idx = list(folds)[fold]
        test = sorted(set(ids[test_idx].tolist()))
        rest = [a for a in athletes if a not in set(test)]
        n_val = _n_of(val_fraction, len(rest), "val_fraction")
        rest = [rest[i] for i in rng.permutation(len(rest))]
        val, train = rest[:n_val], rest[n_val:]
        params.update(n_folds=int(n_folds), fold=int(fold))
    else:  # leave_one_out
        if athlete is None:
            raise ConfigError(f"split.method=leave_one_out needs split.athlete (one of {athletes[:5]}...)")
        athlete = str(athlete)
        if athlete not in athletes:
            raise InputError(f"split.athlete {athlete!r} is not in the dataset ({len(athletes)} athletes)")
        rest = [a for a in athletes if a != athlete]
        n_val = _n_of(val_fraction, len(rest), "val_fraction")
        rest = [rest[i] for i in rng.permutation(len(rest))]
        test, val, train = [athlete], rest[:n_val], rest[n_val:]
        params["athlete"] = athlete

    for name, members in (("train", train), ("val", val), ("test", test)):
        if not members:
            raise InputError(
                f"split {name!r} has no athletes ({method}, {len(athletes)} athletes in the dataset); "
                "use more athletes or other split fractions"
            )
    return Split(
        train=sorted(train),
        val=sorted(val),
        test=sorted(test),
        method=method,
        dataset_fingerprint=dataset_fingerprint,
        params=params,
    )


def save_split(split: Split, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".json":
        path = path / "splits.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(split.to_dict(), indent=1, sort_keys=True))
    return path


def load_split(path: str | Path) -> Split:
    path = Path(path)
    if path.is_dir():
        path = path / "splits.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"split file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from None
    return Split.from_dict(data)

