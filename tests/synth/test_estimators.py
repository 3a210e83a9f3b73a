"""Pose-estimator families: each family's error has its documented statistics."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from valgusml.errors import ConfigError
from valgusml.synth import generate_sequences, load_preset
from valgusml.synth.estimators import FAMILIES, pull_knees_to_line

FRONT = {"observation.dims": 2, "observation.skeleton": "halpe26", "camera.yaw_deg": [0.0, 0.0],
         "camera.views": {"front": 1.0}, "camera.distortion_probability": 0.0, "noise.dropout_fraction": 0.0,
         "noise.swap_probability": 0.0, "tasks.probabilities": {"bilateral_squat": 1.0},
         "tasks.trials_per_athlete": 2}


@cache
def pairs(family: str, **extra) -> list:
    over = {**FRONT, "noise.families": {family: 1.0}, **dict(extra)}
    noisy = list(generate_sequences(load_preset("realistic", n_athletes=5, **over), range(5)))
    clean = list(generate_sequences(load_preset("realistic", n_athletes=5, **over, **{"noise.enabled": False}), range(5)))
    assert all(a.meta["camera"] == b.meta["camera"] for a, b in zip(noisy, clean, strict=True))
    return list(zip(noisy, clean, strict=True))


def knee_error(family: str) -> tuple[float, float]:
    """Frame-to-frame jitter (px) of the knee error and the lag (s) of the hip's vertical track."""
    steps, lags = [], []
    for noisy, clean in pairs(family):
        k = noisy.joints.index("left_knee")
        err = noisy.keypoints[:, k] - clean.keypoints[:, k]
        steps.append(np.nanstd(np.diff(err, axis=0)))
        h = noisy.joints.index("left_hip")
        velocity = np.gradient(clean.keypoints[:, h, 1]) * noisy.fps
        e = noisy.keypoints[:, h, 1] - clean.keypoints[:, h, 1]
        e = e - np.nanmean(e)
        lags.append(-np.nansum(e * velocity) / np.nansum(velocity * velocity))  # noisy(t) ~ clean(t - lag)
    return float(np.mean(steps)), float(np.median(lags))


def test_families_differ_in_jitter_and_lag():
    stats = {name: knee_error(name) for name in ("mediapipe", "rtmpose", "openpose", "mocap")}
    jitter = {k: v[0] for k, v in stats.items()}
    assert jitter["openpose"] > jitter["rtmpose"] > jitter["mediapipe"] > jitter["mocap"]
    # MediaPipe's landmark filter lags the motion by about its time constant; the others do not.
    assert 0.5 * FAMILIES["mediapipe"].smoothing_s < stats["mediapipe"][1] < 2.0 * FAMILIES["mediapipe"].smoothing_s
    assert abs(stats["rtmpose"][1]) < 0.01 and abs(stats["openpose"][1]) < 0.01


def test_swaps_tied_to_family_and_view_and_mocap_is_clean():
    side = {"camera.yaw_deg": [60.0, 180.0], "camera.views": {"oblique": 0.3, "side": 0.3, "rear": 0.4},
            "noise.swap_probability": 0.03, "tasks.probabilities": {"walking": 0.5, "bilateral_squat": 0.5}}
    swapped = {}
    for name in ("openpose", "rtmpose", "mocap"):
        cfg = load_preset("realistic", n_athletes=25, **{**FRONT, **side, "noise.families": {name: 1.0}})
        seqs = list(generate_sequences(cfg, range(25)))
        swapped[name] = np.mean([s.meta["swapped_frames"] > 0 for s in seqs])
        if name == "mocap":
            conf = np.concatenate([s.confidence.ravel() for s in seqs])
            assert set(np.unique(conf)) <= {0.0, 1.0}  # present or a gap
    assert swapped["openpose"] > swapped["rtmpose"] > swapped["mocap"] == 0.0


