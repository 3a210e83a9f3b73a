"""`valgusml ensemble`: one predictor folder whose outputs are its members' mean, its threshold chosen for the
mean, and clear refusals of members that cannot be averaged."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from valgusml.errors import ModelFileError
from valgusml.export import ExportError, export_predictor
from valgusml.export.ensemble import export_ensemble, main, validation_threshold
from valgusml.export.example import example_keypoints
from valgusml.export.folder import random_windows
from valgusml.predictor import Predictor
from valgusml.scoring.thresholds import choose_threshold

from .conftest import WINDOW, labelled_sequences, mixed_deficit_sequences, parity_sequences, tiny_source


def _member(tmp_path_factory, seed: int, threshold: float, window: int = WINDOW, **provenance):
    net, cfg, info = tiny_source(seed)
    info.update(provenance)
    if window != WINDOW:
        from valgusml.preprocess import PreprocessConfig

        cfg = PreprocessConfig(fps=30.0, window=window, stride=16, min_valid_frames=8)
    info["decision_threshold"] = threshold
    out = tmp_path_factory.mktemp(f"member{seed}") / "predictor"
    return export_predictor((net, cfg, info), out, parity_sequences())


@pytest.fixture(scope="module")
def members(tmp_path_factory, exported):
    return [exported, _member(tmp_path_factory, 1, 0.30), _member(tmp_path_factory, 2, 0.60)]


def test_the_ensemble_gives_its_members_mean_on_every_output(members, tmp_path):
    out = export_ensemble(members, tmp_path / "ensemble")
    ensemble, singles = Predictor.load(out), [Predictor.load(m) for m in members]
    windows = random_windows(9, WINDOW, ensemble.metadata["inputs"]["measures"][2], seed=7)
    got = ensemble.run_windows(*windows)
    each = [p.run_windows(*windows) for p in singles]
    assert ensemble.output_names == singles[0].output_names
    for k, name in enumerate(ensemble.output_names):
        expected = np.mean([e[k] for e in each], axis=0)
        np.testing.assert_allclose(got[k], expected, atol=1e-5, err_msg=name)
    # The members really differ (else a mean proves nothing), and the mean is still a distribution.
    assert np.abs(each[0][0] - each[1][0]).max() > 1e-3
    np.testing.assert_allclose(got[1].sum(axis=-1), 1.0, atol=1e-5)
    # A whole recording goes through it like through any export.
    prediction = ensemble.predict(example_keypoints("halpe26", seconds=3.0, fps=60.0, valgus=1.0), fps=60.0)
    assert 0.0 <= prediction.valgus_probability <= 1.0


def test_model_json_names_every_seed_whose_athletes_a_member_learnt_from(tmp_path_factory, tmp_path):
    """A teacher or a start made of members must warn a run of any of their athletes' seeds."""
    plain = _member(tmp_path_factory, 3, 0.4, generator_seed=1)
    continued = _member(tmp_path_factory, 4, 0.5, generator_seed=1, generator_seeds=[1, 2])
    assert json.loads((continued / "model.json").read_text())["generator_seeds"] == [1, 2]
    meta = json.loads((export_ensemble([plain, continued], tmp_path / "e") / "model.json").read_text())
    assert meta["generator_seed"] == 1 and meta["generator_seeds"] == [1, 2]
    assert meta["other_training_data"] == []  # one dataset: its fingerprint is the ensemble's
    # Members of other datasets: no one fingerprint, so each is listed, with what a member added to its own.
    added = {"dataset_fingerprint": "mocap-fingerprint", "athletes_sha256": ["0123456789abcdef"]}
    own_data = _member(tmp_path_factory, 5, 0.5, dataset_fingerprint="clinic-fingerprint", other_training_data=[added])
    assert json.loads((own_data / "model.json").read_text())["other_training_data"] == [added]
    meta = json.loads((export_ensemble([plain, own_data], tmp_path / "f") / "model.json").read_text())
    assert meta["dataset_fingerprint"] is None
    assert meta["other_training_data"] == [{"dataset_fingerprint": "clinic-fingerprint", "athletes_sha256": []},
                                           added, {"dataset_fingerprint": "test-fingerprint", "athletes_sha256": []}]


def test_without_validation_the_threshold_is_the_members_median_and_model_json_says_so(members, tmp_path):
    meta = json.loads((export_ensemble(members, tmp_path / "e") / "model.json").read_text())
    assert meta["decision_threshold"] == pytest.approx(0.42)  # median of 0.42, 0.30, 0.60
    assert meta["metrics"]["decision_threshold_from"]["rule"] == "median of the members' thresholds"
    assert [m["decision_threshold"] for m in meta["architecture"]["members"]] == pytest.approx([0.42, 0.30, 0.60])
    assert meta["parity"]["passed"] is True and meta["parity"]["max_abs_diff_probability"] <= 1e-4
    assert meta["dataset_fingerprint"] == "test-fingerprint"


