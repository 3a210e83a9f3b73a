"""Export: the folder's content, ONNX parity, dynamic batch, and loud, clean failures."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import pytest

from valgusml.errors import ModelFileError
from valgusml.export import ExportError, export_predictor
from valgusml.export.onnx import check_parity, random_windows
from valgusml.labels import MECHANISMS
from valgusml.predictor import Predictor

from .conftest import WINDOW, labelled_sequences, parity_sequences, tiny_source


def test_the_threshold_is_chosen_on_validation_recordings_as_the_predictor_answers(tmp_path, caplog):
    """Training chose 0.42 on its window rows; the folder gets the threshold its own answers on the validation
    athletes' recordings call best, by the checkpoint's rule, and says where it came from."""
    from valgusml.export.folder import validation_threshold

    validation = labelled_sequences()
    out = export_predictor(tiny_source(), tmp_path / "f1", parity_sequences(), validation)
    meta = json.loads((out / "model.json").read_text())
    chosen = validation_threshold(Predictor.load(out), validation)
    assert chosen is not None and chosen != pytest.approx(0.42)
    assert meta["decision_threshold"] == pytest.approx(chosen)
    assert meta["metrics"]["decision_threshold_from"] == {"rule": "f1 on validation athletes", "sequences": 12,
                                                          "checkpoint_threshold": 0.42}
    net, cfg, info = tiny_source()
    out = export_predictor((net, cfg, {**info, "threshold_rule": "youden"}), tmp_path / "youden", None, validation)
    meta = json.loads((out / "model.json").read_text())
    assert meta["decision_threshold"] == pytest.approx(validation_threshold(Predictor.load(out), validation, "youden"))
    assert meta["metrics"]["decision_threshold_from"]["rule"] == "youden on validation athletes"

    straight = [seq for seq in validation if not seq.labels["left"]["valgus"]]
    with caplog.at_level("WARNING", logger="valgusml.export.onnx"):
        out = export_predictor(tiny_source(), tmp_path / "one-class", None, straight)
    meta = json.loads((out / "model.json").read_text())
    assert meta["decision_threshold"] == 0.42 and "do not hold both classes" in caplog.text
    assert meta["metrics"]["decision_threshold_from"] == {"rule": "the checkpoint's (its validation windows)"}


def test_folder_holds_exactly_model_and_metadata(exported):
    assert sorted(p.name for p in exported.iterdir()) == ["model.json", "model.onnx"]
    meta = json.loads((exported / "model.json").read_text())
    assert meta["format_version"] == 1
    assert meta["mechanisms"] == list(MECHANISMS)
    assert meta["skeleton"] == "canonical" and "coco17" in meta["accepted_skeletons"]
    assert (meta["fps"], meta["window"], meta["stride"]) == (30.0, WINDOW, 16)
    assert meta["preprocess"]["min_valid_frames"] == 8
    assert meta["decision_threshold"] == 0.42
    assert meta["metrics"]["decision_threshold_from"] == {"rule": "the checkpoint's (its validation windows)"}
    assert meta["dataset_fingerprint"] == "test-fingerprint"
    assert meta["metrics"]["test"] == {"valgus_auroc": 0.5}
    assert meta["architecture"]["backbone"] == "TCN" and meta["architecture"]["parameters"] > 0
    digest = hashlib.sha256((exported / "model.onnx").read_bytes()).hexdigest()
    assert meta["model"]["sha256"] == digest
    parity = meta["parity"]
    assert parity["passed"] is True
    assert parity["max_abs_diff_probability"] <= 1e-4
    assert parity["validation_sequences"] == 3 and parity["windows"] >= parity["validation_windows"] + 8


def test_onnx_graph_is_self_contained_with_dynamic_batch(exported):
    model = onnx.load(str(exported / "model.onnx"))
    onnx.checker.check_model(model)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    assert inputs["joints"][1:] == [WINDOW, 20, 3] and isinstance(inputs["joints"][0], str)
    assert inputs["mask"][1:] == [WINDOW]
    assert [o.name for o in model.graph.output] == ["valgus_probability", "mechanism_probabilities", "severity_deg",
                                                 "frontal_fppa_deg"]
    # No per-node source metadata (stack traces with this checkout's paths and line numbers): the same weights
    # give the same bytes, and the same sha256, wherever and from whichever revision they are exported.
    assert not any(node.metadata_props for node in model.graph.node)
    assert "/valgusml/" not in (exported / "model.onnx").read_bytes().decode("latin-1")


def test_parity_torch_vs_onnxruntime_on_many_batch_sizes(predictor):
    import torch

    from valgusml.models import ProbabilityWrapper

    net, _, _ = tiny_source()
    wrapper = ProbabilityWrapper(net).eval()
    windows = random_windows(13, WINDOW, predictor.metadata["inputs"]["measures"][2], seed=3)
    for n in (1, 2, 5, 13):
        batch = tuple(a[:n] for a in windows)
        with torch.no_grad():
            expected = wrapper(*(torch.from_numpy(a) for a in batch))
        got = predictor.run_windows(*batch)
        for e, g in zip(expected, got, strict=True):
            assert g.shape == tuple(e.shape)
            np.testing.assert_allclose(g, e.numpy(), atol=1e-4, rtol=0)
    result = check_parity(wrapper, predictor, windows)
    assert result["passed"] and result["max_abs_diff_probability"] < 1e-5


def test_parity_mismatch_fails_loudly(predictor):
    from valgusml.models import ProbabilityWrapper

    other, _, _ = tiny_source(seed=1)  # different weights than the exported model
    windows = random_windows(4, WINDOW, predictor.metadata["inputs"]["measures"][2])
    with pytest.raises(ExportError, match="parity check failed"):
        check_parity(ProbabilityWrapper(other).eval(), predictor, windows)


def test_failed_export_leaves_nothing_behind(tmp_path, monkeypatch):
    import valgusml.export.onnx as export_onnx_module

    def broken_export(wrapper, example, path):
        path.write_bytes(b"not an onnx model")

    monkeypatch.setattr(export_onnx_module, "export_onnx", broken_export)
    out = tmp_path / "predictor"
    with pytest.raises(ModelFileError, match="ONNX Runtime cannot load"):
        export_predictor(tiny_source(), out, parity_sequences()[:1])
    assert list(tmp_path.iterdir()) == []


def test_export_replaces_an_existing_folder_atomically(exported, tmp_path, monkeypatch):
    import shutil

    import valgusml.export.onnx as export_onnx_module

    # Re-use the session's ONNX file instead of re-tracing: what is tested is the folder swap.
    monkeypatch.setattr(
        export_onnx_module, "export_onnx", lambda wrapper, example, path: shutil.copy(exported / "model.onnx", path)
    )
    out = tmp_path / "predictor"
    out.mkdir()
    (out / "model.json").write_text("{}")
    (out / "stale.txt").write_text("old")
    export_predictor(tiny_source(), out, None)
    assert sorted(p.name for p in out.iterdir()) == ["model.json", "model.onnx"]
    assert [p.name for p in tmp_path.iterdir()] == ["predictor"]
    meta = json.loads((out / "model.json").read_text())
    assert meta["parity"]["passed"] and "validation_sequences" not in meta["parity"]
    Predictor.load(out)


def test_export_refuses_to_clobber_a_foreign_folder(tmp_path):
    out = tmp_path / "important"
    out.mkdir()
    (out / "thesis.tex").write_text("x")
    from valgusml.export.folder import replace_dir

    src = tmp_path / "src"
    src.mkdir()
    with pytest.raises(ExportError, match="not a predictor folder"):
        replace_dir(src, out)
    assert (out / "thesis.tex").exists()
