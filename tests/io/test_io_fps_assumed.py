"""A reader that finds no frame rate in a file says so twice: a note for people (`meta["warnings"]`) and a flag
for code (`meta["fps_assumed"]`). `valgusml convert --fps` fills the rate of flagged files only, so a file with a
rate of its own keeps it, and rewording a note cannot change what convert does."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from valgusml import io
from valgusml.data import convert, open_dataset
from valgusml.io import _common, coco, mediapipe, npz, openpose, samples, trc, video
from valgusml.sequence import KeypointSequence

FLAG = _common.FPS_ASSUMED
OWN_RATE = 25.0  # what the files with a rate of their own hold: neither the default nor --fps
GIVEN_RATE = 50.0  # --fps


# ------------------------------------------------------------------------------------------- tiny files
def _mediapipe_2d() -> KeypointSequence:
    return samples.squat_2d("mediapipe33", n_frames=12, fps=OWN_RATE)[0]


def coco_file(folder: Path) -> Path:
    return coco.write(samples.squat_2d("coco17", n_frames=12)[0], folder / "clip_coco.json")


def openpose_folder(folder: Path) -> Path:
    return openpose.write(samples.squat_2d("body25", n_frames=12)[0], folder / "clip_openpose")


def mediapipe_json(folder: Path, rate: str) -> Path:
    """`rate`: "none" (no fps key, no time stamps), "key" (an fps key) or "stamps" (time stamps only)."""
    path = mediapipe.write_json(_mediapipe_2d(), folder / f"clip_{rate}.json")
    doc = json.loads(path.read_text())
    if rate != "key":
        del doc["fps"]
    if rate == "none":
        for frame in doc["frames"]:
            del frame["timestamp_ms"]
    path.write_text(json.dumps(doc))
    return path


def mediapipe_csv(folder: Path, with_time_column: bool) -> Path:
    path = mediapipe.write_csv(_mediapipe_2d(), folder / f"clip_{'timed' if with_time_column else 'untimed'}.csv")
    if not with_time_column:  # the frame column stays: a frame number is no clock
        rows = [line.split(",") for line in path.read_text().splitlines()]
        path.write_text("\n".join(",".join(row[:1] + row[2:]) for row in rows) + "\n")
    return path


def trc_file(folder: Path, data_rate: str, with_times: bool) -> Path:
    """`data_rate`: what the header's DataRate cell holds ("" for none); without times the Time cells are blank."""
    path = trc.write(samples.squat_3d(n_frames=12, fps=OWN_RATE), folder / f"trial_{data_rate or 'blank'}.trc")
    lines = path.read_text().splitlines()
    values = lines[2].split("\t")
    lines[2] = "\t".join([data_rate, *values[1:]])
    if not with_times:
        for k in range(5, len(lines)):
            cells = lines[k].split("\t")
            if len(cells) > 2:
                lines[k] = "\t".join([cells[0], "", *cells[2:]])
    path.write_text("\n".join(lines) + "\n")
    return path


NO_RATE: dict[str, Callable[[Path], Path]] = {
    "coco": coco_file,
    "openpose": openpose_folder,
    "mediapipe_json": lambda folder: mediapipe_json(folder, "none"),
    "mediapipe_csv": lambda folder: mediapipe_csv(folder, with_time_column=False),
    "trc_no_datarate": lambda folder: trc_file(folder, "", with_times=False),
    "trc_bad_datarate": lambda folder: trc_file(folder, "n/a", with_times=False),
}
OWN_RATE_FILES: dict[str, Callable[[Path], Path]] = {
    "mediapipe_json_fps_key": lambda folder: mediapipe_json(folder, "key"),
    "mediapipe_json_stamps": lambda folder: mediapipe_json(folder, "stamps"),
    "mediapipe_csv_time_column": lambda folder: mediapipe_csv(folder, with_time_column=True),
    "trc_datarate": lambda folder: trc_file(folder, f"{OWN_RATE:g}", with_times=False),
    "trc_time_column": lambda folder: trc_file(folder, "", with_times=True),
    "trc_bad_datarate_time_column": lambda folder: trc_file(folder, "n/a", with_times=True),
}


def convert_one(path: Path, out: Path, *flags: str) -> KeypointSequence:
    """`valgusml convert PATH --out OUT FLAGS...` (3D inputs kept 3D), and the one sequence it wrote."""
    assert convert.main([str(path), "--out", str(out), *flags]) == 0
    (seq,) = list(open_dataset(out))
    return seq


# ------------------------------------------------------------------------------------------- readers
@pytest.mark.parametrize("family", NO_RATE)
def test_a_file_without_a_rate_is_flagged_beside_its_note(family, tmp_path):
    seq = io.read(NO_RATE[family](tmp_path))
    assert seq.fps == _common.DEFAULT_FPS
    assert seq.meta[FLAG] == {"fps": _common.DEFAULT_FPS, "warning": seq.meta[FLAG]["warning"]}
    assert seq.meta[FLAG]["warning"] in seq.meta["warnings"]  # the note people read is still recorded


