from __future__ import annotations

import json

import numpy as np
import pytest

import valgusml.io as vio
from valgusml.errors import FormatError, InputError
from valgusml.io import mediapipe, samples


def test_reads_json_sample(samples_dir):
    seq = vio.read(samples_dir / "squat_mediapipe.json")
    (expected,) = samples.squat_2d("mediapipe33", normalized=True)
    assert seq.skeleton == "mediapipe33" and seq.keypoints.shape == (45, 33, 2) and seq.fps == 30.0
    assert seq.meta["coordinates"] == "normalized" and seq.meta["image_width"] == 1080
    np.testing.assert_allclose(seq.keypoints, expected.keypoints, atol=1e-5)
    np.testing.assert_allclose(seq.confidence, 0.9, atol=1e-6)
    canon = seq.to_canonical()
    # the subject faces the camera: their left hip is on the viewer's right (larger x)
    assert (canon.joint("left_hip")[:, 0] > canon.joint("right_hip")[:, 0]).all()


def test_reads_csv_sample_in_pixels(samples_dir):
    seq = vio.read(samples_dir / "squat_mediapipe.csv")
    (expected,) = samples.squat_2d("mediapipe33")
    assert seq.meta["coordinates"] == "pixel" and seq.fps == 30.0
    np.testing.assert_allclose(seq.keypoints, expected.keypoints, atol=1e-4)


def _gappy():
    (seq,) = samples.squat_2d("mediapipe33", n_frames=12)
    kp, conf = seq.keypoints.copy(), seq.confidence.copy()
    kp[3, 5], conf[3, 5] = np.nan, 0.0
    kp[7] = np.nan
    conf[:, 10] = 0.25
    return seq.replace(keypoints=kp, confidence=conf, fps=25.0)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_round_trip(tmp_path, suffix):
    seq = _gappy()
    back = vio.read(mediapipe.write(seq, tmp_path / f"clip{suffix}"))
    assert back.fps == pytest.approx(25.0)
    np.testing.assert_allclose(back.keypoints, seq.keypoints, atol=1e-4)
    np.testing.assert_allclose(back.confidence, seq.confidence, atol=1e-4)
    assert np.isnan(back.keypoints[7]).all() and (back.confidence[7] == 0).all()


@pytest.mark.parametrize(
    "pattern",
    ["x{j},y{j},z{j},v{j}", "landmark_{j}_x,landmark_{j}_y,landmark_{j}_z,landmark_{j}_visibility",
     "{NAME}.x,{NAME}.y,{NAME}.z,{NAME}.visibility", "x_{j},y_{j},z_{j},presence_{j}"],
)
def test_csv_header_spellings(tmp_path, pattern):
    seq = _gappy()
    path = mediapipe.write_csv(seq, tmp_path / "a.csv")
    lines = path.read_text().splitlines()
    names = [pattern.format(j=j, NAME=name.upper()) for j, name in enumerate(mediapipe.LANDMARKS)]
    lines[0] = "frame,timestamp_ms," + ",".join(names)
    path.write_text("\n".join(lines) + "\n")
    back = vio.read(path)
    np.testing.assert_allclose(back.keypoints, seq.keypoints, atol=1e-4)
    np.testing.assert_allclose(back.confidence, seq.confidence, atol=1e-4)


def _frames(seq, style):
    out = []
    for t in range(seq.n_frames):
        lms = [{"x": float(x), "y": float(y), "z": 0.0, "visibility": 0.8} for x, y in seq.keypoints[t]]
        if style == "plain":
            out.append(lms)
        elif style == "protobuf":
            out.append({"pose_landmarks": {"landmark": lms}})
        elif style == "lists":
            out.append([[lm["x"], lm["y"], 0.0, 0.8] for lm in lms])
    return out


@pytest.mark.parametrize("style", ["plain", "protobuf", "lists"])
def test_json_wrappers(tmp_path, style):
    (seq,) = samples.squat_2d("mediapipe33", n_frames=6, normalized=True)
    frames = _frames(seq, style)
    frames.insert(2, [])  # a frame without detection
    path = tmp_path / "clip.json"
    path.write_text(json.dumps(frames if style != "protobuf" else {"fps": 50, "frames": frames}))
    back = vio.read(path)
    assert back.n_frames == 7 and np.isnan(back.keypoints[2]).all()
    assert back.fps == (50.0 if style == "protobuf" else 30.0)
    np.testing.assert_allclose(back.keypoints[3], seq.keypoints[2], atol=1e-6)
    np.testing.assert_allclose(back.confidence[0], 0.8)


