"""`valgusml convert --label-by-rule`: real 3D motion labelled by the presence rule, mechanism unknown."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from valgusml.data import open_dataset
from valgusml.data.convert import convert, main
from valgusml.errors import InputError

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
DJ1 = REAL / "opencap_validation_subject4" / "DJ1.trc"


@pytest.mark.realdata
@pytest.mark.skipif(not DJ1.is_file(), reason="../shared/realdata is absent")
def test_real_drop_jump_is_labelled_by_its_landing(tmp_path):
    assert main([str(DJ1), "--label-by-rule", "--out", str(tmp_path / "ds")]) == 0
    seq = open_dataset(tmp_path / "ds")[0]
    assert seq.task == "drop_vertical_jump"  # from the file name
    assert seq.labels["right"]["valgus"] is False and seq.labels["right"]["mechanism"] == "none"
    rule = seq.meta["rule"]
    assert rule["right"]["push_off_dynamic_fppa_deg"] > 12.0  # measured, not the label
    assert seq.meta["labelled_by"] == "presence rule"
    assert rule["segment_length_jitter"] < 0.004 and not seq.meta.get("warnings")  # motion capture: no warning


def test_2d_keypoints_cannot_be_labelled_by_the_rule(tmp_path):
    sample = Path(__file__).resolve().parents[2] / "data" / "samples" / "squat_halpe26.json"
    with pytest.raises(InputError, match="3D joint centres"):
        convert([sample], tmp_path / "ds", label_by_rule=True)


def test_a_leg_never_seen_is_refused_not_labelled_no_valgus(tmp_path):
    """With the left knee missing in every frame the rule measures nothing; "no valgus" would be a guess."""
    import numpy as np

    from valgusml.io import npz, samples
    from valgusml.skeleton import canonical_index

    seq = samples.squat_3d(n_frames=40)
    keypoints = seq.keypoints.copy()
    keypoints[:, canonical_index("left_knee")] = np.nan
    path = npz.write(seq.replace(keypoints=keypoints), tmp_path / "kneeless.npz")
    with pytest.raises(InputError, match=r"kneeless\.npz: --label-by-rule cannot measure the left knee: no frame shows "
                                         "left_knee"):
        convert([path], tmp_path / "ds", label_by_rule=True)
    assert not (tmp_path / "ds").exists()
    brief = npz.write(seq.replace(keypoints=seq.keypoints[:2], confidence=seq.confidence[:2]), tmp_path / "brief.npz")
    with pytest.raises(InputError, match=r"brief\.npz: --label-by-rule cannot measure the left knee: only 2 frame"):
        convert([brief], tmp_path / "ds", label_by_rule=True)


def _write_squat(folder: Path, name: str, noise_m: float) -> Path:
    import numpy as np

    from valgusml.io import samples, trc

    seq = samples.squat_3d(n_frames=180)
    noise = np.random.default_rng(0).normal(0.0, noise_m, seq.keypoints.shape) if noise_m else 0.0
    path = folder / name
    trc.write(seq.replace(keypoints=(seq.keypoints + noise).astype(np.float32)), path)
    return path


def test_rule_labels_of_estimated_3d_carry_a_warning(tmp_path, capsys):
    """Marker-steady joint centres are labelled quietly; joint centres that jitter as an estimator's do (1 cm per
    joint and frame) are labelled too, with a warning naming the file and the jitter, counted in the summary."""
    from valgusml.features.rule import MEASURED_3D_MAX_JITTER

    steady = _write_squat(tmp_path, "squat_steady.trc", 0.0)
    jittery = _write_squat(tmp_path, "squat_estimated.trc", 0.01)
    header = convert([steady, jittery], tmp_path / "ds", label_by_rule=True)
    assert header["n_labelled"] == 2 and header["n_warnings"] == 1
    by_name = {Path(seq.meta["input"]).stem: seq for seq in open_dataset(tmp_path / "ds")}
    quiet, warned = by_name["squat_steady"], by_name["squat_estimated"]
    assert quiet.meta["rule"]["segment_length_jitter"] < 0.1 * MEASURED_3D_MAX_JITTER
    assert not quiet.meta.get("warnings")
    assert warned.meta["rule"]["segment_length_jitter"] > 3 * MEASURED_3D_MAX_JITTER
    (note,) = warned.meta["warnings"]
    assert "squat_estimated.trc" in note and "estimated 3D" in note
    assert f"{warned.meta['rule']['segment_length_jitter']:.1%}" in note
    assert warned.labels["left"]["valgus"] in (True, False)  # still labelled: the warning informs, it does not drop

    assert main([str(jittery), "--label-by-rule", "--out", str(tmp_path / "cli")]) == 0
    assert "estimated 3D labelled by the rule" in capsys.readouterr().out
    # the note names the input as the data set does, so the same files give the same fingerprint however typed
    assert str(tmp_path) not in note
    relative = convert([Path(os.path.relpath(p)) for p in (steady, jittery)], tmp_path / "ds_relative",
                       label_by_rule=True)
    assert relative["fingerprint"] == header["fingerprint"]


def _two_subjects(root: Path) -> list[Path]:
    """Two mocap sessions, one folder each (as OpenCap or Pose2Sim lay them out), two trials in each."""
    for subject in ("subject_a", "subject_b"):
        (root / subject).mkdir(parents=True)
        for trial in ("squats1.trc", "squats2.trc"):
            _write_squat(root / subject, trial, 0.0)
    return [root / "subject_a", root / "subject_b"]


def test_each_file_is_an_athlete_by_default_and_the_shared_folders_are_named(tmp_path, capsys):
    inputs = _two_subjects(tmp_path / "mocap")
    header = convert(inputs, tmp_path / "by_file", label_by_rule=True)
    assert header["n_athletes"] == 4
    assert header["shared_folders"] == {"subject_a": 2, "subject_b": 2}

    assert main([*map(str, inputs), "--label-by-rule", "--out", str(tmp_path / "cli")]) == 0
    printed = capsys.readouterr().out
    assert "4 share a folder with others: subject_a (2), subject_b (2)" in printed
    assert "--athlete-from folder" in printed


def test_athlete_from_folder_keeps_a_subjects_trials_together(tmp_path, capsys):
    inputs = _two_subjects(tmp_path / "mocap")
    assert main([*map(str, inputs), "--label-by-rule", "--athlete-from", "folder", "--out", str(tmp_path / "ds")]) == 0
    printed = capsys.readouterr().out
    assert "from 2 athlete(s)" in printed and "share a folder" not in printed
    ds = open_dataset(tmp_path / "ds")
    assert {seq.id: seq.athlete_id for seq in ds} == {
        "subject_a/squats1.trc": "subject_a", "subject_a/squats2.trc": "subject_a",
        "subject_b/squats1.trc": "subject_b", "subject_b/squats2.trc": "subject_b",
    }
    assert ds.athletes == ["subject_a", "subject_b"]  # what splits are made of: a subject is on one side only

    # one session's files given alone: the athlete is the folder they lie in
    one = convert(sorted((tmp_path / "mocap" / "subject_b").iterdir()), tmp_path / "one", label_by_rule=True,
                  athlete_from="folder")
    assert one["n_athletes"] == 1 and {seq.athlete_id for seq in open_dataset(tmp_path / "one")} == {"subject_b"}


def test_a_labels_csv_names_the_athletes_whatever_athlete_from_says(tmp_path):
    inputs = _two_subjects(tmp_path / "mocap")
    labels = tmp_path / "labels.csv"
    trials = [f"{subject}/squats{k}.trc" for subject in ("subject_a", "subject_b") for k in (1, 2)]
    labels.write_text("file,athlete_id,task\n" + "".join(f"{t},P{i},bilateral_squat\n" for i, t in enumerate(trials)))
    header = convert(inputs, tmp_path / "ds", labels=labels, label_by_rule=True, athlete_from="folder")
    assert {seq.id: seq.athlete_id for seq in open_dataset(tmp_path / "ds")} == {t: f"P{i}" for i, t in enumerate(trials)}
    assert header["shared_folders"] == {}


def test_unknown_athlete_from_is_refused(tmp_path):
    with pytest.raises(InputError, match="athlete_from"):
        convert(_two_subjects(tmp_path / "mocap"), tmp_path / "ds", athlete_from="session")
