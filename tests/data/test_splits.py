"""Athlete splits: disjoint, seeded, every method, clear errors, splits.json round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valgusml.data.splits import Split, assert_disjoint, load_split, save_split, split_athletes
from valgusml.errors import ConfigError, InputError

ATHLETES = [f"a{i:02d}" for i in range(20)]
# 3 sequences per athlete, one id per sequence (what Dataset.athlete_ids gives)
PER_SEQUENCE = np.repeat(ATHLETES, 3)


def _all(split: Split) -> list[str]:
    return split.train + split.val + split.test


def test_fractions_are_disjoint_complete_and_seeded():
    split = split_athletes(PER_SEQUENCE, "fractions", val_fraction=0.15, test_fraction=0.2, seed=3)
    assert sorted(_all(split)) == ATHLETES
    assert (len(split.train), len(split.val), len(split.test)) == (13, 3, 4)
    assert split_athletes(PER_SEQUENCE, "fractions", seed=3) == split_athletes(PER_SEQUENCE, "fractions", seed=3)
    assert split_athletes(PER_SEQUENCE, "fractions", seed=3).test != split_athletes(PER_SEQUENCE, "fractions", seed=4).test


def test_group_kfold_folds_partition_the_athletes():
    tests = [split_athletes(PER_SEQUENCE, "group_kfold", n_folds=5, fold=k, seed=0).test for k in range(5)]
    flat = [a for t in tests for a in t]
    assert sorted(flat) == ATHLETES  # each athlete is tested exactly once across folds
    assert all(len(t) == 4 for t in tests)
    split = split_athletes(PER_SEQUENCE, "group_kfold", n_folds=5, fold=2, val_fraction=0.25, seed=0)
    assert split.test == sorted(tests[2]) and len(split.val) == 4 and sorted(_all(split)) == ATHLETES


def test_leave_one_out():
    split = split_athletes(ATHLETES, "leave_one_out", athlete="a07", val_fraction=0.1, seed=0)
    assert split.test == ["a07"] and "a07" not in split.train + split.val and len(split.val) == 2
    with pytest.raises(InputError, match="a99"):
        split_athletes(ATHLETES, "leave_one_out", athlete="a99")
    with pytest.raises(ConfigError, match="split.athlete"):
        split_athletes(ATHLETES, "leave_one_out")


def test_overlap_guard_refuses_shared_athletes():
    with pytest.raises(InputError, match="'a01' is in both 'train' and 'test'"):
        assert_disjoint({"train": ["a00", "a01"], "val": ["a02"], "test": ["a01"]})
    with pytest.raises(InputError, match="disjoint"):
        Split(train=["a00"], val=["a00"], test=["a01"], method="fractions")


def test_bad_parameters_and_empty_splits():
    with pytest.raises(ConfigError, match="method"):
        split_athletes(ATHLETES, "random")
    with pytest.raises(ConfigError, match="fold"):
        split_athletes(ATHLETES, "group_kfold", n_folds=5, fold=5)
    with pytest.raises(ConfigError, match="test_fraction"):
        split_athletes(ATHLETES, test_fraction=1.2)
    with pytest.raises(InputError, match="'val' has no athletes"):
        split_athletes(ATHLETES, val_fraction=0.0)
    with pytest.raises(InputError, match="at least 3 athletes"):
        split_athletes(["a", "b"])
    with pytest.raises(InputError, match="'train' has no athletes"):
        split_athletes(["a", "b", "c"], val_fraction=0.4, test_fraction=0.5)


def test_save_load_round_trip(tmp_path):
    split = split_athletes(PER_SEQUENCE, seed=1, dataset_fingerprint="f" * 64)
    path = save_split(split, tmp_path)
    assert path.name == "splits.json"
    data = json.loads(path.read_text())
    assert set(data) >= {"train", "val", "test", "dataset_fingerprint", "method"}
    assert load_split(tmp_path) == split
    data["val"].append(data["train"][0])
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="disjoint"):
        load_split(path)
