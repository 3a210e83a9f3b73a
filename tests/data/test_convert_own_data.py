"""`valgusml convert` on a user's own folder: what users get wrong (a row for same-named files in several folders,
mixed frame rates, a mechanism nobody knows, mixed sexes, too few athletes to split) is told, not guessed."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from valgusml.data import open_dataset
from valgusml.data.convert import LABEL_COLUMNS, convert, main
from valgusml.data.splits import split_athletes
from valgusml.errors import InputError
from valgusml.labels import MECHANISM_UNKNOWN
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def _labels(path: Path, rows: list[list], extra: tuple[str, ...] = ()) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "athlete_id", "task", *LABEL_COLUMNS, *extra])
        writer.writerows(rows)
    return path


def _two_folders_of_one_name(tmp_path: Path) -> Path:
    inputs = tmp_path / "clinic"
    for person in ("P01", "P02"):
        (inputs / person).mkdir(parents=True)
        shutil.copy(SAMPLES / "squat_halpe26.json", inputs / person / "squat.json")
    return inputs


def test_a_row_keyed_by_a_bare_name_does_not_label_same_named_files_in_other_folders(tmp_path, capsys):
    """Before: the row labelled both P01/squat.json and P02/squat.json, two people as one athlete."""
    inputs = _two_folders_of_one_name(tmp_path)
    labels = _labels(tmp_path / "labels.csv", [["squat.json", "P01", "bilateral_squat", *[""] * 6]])
    assert main([str(inputs), "--labels", str(labels), "--out", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert "row 2 (squat.json) matches 2 inputs (P01/squat.json, P02/squat.json)" in err
    assert not (tmp_path / "ds").exists()
    # each named by its path: fine
    labels = _labels(tmp_path / "labels.csv", [["P01/squat.json", "P01", "bilateral_squat", *[""] * 6],
                                               ["P02/squat.json", "P02", "bilateral_squat", *[""] * 6]])
    assert main([str(inputs), "--labels", str(labels), "--out", str(tmp_path / "ds")]) == 0
    assert open_dataset(tmp_path / "ds").athletes == ["P01", "P02"]


def test_a_valgus_limb_of_unknown_mechanism_is_written_unknown_not_refused(tmp_path):
    """A clinician sees the knee collapse without knowing why: `unknown` (masked in the mechanism loss)."""
    labels = _labels(tmp_path / "l.csv", [["squat.npz", "A", "bilateral_squat", "no", "none", "", "yes", "Unknown", "14"]])
    convert([SAMPLES / "squat.npz"], tmp_path / "ds", labels=labels)
    seq = open_dataset(tmp_path / "ds")[0]
    assert seq.labels["right"]["valgus"] is True and seq.labels["right"]["mechanism"] is None
    from valgusml.scoring.arrays import LabelArrays

    assert LabelArrays.from_sequences([seq]).mechanism.tolist() == [[0, MECHANISM_UNKNOWN]]
    bad = _labels(tmp_path / "bad.csv", [["squat.npz", "A", "bilateral_squat", "no", "unknown", "", "no", "", ""]])
    with pytest.raises(InputError, match="row 2: left_mechanism is 'unknown' but left_valgus is false"):
        convert([SAMPLES / "squat.npz"], tmp_path / "ds2", labels=bad)


def test_fps_is_for_files_that_hold_none_and_a_labels_fps_column_sets_each(tmp_path, capsys):
    """Before: --fps 24 turned the TRC's own 60 Hz into 24 Hz, silently (the help says: files that hold none)."""
    inputs = [SAMPLES / "squat.trc", SAMPLES / "squat_coco17.json"]
    assert main([*map(str, inputs), "--dims", "2", "--fps", "24", "--out", str(tmp_path / "a")]) == 0
    fps = {seq.id: seq.fps for seq in open_dataset(tmp_path / "a")}
    assert fps == {"squat.trc": 60.0, "squat_coco17.json": 24.0}
    assert "hold no frame rate" not in capsys.readouterr().out
    # without --fps the COCO file is read at 30 and the summary says so, naming it
    assert main([*map(str, inputs), "--dims", "2", "--out", str(tmp_path / "b")]) == 0
    assert "1 input(s) hold no frame rate and were read at 30 fps: squat_coco17.json" in capsys.readouterr().out
    # a labels CSV's fps column gives each file its rate, whatever the file says
    labels = _labels(tmp_path / "l.csv", [["squat.trc", "A", "bilateral_squat", *[""] * 6, "100"],
                                          ["squat_coco17.json", "B", "bilateral_squat", *[""] * 6, "120"]], ("fps",))
    assert main([*map(str, inputs), "--dims", "2", "--labels", str(labels), "--out", str(tmp_path / "c")]) == 0
    assert {seq.id: seq.fps for seq in open_dataset(tmp_path / "c")} == {"squat.trc": 100.0, "squat_coco17.json": 120.0}
    bad = _labels(tmp_path / "bad.csv", [["squat.trc", "A", "", *[""] * 6, "fast"]], ("fps",))
    with pytest.raises(InputError, match="row 2 fps: 'fast' is not a number"):
        convert([SAMPLES / "squat.trc"], tmp_path / "d", labels=bad)


