"""The predictor on odd input and odd model folders (issue 13): bounded work, typed errors, honest answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from valgusml.errors import InputError
from valgusml.predictor.cli import main as predict_main

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


# -- defect 1: bounded work ------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [1e-6, 1e-3])
def test_tiny_fps_is_refused_not_allocated(predictor, squat, fps):
    with pytest.raises(InputError, match=r"fps .* is outside"):
        predictor.predict(squat, fps=fps)


def test_predict_batch_none_is_an_input_error(predictor):
    with pytest.raises(InputError, match="list of recordings, got NoneType"):
        predictor.predict_batch(None)


def test_one_bad_file_in_a_batch_is_skipped_and_the_output_written(exported, tmp_path, capsys):
    lines = (SAMPLES / "squat.trc").read_text().splitlines()
    cells = lines[2].split("\t")
    cells[0] = "1e-9"  # DataRate
    slow = tmp_path / "slow.trc"
    slow.write_text("\n".join([*lines[:2], "\t".join(cells), *lines[3:]]) + "\n")
    out = tmp_path / "results.jsonl"
    code = predict_main([str(exported), str(SAMPLES / "squat.npz"), str(slow), str(SAMPLES / "squat.trc"),
                         "--output", str(out)])
    assert code == 1
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["file"] for r in records] == [str(SAMPLES / "squat.npz"), str(slow), str(SAMPLES / "squat.trc")]
    assert "fps 1e-09 is outside" in records[1]["error"]
    assert all(0 <= records[k]["valgus_probability"] <= 1 for k in (0, 2))
    assert "slow.trc" in capsys.readouterr().err


def test_threads_zero_is_refused(exported, capsys):
    with pytest.raises(SystemExit) as exit_info:
        predict_main([str(exported), str(SAMPLES / "squat.npz"), "--threads", "0"])
    assert exit_info.value.code == 2
    assert "--threads: must be an integer >= 1, got '0'" in capsys.readouterr().err


def test_rest_fps_field_is_bounded(predictor, squat):
    from valgusml.export.pyfunc import predict_records

    with pytest.raises(InputError, match=r"fps 1e-07 is outside"):
        predict_records(predictor, [{"keypoints": squat.tolist(), "skeleton": "halpe26", "fps": 1e-7}])


def test_concatenated_long_standing_is_bounded_by_duration(predictor, squat):
    from valgusml import limits

    long = np.concatenate([squat] * 4)  # 12 s at 60 fps
    with limits.override(max_duration_s=10.0), pytest.raises(InputError, match=r"beyond the limit of 10 s"):
        predictor.predict(long, fps=60.0)
