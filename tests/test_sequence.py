from __future__ import annotations

import json

import numpy as np
import pytest

from valgusml import InputError, KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS, SKELETONS, canonical_index


def _kp(skeleton="canonical", frames=4, dims=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 100, size=(frames, SKELETONS[skeleton].n_joints, dims))


def test_valid_sequence_is_normalised():
    kp = _kp().astype(np.float64)
    kp[1, 3] = np.nan
    conf = np.full(kp.shape[:2], 0.7)
    seq = KeypointSequence(kp, "canonical", 30, confidence=conf, id="a")
    assert seq.keypoints.dtype == np.float32 and seq.confidence.dtype == np.float32 and seq.fps == 30.0
    assert seq.confidence[1, 3] == 0.0 and seq.n_frames == 4 and seq.dims == 2 and seq.duration_s == pytest.approx(4 / 30)
    default = KeypointSequence(kp, "canonical", 30)
    assert default.confidence[1, 3] == 0 and default.confidence[0, 0] == 1
    json.dumps(seq.describe())
    assert kp.dtype == np.float64 and not np.shares_memory(seq.keypoints, kp)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(keypoints=np.zeros((4, 20))), "rank 2"),
        (dict(keypoints=np.zeros((4, 19, 2))), "has 20 joints but keypoints have 19"),
        (dict(keypoints=np.zeros((4, 20, 4))), "2 or 3 coordinates"),
        (dict(skeleton="openpose25"), "unknown skeleton 'openpose25'"),
        (dict(fps=0), "fps must be finite and > 0"),
        (dict(fps=float("nan")), "fps must be finite"),
        (dict(fps=float("inf")), "fps must be finite"),
        (dict(fps="fast"), "fps must be a number"),
        (dict(fps=True), "fps must be a number, got True"),  # float(True) would be 1 fps
        (dict(fps=10**400), "fps must be finite and > 0"),  # beyond float: no OverflowError from deep inside
        (dict(confidence=[[1.0], [1.0, 0.5]]), "confidence is not a numeric array"),  # ragged
        (dict(keypoints=np.full((4, 20, 2), np.nan)), "no frame has any finite keypoint"),
        (dict(keypoints=np.concatenate([_kp(frames=1), np.full((3, 20, 2), np.nan)])), "only 1 frame"),
        (dict(confidence=np.full((4, 20), 1.5)), "confidence must be in [0, 1]"),
        (dict(keypoints=_kp().transpose(1, 0, 2)), "has 20 joints but keypoints have 4; joints first, (J, T, C)?"),
        (dict(keypoints=_kp()[None]), "got rank 4 shape (1, 4, 20, 2); one recording per call"),
        (dict(keypoints=_kp().reshape(4, 40)), "flat rows of x, y[, z] per joint? reshape to (T, 20, 2)"),
        (dict(keypoints=_kp().transpose(2, 0, 1)), "coordinates first, (C, T, J)? pass keypoints.transpose(1, 2, 0)"),
        (dict(keypoints=np.zeros((4, 33, 2))), "keypoints have 33; skeleton='mediapipe33' has 33"),
        (dict(keypoints=np.zeros((4, 17, 3))), "keypoints have 17; skeleton='coco17' or skeleton='h36m17' have 17"),
        (dict(keypoints=np.zeros((4, 133, 2))), "COCO-WholeBody (RTMW, DWPose)? its body and feet come first: pass "
                                                "keypoints[:, :23] with skeleton='coco23'"),
        (dict(confidence=np.tile([0.0, 1.0, 2.0, 2.0, 2.0], (4, 4))), "has 2.0; COCO's visibility flags"),
        (dict(confidence=np.full((4, 20), 87.5)), "has 87.5; a percentage? divide by 100"),
        (dict(confidence=np.full((4, 20), np.nan)), "has nan; give 0 for a joint not detected"),
        (dict(confidence=np.ones((4, 20, 1))), "got (4, 20, 1) (drop its last axis)"),
        (dict(confidence=np.ones((3, 20))), "confidence must have shape (T, J) = (4, 20)"),
        (dict(keypoints=np.array([[["a", "b"]] * 20] * 4)), "numeric"),
        (dict(keypoints=[[1, 2], [3]]), "not an array"),
        (dict(keypoints=np.full((4, 20, 2), 1e39)), "infinite"),
        (dict(labels={"left": {"valgus": True, "mechanism": "none"}, "right": {"valgus": False, "mechanism": "none"}}),
         "mechanism must be 'none' exactly when valgus is false"),
    ],
)
def test_validation_names_the_problem(kwargs, message):
    args = dict(keypoints=_kp(), skeleton="canonical", fps=30.0, id="clip7")
    args.update(kwargs)
    with pytest.raises(InputError) as info:
        KeypointSequence(**args)
    assert message in str(info.value)
    if "labels" not in kwargs and "skeleton" not in kwargs:
        assert "clip7" in str(info.value)


def test_a_confidence_out_of_range_gets_a_hint_only_where_one_fits():
    with pytest.raises(InputError) as info:
        KeypointSequence(_kp(), "canonical", 30.0, confidence=np.full((4, 20), 250.0))
    assert str(info.value).endswith("has 250.0")


def test_replace_revalidates_and_labels_are_normalised():
    seq = KeypointSequence(_kp(), "canonical", 25)
    labelled = seq.replace(labels={"left": {"valgus": True, "mechanism": "pronation", "severity_deg": 12},
                                   "right": {"valgus": False, "mechanism": "none"}})
    assert labelled.labels["left"] == {"valgus": True, "mechanism": "pronation", "severity_deg": 12.0,
                                       "contributions": {"pronation": 1.0}}
    with pytest.raises(InputError):
        seq.replace(fps=-1)


@pytest.mark.parametrize("skeleton", ["coco17", "halpe26", "body25", "openpose18", "mediapipe33"])
def test_to_canonical_maps_sides_and_derived_points(skeleton):
    skel = SKELETONS[skeleton]
    kp = _kp(skeleton, dims=3)
    conf = np.full(kp.shape[:2], 0.8)
    conf[:, skel.index("left_shoulder")] = 0.3
    canon = KeypointSequence(kp, skeleton, 30, confidence=conf).to_canonical()
    assert canon.skeleton == "canonical" and canon.keypoints.shape == (4, len(CANONICAL_JOINTS), 3)
    np.testing.assert_allclose(canon.joint("left_knee"), kp[:, skel.index("left_knee")], rtol=1e-6)
    np.testing.assert_allclose(canon.joint("right_hip"), kp[:, skel.index("right_hip")], rtol=1e-6)
    if "neck" not in skel.joints:  # derived: mid-shoulder, with the lower of the two confidences
        mid = 0.5 * (kp[:, skel.index("left_shoulder")] + kp[:, skel.index("right_shoulder")])
        np.testing.assert_allclose(canon.joint("neck"), mid, rtol=1e-6)
        assert np.allclose(canon.confidence[:, canonical_index("neck")], 0.3)
    if skeleton == "mediapipe33":
        np.testing.assert_allclose(canon.joint("left_big_toe"), kp[:, skel.index("left_foot_index")], rtol=1e-6)
    for joint in ("left_small_toe", "left_heel"):
        if joint not in skel.joints and not (skeleton == "mediapipe33" and joint == "left_heel"):
            assert np.isnan(canon.joint(joint)).all() and (canon.confidence[:, canonical_index(joint)] == 0).all()