def _borderline_squat(folder: Path, name: str) -> Path:
    """A squat whose right knee collapses 9.1 deg: valgus by the male threshold (8), not the female one (10)."""
    from valgusml.io import npz, samples

    points = samples.squat_points(60, valgus_m=0.014)
    seq = KeypointSequence(np.stack([points[j] for j in CANONICAL_JOINTS], axis=1), "canonical", 30.0, id=name)
    folder.mkdir(parents=True, exist_ok=True)
    return npz.write(seq, folder / f"{name}.npz")


def test_sex_is_recorded_and_a_labels_sex_column_sets_each_files_rule_threshold(tmp_path):
    """Before: --sex chose the threshold but was not kept, so the predictor's 3D rule read the same recording
    with both sexes averaged; and a folder of men and women could only be labelled with one threshold."""
    man = _borderline_squat(tmp_path / "in", "man")
    _borderline_squat(tmp_path / "in", "woman")
    labels = _labels(tmp_path / "l.csv", [["man.npz", "M1", "bilateral_squat", *[""] * 6, "M"],
                                          ["woman.npz", "F1", "bilateral_squat", *[""] * 6, "female"]], ("sex",))
    convert([tmp_path / "in"], tmp_path / "ds", labels=labels, label_by_rule=True)
    by_id = {seq.id: seq for seq in open_dataset(tmp_path / "ds")}
    assert by_id["man.npz"].meta["sex"] == "male" and by_id["man.npz"].labels["right"]["valgus"] is True
    assert by_id["woman.npz"].meta["sex"] == "female" and by_id["woman.npz"].labels["right"]["valgus"] is False
    assert by_id["man.npz"].meta_value("sex") == "male"  # what the predictor's measured 3D presence reads
    convert([man], tmp_path / "ds2", label_by_rule=True, sex="male")
    assert open_dataset(tmp_path / "ds2")[0].meta["sex"] == "male"
    bad = _labels(tmp_path / "bad.csv", [["man.npz", "M1", "", *[""] * 6, "x"]], ("sex",))
    with pytest.raises(InputError, match="row 2 sex: 'x' is not female or male"):
        convert([man], tmp_path / "ds3", labels=bad)


def test_too_few_athletes_to_split_is_said_at_conversion_and_at_the_split(tmp_path, capsys):
    inputs = _two_folders_of_one_name(tmp_path)
    assert main([str(inputs), "--athlete-from", "folder", "--fps", "30", "--out", str(tmp_path / "ds")]) == 0
    out = capsys.readouterr().out
    assert "only 2 athlete(s): too few to split by athlete" in out and "data.extra_train_dirs" in out
    with pytest.raises(InputError, match=r"the dataset has 2 \(P01, P02\); no athlete may be on two sides"):
        split_athletes(open_dataset(tmp_path / "ds").athlete_ids)


def test_a_3d_row_with_left_and_right_swapped_is_named(tmp_path, capsys):
    """The sample squat collapses on the right knee (31.6 deg): a row calling the left one valgus gets a note."""
    swapped = _labels(tmp_path / "swapped.csv", [["squat.npz", "A", "bilateral_squat", "yes", "hip_weakness", "",
                                                  "no", "none", ""]])
    assert main([str(SAMPLES / "squat.npz"), "--labels", str(swapped), "--out", str(tmp_path / "ds")]) == 0
    assert "are left and right swapped" in capsys.readouterr().out
    seq = open_dataset(tmp_path / "ds")[0]
    (note,) = seq.meta["warnings"]
    assert note.startswith("squat.npz: the labels call valgus on the left knee, but the presence rule") and "right 3" in note
    assert seq.labels["left"]["valgus"] is True  # kept: the note informs
    right = _labels(tmp_path / "right.csv", [["squat.npz", "A", "bilateral_squat", "no", "none", "", "yes",
                                              "hip_weakness", ""]])
    convert([SAMPLES / "squat.npz"], tmp_path / "ds2", labels=right)
    assert not open_dataset(tmp_path / "ds2")[0].meta.get("warnings")


