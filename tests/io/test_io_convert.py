from __future__ import annotations

import csv
import math
import shutil

import numpy as np
import pytest

from valgusml.cli import main as cli_main
from valgusml.data import convert, open_dataset
from valgusml.data.convert import main
from valgusml.io import samples


def _labels(path, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(convert.LABEL_COLUMNS and ["file", "athlete_id", "task", *convert.LABEL_COLUMNS])
        writer.writerows(rows)
    return path


def test_convert_samples_end_to_end(samples_dir, tmp_path, capsys):
    out = tmp_path / "data" / "samples"
    rc = cli_main(["convert", str(samples_dir), "--labels", str(samples_dir / "labels.csv"), "--out", str(out), "--dims", "2"])
    assert rc == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "7 sequences (6 labelled) from 4 athlete(s)" in printed
    ds = open_dataset(out)
    assert len(ds) == 7 and ds.skeleton == "canonical" and ds.dims == 2 and ds.athletes == ["A01", "A02", "A03", "A04"]
    by_id = {seq.id: seq for seq in ds}
    assert set(by_id) == {"squat.npz", "squat.trc", "squat_coco17.json", "squat_halpe26.json", "squat_mediapipe.csv",
                          "squat_mediapipe.json", "squat_openpose"}
    assert by_id["squat_coco17.json"].labels is None
    right = by_id["squat_openpose"].labels["right"]
    assert right["valgus"] and right["mechanism"] == "pronation" and right["severity_deg"] == 31.6  # the rule's peak FPPA
    assert by_id["squat_mediapipe.json"].labels["left"] == {"valgus": False, "mechanism": "none", "severity_deg": 0.0,
                                                            "contributions": {"none": 1.0}}
    assert by_id["squat.trc"].fps == 60.0 and by_id["squat.trc"].meta["projected"].startswith("frontal")
    assert any("2 people" in w for w in by_id["squat_openpose"].meta["warnings"])
    assert [p.name for p in out.parent.iterdir()] == ["samples"]  # no temporary folder left
    # same inputs again → same fingerprint
    again = tmp_path / "again"
    assert main([str(samples_dir), "--labels", str(samples_dir / "labels.csv"), "--out", str(again), "--dims", "2"]) == 0
    assert open_dataset(again).fingerprint == ds.fingerprint


def test_3d_only_and_folder_of_pose_files(samples_dir, tmp_path):
    labels = _labels(tmp_path / "l.csv", [["squat.trc", "B1", "bilateral_squat", "no", "", "", "yes", "hip_weakness", "9.5"]])
    assert main([str(samples_dir / "squat.trc"), "--labels", str(labels), "--out", str(tmp_path / "d3")]) == 0
    ds = open_dataset(tmp_path / "d3")
    (seq,) = list(ds)
    assert ds.dims == 3 and seq.labels["left"]["mechanism"] == "none" and math.isnan(seq.labels["left"]["severity_deg"])
    np.testing.assert_allclose(seq.keypoints, samples.squat_3d(fps=60.0).keypoints, atol=1e-4)


def test_failed_convert_leaves_nothing(samples_dir, tmp_path, capsys):
    inputs = tmp_path / "in"
    shutil.copytree(samples_dir, inputs)
    (inputs / "zz_broken.json").write_text('[{"image_id": 1, "keypoints": [1, 2')
    out = tmp_path / "out" / "ds"
    rc = main([str(inputs), "--out", str(out), "--dims", "2"])
    err = capsys.readouterr().err
    assert rc == 1 and "zz_broken.json" in err and "not valid JSON" in err
    assert not out.exists() and list(out.parent.iterdir()) == []
    # mixing 2D and 3D without --dims 2 fails too, naming the file
    assert main([str(samples_dir), "--out", str(out)]) == 1
    assert "--dims 2" in capsys.readouterr().err and not out.exists()


def test_existing_output_and_overwrite(samples_dir, tmp_path, capsys):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    assert main([str(samples_dir / "squat.npz"), "--out", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err and (out / "keep.txt").exists()
    assert main([str(samples_dir / "squat.npz"), "--out", str(out), "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and len(open_dataset(out)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize(
    "rows,message",
    [
        ([["squat.npz", "A", "bilateral_squat", "yes", "", "", "no", "", ""]], "left_mechanism is blank"),
        ([["squat.npz", "A", "bilateral_squat", "no", "none", "", "", "", ""]], "only the left limb is labelled"),
        ([["squat.npz", "A", "bilateral_squat", "maybe", "none", "", "no", "none", ""]], "valgus must be true or false"),
        ([["squat.npz", "A", "bilateral_squat", "yes", "weak_knees", "", "no", "none", ""]], "weak_knees"),
        ([["squat.npz", "", "bilateral_squat", "", "", "", "", "", ""]], "athlete_id is blank"),
        ([["other.npz", "A", "bilateral_squat", "", "", "", "", "", ""]], "no labels row for 1 input"),
        ([["squat.npz", "A", "bilateral_squat", "", "", "", "", "", ""], ["ghost.trc", "B", "bilateral_squat", "", "", "", "", "", ""]], "match no input"),
        ([["squat.npz", "A", "bilateral_squat", "no", "none", "", "yes", "pronation", "inf"]],
         "severity_deg must be finite degrees"),
        ([["squat.npz", "A", "Squat", "", "", "", "", "", ""]], "row 2: unknown task 'Squat'"),
    ],
)
def test_label_errors_name_row_and_problem(samples_dir, tmp_path, capsys, rows, message):
    labels = _labels(tmp_path / "labels.csv", rows)
    out = tmp_path / "ds"
    assert main([str(samples_dir / "squat.npz"), "--labels", str(labels), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and not out.exists()


def test_wrong_label_columns(samples_dir, tmp_path, capsys):
    (tmp_path / "l.csv").write_text("name,athlete\nsquat.npz,A\n")
    assert main([str(samples_dir / "squat.npz"), "--labels", str(tmp_path / "l.csv"), "--out", str(tmp_path / "d")]) == 1
    assert "wrong columns: missing file (or id), athlete_id" in capsys.readouterr().err
