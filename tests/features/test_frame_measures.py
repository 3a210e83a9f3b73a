"""`frame_measures` on hand-built geometry with known answers, in 3D and through a 2D pinhole camera."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from valgusml.errors import InputError
from valgusml.features import (
    FRAME_MEASURE_INDEX,
    FRAME_MEASURE_MIRROR,
    FRAME_MEASURES,
    fppa_deg,
    frame_measures,
    mirror_frame_measures,
)
from valgusml.skeleton import canonical_index

THIGH, SHANK = 0.40, 0.42  # from the conftest pose: hip z 0.9, knee 0.5, ankle 0.08


def col(m: np.ndarray, name: str) -> np.ndarray:
    return m[:, FRAME_MEASURE_INDEX[name]]


def expected_fppa(medial: float) -> float:
    return math.degrees(math.atan2(medial, THIGH) + math.atan2(medial, SHANK))


def test_columns_and_mirror_spec_are_consistent():
    assert len(FRAME_MEASURES) == len(set(FRAME_MEASURES)) == len(FRAME_MEASURE_MIRROR)
    targets = [k for k, _ in FRAME_MEASURE_MIRROR]
    assert sorted(targets) == list(range(len(FRAME_MEASURES)))  # a permutation
    for k, (j, sign) in enumerate(FRAME_MEASURE_MIRROR):
        assert FRAME_MEASURE_MIRROR[j] == (k, sign)  # an involution
        assert sign in (1.0, -1.0)
    i = FRAME_MEASURE_INDEX
    assert FRAME_MEASURE_MIRROR[i["left_fppa_deg"]] == (i["right_fppa_deg"], 1.0)
    assert FRAME_MEASURE_MIRROR[i["pelvic_obliquity_deg"]] == (i["pelvic_obliquity_deg"], -1.0)


def test_straight_legs_give_zero_fppa_and_neutral_measures(poses):
    kp = poses.seq([poses.build()] * 5)
    for view in (kp, poses.camera(kp)):
        m = frame_measures(view)
        assert m.shape == (5, len(FRAME_MEASURES)) and m.dtype == np.float32
        # (the rearfoot angle is left out in 2D: the heel is further away, perspective shifts it medially)
        names = ("fppa_deg", "hip_adduction_deg", "medial_knee_displacement")
        for name in names + (("rearfoot_eversion_deg",) if view.shape[-1] == 3 else ()):
            np.testing.assert_allclose(col(m, f"left_{name}"), 0.0, atol=0.05)
            np.testing.assert_allclose(col(m, f"right_{name}"), 0.0, atol=0.05)
        np.testing.assert_allclose(col(m, "pelvic_obliquity_deg"), 0.0, atol=0.05)
        np.testing.assert_allclose(col(m, "trunk_lean_frontal_deg"), 0.0, atol=0.05)
        np.testing.assert_allclose(col(m, "knee_ankle_separation_ratio"), 1.0, atol=1e-3)


@pytest.mark.parametrize("medial", [0.03, 0.06, -0.04])
def test_knee_displacement_gives_known_fppa_and_sign_on_both_limbs(poses, medial):
    kp = poses.seq([poses.build(knee_medial=(medial, medial))] * 3)
    m = frame_measures(kp)
    want = expected_fppa(medial)  # negative for a varus knee
    np.testing.assert_allclose(col(m, "left_fppa_deg"), want, atol=1e-3)
    np.testing.assert_allclose(col(m, "right_fppa_deg"), want, atol=1e-3)
    # the geometry module's reference implementation agrees
    np.testing.assert_allclose(fppa_deg(kp), np.full((3, 2), want), atol=1e-3)
    # knee over ankle and hip adduction follow the same sign
    np.testing.assert_allclose(
        col(m, "left_medial_knee_displacement"), medial / (THIGH + SHANK + 2 * 0), rtol=0.1
    )
    np.testing.assert_allclose(
        col(m, "left_hip_adduction_deg"), math.degrees(math.atan2(medial, THIGH)), atol=1e-3
    )
    # knees 2*(0.1 - medial) apart over ankles 0.2 apart
    np.testing.assert_allclose(col(m, "knee_ankle_separation_ratio"), (0.1 - medial) / 0.1, atol=1e-4)


def test_one_sided_valgus_is_reported_on_that_limb_only(poses):
    m = frame_measures(poses.seq([poses.build(knee_medial=(0.0, 0.05))] * 2))
    np.testing.assert_allclose(col(m, "left_fppa_deg"), 0.0, atol=1e-4)
    np.testing.assert_allclose(col(m, "right_fppa_deg"), expected_fppa(0.05), atol=1e-3)


@pytest.mark.parametrize("angle", [20.0, 65.0, 180.0])
def test_3d_fppa_does_not_depend_on_the_subjects_heading(poses, angle):
    kp = poses.seq([poses.build(knee_medial=(0.04, -0.02), right_hip_drop=0.02)] * 3)
    base = frame_measures(kp)
    turned = frame_measures(poses.yaw(kp, angle))
    np.testing.assert_allclose(turned, base, atol=2e-3)


@pytest.mark.parametrize("camera_yaw", [0.0, 30.0, 45.0, -45.0])
def test_2d_camera_keeps_the_valgus_sign_at_any_yaw(poses, camera_yaw):
    kp = poses.seq([poses.build(knee_medial=(0.05, -0.03))] * 3)
    m = frame_measures(poses.camera(kp, yaw_deg=camera_yaw))
    left, right = col(m, "left_fppa_deg"), col(m, "right_fppa_deg")
    assert (left > 0).all() and (right < 0).all()
    if camera_yaw == 0.0:  # from the front, perspective barely changes the angle
        np.testing.assert_allclose(left, expected_fppa(0.05), atol=0.5)
        np.testing.assert_allclose(right, expected_fppa(-0.03), atol=0.5)


@pytest.mark.parametrize("camera_yaw", [25.0, -40.0])
def test_camera_yaw_is_estimated_from_the_feet_and_removed_from_the_knee(poses, camera_yaw):
    flexion = np.concatenate([np.zeros(8), np.linspace(0, 80, 20)])  # standing first: the length references
    frames = [poses.build(flexion_deg=f, knee_medial=(0.04 * f / 80, 0.0)) for f in flexion]
    kp = poses.seq(frames)
    m3 = frame_measures(kp)
    m2 = frame_measures(poses.camera(kp, yaw_deg=camera_yaw, distance=8.0, focal=2400.0))
    # the camera turned by +yaw sees the subject turned the other way: toes towards the subject's right
    assert np.median(col(m2, "camera_yaw_deg")) == pytest.approx(-camera_yaw, abs=4.0)
    np.testing.assert_allclose(col(m3, "camera_yaw_deg"), 0.0)
    # without the correction an 80° squat seen at this yaw reads the knee ~20° off; with it, a few degrees
    # (the foreshortening flexion proxy stays within ~10°: acos is steep near a straight leg)
    for side in ("left", "right"):
        np.testing.assert_allclose(col(m2, f"{side}_fppa_deg"), col(m3, f"{side}_fppa_deg"), atol=4.0)
        np.testing.assert_allclose(
            col(m2, f"{side}_knee_flexion_deg"), col(m3, f"{side}_knee_flexion_deg"), atol=10.0
        )


def test_subject_facing_away_from_the_camera_keeps_signs(poses):
    kp = poses.seq([poses.build(knee_medial=(0.05, 0.0), right_hip_drop=0.03, trunk_lateral=0.05)] * 2)
    front = frame_measures(poses.camera(kp))
    back = frame_measures(poses.camera(poses.yaw(kp, 180.0)))
    for name in ("left_fppa_deg", "pelvic_obliquity_deg", "trunk_lean_frontal_deg"):
        assert np.sign(col(front, name)[0]) == np.sign(col(back, name)[0]) != 0
        np.testing.assert_allclose(col(back, name), col(front, name), rtol=0.05)


def test_pelvic_obliquity_of_a_tilted_pelvis(poses):
    drop = 0.2 * math.tan(math.radians(7.0))  # right hip 7° lower over a 0.2 m wide pelvis
    kp = poses.seq([poses.build(right_hip_drop=drop)] * 2)
    np.testing.assert_allclose(col(frame_measures(kp), "pelvic_obliquity_deg"), 7.0, atol=1e-3)
    np.testing.assert_allclose(col(frame_measures(poses.camera(kp)), "pelvic_obliquity_deg"), 7.0, atol=0.3)
    # the left hip (stance, right side dropped) is adducted relative to the tilted pelvis
    assert col(frame_measures(kp), "left_hip_adduction_deg")[0] == pytest.approx(7.0, abs=0.01)
    assert col(frame_measures(kp), "right_hip_adduction_deg")[0] == pytest.approx(-7.0, abs=0.01)


def test_trunk_lean_frontal_and_sagittal(poses):
    height = 1.45 - 0.9
    kp = poses.seq([poses.build(trunk_lateral=height * math.tan(math.radians(10.0)))] * 2)
    np.testing.assert_allclose(col(frame_measures(kp), "trunk_lean_frontal_deg"), 10.0, atol=1e-3)
    kp = poses.seq([poses.build(trunk_forward=height * math.tan(math.radians(25.0)))] * 2)
    np.testing.assert_allclose(col(frame_measures(kp), "trunk_lean_sagittal_deg"), 25.0, atol=1e-3)


def test_foot_progression_of_a_toe_out_foot(poses):
    kp = poses.seq([poses.build(toe_out_deg=(20.0, 0.0))] * 2)
    m = frame_measures(kp)
    np.testing.assert_allclose(col(m, "left_foot_progression_deg"), 20.0, atol=1e-3)
    np.testing.assert_allclose(col(m, "right_foot_progression_deg"), 0.0, atol=1e-3)
    # 2D: one foot turned out looks like a camera yaw (the feet's common direction is the yaw estimate), so
    # compare symmetric toe-out with straight feet: the sign survives, the size depends on the camera height
    straight = frame_measures(poses.camera(poses.seq([poses.build()] * 2), height=1.2))
    out = frame_measures(poses.camera(poses.seq([poses.build(toe_out_deg=(20.0, 20.0))] * 2), height=1.2))
    for side in ("left", "right"):
        assert (
            col(out, f"{side}_foot_progression_deg") > col(straight, f"{side}_foot_progression_deg") + 10
        ).all()
    # toe-out also moves the forefoot laterally, so the ankle is further medial of the toes
    assert (col(m, "left_foot_roll_in") > col(m, "right_foot_roll_in") + 0.02).all()


def _everted_feet(poses) -> np.ndarray:
    kp = poses.seq([poses.build(toe_out_deg=(0.0, 0.0))] * 2)
    for side, s in (("left", 1.0), ("right", -1.0)):
        kp[:, canonical_index(f"{side}_ankle"), 0] -= s * 0.01  # ankle rolls 1 cm medially over the heel: everted
    return kp


def _pitched(kp: np.ndarray, side: str, deg: float) -> np.ndarray:
    """The `side` foot and its ankle turned heel-up by `deg` about the mediolateral axis through its big toe."""
    a = math.radians(deg)
    turn = np.array([[1.0, 0.0, 0.0], [0.0, math.cos(a), math.sin(a)], [0.0, -math.sin(a), math.cos(a)]])
    out = kp.astype(np.float64)
    pivot = out[:, canonical_index(f"{side}_big_toe")].copy()
    for part in ("ankle", "heel", "big_toe", "small_toe"):
        j = canonical_index(f"{side}_{part}")
        out[:, j] = (out[:, j] - pivot) @ turn.T + pivot
    return out.astype(np.float32)


def test_rearfoot_eversion_3d_in_the_foot_frame(poses):
    kp = _everted_feet(poses)
    # the fixture's toes sit 2 cm under its heel: the foot's own up is the vertical tilted by that pitch
    pitch = math.atan2(0.02, 0.24)
    rear_forward, rear_up = -0.05, 0.05  # ankle - heel in the sagittal plane (y, z)
    up = rear_up * math.cos(pitch) - rear_forward * math.sin(pitch)
    want = math.degrees(math.atan2(0.01, up))
    m = frame_measures(kp)
    np.testing.assert_allclose(col(m, "left_rearfoot_eversion_deg"), want, atol=0.05)
    np.testing.assert_allclose(col(m, "right_rearfoot_eversion_deg"), want, atol=0.05)
    # the same foot turned out about the ankle keeps its rearfoot angle in 3D
    turned = poses.yaw(kp, 25.0)
    np.testing.assert_allclose(col(frame_measures(turned), "left_rearfoot_eversion_deg"), want, atol=0.05)


@pytest.mark.parametrize("heel_up_deg", [20.0, 50.0, 80.0])
def test_rearfoot_eversion_3d_keeps_through_a_heel_rise(poses, heel_up_deg):
    # a push-off pitches the foot heel-up: the heel rising over the ankle is no eversion (from the floor's
    # vertical it read up to 150 deg on real walks)
    kp = _everted_feet(poses)
    flat = col(frame_measures(kp), "left_rearfoot_eversion_deg")
    risen = col(frame_measures(_pitched(kp, "left", heel_up_deg)), "left_rearfoot_eversion_deg")
    np.testing.assert_allclose(risen, flat, atol=0.05)
    assert 9.0 < flat[0] < 12.0


def test_heel_rise_is_measured_from_the_flat_foot(poses):
    frames = [poses.build()] * 4 + [poses.build(heel_raise=(0.05, 0.0))] * 2
    m = frame_measures(poses.seq(frames))
    leg = THIGH + SHANK
    np.testing.assert_allclose(col(m, "left_heel_rise"), [0, 0, 0, 0, 0.05 / leg, 0.05 / leg], atol=1e-4)
    np.testing.assert_allclose(col(m, "right_heel_rise"), 0.0, atol=1e-6)
    m2 = frame_measures(poses.camera(poses.seq(frames)))
    assert col(m2, "left_heel_rise")[-1] > 0.04 and abs(col(m2, "left_heel_rise")[0]) < 1e-3


def test_knee_flexion_3d_exact_and_2d_foreshortening_proxy(poses):
    straight = poses.build()
    bent = straight.copy()
    # bend the knee by 60°: thigh tilts forward 30°, shank tilts forward 30° (knee moves ahead, -y)
    k, a, h = (canonical_index(f"left_{j}") for j in ("knee", "ankle", "hip"))
    bent[k] = bent[a] + SHANK * np.array([0.0, -math.sin(math.radians(30)), math.cos(math.radians(30))])
    bent[h] = bent[k] + THIGH * np.array([0.0, math.sin(math.radians(30)), math.cos(math.radians(30))])
    kp = poses.seq([straight] * 3 + [bent])
    m = frame_measures(kp)
    assert col(m, "left_knee_flexion_deg")[-1] == pytest.approx(60.0, abs=1e-3)
    assert col(m, "left_shank_tilt_deg")[-1] == pytest.approx(30.0, abs=1e-3)
    m2 = frame_measures(poses.camera(kp, distance=20.0, focal=6000.0))  # near-orthographic
    assert col(m2, "left_knee_flexion_deg")[-1] == pytest.approx(60.0, abs=3.0)
    assert col(m2, "left_knee_flexion_deg")[0] == pytest.approx(0.0, abs=0.5)


@pytest.mark.parametrize("view", ["3d", "2d"])
def test_mirroring_the_subject_permutes_columns_as_declared(poses, view):
    rng = np.random.default_rng(0)
    frames = [
        poses.build(
            knee_medial=tuple(rng.uniform(-0.03, 0.06, 2)),
            right_hip_drop=rng.uniform(-0.03, 0.03),
            trunk_lateral=rng.uniform(-0.05, 0.05),
            trunk_forward=rng.uniform(0, 0.1),
            toe_out_deg=tuple(rng.uniform(-5, 25, 2)),
            heel_raise=tuple(rng.uniform(0, 0.04, 2)),
        )
        for _ in range(8)
    ]
    kp = poses.seq(frames)
    if view == "2d":
        kp = poses.camera(kp, yaw_deg=20.0)
    mirrored_kp = poses.mirror(kp)
    got = frame_measures(mirrored_kp)
    want = mirror_frame_measures(frame_measures(kp))
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_missing_joints_give_nan_not_exceptions(poses):
    kp = poses.seq([poses.build(knee_medial=(0.03, 0.03))] * 4)
    kp[1, canonical_index("left_knee")] = np.nan
    for side in ("left", "right"):
        for joint in ("heel", "big_toe", "small_toe"):
            kp[:, canonical_index(f"{side}_{joint}")] = np.nan
    m = frame_measures(kp)
    assert np.isnan(col(m, "left_fppa_deg")[1]) and np.isfinite(col(m, "left_fppa_deg")[[0, 2, 3]]).all()
    assert np.isfinite(col(m, "right_fppa_deg")).all()
    for name in ("foot_roll_in", "rearfoot_eversion_deg", "foot_progression_deg", "heel_rise"):
        assert np.isnan(col(m, f"left_{name}")).all()
    everything_missing = np.full((3, 20, 2), np.nan, dtype=np.float32)
    assert np.isnan(frame_measures(everything_missing)).all()
    assert frame_measures(np.zeros((0, 20, 3), np.float32)).shape == (0, len(FRAME_MEASURES))


def test_small_toe_missing_falls_back_to_big_toe(poses):
    kp = poses.seq([poses.build(toe_out_deg=(15.0, 15.0))] * 2)
    kp[:, canonical_index("left_small_toe")] = np.nan  # mediapipe33 has no small toe
    m = frame_measures(kp)
    assert np.isfinite(col(m, "left_foot_progression_deg")).all()
    assert col(m, "left_foot_progression_deg")[0] == pytest.approx(
        15.0 - math.degrees(math.atan2(0.03, 0.25)), abs=0.01
    )


def test_wrong_shapes_raise_input_error():
    with pytest.raises(InputError, match="canonical"):
        frame_measures(np.zeros((5, 17, 2)))
    with pytest.raises(InputError):
        frame_measures(np.zeros((5, 20)))


def test_scale_free(poses):
    kp = poses.camera(
        poses.seq([poses.build(knee_medial=(0.03, 0.0), heel_raise=(h, 0.0)) for h in (0, 0, 0.03)])
    )
    np.testing.assert_allclose(frame_measures(kp * 3.0 + 17.0), frame_measures(kp), atol=1e-4)


def test_fast_enough_for_preprocessing(poses):
    rng = np.random.default_rng(1)
    kp = poses.camera(poses.seq([poses.build()] * 100)) + rng.normal(0, 2.0, (100, 20, 2)).astype(np.float32)
    frame_measures(kp)
    start = time.process_time()  # CPU time: other processes on a busy machine do not count
    for _ in range(50):
        frame_measures(kp)
    per_call_ms = (time.process_time() - start) / 50 * 1e3
    assert per_call_ms < 3.0  # ~0.3 ms on an idle core; loose bound for a slow CI machine


def test_knee_flexion_alone_is_exactly_the_frame_measures_column():
    from valgusml.features.frame import knee_flexion_deg
    from valgusml.io import samples

    columns = [FRAME_MEASURES.index(f"{side}_knee_flexion_deg") for side in ("left", "right")]
    squat3d = samples.squat_3d().keypoints.astype(np.float64)
    squat3d[5, canonical_index("left_knee")] = np.nan  # a missing knee stays missing
    squat2d = samples.squat_2d("halpe26")[0].to_canonical().keypoints
    for kp in (squat3d, squat2d):
        np.testing.assert_array_equal(knee_flexion_deg(kp), frame_measures(kp)[:, columns])
    assert np.isnan(knee_flexion_deg(squat3d)[5, 0]) and knee_flexion_deg(squat3d).dtype == np.float32
    assert float(np.nanmax(knee_flexion_deg(squat3d))) == pytest.approx(113.0, abs=1.0)  # 38 + 75 deg at depth