def test_a_trc_without_a_knee_marker_says_which_names_to_rename_it_to(tmp_path, capsys):
    """From the command line there is no marker_map: the names the reader looks for are what a user can act on."""
    text = (SAMPLES / "squat.trc").read_text().replace("RKnee", "KneeR", 1)
    (tmp_path / "trial.trc").write_text(text)
    assert main([str(tmp_path / "trial.trc"), "--out", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert "trial.trc: missing markers: no marker for right_knee" in err
    assert "right_knee is read from a marker named RKJC, R_KJC, RKnee" in err and "rename yours in the header" in err


def test_a_spreadsheets_semicolon_labels_csv_with_decimal_commas_is_read(tmp_path):
    """Before: "wrong columns: missing file (or id), athlete_id" for a CSV saved where ',' is the decimal mark."""
    (tmp_path / "l.csv").write_text(
        "file;athlete_id;task;" + ";".join(LABEL_COLUMNS) + ";fps\n"
        "squat.npz;A;bilateral_squat;no;none;;yes;pronation;31,6;59,94\n")
    convert([SAMPLES / "squat.npz"], tmp_path / "ds", labels=tmp_path / "l.csv")
    seq = open_dataset(tmp_path / "ds")[0]
    assert seq.labels["right"]["mechanism"] == "pronation" and seq.labels["right"]["severity_deg"] == 31.6
    assert seq.fps == 59.94


def test_out_never_replaces_the_recordings_and_a_dataset_inside_them_is_skipped(tmp_path, capsys):
    """Before: `convert clips --out clips --overwrite` deleted the recordings; and converting `clips` again after
    writing `clips/ds` read `clips/ds/dataset.json` as a pose file and failed."""
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(SAMPLES / "squat_halpe26.json", clips / "squat.json")
    assert main([str(clips), "--out", str(clips), "--overwrite"]) == 1
    assert "holds the input(s) squat.json" in capsys.readouterr().err
    assert (clips / "squat.json").is_file() and not (clips / "dataset.json").exists()
    assert main([str(clips / "squat.json"), "--out", str(tmp_path), "--overwrite"]) == 1  # a parent folder too
    assert (clips / "squat.json").is_file()
    assert main([str(clips), "--out", str(clips / "ds")]) == 0
    assert main([str(clips), "--out", str(clips / "ds"), "--overwrite"]) == 0, capsys.readouterr().err
    assert [seq.id for seq in open_dataset(clips / "ds")] == ["squat.json"]


def test_athlete_ids_that_differ_only_in_case_are_refused(tmp_path):
    """Before: P01 and p01 became two athletes, so one person could be trained on and tested on."""
    inputs = _two_folders_of_one_name(tmp_path)
    labels = _labels(tmp_path / "labels.csv", [["P01/squat.json", "P01", "", *[""] * 6],
                                               ["P02/squat.json", "p01 ", "", *[""] * 6]])
    with pytest.raises(InputError, match=r"athlete ids 'P01' \(row 2\) and 'p01' \(row 3\) differ only in case"):
        convert([inputs], tmp_path / "ds", labels=labels)


def test_label_by_rule_leaves_static_trials_out_and_says_so(tmp_path, capsys):
    """OpenCap and Pose2Sim record a static trial per session: labelled by the rule, it became a bilateral squat
    without a squat (its task read from the motion), a "no valgus" example of nothing."""
    folder = tmp_path / "session"
    folder.mkdir()
    shutil.copy(SAMPLES / "squat.trc", folder / "squat.trc")
    shutil.copy(SAMPLES / "squat.trc", folder / "static1.trc")
    header = convert([folder], tmp_path / "ds", label_by_rule=True)
    assert header["static_trials"] == ["static1.trc"] and header["n_sequences"] == 1
    assert [s.id for s in open_dataset(tmp_path / "ds")] == ["squat.trc"]
    assert main([str(folder), "--out", str(tmp_path / "again"), "--label-by-rule"]) == 0
    assert "1 static trial(s) left out (no movement for the presence rule to label): static1.trc" in capsys.readouterr().out
    # with a labels row it is the user's to label, and kept
    (folder / "labels.csv").write_text("file,athlete_id,task\nsquat.trc,A1,bilateral_squat\nstatic1.trc,A1,\n")
    assert convert([folder], tmp_path / "labelled", labels=folder / "labels.csv", label_by_rule=True)["n_sequences"] == 2


def test_swapped_sides_are_counted_by_their_flag_not_the_note_wording(tmp_path, monkeypatch):
    """Rewording the note (here: its question) leaves the summary's count of swapped rows as it was."""
    from valgusml.data import convert as convert_module

    monkeypatch.setattr(convert_module, "SWAPPED", "sides mixed up?")
    swapped = _labels(tmp_path / "swapped.csv", [["squat.npz", "A", "bilateral_squat", "yes", "hip_weakness", "",
                                                  "no", "none", ""]])
    header = convert([SAMPLES / "squat.npz"], tmp_path / "ds", labels=swapped)
    assert header["swapped"] == ["squat.npz"]
    seq = open_dataset(tmp_path / "ds")[0]
    assert seq.meta[convert_module.SIDES_SWAPPED] is True and "sides mixed up?" in seq.meta["warnings"][0]