def test_mocap_joint_centres_err_along_the_lateral_axis():
    over = {"observation.dims": 3, "observation.skeleton": "canonical", "noise.families": {"mocap": 1.0},
            "noise.dropout_fraction": 0.0, "tasks.trials_per_athlete": 1}
    noisy = list(generate_sequences(load_preset("realistic", n_athletes=12, **over), range(12)))
    clean = list(generate_sequences(load_preset("realistic", n_athletes=12, **over, **{"noise.enabled": False}), range(12)))
    lateral, other = [], []
    for a, b in zip(noisy, clean, strict=True):
        k = a.joints.index("left_knee")
        err = np.nanmedian(a.keypoints[:, k] - b.keypoints[:, k], axis=0)  # the systematic part
        lateral.append(abs(err[0]))
        other.append(np.hypot(err[1], err[2]))
    assert np.mean(lateral) > 2.0 * np.mean(other) and 0.002 < np.mean(lateral) < 0.02  # mm-scale, lateral


@pytest.mark.parametrize("pull", [0.0, 0.15, 1.0])
def test_knee_pull_towards_the_hip_ankle_line(pull):
    pts = np.array([[[[0.0, 0.0], [20.0, 50.0], [0.0, 100.0]]]], dtype=np.float32)  # hip, knee, ankle
    pull_knees_to_line(pts, (0,), (1,), (2,), np.array([pull]))
    np.testing.assert_allclose(pts[0, 0, 1], [20.0 * (1.0 - pull), 50.0], atol=1e-4)
    assert FAMILIES["mediapipe"].knee_pull > FAMILIES["openpose"].knee_pull > FAMILIES["rtmpose"].knee_pull


def test_a_share_of_trials_come_without_feet_like_a_coco17_estimator():
    """`noise.no_feet_fraction`: those trials report no heel or toe (NaN, confidence 0), ankles and the rest
    as usual; the share follows the knob."""
    over = {**FRONT, "tasks.trials_per_athlete": 4}
    cfg = load_preset("realistic", n_athletes=12, **over, **{"noise.no_feet_fraction": 0.5})
    seqs = list(generate_sequences(cfg, range(12)))
    feet = [seqs[0].joints.index(f"{side}_{part}") for side in ("left", "right") for part in ("heel", "big_toe", "small_toe")]
    ankles = [seqs[0].joints.index(f"{side}_ankle") for side in ("left", "right")]
    footless = [s for s in seqs if (s.confidence[:, feet] == 0).all()]
    footless_ids = {s.id for s in footless}
    assert 0.3 < len(footless) / len(seqs) < 0.7
    for s in footless:
        assert np.isnan(s.keypoints[:, feet]).all() and (s.confidence[:, ankles] > 0).mean() > 0.9
    assert all((s.confidence[:, feet] > 0).mean() > 0.9 for s in seqs if s.id not in footless_ids)
    none = list(generate_sequences(load_preset("realistic", n_athletes=3, **over), range(3)))
    assert all((s.confidence[:, feet] > 0).mean() > 0.9 for s in none)


def test_a_share_of_trials_come_without_small_toes_like_mediapipe():
    """`noise.no_small_toe_fraction`: those trials report heels and big toes but no small toe (NaN, confidence
    0 in every frame); the share follows the knob, and the other trials keep theirs."""
    over = {**FRONT, "tasks.trials_per_athlete": 4}
    cfg = load_preset("realistic", n_athletes=12, **over, **{"noise.no_small_toe_fraction": 0.5})
    seqs = list(generate_sequences(cfg, range(12)))
    small = [seqs[0].joints.index(f"{side}_small_toe") for side in ("left", "right")]
    kept = [seqs[0].joints.index(f"{side}_{part}") for side in ("left", "right") for part in ("heel", "big_toe")]
    toeless = [s for s in seqs if (s.confidence[:, small] == 0).all()]
    assert 0.3 < len(toeless) / len(seqs) < 0.7
    for s in toeless:
        assert np.isnan(s.keypoints[:, small]).all() and (s.confidence[:, kept] > 0).mean() > 0.9
    toeless_ids = {s.id for s in toeless}
    assert all((s.confidence[:, small] > 0).mean() > 0.9 for s in seqs if s.id not in toeless_ids)
    with pytest.raises(ConfigError, match="no_small_toe_fraction"):
        load_preset("realistic", n_athletes=2, **{"noise.no_small_toe_fraction": 1.5})
