"""`measures(seq)` / `measure_vector(seq)` on hand-built recordings with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import valgusml
from valgusml import KeypointSequence
from valgusml.features import MEASURE_NAMES, fppa_deg, measure_vector, measures
from valgusml.features.frame import knee_flexion_deg
from valgusml.skeleton import SKELETONS, canonical_index

FPS = 50.0


def squat(
    poses,
    n_frames=100,
    peak_flexion=90.0,
    knee_medial=0.0,
    right_hip_drop=0.0,
    single_leg="",
    heel_onset=None,
    bottom_frames=20,
):
    """Down over 40 frames, a plateau of `bottom_frames` at the bottom, up again; valgus and pelvic drop grow
    with depth. `heel_onset`: frame from which the left heel rises 4 cm."""
    down = np.linspace(0.0, 1.0, 40)
    depth = np.concatenate([np.zeros(10), down, np.ones(bottom_frames), down[::-1]])
    depth = np.concatenate([depth, np.zeros(max(0, n_frames - len(depth)))])[:n_frames]
    frames = []
    for t, d in enumerate(depth):
        lift = (0.0, 0.15) if single_leg == "left" else (0.15, 0.0) if single_leg == "right" else (0.0, 0.0)
        heel = (0.04 if heel_onset is not None and t >= heel_onset and d > 0.3 else 0.0, 0.0)
        frames.append(
            poses.build(
                flexion_deg=peak_flexion * d,
                knee_medial=(knee_medial * d, knee_medial * d),
                right_hip_drop=right_hip_drop * d,
                lift=lift,
                heel_raise=heel,
            )
        )
    return poses.seq(frames), depth


def test_bilateral_squat_with_valgus(poses):
    kp, _ = squat(poses, knee_medial=0.05)
    seq = KeypointSequence(kp, "canonical", FPS, task="bilateral_squat")
    m = measures(seq)
    json.dumps(m, allow_nan=False)  # JSON-ready, no NaN
    assert set(m) == {"left", "right", "bilateral", "stance", "unavailable"}
    assert m["stance"] == ["left", "right"] and m["unavailable"] == []
    peak = float(fppa_deg(kp).max())
    for side in ("left", "right"):
        limb = m[side]
        assert limb["peak_fppa_deg"] == pytest.approx(peak, abs=0.01)  # plateau: smoothing keeps the peak
        assert 0.85 * peak < limb["fppa_at_peak_load_deg"] < peak  # mean over the deepest 15 % of the range
        assert limb["peak_knee_flexion_deg"] == pytest.approx(90.0, abs=1.0)
        assert limb["pelvic_drop_deg"] == pytest.approx(0.0, abs=1e-3)
        assert limb["medial_knee_displacement"] == pytest.approx(0.05 / 0.82, abs=0.005)
        assert limb["heel_rise_onset_s"] is None and limb["peak_heel_rise"] == pytest.approx(0.0, abs=1e-3)
    assert m["bilateral"]["min_knee_ankle_separation_ratio"] == pytest.approx(0.5, abs=0.02)


def test_single_leg_squat_pelvic_drop_is_contralateral(poses):
    drop_m = 0.2 * math.tan(math.radians(8.0))
    kp, _ = squat(poses, peak_flexion=60.0, right_hip_drop=drop_m, single_leg="left")
    m = measures(KeypointSequence(kp, "canonical", FPS, task="single_leg_squat_left"))
    assert m["stance"] == ["left"]
    assert m["left"]["pelvic_drop_deg"] == pytest.approx(8.0, abs=0.3)
    assert m["left"]["peak_hip_adduction_deg"] == pytest.approx(8.0, abs=0.3)
    # the free limb carries no load: its measures are not defined, and say so
    assert m["right"]["peak_fppa_deg"] is None and "right_peak_fppa_deg" in m["unavailable"]
    # a right-stance squat with the left side dropping, seen through a 2D camera, mirrors it
    mirrored = poses.mirror(kp)
    m2 = measures(
        KeypointSequence(
            poses.camera(mirrored, yaw_deg=15.0), "canonical", FPS, task="single_leg_squat_right"
        )
    )
    assert m2["stance"] == ["right"]
    assert m2["right"]["pelvic_drop_deg"] == pytest.approx(8.0 / math.cos(math.radians(15.0)), abs=1.0)


def test_a_step_downs_stance_foot_is_loaded_on_its_step(poses):
    # The free foot reaches below the step at the bottom of the rep; the stance foot on the step is then the
    # higher one, which once read as "lifted" and dropped the deepest frames from every measure.
    _, depth = squat(poses, peak_flexion=60.0, single_leg="left")
    frames = [poses.build(flexion_deg=60.0 * d, knee_medial=(0.06 * d, 0.0), lift=(0.0, 0.15 - 0.35 * d)) for d in depth]
    kp = poses.seq(frames)
    m = measures(KeypointSequence(kp, "canonical", FPS, task="lateral_step_down_left"))
    assert m["stance"] == ["left"]
    assert m["left"]["peak_knee_flexion_deg"] == pytest.approx(60.0, abs=3.0)  # 41 when the bottom was dropped
    assert m["left"]["peak_fppa_deg"] == pytest.approx(float(fppa_deg(kp)[:, 0].max()), abs=0.01)


def test_contact_is_detected_from_the_feet_when_the_task_is_unknown(poses):
    kp, _ = squat(poses, peak_flexion=50.0, single_leg="left")
    m = measures(KeypointSequence(poses.camera(kp), "canonical", FPS, task=""))
    assert m["stance"] == ["left"]


def test_heel_rise_onset_relative_to_the_deepest_point(poses):
    # the deepest point is reached at frame 49 (end of the descent); the heel rises from frame 35
    kp, depth = squat(poses, heel_onset=35, bottom_frames=0)
    assert int(np.argmax(depth)) == 49
    m = measures(KeypointSequence(kp, "canonical", FPS, task="bilateral_squat"))
    assert m["left"]["heel_rise_onset_s"] == pytest.approx((35 - 49) / FPS, abs=3 / FPS)
    assert m["left"]["peak_heel_rise"] == pytest.approx(0.04 / 0.82, abs=0.005)
    assert m["right"]["heel_rise_onset_s"] is None  # computed: that heel never rose
    assert "right_heel_rise_onset_s" not in m["unavailable"]


def test_coco17_input_has_no_foot_measures(poses):
    kp, _ = squat(poses, knee_medial=0.04)
    image = poses.camera(kp)
    coco = SKELETONS["coco17"]
    canonical = SKELETONS["canonical"]
    arr = np.full((len(image), coco.n_joints, 2), np.nan, dtype=np.float32)
    for j, name in enumerate(coco.joints):
        if name in canonical.joints:
            arr[:, j] = image[:, canonical.index(name)]
    m = measures(KeypointSequence(arr, "coco17", FPS, task="bilateral_squat"))
    json.dumps(m, allow_nan=False)
    for side in ("left", "right"):
        for name in (
            "foot_roll_in",
            "rearfoot_eversion_deg",
            "foot_progression_deg",
            "peak_heel_rise",
            "heel_rise_onset_s",
        ):
            assert m[side][name] is None
            assert f"{side}_{name}" in m["unavailable"]
        assert m[side]["peak_fppa_deg"] > 5.0
    assert "left_peak_fppa_deg" not in m["unavailable"]


def test_rearfoot_eversion_is_read_in_3d_only(poses):
    kp, _ = squat(poses, knee_medial=0.04)
    kp[:, canonical_index("left_ankle"), 0] -= 0.01  # the left ankle rolled 1 cm medially over its heel
    in_3d = measures(KeypointSequence(kp, "canonical", FPS, task="bilateral_squat"))
    assert 9.0 < in_3d["left"]["rearfoot_eversion_deg"] < 12.0  # atan(1 / 5.4) in the foot's frontal plane
    assert in_3d["right"]["rearfoot_eversion_deg"] == pytest.approx(0.0, abs=0.1)
    # filmed, the few-centimetre heel→ankle line carries no reading: None, said, and the other foot measures stay
    filmed = measures(KeypointSequence(poses.camera(kp), "canonical", FPS, task="bilateral_squat"))
    for side in ("left", "right"):
        assert filmed[side]["rearfoot_eversion_deg"] is None
        assert filmed[side]["foot_roll_in"] is not None and filmed[side]["foot_progression_deg"] is not None
    assert {"left_rearfoot_eversion_deg", "right_rearfoot_eversion_deg"} <= set(filmed["unavailable"])


def test_low_confidence_joints_are_ignored(poses):
    kp, _ = squat(poses, knee_medial=0.04)
    conf = np.ones(kp.shape[:2], np.float32)
    conf[:, SKELETONS["canonical"].index("left_knee")] = 0.05
    m = measures(KeypointSequence(kp, "canonical", FPS, confidence=conf, task="bilateral_squat"))
    assert m["left"]["peak_fppa_deg"] is None and m["right"]["peak_fppa_deg"] is not None


def test_measure_vector_matches_the_dict(poses):
    kp, _ = squat(poses, knee_medial=0.03)
    seq = KeypointSequence(poses.camera(kp), "canonical", FPS, task="bilateral_squat")
    values, names = measure_vector(seq)
    assert names == MEASURE_NAMES and values.shape == (len(MEASURE_NAMES),) and values.dtype == np.float64
    m = measures(seq)
    assert values[names.index("left_peak_fppa_deg")] == pytest.approx(m["left"]["peak_fppa_deg"], abs=1e-3)
    assert np.isnan(values[names.index("left_heel_rise_onset_s")])


def test_foot_jitter_is_not_read_as_heel_rise(poses):
    rng = np.random.default_rng(4)
    kp, _ = squat(poses)
    feet = [
        SKELETONS["canonical"].index(f"{s}_{j}")
        for s in ("left", "right")
        for j in ("heel", "big_toe", "small_toe")
    ]
    kp[:, feet, 2] += rng.normal(0.0, 0.008, (len(kp), len(feet))).astype(np.float32)  # ~1 cm foot jitter
    m = measures(KeypointSequence(kp, "canonical", FPS, task="bilateral_squat"))
    assert m["left"]["heel_rise_onset_s"] is None and m["right"]["heel_rise_onset_s"] is None
    risen, _ = squat(poses, heel_onset=35, bottom_frames=0)
    risen[:, feet, 2] += rng.normal(0.0, 0.008, (len(risen), len(feet))).astype(np.float32)
    m = measures(KeypointSequence(risen, "canonical", FPS, task="bilateral_squat"))
    assert m["left"]["heel_rise_onset_s"] == pytest.approx((35 - 49) / FPS, abs=4 / FPS)


REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
OPENCAP = sorted(REAL.glob("opencap_validation_subject*/*.trc"))


@pytest.mark.realdata
@pytest.mark.skipif(not OPENCAP, reason="../shared/realdata is absent")
def test_real_walks_read_a_rearfoot_angle_not_the_push_off():
    # the heel rising over the ankle in a push-off read 108-151 deg from the floor's vertical
    walks = [path for path in OPENCAP if path.stem.startswith("walking")]
    assert len(walks) >= 4
    for path in walks:
        m = measures(valgusml.io.read(path))
        for side in ("left", "right"):
            assert -20.0 < m[side]["rearfoot_eversion_deg"] < 45.0, (path.name, side)
            # loaded frames leave the swing out (its knee bends to 60-70 deg; read so before, 57-73)
            assert m[side]["peak_knee_flexion_deg"] < 46.0, (path.name, side)


@pytest.mark.parametrize("treadmill", [False, True])
@pytest.mark.parametrize("task", ["walking", ""])
def test_a_3d_walks_summary_reads_its_stances(poses, treadmill, task):
    # the hand-built knee bends 8 deg in stance and 41 in swing, at once (the ~0.1-s smoothing spreads the step)
    kp, cycle = poses.walk(treadmill)
    knee = measures(KeypointSequence(kp.astype(np.float32), "canonical", 100.0, task=task))["left"]
    flexion = knee_flexion_deg(kp)[:, 0]
    stance_max, swing_max = flexion[cycle[:, 0] < 0.6].max(), flexion[cycle[:, 0] >= 0.6].max()
    assert stance_max <= knee["peak_knee_flexion_deg"] < 0.6 * swing_max  # named or read from the motion