def test_several_poses_per_frame_keep_the_largest_and_warn(tmp_path):
    big, small = samples.squat_2d("mediapipe33", n_frames=8, normalized=True, bystander=True)
    frames = []
    for t in range(8):
        poses = [_frames(big, "plain")[t]]
        if np.isfinite(small.keypoints[t]).any():
            poses.insert(0, _frames(small, "plain")[t])
        frames.append({"pose_landmarks": poses})
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps({"frames": frames}))
    with pytest.warns(UserWarning, match="2 people tracked"):
        seq = vio.read(path)
    np.testing.assert_allclose(seq.keypoints, big.keypoints, atol=1e-6)
    assert seq.meta["n_people"] == 2 and "2 people tracked" in seq.meta["warnings"][0]


def test_image_size_turns_normalised_into_pixels(samples_dir):
    seq = vio.read(samples_dir / "squat_mediapipe.json", image_size=(1080, 1920))
    (expected,) = samples.squat_2d("mediapipe33")
    assert seq.meta["coordinates"] == "pixel"
    np.testing.assert_allclose(seq.keypoints, expected.keypoints, atol=0.02)


def test_wrong_columns_name_the_problem(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("frame,a,b\n0,1,2\n1,3,4\n")
    with pytest.raises(FormatError, match=r"bad\.csv.*no landmark coordinate columns"):
        vio.read(path)
    seq = _gappy()
    lines = mediapipe.write_csv(seq, tmp_path / "cut.csv").read_text().splitlines()
    lines[0] = lines[0].replace("left_knee_x", "left_knee_q")
    (tmp_path / "cut.csv").write_text("\n".join(lines))
    with pytest.raises(FormatError, match="left_knee"):
        vio.read(tmp_path / "cut.csv")


def test_bad_cells_and_landmark_counts(tmp_path):
    seq = _gappy()
    lines = mediapipe.write_csv(seq, tmp_path / "c.csv").read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[4], "oops", 1)
    (tmp_path / "c.csv").write_text("\n".join(lines))
    with pytest.raises(FormatError, match=r"row 4"):
        vio.read(tmp_path / "c.csv")
    (tmp_path / "short.json").write_text(json.dumps([[{"x": 0.1, "y": 0.2}] * 17] * 3))
    with pytest.raises(FormatError, match="33"):
        vio.read(tmp_path / "short.json", format="mediapipe")


def test_nan_only_frames_are_refused(tmp_path):
    frames = [[{"x": None, "y": None, "z": 0, "visibility": 0}] * 33] * 4
    (tmp_path / "nan.json").write_text(json.dumps(frames))
    with pytest.raises(InputError, match="nan.json"):
        vio.read(tmp_path / "nan.json")


def test_time_stamps_going_back_are_refused_naming_the_row_or_frame(tmp_path):
    """Rows or frames out of time order would be read as another motion."""
    lines = mediapipe.write_csv(_gappy(), tmp_path / "t.csv").read_text().splitlines()
    lines[3], lines[4] = lines[4], lines[3]  # file rows 4 and 5 (80 and 120 ms at 25 fps) swapped
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=r"t\.csv: row 5: 'timestamp_ms' 80 comes after 120 \(row 4\)"):
        vio.read(tmp_path / "t.csv")
    doc = json.loads(mediapipe.write_json(_gappy(), tmp_path / "t.json").read_text())
    del doc["fps"]
    doc["frames"][5]["timestamp_ms"] = 0.0
    (tmp_path / "t.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"t\.json: frame 5: time stamp \(s\) 0 comes after 0\.16 \(frame 4\)"):
        vio.read(tmp_path / "t.json")


def test_a_time_column_without_a_rate_is_named_and_a_boolean_fps_refused(tmp_path):
    lines = mediapipe.write_csv(_gappy(), tmp_path / "c.csv").read_text().splitlines()
    lines[1:] = [",".join([row.split(",")[0], "0"] + row.split(",")[2:]) for row in lines[1:]]  # all stamps 0
    (tmp_path / "c.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="the time column 'timestamp_ms' gives no frame rate; assumed 30 fps"):
        vio.read(tmp_path / "c.csv")
    doc = json.loads(mediapipe.write_json(_gappy(), tmp_path / "b.json").read_text())
    (tmp_path / "b.json").write_text(json.dumps({**doc, "fps": True}))  # float(True) would be 1 fps
    with pytest.raises(InputError, match=r"b\.json: fps must be a number, got True"):
        vio.read(tmp_path / "b.json")
