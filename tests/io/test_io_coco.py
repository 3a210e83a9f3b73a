from __future__ import annotations

import json

import numpy as np
import pytest

import valgusml.io as vio
from valgusml.errors import FormatError, InputError
from valgusml.io import coco, samples


@pytest.mark.parametrize("name,skeleton", [("squat_halpe26.json", "halpe26"), ("squat_coco17.json", "coco17")])
def test_reads_samples_and_tracks_the_squatter(samples_dir, name, skeleton):
    # halpe26 carries AlphaPose track ids; the coco17 sample has none, so boxes are linked frame to frame.
    with pytest.warns(UserWarning, match="2 people tracked"):
        seq = vio.read(samples_dir / name)
    squatter, bystander = samples.squat_2d(skeleton, bystander=True)
    assert seq.skeleton == skeleton and seq.keypoints.shape == (45, squatter.n_joints, 2)
    np.testing.assert_allclose(seq.keypoints, squatter.keypoints, atol=0.01)
    other = vio.read(samples_dir / name, person=1)
    present = np.isfinite(other.keypoints).all(axis=(1, 2))
    np.testing.assert_allclose(other.keypoints[present], bystander.keypoints[present], atol=0.01)


def test_round_trip_integer_ids_without_tracks(tmp_path):
    (seq,) = samples.squat_2d("halpe26", n_frames=8)
    back = vio.read(coco.write(seq, tmp_path / "r.json", image_names=False, track_ids=False), fps=120)
    assert back.fps == 120.0
    np.testing.assert_allclose(back.keypoints, seq.keypoints, atol=0.01)


def test_frame_numbers_from_file_names_leave_gaps(tmp_path):
    (seq,) = samples.squat_2d("coco17", n_frames=5)
    records = json.loads(coco.write(seq, tmp_path / "a.json").read_text())
    for rec, number in zip(records, [10, 11, 13, 14, 15], strict=True):
        rec["image_id"] = f"clip/frame_{number:06d}.jpg"
    (tmp_path / "a.json").write_text(json.dumps(records))
    back = vio.read(tmp_path / "a.json")
    assert back.n_frames == 6 and back.meta["first_frame"] == 10 and np.isnan(back.keypoints[2]).all()


def test_mmpose_predictions(tmp_path):
    (seq,) = samples.squat_2d("coco17", n_frames=4)
    doc = [{"frame_id": t, "instances": [{"keypoints": seq.keypoints[t].tolist(),
                                          "keypoint_scores": seq.confidence[t].tolist()}]} for t in range(4)]
    (tmp_path / "pred.json").write_text(json.dumps(doc))
    back = vio.read(tmp_path / "pred.json")
    assert vio.detect_format(tmp_path / "pred.json") == "coco"
    np.testing.assert_allclose(back.keypoints, seq.keypoints, atol=1e-4)


def test_coco_wholebody_keeps_body_and_feet(tmp_path):
    (seq,) = samples.squat_2d("halpe26", n_frames=4)
    halpe = np.concatenate([seq.keypoints, seq.confidence[..., None]], axis=-1)
    wholebody = np.zeros((4, 133, 3))
    wholebody[:, :17] = halpe[:, :17]
    wholebody[:, 17:23] = halpe[:, [20, 22, 24, 21, 23, 25]]  # left big/small toe, heel, then right
    wholebody[:, 23:] = [5.0, 5.0, 0.5]  # face and hands: dropped
    records = [{"image_id": t, "category_id": 1, "keypoints": wholebody[t].reshape(-1).tolist(), "score": 0.9} for t in range(4)]
    (tmp_path / "wb.json").write_text(json.dumps(records))
    back = vio.read(tmp_path / "wb.json")
    assert back.skeleton == "halpe26" and back.meta["layout"] == "coco_wholebody133"
    canon, expected = back.to_canonical(), seq.to_canonical()
    body = [j for j, name in enumerate(canon.joints) if name != "neck"]
    np.testing.assert_allclose(canon.keypoints[:, body], expected.keypoints[:, body], atol=1e-4)
    mid_shoulder = 0.5 * (seq.joint("left_shoulder") + seq.joint("right_shoulder"))
    np.testing.assert_allclose(canon.joint("neck"), mid_shoulder, atol=1e-4)
    assert np.isnan(back.joint("head")).all()


def test_bad_files(tmp_path):
    (tmp_path / "none.json").write_text("[]")
    with pytest.raises(InputError, match="none.json"):
        vio.read(tmp_path / "none.json", format="coco")
    (tmp_path / "k.json").write_text(json.dumps([{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 3] * 5}]))
    with pytest.raises(FormatError, match=r"k\.json.*15 keypoint numbers"):
        vio.read(tmp_path / "k.json")
    (tmp_path / "t.json").write_text('[{"image_id": 1, "keypoints": [1, 2')
    with pytest.raises(FormatError, match=r"t\.json.*not valid JSON"):
        vio.read(tmp_path / "t.json")
