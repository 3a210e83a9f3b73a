"""Tiny stand-in data for the evaluation tests: squats of canonical 2D skeletons whose knees cave in by a known
amount, with each mechanism's clinical sign drawn in (pelvic drop, foot roll-in, shallow squat + heel rise,
knees together), so baselines have something real to learn and metrics have known answers."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml.labels import DEFICITS, none_label
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import canonical_index

J = canonical_index


def squat_keypoints(rng, n_frames, fps, valgus, mechanism, narrow):
    """(T, 20, 2) image coordinates (y down); subject faces the camera, so their left is at larger x."""
    t = np.arange(n_frames) / fps
    depth = np.sin(np.pi * t / t[-1]) ** 2  # one repetition
    kp = np.zeros((n_frames, 20, 2))
    if "limited_dorsiflexion" in mechanism.values():
        depth = depth * 0.55  # shallow squat
    for side, s in (("left", 1.0), ("right", -1.0)):
        hip_y = 0.0 + 0.3 * depth
        knee_y = 0.45 + 0.12 * depth
        caving = valgus[side] * depth  # knee moves medially (towards the other hip) at depth
        kp[:, J(f"{side}_hip")] = np.c_[np.full(n_frames, 0.1 * s), hip_y]
        stance = 0.06 if narrow[side] else 0.1
        kp[:, J(f"{side}_knee")] = np.c_[s * (stance - caving), knee_y]
        foot_in = (0.03 if mechanism.get(side) == "pronation" else 0.0) * depth
        kp[:, J(f"{side}_ankle")] = np.c_[np.full(n_frames, 0.11 * s) - s * foot_in, np.full(n_frames, 0.9)]
        heel_up = (0.04 if mechanism.get(side) == "limited_dorsiflexion" else 0.0) * depth
        kp[:, J(f"{side}_heel")] = np.c_[np.full(n_frames, 0.11 * s) - s * 1.5 * foot_in, 0.93 - heel_up]
        kp[:, J(f"{side}_big_toe")] = np.c_[np.full(n_frames, 0.09 * s), np.full(n_frames, 0.96)]
        kp[:, J(f"{side}_small_toe")] = np.c_[np.full(n_frames, 0.14 * s), np.full(n_frames, 0.95)]
        kp[:, J(f"{side}_shoulder")] = np.c_[np.full(n_frames, 0.18 * s), -0.5 + 0.3 * depth]
        kp[:, J(f"{side}_elbow")] = np.c_[np.full(n_frames, 0.22 * s), -0.25 + 0.3 * depth]
        kp[:, J(f"{side}_wrist")] = np.c_[np.full(n_frames, 0.24 * s), 0.0 + 0.3 * depth]
    for side in ("left", "right"):
        if mechanism.get(side) == "hip_weakness":
            other = "right" if side == "left" else "left"
            kp[:, J(f"{other}_hip"), 1] += 0.06 * depth  # the other side of the pelvis drops
    kp[:, J("neck")] = np.c_[np.zeros(n_frames), -0.55 + 0.3 * depth]
    kp[:, J("nose")] = np.c_[np.zeros(n_frames), -0.7 + 0.3 * depth]
    kp += rng.normal(0, 0.003, kp.shape)
    return (kp * 400 + 500).astype(np.float32)


def make_sequences(n_athletes=8, per_athlete=3, seed=0, n_frames=60, fps=30.0, counts=None):
    """Athletes each with a fixed profile (a deficit on one or no limb); `counts` overrides per-athlete count."""
    rng = np.random.default_rng(seed)
    out = []
    for a in range(n_athletes):
        deficit = None if a % 5 == 4 else DEFICITS[a % 4]
        side = ("left", "right")[a % 2]
        reps = counts[a] if counts is not None else per_athlete
        for r in range(reps):
            labels, valgus, mech = {}, {}, {}
            narrow = {"left": False, "right": False}
            for limb in ("left", "right"):
                if deficit is not None and limb == side:
                    amount = 0.08 + 0.02 * rng.random()
                    labels[limb] = {"valgus": True, "mechanism": deficit, "severity_deg": 15 + 40 * amount}
                    valgus[limb], mech[limb] = amount, deficit
                    narrow[limb] = deficit == "adductor_tfl_overactivity"
                else:
                    labels[limb] = none_label(severity_deg=5.0 + rng.random())
                    valgus[limb] = 0.005 * rng.random()
            kp = squat_keypoints(rng, n_frames, fps, valgus, mech, narrow)
            out.append(
                KeypointSequence(
                    keypoints=kp, skeleton="canonical", fps=fps, id=f"a{a:02d}-r{r}", athlete_id=f"a{a:02d}",
                    task="bilateral_squat", source="test", labels=labels,
                )
            )
    return out


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One OpenMP/BLAS thread: on a shared 2-core machine HistGradientBoosting's thread pool spins for seconds
    on data this small."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def tiny_sequences():
    return make_sequences(n_athletes=10, per_athlete=3, seed=0)


@pytest.fixture(scope="session")
def tiny_test_sequences():
    return make_sequences(n_athletes=5, per_athlete=2, seed=1)


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory):
    """One sqlite tracking store for the evaluation tests (creating one runs MLflow's migrations: seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
