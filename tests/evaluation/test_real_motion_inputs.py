"""The real-motion suite on a user's own files: what it reads, what it skips (always said in the log, naming the
file), and what it refuses."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import valgusml
from valgusml.errors import InputError
from valgusml.evaluation.transfer.real_motion import find_recordings, render_views
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS

SUBJECT4 = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "opencap_validation_subject4"
needs_real = pytest.mark.skipif(not SUBJECT4.is_dir(), reason="../shared/realdata is absent")


def _skips(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


def test_a_home_path_is_read_and_a_missing_one_is_said(tmp_path, monkeypatch, caplog):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "DJ1.trc").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    caplog.set_level(logging.INFO)
    assert find_recordings(["~/mine", "~/typo"]) == [tmp_path / "mine" / "DJ1.trc"]
    assert any("~/typo does not exist" in m for m in _skips(caplog))


def test_a_folder_named_twice_is_read_once(tmp_path):
    (tmp_path / "person").mkdir()
    (tmp_path / "person" / "DJ1.trc").write_text("")
    assert find_recordings([tmp_path, tmp_path / "person" / ".." / "person"]) == [tmp_path / "person" / "DJ1.trc"]


def test_static_trials_and_2d_files_are_skipped_with_a_line_naming_each(tmp_path, caplog):
    (tmp_path / "static1.trc").write_text("")  # a static trial by its name: not even read
    keypoints = np.random.default_rng(0).normal(size=(30, len(CANONICAL_JOINTS), 2)).astype(np.float32)
    valgusml.io.write(KeypointSequence(keypoints, "canonical", 30.0, id="x"), tmp_path / "DJ_2d.npz", "npz")
    caplog.set_level(logging.INFO)
    assert render_views([tmp_path], yaws=[0.0], seeds=[0]) == []
    said = "\n".join(_skips(caplog))
    assert f"{tmp_path / 'static1.trc'} skipped: a static trial" in said
    assert f"{tmp_path / 'DJ_2d.npz'} skipped: 2D keypoints" in said


@pytest.mark.realdata
@needs_real
def test_a_static_trial_whose_name_says_nothing_is_skipped_not_scored_as_an_empty_squat(tmp_path, caplog):
    shutil.copy(SUBJECT4 / "static1.trc", tmp_path / "trial07.trc")
    caplog.set_level(logging.INFO)
    assert render_views([tmp_path], yaws=[0.0], seeds=[0]) == []
    assert any("trial07.trc skipped: the rule finds no" in m for m in _skips(caplog))


@pytest.mark.realdata
@needs_real
def test_two_recordings_that_would_share_a_name_are_refused(tmp_path):
    for lab in ("lab_a", "lab_b"):
        (tmp_path / lab / "subject01").mkdir(parents=True)
        shutil.copy(SUBJECT4 / "walking1.trc", tmp_path / lab / "subject01" / "walking1.trc")
    with pytest.raises(InputError, match="would both be reported as subject01/walking1.trc"):
        render_views([tmp_path / "lab_a", tmp_path / "lab_b"], yaws=[0.0], seeds=[0])


def test_the_evaluation_hands_every_path_to_the_suite(monkeypatch, tiny_sequences):
    """`evaluate` dropped a path that did not exist, and a quoted `~/...`, before the suite saw them: no word of a
    mistyped path, and a home folder never read. The suite now gets them all (and names what it cannot read)."""
    from omegaconf import OmegaConf

    import valgusml.evaluation.transfer as transfer
    from valgusml.evaluation.baselines import FPPARule
    from valgusml.evaluation.evaluate import run_transfer
    from valgusml.evaluation.runner import evaluate_scorers

    given = []
    monkeypatch.setattr(transfer, "render_views", lambda paths, **kw: given.extend(paths) or [])
    result = evaluate_scorers({"fppa_rule": FPPARule()}, tiny_sequences[:18], tiny_sequences[18:24],
                              tiny_sequences[24:], n_boot=10)
    cfg = OmegaConf.create({"transfer": {"real_motion": {"enabled": True, "paths": ["~/my_mocap", "/no/such/dir"]}},
                            "robustness": {"n_boot": 10}, "bootstrap": {"seed": 0}})
    run_transfer(cfg, result, None)
    assert given == ["~/my_mocap", "/no/such/dir"]