def test_with_validation_the_threshold_is_chosen_for_the_mean(members, tmp_path):
    validation = labelled_sequences()
    out = export_ensemble(members[:2], tmp_path / "e", validation, validation_source="here")
    meta = json.loads((out / "model.json").read_text())
    ensemble = Predictor.load(out)
    probability = np.array([[p.limbs[limb].valgus_probability for limb in ("left", "right")]
                            for p in ensemble.predict_batch(validation)])
    truth = np.repeat(np.arange(12) % 2, 2).reshape(12, 2)
    assert meta["decision_threshold"] == pytest.approx(choose_threshold(probability.ravel(), truth.ravel()))
    assert meta["decision_threshold"] == pytest.approx(validation_threshold(ensemble, validation))
    assert meta["metrics"]["decision_threshold_from"] == {"rule": "f1 on validation athletes", "sequences": 12,
                                                          "source": "here"}
    assert "mechanism_offsets" not in meta  # one deficit among the labels: nothing to weigh


def test_with_validation_the_mechanism_offsets_are_chosen_for_the_mean(members, tmp_path):
    """On the mean's own answers, at its threshold, as a network's folder gets them."""
    from valgusml.predictor.results import limb_arrays
    from valgusml.scoring.arrays import LabelArrays, ScoreArrays
    from valgusml.scoring.mechanism_offsets import choose_mechanism_offsets

    validation = mixed_deficit_sequences(16)
    out = export_ensemble(members[:2], tmp_path / "e", validation, validation_source="here")
    meta = json.loads((out / "model.json").read_text())
    assert meta["metrics"]["mechanism_offsets_from"]["sequences"] == 16
    plain = tmp_path / "plain"
    shutil.copytree(out, plain)
    del meta["mechanism_offsets"]
    (plain / "model.json").write_text(json.dumps(meta))
    mean = Predictor.load(plain)
    chosen = choose_mechanism_offsets(ScoreArrays(*limb_arrays(mean.predict_batch(validation))),
                                      LabelArrays.from_sequences(validation), mean.decision_threshold)
    np.testing.assert_allclose(Predictor.load(out).mechanism_offsets, chosen, atol=1e-4)


def test_the_same_members_give_the_same_bytes(members, tmp_path):
    a = json.loads((export_ensemble(members, tmp_path / "a") / "model.json").read_text())
    b = json.loads((export_ensemble(members, tmp_path / "b") / "model.json").read_text())
    assert a["model"]["sha256"] == b["model"]["sha256"]


def test_members_that_cannot_be_averaged_are_refused_by_name(members, tmp_path_factory, tmp_path):
    with pytest.raises(ExportError, match="two or more different"):
        export_ensemble([members[0], members[0]], tmp_path / "e")
    other_window = _member(tmp_path_factory, 3, 0.5, window=48)
    with pytest.raises(ExportError, match=r"'preprocess' differs .*fed alike"):
        export_ensemble([members[0], other_window], tmp_path / "e")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.json", "model.onnx"):
        (broken / name).write_bytes((members[1] / name).read_bytes())
    with (broken / "model.onnx").open("ab") as f:
        f.write(b"tampered")
    with pytest.raises(ModelFileError, match="sha256"):
        export_ensemble([members[0], broken], tmp_path / "e")
    assert not (tmp_path / "e").exists()  # nothing half-written


def test_cli_writes_the_folder_and_rejects_data_without_split(members, tmp_path, capsys):
    assert main([str(tmp_path / "e"), str(members[0]), str(members[1])]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["members"] == 2 and record["parity_max_abs_diff"] <= 1e-4
    assert record["mechanism_offsets"] is None  # no validation athletes: nothing to choose them on
    assert Predictor.load(tmp_path / "e").decision_threshold == pytest.approx(np.median([0.42, 0.30]))
    assert main([str(tmp_path / "f"), str(members[0]), str(members[1]), "--data", str(tmp_path)]) == 1
    assert "--data and --split go together" in capsys.readouterr().err


def test_building_an_ensemble_does_not_import_torch(members, tmp_path):
    code = ("import sys; from valgusml.export.ensemble import main; "
            f"rc = main([{str(tmp_path / 'e')!r}, {str(members[0])!r}, {str(members[1])!r}]); "
            "assert rc == 0; assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
