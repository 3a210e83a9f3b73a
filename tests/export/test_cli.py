"""`valgusml predict` and `valgusml export` command lines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from valgusml.cli import main as valgusml_main
from valgusml.predictor.cli import main as predict_main

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
GOOD = ["squat_halpe26.json", "squat_coco17.json", "squat_mediapipe.csv", "squat_mediapipe.json", "squat.trc",
        "squat.npz", "squat_openpose"]


def _files(names):
    return [str(SAMPLES / n) for n in names]


def test_predict_every_sample_format(exported, capsys):
    code = valgusml_main(["predict", str(exported), *_files(GOOD)])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0
    records = [json.loads(line) for line in out]
    assert [r["file"] for r in records] == _files(GOOD)
    for r in records:
        assert 0 <= r["valgus_probability"] <= 1 and r["mechanism"] in r["mechanism_probabilities"]
    coco = records[1]
    assert any("assumed 30 fps" in w for w in coco["warnings"]) and any("missing feet" in w for w in coco["warnings"])


def test_bad_files_get_one_line_each_and_others_are_done(exported, tmp_path, capsys):
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"truncated": [1, 2')
    missing = tmp_path / "missing.trc"
    code = predict_main([str(exported), str(garbage), *_files(GOOD[:2]), str(missing)])
    captured = capsys.readouterr()
    assert code == 1
    assert len(captured.out.strip().splitlines()) == 2
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"valgusml predict: {garbage}: ") and "JSON" in errors[0]
    assert errors[1].startswith(f"valgusml predict: {missing}: ")


def test_output_csv_and_jsonl(exported, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"nope")
    csv_path = tmp_path / "out" / "results.csv"
    assert predict_main([str(exported), *_files(GOOD[:3]), str(bad), "--output", str(csv_path)]) == 1
    rows = list(csv.DictReader(csv_path.open()))
    assert [Path(r["file"]).name for r in rows] == [*GOOD[:3], "bad.npz"]
    assert float(rows[0]["p_none"]) == pytest.approx(1 - float(rows[0]["valgus_probability"]), abs=1e-6)
    assert rows[3]["error"] and not rows[0]["error"]
    jsonl = tmp_path / "results.jsonl"
    assert predict_main([str(exported), *_files(GOOD[:2]), "--output", str(jsonl), "--fps", "60"]) == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 2 and all("limbs" in r for r in records)
    assert capsys.readouterr().out == ""


def test_predict_refuses_a_bad_model_folder(tmp_path, capsys):
    assert predict_main([str(tmp_path), *_files(GOOD[:1])]) == 2
    assert "missing model.json" in capsys.readouterr().err


def test_task_and_sex_reach_the_rule(exported, capsys):
    """`--task` names the movement for every file (a single-leg task scores only its stance knee); `--sex` picks
    whose threshold the measured 3D angle is held to."""
    def limbs(*options):
        assert predict_main([str(exported), *_files(["squat.trc"]), *options]) == 0
        return json.loads(capsys.readouterr().out)

    single = limbs("--task", "single_leg_squat_left")
    assert single["limbs"]["right"]["valgus_probability"] == 0.0
    assert any("only the left knee is loaded" in w for w in single["warnings"])
    female, male = (limbs("--task", "bilateral_squat", "--sex", sex)["limbs"]["left"] for sex in ("female", "male"))
    both = limbs("--task", "bilateral_squat")["limbs"]["left"]
    assert female["valgus_probability"] != male["valgus_probability"]
    assert min(female["valgus_probability"], male["valgus_probability"]) <= both["valgus_probability"] <= max(
        female["valgus_probability"], male["valgus_probability"])


def test_an_unknown_task_is_refused_before_any_file_is_read(exported, capsys):
    with pytest.raises(SystemExit) as exit_:
        predict_main([str(exported), *_files(["squat.trc"]), "--task", "hopping"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown task 'hopping'" in err and "drop_vertical_jump" in err


def test_hydras_own_usage_errors_are_one_line_not_a_traceback(capsys, monkeypatch):
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as stopped:
        valgusml_main(["train", "-m", "seed=0,1", "--cfg", "job"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Only one of --run, --multirun, --cfg" in err and "Traceback" not in err and len(err.splitlines()) == 1
