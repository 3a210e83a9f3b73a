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


# -- defect 5: the model folder is checked, not trusted -------------------------------------------------------
def _copy(exported, tmp_path) -> Path:
    import shutil

    out = tmp_path / "model"
    shutil.copytree(exported, out)
    return out


def _edit_meta(folder: Path, change) -> None:
    meta = json.loads((folder / "model.json").read_text())
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("file", ["../model.onnx", "/etc/passwd", "sub/../../model.onnx"])
def test_model_file_may_not_escape_the_folder(exported, tmp_path, file):
    import valgusml
    from valgusml.errors import ModelFileError

    folder = _copy(exported, tmp_path)
    (tmp_path / "model.onnx").write_bytes((folder / "model.onnx").read_bytes())
    _edit_meta(folder, lambda m: m["model"].update(file=file))
    with pytest.raises(ModelFileError, match=r"model\.file .* must name a file inside the folder"):
        valgusml.Predictor.load(folder)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("preprocess", {"fps": -1}, "preprocess"),
        ("preprocess", {"window": 20}, r"window 20 does not fit the model.s input"),
        ("preprocess", "fast", "preprocess"),
        ("mechanisms", None, "mechanisms"),
        ("format_version", True, "format_version"),
        ("model", {"sha256": 5}, "sha256"),
        ("measure_names", "all", "measure_names"),
    ],
)
def test_bad_model_json_values_fail_at_load(exported, tmp_path, key, value, message):
    import valgusml
    from valgusml.errors import ModelFileError

    folder = _copy(exported, tmp_path)

    def change(meta):
        if isinstance(value, dict) and isinstance(meta.get(key), dict):
            meta[key].update(value)
        else:
            meta[key] = value

    _edit_meta(folder, change)
    with pytest.raises(ModelFileError, match=message):
        valgusml.Predictor.load(folder)


def test_external_data_outside_the_hash_is_never_read(tmp_path, monkeypatch):
    """A model referring to an external weights file: refused unless model.json lists it with its sha256, and
    then read from the folder (not the working directory)."""
    onnx = pytest.importorskip("onnx")
    from valgusml.errors import ModelFileError
    from valgusml.predictor.format import external_session_folder, sha256_bytes

    folder = tmp_path / "model"
    folder.mkdir()
    weights = onnx.numpy_helper.from_array(np.ones((1, 2), np.float32), "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Add", ["x", "w"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 2])], [weights])
    onnx.save_model(onnx.helper.make_model(graph), folder / "model.onnx", save_as_external_data=True,
                    location="weights.bin", size_threshold=0)
    (folder / "model.json").write_text(json.dumps({"format_version": 1, "model": {"file": "model.onnx"}}))
    monkeypatch.chdir(folder)  # where onnxruntime would look for weights.bin by default
    import onnxruntime as ort

    data = (folder / "model.onnx").read_bytes()
    with external_session_folder({}) as empty, pytest.raises(Exception, match="External data"):
        options = ort.SessionOptions()
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", empty)
        ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    blob = (folder / "weights.bin").read_bytes()
    with external_session_folder({"weights.bin": blob}) as private:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.model_external_initializers_file_folder_path", private)
        out = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]).run(
            None, {"x": np.zeros((1, 2), np.float32)})
    assert out[0].tolist() == [[1.0, 1.0]]
    meta = {"model": {"file": "model.onnx", "external_data": {"weights.bin": sha256_bytes(b"other")}}}
    from valgusml.predictor.format import read_external_data

    with pytest.raises(ModelFileError, match=r"weights\.bin: sha256 .* does not match"):
        read_external_data(folder, meta)


def test_exported_model_refers_to_no_unlisted_external_data(exported, tmp_path, squat):
    """The same session set-up the predictor uses refuses a graph with unlisted external data (ModelFileError)."""
    onnx = pytest.importorskip("onnx")
    import valgusml
    from valgusml.errors import ModelFileError
    from valgusml.predictor.format import sha256_bytes

    folder = _copy(exported, tmp_path)
    model = onnx.load(folder / "model.onnx")
    onnx.save_model(model, folder / "model.onnx", save_as_external_data=True, location="w.bin", size_threshold=1024)
    digest = sha256_bytes((folder / "model.onnx").read_bytes())
    _edit_meta(folder, lambda m: m["model"].update(sha256=digest))
    with pytest.raises(ModelFileError, match="external data"):
        valgusml.Predictor.load(folder)
    _edit_meta(folder, lambda m: m["model"].update(external_data={"w.bin": sha256_bytes((folder / "w.bin").read_bytes())}))
    assert 0 <= valgusml.Predictor.load(folder).predict(squat, fps=60.0).valgus_probability <= 1


def test_outputs_out_of_range_are_a_model_file_error(predictor, squat, monkeypatch):
    from valgusml.errors import ModelFileError

    real = predictor.run_windows

    def broken(*args):
        valgus, mechanism, severity = real(*args)
        return valgus * 0 + 7.0, mechanism, severity

    monkeypatch.setattr(predictor, "run_windows", broken)
    with pytest.raises(ModelFileError, match=r"valgus_probability .*7.* outside \[0, 1\]"):
        predictor.predict(squat, fps=60.0)
