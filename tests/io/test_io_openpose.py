from __future__ import annotations

import json

import numpy as np
import pytest

import valgusml.io as vio
from valgusml.errors import FormatError, InputError
from valgusml.io import openpose, samples


def test_reads_sample_keeps_the_squatter_and_warns(samples_dir):
    with pytest.warns(UserWarning, match="2 people tracked; kept person 0"):
        seq = vio.read(samples_dir / "squat_openpose")
    squatter, _ = samples.squat_2d("body25", bystander=True)
    assert seq.skeleton == "body25" and seq.keypoints.shape == (45, 25, 2) and seq.fps == 30.0
    np.testing.assert_allclose(seq.keypoints, squatter.keypoints, atol=1e-3)
    assert seq.meta["n_people"] == 2 and any("2 people" in w for w in seq.meta["warnings"])
    canon = seq.to_canonical()
    assert (canon.joint("left_knee")[:, 0] > canon.joint("right_knee")[:, 0]).all()


def test_person_picks_the_other_track_and_fps_is_taken(samples_dir):
    seq = vio.read(samples_dir / "squat_openpose", person=1, fps=60)
    _, bystander = samples.squat_2d("body25", bystander=True)
    assert seq.fps == 60.0
    present = np.isfinite(seq.keypoints).all(axis=(1, 2))
    assert present.sum() == 15
    np.testing.assert_allclose(seq.keypoints[present], bystander.keypoints[present], atol=1e-3)
    with pytest.raises(InputError, match="person=2"):
        vio.read(samples_dir / "squat_openpose", person=2)


@pytest.mark.parametrize("skeleton", ["body25", "openpose18"])
def test_round_trip_with_missing_points(tmp_path, skeleton):
    (seq,) = samples.squat_2d(skeleton, n_frames=10)
    kp, conf = seq.keypoints.copy(), seq.confidence.copy()
    kp[4, 3], conf[4, 3] = np.nan, 0.0
    conf[:, 0] = 0.5
    seq = seq.replace(keypoints=kp, confidence=conf)
    back = vio.read(openpose.write(seq, tmp_path / "out", stem="take"), fps=50)
    assert back.skeleton == skeleton and back.fps == 50.0 and back.n_frames == 10
    np.testing.assert_allclose(back.keypoints, seq.keypoints, atol=1e-3)
    np.testing.assert_allclose(back.confidence, seq.confidence, atol=1e-4)


def test_missing_frame_files_become_empty_frames(tmp_path):
    (seq,) = samples.squat_2d("body25", n_frames=6)
    folder = openpose.write(seq, tmp_path / "op", stem="c")
    (folder / "c_000000000003_keypoints.json").unlink()
    back = vio.read(folder)
    assert back.n_frames == 6 and np.isnan(back.keypoints[3]).all()


def test_bad_folders_and_files(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty OpenPose folder"):
        vio.read(tmp_path / "empty", format="openpose")
    with pytest.raises(InputError, match="empty OpenPose folder"):
        vio.read(tmp_path / "empty")
    nobody = tmp_path / "nobody"
    nobody.mkdir()
    for t in range(3):
        (nobody / f"x_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": []}))
    with pytest.raises(InputError, match="zero people"):
        vio.read(nobody)
    (nobody / "x_000000000001_keypoints.json").write_text('{"version": 1.3, "people": [{"pose_keypo')
    with pytest.raises(FormatError, match=r"x_000000000001_keypoints\.json.*truncated"):
        vio.read(nobody)
    (nobody / "x_000000000001_keypoints.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1, 2, 3]}]}))
    with pytest.raises(FormatError, match="expected 75"):
        vio.read(nobody)
