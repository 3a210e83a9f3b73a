from __future__ import annotations

import json

import numpy as np
import pytest

import valgusml.io as vio
from valgusml.errors import FormatError, InputError
from valgusml.io import npz
from valgusml.io.tracking import Detection, link

SAMPLE_FORMATS = {
    "squat_mediapipe.json": "mediapipe", "squat_mediapipe.csv": "mediapipe", "squat_openpose": "openpose",
    "squat_halpe26.json": "coco", "squat_coco17.json": "coco", "squat.trc": "trc", "squat.npz": "npz",
}


def test_npz_sample_and_round_trip(samples_dir, tmp_path):
    seq = vio.read(samples_dir / "squat.npz")
    assert seq.labels["right"]["mechanism"] == "adductor_tfl_overactivity" and seq.athlete_id == "sample_athlete"
    assert seq.labels["left"]["severity_deg"] == 0.0 and seq.fps == 60.0
    kp = seq.keypoints.copy()
    kp[3, 4] = np.nan
    seq = seq.replace(keypoints=kp, meta={"note": "x", "nested": {"a": [1, 2]}}, task="drop_jump")
    back = vio.read(npz.write(seq, tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.keypoints, seq.keypoints)
    np.testing.assert_array_equal(back.confidence, seq.confidence)
    assert (back.id, back.task, back.meta, back.labels) == (seq.id, "drop_jump", seq.meta, seq.labels)


def test_npz_refuses_pickles_and_strangers(tmp_path):
    np.savez(tmp_path / "obj.npz", keypoints=np.array([{"a": 1}], dtype=object), confidence=np.zeros(1),
             metadata=np.array("{}"))
    with pytest.raises(FormatError, match="obj.npz"):
        vio.read(tmp_path / "obj.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(FormatError, match="missing arrays"):
        vio.read(tmp_path / "other.npz")
    np.savez(tmp_path / "meta.npz", keypoints=np.zeros((3, 20, 2)), confidence=np.ones((3, 20)),
             metadata=np.array(json.dumps({"format": "valgusml-sequence", "version": 99})))
    with pytest.raises(FormatError, match="version 99"):
        vio.read(tmp_path / "meta.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "other.npz").read_bytes()[:40])
    with pytest.raises(FormatError, match="cut.npz"):
        vio.read(tmp_path / "cut.npz")


@pytest.mark.parametrize("name,fmt", SAMPLE_FORMATS.items())
def test_detects_every_sample_format_and_maps_to_canonical(samples_dir, name, fmt):
    assert vio.detect_format(samples_dir / name) == fmt
    canon = vio.read(samples_dir / name).to_canonical()
    assert canon.skeleton == "canonical" and canon.n_frames == 45
    left, right = canon.joint("left_hip"), canon.joint("right_hip")
    assert (left[:, 0] > right[:, 0]).all()  # frontal camera / +x = subject's left in every sample


def test_read_errors_name_the_problem(tmp_path, samples_dir):
    with pytest.raises(InputError, match="no such file"):
        vio.read(tmp_path / "nope.json")
    (tmp_path / "x.xyz").write_bytes(b"\0\0")
    with pytest.raises(FormatError, match=r"x\.xyz: unknown pose file type '.xyz'"):
        vio.read(tmp_path / "x.xyz")
    with pytest.raises(InputError, match="unknown format 'bvh'"):
        vio.read(samples_dir / "squat.trc", format="bvh")
    with pytest.raises(InputError, match="does not accept"):
        vio.read(samples_dir / "squat.npz", up_axis="y")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "dataset.json").write_text("{}")
    with pytest.raises(InputError, match="open_dataset"):
        vio.read(tmp_path / "ds")
    (tmp_path / "empty.json").write_text("  \n")
    with pytest.raises(FormatError, match="empty"):
        vio.read(tmp_path / "empty.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FormatError, match="UTF-8"):
        vio.read(tmp_path / "bin.json")
    for not_a_path in (None, 5, b"squat.trc"):  # pathlib's TypeError before
        with pytest.raises(InputError, match="a pose file or folder path .* is needed"):
            vio.read(not_a_path)


def _det(x, y, size):
    kp = np.array([[x - size, y - size], [x + size, y + size], [x, y]], dtype=float)
    return Detection(kp, np.ones(3))


def test_tracking_follows_people_who_swap_order_and_ranks_by_size_and_persistence():
    frames = []
    for t in range(20):
        big, small = _det(100 + 2 * t, 100, 50), _det(400 - 3 * t, 120, 20)
        frames.append([small, big] if t % 2 else [big, small])
    frames[5] = [frames[5][0]]  # one missed detection
    frames += [[_det(800, 800, 5)]]  # a brief tiny third person
    tracks = link(frames)
    assert [tr.n_frames for tr in tracks] == [20, 19, 1] or [tr.n_frames for tr in tracks] == [19, 20, 1]
    big_track = tracks[0]
    assert all(abs(d.keypoints[2, 1] - 100) < 1e-9 for d in big_track.detections.values())
    assert tracks[-1].n_frames == 1
