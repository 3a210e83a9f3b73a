"""Real motion as a base: recordings keep their feet, pelvis and timing; deficits add the knee swivel; the
labels follow; an absent source is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from valgusml import ConfigError
from valgusml.labels import MECHANISMS
from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth import generate_with_analysis, load_preset
from valgusml.synth.generator import trials_of
from valgusml.synth.recordings import recordings, resample

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"
needs_realdata = pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata is absent")
REAL = {"motion.real_fraction": 1.0, "motion.real_paths": [str(REALDATA)], "tasks.trials_per_athlete": 3,
        "tasks.probabilities": {"drop_vertical_jump": 0.4, "bilateral_squat": 0.3, "walking": 0.3}}
C = {name: k for k, name in enumerate(CANONICAL_JOINTS)}


def real_sequences(mechanism: str, n: int = 6):
    probs = {m: float(m == mechanism) for m in MECHANISMS}
    cfg = load_preset("clean", n_athletes=n, **REAL, **{"mechanisms.probabilities": probs, "mechanisms.mild_probability": 0.0,
                                                        "mechanisms.side_probabilities": {"both": 1.0}})
    return cfg, list(generate_with_analysis(cfg, range(n)))


@needs_realdata
def test_feet_stay_planted_where_the_real_motion_plants_them():
    cfg, pairs = real_sequences("pronation")
    trials = trials_of(cfg, range(6))
    recs = recordings(tuple(cfg.motion.real_paths))
    assert all(row["trial"]["base_motion"].startswith("real:") for _, row in pairs)
    for trial, (seq, _) in zip(trials, pairs, strict=True):
        base = resample(recs[int(trial.params["real_index"])], trial.fps, trial.params["real_start"], trial.n_frames)
        feet = [C[f"{s}_{p}"] for s in ("left", "right") for p in ("ankle", "heel", "big_toe", "small_toe")]
        np.testing.assert_allclose(seq.keypoints[:, feet], base[:, feet], atol=1e-5)  # feet, hips untouched
        np.testing.assert_allclose(seq.keypoints[:, [C["left_hip"], C["right_hip"]]], base[:, [C["left_hip"], C["right_hip"]]], atol=1e-5)
        for side in ("left", "right"):
            thigh = np.linalg.norm(seq.keypoints[:, C[f"{side}_knee"]] - seq.keypoints[:, C[f"{side}_hip"]], axis=1)
            was = np.linalg.norm(base[:, C[f"{side}_knee"]] - base[:, C[f"{side}_hip"]], axis=1)
            np.testing.assert_allclose(thigh, was, atol=1e-4)  # the knee turns about the hip-ankle axis
        assert seq.meta["base_motion"] == "real"


@needs_realdata
def test_deficits_on_real_motion_are_labelled_and_healthy_real_motion_is_not():
    _, healthy = real_sequences("none")
    assert not any(s.labels[limb]["valgus"] for s, _ in healthy for limb in ("left", "right"))
    _, adductor = real_sequences("adductor_tfl_overactivity")
    labels = [s.labels[limb] for s, _ in adductor for limb in ("left", "right")]
    assert np.mean([lab["valgus"] for lab in labels]) > 0.3
    assert all(lab["mechanism"] == "adductor_tfl_overactivity" for lab in labels if lab["valgus"])
    # the knees move medially: FPPA above the healthy recordings' at the same frames
    assert np.mean([s.meta["measured"]["dynamic_fppa_deg"] for s, _ in adductor]) > np.mean(
        [s.meta["measured"]["dynamic_fppa_deg"] for s, _ in healthy]) + 3.0


def test_an_absent_real_motion_source_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="real-motion source is unavailable"):
        load_preset("realistic", **{"motion.real_fraction": 0.2, "motion.real_paths": [str(tmp_path)]})
    assert load_preset("realistic").motion.real_fraction == 0.0  # off unless a preset asks for it
