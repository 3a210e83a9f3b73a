"""Export: the folder's content, ONNX parity, dynamic batch, and loud, clean failures."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import onnx
import pytest

from valgusml.errors import ModelFileError
from valgusml.export import ExportError, export_predictor
from valgusml.export.onnx import check_parity, random_windows
from valgusml.labels import MECHANISMS
from valgusml.predictor import Predictor

from .conftest import WINDOW, labelled_sequences, mixed_deficit_sequences, parity_sequences, tiny_source


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


def test_the_mechanism_offsets_are_chosen_on_validation_recordings_and_change_the_call(tmp_path):
    """With two or more deficits among the validation labels the folder gets the offsets its own answers there
    call best (the offsets of `choose_mechanism_offsets` on the predictor's answers without them); with one
    deficit, none, and the folder calls the most probable deficit."""
    from valgusml.labels import DEFICITS
    from valgusml.predictor.results import limb_arrays
    from valgusml.scoring.arrays import LabelArrays, ScoreArrays
    from valgusml.scoring.mechanism_offsets import choose_mechanism_offsets

    validation = mixed_deficit_sequences(16)
    out = export_predictor(tiny_source(), tmp_path / "offsets", None, validation)
    meta = json.loads((out / "model.json").read_text())
    assert list(meta["mechanism_offsets"]) == list(DEFICITS)
    assert list(meta)[list(meta).index("decision_threshold") + 1] == "mechanism_offsets"
    assert meta["metrics"]["mechanism_offsets_from"]["sequences"] == 16
    offsets = np.array(list(meta["mechanism_offsets"].values()))
    assert np.ptp(offsets) > 0 and offsets.sum() == pytest.approx(0.0, abs=1e-3)

    # The same folder without them: its answers are the network's; the offsets are those they call best.
    plain = tmp_path / "plain"
    shutil.copytree(out, plain)
    del meta["mechanism_offsets"]
    (plain / "model.json").write_text(json.dumps(meta))
    unweighed = Predictor.load(plain)
    scores = ScoreArrays(*limb_arrays(unweighed.predict_batch(validation)))
    chosen = choose_mechanism_offsets(scores, LabelArrays.from_sequences(validation), unweighed.decision_threshold)
    np.testing.assert_allclose(offsets, chosen, atol=1e-4)
    weighed = Predictor.load(out)
    np.testing.assert_allclose(weighed.mechanism_offsets, offsets)
    for a, b in zip(weighed.predict_batch(validation), unweighed.predict_batch(validation), strict=True):
        for limb in ("left", "right"):
            pa, pb = a.limbs[limb].mechanism_probabilities, b.limbs[limb].mechanism_probabilities
            assert pa["none"] == pytest.approx(pb["none"]) and sum(pa.values()) == pytest.approx(1.0)
            best = max(DEFICITS, key=lambda m: np.log(pb[m]) + meta_offset(offsets, m))
            assert a.limbs[limb].mechanism == (best if a.limbs[limb].valgus else "none")
    # Each rep of the timeline is weighed as the recording is: an overwhelming offset decides every call.
    meta.update(decision_threshold=0.0, mechanism_offsets={"pronation": 50.0})
    (plain / "model.json").write_text(json.dumps(meta))
    for prediction in Predictor.load(plain).predict_batch(validation):
        assert {prediction.limbs[limb].mechanism for limb in ("left", "right")} == {"pronation"}
        assert {span["mechanism"][limb] for span in prediction.timeline for limb in ("left", "right")} <= {"pronation", None}

    one_deficit = labelled_sequences(12)  # hip weakness only: nothing to weigh it against
    meta = json.loads((export_predictor(tiny_source(), tmp_path / "one", None, one_deficit) / "model.json").read_text())
    assert "mechanism_offsets" not in meta and "mechanism_offsets_from" not in meta["metrics"]
    # Without validation recordings the checkpoint's stand, as its threshold does.
    net, cfg, info = tiny_source()
    stored = {"hip_weakness": 0.1, "adductor_tfl_overactivity": 0.2, "pronation": 0.3, "limited_dorsiflexion": -0.6}
    out = export_predictor((net, cfg, {**info, "mechanism_offsets": stored}), tmp_path / "stored", None, None)
    meta = json.loads((out / "model.json").read_text())
    assert meta["mechanism_offsets"] == stored
    assert meta["metrics"]["mechanism_offsets_from"] == {"rule": "the checkpoint's (its validation windows)"}
    chosen = export_predictor((net, cfg, {**info, "mechanism_offsets": stored}), tmp_path / "chosen", None, validation)
    meta = json.loads((chosen / "model.json").read_text())
    assert meta["mechanism_offsets"] == pytest.approx(dict(zip(DEFICITS, offsets.tolist(), strict=True)), abs=1e-4)
    assert meta["metrics"]["mechanism_offsets_from"]["checkpoint_offsets"] == stored


def meta_offset(offsets: np.ndarray, deficit: str) -> float:
    from valgusml.labels import DEFICITS

    return float(offsets[DEFICITS.index(deficit)])


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


def test_what_a_killed_export_left_is_swept_by_the_next(exported, tmp_path, monkeypatch, dead_pid):
    """A SIGKILLed export leaves its staging folder (`.NAME.partial-PID`) or the folder it was replacing
    (`.NAME.old-PID`), hidden beside the predictor; the next export there removes them once their process is
    gone, and leaves a running export's alone."""
    import os
    import shutil

    import valgusml.export.onnx as export_onnx_module

    monkeypatch.setattr(
        export_onnx_module, "export_onnx", lambda wrapper, example, path: shutil.copy(exported / "model.onnx", path)
    )
    left = [tmp_path / f".predictor.partial-{dead_pid}", tmp_path / f".predictor.old-{dead_pid}"]
    running = tmp_path / f".predictor.partial-{os.getppid()}"
    for folder in (*left, running):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"half")
    export_predictor(tiny_source(), tmp_path / "predictor", None)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["predictor", running.name])
    Predictor.load(tmp_path / "predictor")


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