@pytest.mark.parametrize("family", OWN_RATE_FILES)
def test_a_file_with_its_own_rate_is_not_flagged(family, tmp_path):
    seq = io.read(OWN_RATE_FILES[family](tmp_path))
    assert seq.fps == pytest.approx(OWN_RATE) and FLAG not in seq.meta


@pytest.mark.parametrize("family", NO_RATE)
def test_a_rate_given_to_the_reader_is_not_flagged(family, tmp_path):
    seq = io.read(NO_RATE[family](tmp_path), fps=GIVEN_RATE)
    assert seq.fps == GIVEN_RATE and FLAG not in seq.meta and not seq.meta.get("warnings")


@pytest.mark.parametrize(("family", "note"), [
    ("coco", "keypoint results hold no frame rate; assumed 30 fps (pass fps=... to set it)"),
    ("openpose", "OpenPose files hold no frame rate; assumed 30 fps (pass fps=... to set it)"),
    ("mediapipe_json", "no frame rate in the file; assumed 30 fps (pass fps=... to set it)"),
    ("mediapipe_csv", "no time column; assumed 30 fps (pass fps=... to set it)"),
    ("trc_no_datarate", "no DataRate and no Time column; assumed 30 fps"),
    ("trc_bad_datarate", "DataRate 'n/a' is not a valid frame rate; used 30 fps"),
])
def test_the_notes_people_read_are_unchanged(family, note, tmp_path):
    path = NO_RATE[family](tmp_path)
    with pytest.warns(UserWarning, match=None) as caught:
        seq = io.read(path)
    assert seq.meta["warnings"][-1] == note and f"{path}: {note}" in [str(w.message) for w in caught]


def test_trc_with_an_unusable_datarate_but_a_time_column_takes_the_clock_and_is_not_flagged(tmp_path):
    seq = io.read(trc_file(tmp_path, "n/a", with_times=True))
    assert seq.meta["warnings"] == ["DataRate 'n/a' is not a valid frame rate; used 25 fps from the Time column"]
    assert FLAG not in seq.meta


# ------------------------------------------------------------------------------------------- video
def _fake_mediapipe_pass(container_fps: float | None) -> Callable[..., tuple[np.ndarray, np.ndarray, dict]]:
    """`video._run_pass` without MediaPipe: one person, a container with or without a rate, no time stamps."""
    seq = samples.squat_2d("mediapipe33", n_frames=12)[0]
    landmarks = np.concatenate([seq.keypoints, np.full((seq.n_frames, seq.n_joints, 1), 0.9)], axis=-1)
    info = {"fps": container_fps, "frames_decoded": seq.n_frames, "frames_announced": seq.n_frames,
            "width": samples.IMAGE_WIDTH, "height": samples.IMAGE_HEIGHT, "rotation_deg": 0, "codec": "fake",
            "model": "fake", "scaled_to_max_side": False}
    return lambda *args, **kwargs: (np.full(seq.n_frames, np.nan), landmarks, info)


@pytest.fixture
def fake_video(tmp_path, monkeypatch) -> Callable[[float | None], Path]:
    monkeypatch.setattr(video, "backend", lambda: "in-process")

    def make(container_fps: float | None) -> Path:
        monkeypatch.setattr(video, "_run_pass", _fake_mediapipe_pass(container_fps))
        path = tmp_path / "clip.mp4"
        path.write_bytes(b"not decoded: the pass is faked")
        return path

    return make


def test_a_video_whose_container_gives_no_rate_is_flagged_and_convert_fills_it(fake_video, tmp_path):
    path = fake_video(None)
    seq = io.read(path)
    assert seq.fps == _common.DEFAULT_FPS and "the container gives no frame rate; assumed 30 fps" in seq.meta["warnings"]
    assert seq.meta[FLAG]["warning"] == "the container gives no frame rate; assumed 30 fps"
    filled = convert_one(path, tmp_path / "ds", "--fps", f"{GIVEN_RATE:g}")
    assert filled.fps == GIVEN_RATE and FLAG not in filled.meta
    assert not any("container gives no frame rate" in w for w in filled.meta.get("warnings", []))


def test_a_video_with_a_container_rate_keeps_it_under_convert_fps(fake_video, tmp_path):
    path = fake_video(OWN_RATE)
    assert FLAG not in io.read(path).meta
    assert convert_one(path, tmp_path / "ds", "--fps", f"{GIVEN_RATE:g}").fps == OWN_RATE


# ------------------------------------------------------------------------------------------- convert
@pytest.mark.parametrize("family", NO_RATE)
def test_convert_fps_fills_a_file_without_a_rate_and_drops_flag_and_note(family, tmp_path):
    seq = convert_one(NO_RATE[family](tmp_path), tmp_path / "ds", "--fps", f"{GIVEN_RATE:g}")
    assert seq.fps == GIVEN_RATE and FLAG not in seq.meta
    assert not any(f"{_common.DEFAULT_FPS:g} fps" in w for w in seq.meta.get("warnings", []))


