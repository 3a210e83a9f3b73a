"""The predictor as an MLflow pyfunc model: logged from code (no pickle), registered, loaded and served."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

mlflow = pytest.importorskip("mlflow")

from valgusml.export import log_predictor_to_mlflow  # noqa: E402
from valgusml.export.pyfunc import REGISTERED_MODEL_NAME, signature_and_example  # noqa: E402


@pytest.fixture(scope="module")
def logged(exported, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("export-test", artifact_location=str(root / "artifacts"))
        with mlflow.start_run(experiment_id=experiment) as run:
            info = log_predictor_to_mlflow(exported)
        yield uri, run.info.run_id, info, root
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
        mlflow.set_tracking_uri(previous or f"sqlite:///{Path.cwd() / 'mlflow.db'}")


def test_logged_registered_and_loadable(logged, predictor):
    uri, run_id, info, root = logged
    assert info.registered_model_version == 1 or int(info.registered_model_version) == 1
    assert info.run_id == run_id
    assert info.signature.inputs.input_names()[:3] == ["keypoints", "skeleton", "fps"]
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}/1")
    _, example = signature_and_example()
    out = model.predict(example)
    expected = predictor.predict(
        __import__("numpy").asarray(example["keypoints"][0], dtype="float32"), skeleton="halpe26", fps=30.0
    )
    assert out["valgus_probability"].iloc[0] == pytest.approx(expected.valgus_probability, abs=1e-6)
    assert out["mechanism"].iloc[0] == expected.mechanism
    assert json.loads(out["prediction_json"].iloc[0])["limbs"]["left"]["valgus"] == expected.limbs["left"].valgus
    # Models from code: the model is a source file, nothing pickled.
    stored = list((root / "artifacts").rglob("*"))
    assert any(p.name == "pyfunc_model.py" for p in stored)
    assert not any(p.suffix in (".pkl", ".pickle", ".cloudpickle") for p in stored)


def test_a_request_may_name_the_task_and_sex(logged, predictor):
    """Optional `task` and `sex` columns reach the predictor as `valgusml predict --task / --sex` do: a single-leg
    task scores its stance knee only; an unknown task or sex is refused naming the row."""
    import pandas as pd
    from mlflow.exceptions import MlflowException

    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}/1")
    _, example = signature_and_example()
    row = example.iloc[0].to_dict()
    out = model.predict(pd.DataFrame([row, {**row, "task": "single_leg_squat_left", "sex": "female"}]))
    assert out["right_valgus_probability"].iloc[1] == 0.0 < out["right_valgus_probability"].iloc[0]
    assert "only the left knee is loaded" in out["warnings"].iloc[1]
    for bad, message in (({"task": "hopping"}, "row 1: unknown task 'hopping'"), ({"sex": "x"}, "row 1: sex must be")):
        with pytest.raises(MlflowException, match=message):
            model.predict(pd.DataFrame([row, {**row, **bad}]))


def test_what_json_clients_send_is_answered_or_refused_by_valgusml(logged, predictor):
    """A whole-number fps (JavaScript sends 30.0 as 30), keypoints in whole pixels, and a keypoints column some rows
    lack (given as _npy there) were refused by MLflow's schema check ("Can not safely convert int64 to float64")
    before valgusml saw them; now they are answered, and what is not a number is refused naming the row."""
    import numpy as np
    import pandas as pd
    from mlflow.exceptions import MlflowException

    from valgusml.export.pyfunc import encode_array

    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}/1")
    _, example = signature_and_example()
    pixels = np.rint(np.asarray(example["keypoints"][0], dtype=np.float64)).astype(int)
    expected = predictor.predict(pixels.astype(np.float32), skeleton="halpe26", fps=30.0)
    out = model.predict(pd.DataFrame([{"keypoints": pixels.tolist(), "skeleton": "halpe26", "fps": 30},
                                      {"keypoints_npy": encode_array(pixels.astype(np.float32)), "fps": 30}]))
    assert out["valgus_probability"].tolist() == pytest.approx([expected.valgus_probability] * 2, abs=1e-6)
    with pytest.raises(MlflowException, match="row 1: keypoints must be a nested list of numbers"):
        model.predict(pd.DataFrame([{"keypoints": pixels.tolist(), "fps": 30},
                                    {"keypoints": [[["a", "b"]] * 26] * 40, "fps": 30}]))
    # a recording the predictor refuses is named by its row of the request, not its place in a batch of rows
    short = pixels[:3].tolist()
    with pytest.raises(MlflowException, match="valgusml: row 2: too short"):
        model.predict(pd.DataFrame([{"keypoints": pixels.tolist(), "skeleton": "halpe26", "fps": 60.0},
                                    {"keypoints": pixels.tolist(), "skeleton": "halpe26", "fps": 30},
                                    {"keypoints": short, "skeleton": "halpe26", "fps": 30}]))
    with pytest.raises(MlflowException, match="row 0: fps must be a number, got True"):
        model.predict(pd.DataFrame([{"keypoints": pixels.tolist(), "fps": True}]))


def _training_checkpoint(path: Path) -> Path:
    """A checkpoint laid out as training writes it (Hydra net config, preprocess dict, `valgusml` info)."""
    import torch

    from valgusml.models import TCN, MultiTaskHead  # noqa: F401  (the config below names them)

    from .conftest import tiny_source

    net, cfg, info = tiny_source(seed=0)
    net_config = {
        "_target_": "valgusml.models.ValgusNet",
        "backbone": {"_target_": "valgusml.models.TCN", "_partial_": True, "channels": 16, "n_blocks": 2, "dropout": 0.0},
        "head": {"_target_": "valgusml.models.MultiTaskHead", "_partial_": True, "hidden": 16, "dropout": 0.0},
    }
    checkpoint = {
        "epoch": 3,
        "global_step": 42,
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
        "hyper_parameters": {"net": net_config, "preprocess": cfg.to_dict()},
        "valgusml": {**info, "decision_threshold": 0.37, "split": {"train": [], "val": [], "test": []}},
    }
    torch.save(checkpoint, path)
    return path


def test_export_cli_from_an_mlflow_run_id(logged, exported, tmp_path, capsys, monkeypatch):
    import shutil

    import valgusml.export.onnx as export_onnx_module

    # Tracing is covered by the session export; here the checkpoint holds the same weights (seed 0), so the
    # session's model.onnx stands in and the parity check proves the checkpoint round trip rebuilt that net.
    monkeypatch.setattr(
        export_onnx_module, "export_onnx", lambda wrapper, example, path: shutil.copy(exported / "model.onnx", path)
    )
    from mlflow.tracking import MlflowClient

    from valgusml.export.cli import main as export_main

    uri, _, _, root = logged
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("export-test").experiment_id
    run_id = client.create_run(experiment).info.run_id
    ckpt = _training_checkpoint(tmp_path / "epoch=3-step=42.ckpt")
    client.log_artifact(run_id, str(ckpt), "checkpoints")
    other = tmp_path / "other"
    other.mkdir()
    client.log_artifact(run_id, str(_training_checkpoint(other / "last.ckpt")), "checkpoints")
    client.set_tag(run_id, "best_checkpoint", str(ckpt))
    out = tmp_path / "exported"
    assert export_main([run_id, "--out", str(out), "--tracking-uri", uri]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["parity_max_abs_diff"] <= 1e-4 and summary["decision_threshold"] == 0.37
    meta = json.loads((out / "model.json").read_text())
    assert meta["training_run_id"] == run_id and meta["epoch"] == 3
    assert meta["checkpoint"].endswith("epoch=3-step=42.ckpt")
    assert meta["architecture"]["config"]["backbone"]["_target_"] == "valgusml.models.TCN"
    # A run id that is not in the store, and a checkpoint path that does not exist: one-line errors.
    assert export_main(["0123456789abcdef0123456789abcdef", "--out", str(tmp_path / "x"), "--tracking-uri", uri]) == 1
    assert "neither a checkpoint file nor a run" in capsys.readouterr().err
    assert export_main([str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "x")]) == 1
    assert "no such checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_export_cli_reads_a_run_outside_the_global_store(logged, exported, tmp_path, capsys, monkeypatch):
    """A run laid out as training's (the predictor folder as artifacts `predictor/` and as the logged model
    `predictor`), named with `--tracking-uri` while the global store is another (another cwd's mlflow.db):
    listing `predictor/` lists the logged model's files too, which MLflow looks up in the global store only, so
    the export failed with "Logged model ... not found"."""
    import shutil

    import valgusml.export.onnx as export_onnx_module

    monkeypatch.setattr(
        export_onnx_module, "export_onnx", lambda wrapper, example, path: shutil.copy(exported / "model.onnx", path)
    )
    from mlflow.tracking import MlflowClient

    from valgusml.export.cli import main as export_main

    uri, run_id, _, _ = logged  # the fixture's run holds the logged model `predictor`
    client = MlflowClient(uri)
    client.log_artifacts(run_id, str(exported), "predictor")
    client.log_artifact(run_id, str(_training_checkpoint(tmp_path / "best-epoch003.ckpt")), "checkpoints")
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    try:
        assert export_main([run_id, "--out", str(tmp_path / "exported"), "--tracking-uri", uri]) == 0
    finally:
        mlflow.set_tracking_uri(uri)
    meta = json.loads((tmp_path / "exported" / "model.json").read_text())
    assert meta["checkpoint"].endswith("best-epoch003.ckpt") and meta["epoch"] == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_mlflow_models_serve_answers_http(logged, stop_process):
    uri, _, _, _ = logged
    port = _free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{REGISTERED_MODEL_NAME}/1",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )
    _, example = signature_and_example()
    body = json.dumps({"dataframe_records": example.to_dict(orient="records")}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        answer = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    answer = (response.status, json.loads(response.read()))
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        assert answer is not None, (proc.poll(), proc.stdout.read().decode()[-2000:] if proc.poll() is not None else "")
        status, payload = answer
        assert status == 200
        row = payload["predictions"][0]
        assert 0 <= row["valgus_probability"] <= 1 and row["mechanism"] in (
            "none", "hip_weakness", "adductor_tfl_overactivity", "pronation", "limited_dorsiflexion")
    finally:
        stop_process(proc, timeout=15)
        proc.stdout.close()


def test_rest_refusal_is_a_400_with_valgusml_message(logged):
    """A request valgusml refuses reaches the client as HTTP 400 with valgusml's own message, no stack trace
    (issue 13); `invocations` is what `mlflow models serve` runs for each request."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import invocations

    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}/1")
    _, example = signature_and_example()
    body = json.dumps({"dataframe_records": [{"keypoints": example["keypoints"][0], "fps": 1e-7}]})
    with pytest.raises(MlflowException) as caught:
        invocations(body, "application/json", model, model.metadata.get_input_schema())
    assert caught.value.get_http_status_code() == 400
    assert re.search(r"valgusml: row 0: fps 1e-07 is outside \[1, 10000\]", caught.value.message)
    assert "Traceback" not in json.dumps(json.loads(caught.value.serialize_as_json()))


