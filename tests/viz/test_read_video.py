"""read_video on the real videos (left/right limbs, person choice, CSV round trip) and on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from tests.viz.conftest import MAN, VIDEO_DIR, cam, needs_video_env, needs_videos, read_cached, run_cv2
from valgusml import io
from valgusml.errors import FormatError, InputError, MissingDependencyError
from valgusml.io import video
from valgusml.io.tracking import MAX_COST, box_cost
from valgusml.skeleton import SKELETONS

JOINTS = SKELETONS["mediapipe33"].joints
# Frames 10-30 (0.17-0.5 s): the man stands on his left leg and swings the right one, seen by all four cameras.
STANCE = slice(10, 30)

pytestmark = [needs_video_env]


def _ankle_speed(seq, side: str) -> float:
    """Median frame-to-frame ankle displacement over STANCE, in thigh+shank lengths."""
    kp = seq.keypoints
    ankle = kp[:, JOINTS.index(f"{side}_ankle")]
    leg = np.nanmedian(np.linalg.norm(kp[:, JOINTS.index(f"{side}_hip")] - kp[:, JOINTS.index(f"{side}_knee")],
                                      axis=-1)) * 2
    return float(np.nanmedian(np.linalg.norm(np.diff(ankle[STANCE], axis=0), axis=-1)) / leg)


@pytest.mark.realdata
@needs_videos
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_four_cameras_read_the_same_limbs_of_the_balancing_man(k):
    seq = read_cached(cam(k), MAN[k])
    assert seq.skeleton == "mediapipe33" and seq.fps == 60.0 and seq.n_frames == 100
    assert seq.meta["image_width"] == 1088 and seq.meta["image_height"] == 1920
    assert np.isfinite(seq.keypoints[STANCE]).all()
    # He stands on his LEFT leg: the left ankle stays put while the right foot swings, front and rear cameras alike.
    left, right = _ankle_speed(seq, "left"), _ankle_speed(seq, "right")
    assert left < 0.012 and right > 2 * left, (k, left, right)
    # Front cameras (1, 2) see his left hip on the image's right; rear cameras (3, 4) on its left.
    hips = seq.keypoints[STANCE, JOINTS.index("left_hip"), 0] - seq.keypoints[STANCE, JOINTS.index("right_hip"), 0]
    assert (np.median(hips) > 0) == (k in (1, 2))


@pytest.mark.realdata
@needs_videos
@pytest.mark.filterwarnings("ignore:.*follows one person per pass:UserWarning")  # asserted from meta below
def test_person_choice_is_stable_and_said():
    first = read_cached(cam(3), 0)
    again = video.read_video(cam(3), person=0, progress=False)
    np.testing.assert_array_equal(first.keypoints, again.keypoints)  # the same person, frame for frame
    boxes = video._boxes(np.concatenate([first.keypoints, first.confidence[..., None]], axis=-1))
    assert all(box_cost(boxes[t - 1], boxes[t]) <= MAX_COST for t in range(1, 40))  # no jump while he is followed
    assert "follows one person per pass" in first.meta["warnings"][0] and "box x" in first.meta["warnings"][0]
    # person=1 in cam01 is the man, found once the woman is painted over: his box lies above hers (he stands
    # further back) and the meta says which pass found him.
    woman, man = read_cached(cam(1), 0), read_cached(cam(1), 1)
    assert man.meta["person"] == 1 and man.meta["n_people"] == 2
    assert man.meta["person_box_px"][3] < woman.meta["person_box_px"][3]
    with pytest.raises(InputError, match="person must be"):
        video.read_video(cam(1), person=-1)


@pytest.mark.realdata
@needs_videos
def test_csv_round_trip(tmp_path):
    from valgusml.cli import main

    out = tmp_path / "walker.csv"
    assert main(["keypoints", str(VIDEO_DIR / "sports2d_demo.mp4"), "--out", str(out)]) == 0
    seq = read_cached(VIDEO_DIR / "sports2d_demo.mp4")
    back = io.read(out)
    assert back.skeleton == "mediapipe33" and back.fps == pytest.approx(seq.fps) and back.n_frames == seq.n_frames
    np.testing.assert_allclose(back.keypoints, seq.keypoints, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(back.confidence, seq.confidence, atol=1e-4)


def test_bad_files_raise_typed_errors_naming_the_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(FormatError, match=r"notes\.mp4: not a readable video"):
        io.read(text)
    empty = tmp_path / "empty.mov"
    empty.write_bytes(b"")
    with pytest.raises(FormatError, match=r"empty\.mov: file is empty"):
        io.read(empty)
    with pytest.raises(InputError, match="no such video"):
        video.read_video(tmp_path / "missing.mp4")


def test_video_without_a_person(tmp_path):
    blank = tmp_path / "blank.mp4"
    run_cv2("w = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*'mp4v'), 30, (160, 120))\n"
            "[w.write(np.full((120, 160, 3), 90, np.uint8)) for _ in range(12)]\nw.release()", out=str(blank))
    with pytest.raises(InputError, match=r"blank\.mp4: MediaPipe Pose found no person in any of its 12 frames"):
        video.read_video(blank)


def test_missing_video_environment_says_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv(video.VIDEO_PYTHON_ENV, str(tmp_path / "no-python"))
    monkeypatch.setattr(video, "_mediapipe_in_process", lambda: False)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 16)
    with pytest.raises(MissingDependencyError, match="make video"):
        video.read_video(clip)


@pytest.mark.realdata
@needs_videos
@pytest.mark.filterwarnings("ignore:.*follows one person per pass:UserWarning",
                            "ignore:.*high-speed clip:UserWarning")  # each clip's own warning is asserted
def test_truncated_rotated_and_4k_high_speed_clips(tmp_path):
    # Truncated MP4: the Pose2Sim files keep their index at the end, so a cut one cannot be opened at all.
    cut = tmp_path / "cut.mp4"
    data = cam(3).read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"cut\.mp4: not a readable video"):
        video.read_video(cut)
    # Truncated AVI (index-free decoding): it opens, decoding stops early, and the warning says where.
    avi = tmp_path / "cut.avi"
    run_cv2("c = cv2.VideoCapture(src)\nw = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*'MJPG'), 30, (544, 960))\n"
            "for _ in range(30):\n ok, f = c.read(); w.write(cv2.resize(f, (544, 960)))\nw.release()\n"
            "data = open(out, 'rb').read(); open(out, 'wb').write(data[: int(len(data) * 0.6)])",
            src=str(cam(3)), out=str(avi))
    with pytest.warns(UserWarning, match=r"cut\.avi: decoding stopped at frame \d+ of 30"):
        seq = video.read_video(avi)
    assert 5 < seq.n_frames < 30
    # Rotated phone video: 30 frames of cam03 stored sideways with a 90° display matrix: read upright.
    rotated = tmp_path / "phone.mp4"
    run_cv2("c = cv2.VideoCapture(src)\nw = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*'mp4v'), 30, (960, 544))\n"
            "for _ in range(30):\n ok, f = c.read()\n w.write(cv2.rotate(cv2.resize(f, (544, 960)), "
            "cv2.ROTATE_90_COUNTERCLOCKWISE))\nw.release()", src=str(cam(3)), out=str(rotated))
    _set_display_rotation(rotated)
    with pytest.warns(UserWarning, match=r"phone\.mp4: the container says rotate 90 degrees"):
        upright = video.read_video(rotated)
    assert (upright.meta["image_width"], upright.meta["image_height"]) == (544, 960)
    assert upright.meta["rotation_deg"] == 90
    # 4K at 240 fps (the Sports2D walker scaled up): scaled down for MediaPipe, keypoints in the original pixels.
    big = tmp_path / "big.mp4"
    run_cv2("c = cv2.VideoCapture(src)\nw = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*'mp4v'), 240, (3840, 2160))\n"
            "for _ in range(8):\n ok, f = c.read(); w.write(cv2.resize(f, (3840, 2160)))\nw.release()",
            src=str(VIDEO_DIR / "sports2d_demo.mp4"), out=str(big))
    with pytest.warns(UserWarning, match=r"big\.mp4: frames are 3840x2160: scaled") as caught:
        seq = video.read_video(big)
    assert any("high-speed clip (240 fps" in str(w.message) for w in caught)
    small = read_cached(VIDEO_DIR / "sports2d_demo.mp4")
    hips = [JOINTS.index("left_hip"), JOINTS.index("right_hip")]
    assert seq.fps == 240
    np.testing.assert_allclose(np.nanmedian(seq.keypoints[:8, hips], axis=(0, 1)),
                               np.nanmedian(small.keypoints[:8, hips], axis=(0, 1)) * [3840 / 1768, 2160 / 994],
                               rtol=0.03)


def _set_display_rotation(path) -> None:
    """Write a 90° display matrix into the MP4 track header (what phones do instead of turning the pixels)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0 and data[at + 4] == 0  # version 0 header
    matrix = at + 4 + 40
    values = [0, 0x10000, 0, -0x10000 & 0xFFFFFFFF, 0, 0, 0, 0, 0x40000000]
    data[matrix: matrix + 36] = b"".join(v.to_bytes(4, "big") for v in values)
    path.write_bytes(bytes(data))