@pytest.mark.parametrize("family", OWN_RATE_FILES)
def test_convert_fps_leaves_a_file_with_its_own_rate_at_it(family, tmp_path):
    seq = convert_one(OWN_RATE_FILES[family](tmp_path), tmp_path / "ds", "--fps", f"{GIVEN_RATE:g}")
    assert seq.fps == pytest.approx(OWN_RATE) and FLAG not in seq.meta


def test_without_convert_fps_the_flag_is_kept_in_the_dataset_and_the_input_named(tmp_path, capsys):
    assert convert.main([str(coco_file(tmp_path)), "--out", str(tmp_path / "ds")]) == 0
    assert "1 input(s) hold no frame rate and were read at 30 fps: clip_coco.json" in capsys.readouterr().out
    (seq,) = list(open_dataset(tmp_path / "ds"))  # the flag survives the dataset's JSON
    assert seq.fps == _common.DEFAULT_FPS and seq.meta[FLAG]["warning"] in seq.meta["warnings"]


def _reworded(monkeypatch, wording: str) -> None:
    """Every reader's assumed-rate note reworded, sharing no words with today's notes."""
    real = _common.assume_default_fps
    monkeypatch.setattr(_common, "assume_default_fps", lambda meta, notes, note: real(meta, notes, wording))


@pytest.mark.parametrize("family", NO_RATE)
def test_rewording_the_note_does_not_change_what_convert_does(family, tmp_path, monkeypatch):
    wording = "clock unknown; guessed a rate"
    _reworded(monkeypatch, wording)
    path = NO_RATE[family](tmp_path)
    header = convert.convert([path], tmp_path / "unfilled")
    assert header["assumed_fps"] == [path.name]
    assert wording in open_dataset(tmp_path / "unfilled")[0].meta["warnings"]
    seq = convert_one(path, tmp_path / "filled", "--fps", f"{GIVEN_RATE:g}")
    assert seq.fps == GIVEN_RATE and FLAG not in seq.meta and wording not in seq.meta.get("warnings", [])


def test_a_note_that_reads_like_an_assumed_rate_without_the_flag_is_just_a_note(tmp_path):
    """The old test was the note's text: a file with its own rate and a note saying "assumed 30 fps" about
    something else would have lost its rate to --fps."""
    seq = samples.squat_3d(n_frames=12, fps=OWN_RATE)
    seq = seq.replace(meta={"warnings": ["the previous tool assumed 30 fps for its filter; ours is fine"]})
    assert not io.fps_assumed(seq.meta)
    path = npz.write(seq, tmp_path / "own.npz")
    assert convert_one(path, tmp_path / "ds", "--fps", f"{GIVEN_RATE:g}").fps == OWN_RATE


# ------------------------------------------------------------------------------------------- round trip
def test_the_flag_survives_a_saved_sequence_and_convert_fps_still_fills_it(tmp_path):
    """A COCO file read at the assumed rate and saved as the project's .npz still holds no rate of its own."""
    saved = npz.write(io.read(coco_file(tmp_path)), tmp_path / "saved.npz")
    again = io.read(saved)
    assert again.meta[FLAG]["warning"] in again.meta["warnings"]
    seq = convert_one(saved, tmp_path / "ds", "--fps", f"{GIVEN_RATE:g}")
    assert seq.fps == GIVEN_RATE and FLAG not in seq.meta and not seq.meta.get("warnings")


def test_npz_read_with_a_rate_drops_a_saved_flag_and_its_note_only(tmp_path):
    seq = io.read(coco_file(tmp_path))
    seq = seq.replace(meta={**seq.meta, "warnings": ["an unrelated note", *seq.meta["warnings"]]})
    given = io.read(npz.write(seq, tmp_path / "saved.npz"), fps=GIVEN_RATE)
    assert given.fps == GIVEN_RATE and FLAG not in given.meta and given.meta["warnings"] == ["an unrelated note"]


def test_without_assumed_fps_leaves_an_unflagged_meta_alone():
    meta = {"warnings": ["assumed 30 fps, says an unrelated note"], "file": "x"}
    assert _common.without_assumed_fps(meta) == meta


def test_predict_fps_on_a_video_without_a_rate_drops_the_assumed_rate_and_its_note(fake_video):
    import argparse

    from valgusml.predictor.cli import read_sequence

    path = fake_video(None)
    args = argparse.Namespace(fps=GIVEN_RATE, input_format=None, format="table", person=None, skeleton=None,
                              task=None, sex="female")
    seq, notes = read_sequence(str(path), args)
    assert seq.fps == GIVEN_RATE and FLAG not in seq.meta and seq.meta["sex"] == "female"
    assert not any("assumed 30 fps" in note for note in [*notes, *seq.meta.get("warnings", [])])