def test_rest_compact_payload_gives_the_same_answer(logged):
    import numpy as np

    from valgusml.export.pyfunc import encode_array

    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}/1")
    _, example = signature_and_example()
    keypoints = np.asarray(example["keypoints"][0], dtype=np.float32)
    nested = model.predict(example)
    compact = model.predict(__import__("pandas").DataFrame([{"keypoints_npy": encode_array(keypoints), "fps": 30.0}]))
    assert compact["valgus_probability"].iloc[0] == pytest.approx(nested["valgus_probability"].iloc[0], abs=1e-6)


def test_an_ensemble_is_logged_and_registered_like_an_export(logged, exported, tmp_path, capsys):
    from valgusml.export import export_predictor
    from valgusml.export.ensemble import main as ensemble_main
    from valgusml.predictor import Predictor

    from .conftest import parity_sequences, tiny_source

    uri = logged[0]
    other = export_predictor(tiny_source(1), tmp_path / "seed1", parity_sequences())
    out = tmp_path / "ensemble"
    assert ensemble_main([str(out), str(exported), str(other), "--log-mlflow", "--tracking-uri", uri]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    model = mlflow.pyfunc.load_model(record["model_uri"])
    _, example = signature_and_example()
    expected = Predictor.load(out).predict(
        __import__("numpy").asarray(example["keypoints"][0], dtype="float32"), skeleton="halpe26", fps=30.0
    )
    assert model.predict(example)["valgus_probability"].iloc[0] == pytest.approx(expected.valgus_probability, abs=1e-6)
