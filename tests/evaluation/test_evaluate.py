"""`valgusml evaluate` end to end on a tiny dataset: a checkpoint (an untrained tiny network: what is tested is
the plumbing, not its skill) and a baseline on held-out athletes, report written, MLflow child run. The ONNX
export is slow to build, so the exported-predictor path is tested with a stand-in `Predictor` (its parity with
the checkpoint is the exporter's own test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from valgusml.errors import ConfigError, InputError
from valgusml.evaluation.evaluate import compose_eval_config, main, run_evaluation, translate_overrides
from valgusml.runs.tracking import ensure_experiment

from .conftest import make_sequences

NET_CONFIG = {
    "_target_": "valgusml.models.ValgusNet",
    "backbone": {"_target_": "valgusml.models.TCN", "_partial_": True, "channels": 8, "n_blocks": 1, "dropout": 0.0},
    "head": {"_target_": "valgusml.models.MultiTaskHead", "_partial_": True, "hidden": 8, "dropout": 0.0},
}


def write_checkpoint(path, run_id, split):
    """A checkpoint in the layout `valgusml.runs.checkpoint.load_for_export` reads (untrained weights)."""
    import torch
    from hydra.utils import instantiate

    torch.manual_seed(0)
    net = instantiate(NET_CONFIG)
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            "hyper_parameters": {"net": NET_CONFIG, "preprocess": {"fps": 30.0, "window": 32, "stride": 16,
                                                                    "min_valid_frames": 8}},
            "valgusml": {"decision_threshold": 0.4, "dataset_fingerprint": split.dataset_fingerprint,
                         "mlflow_run_id": run_id, "split": split.to_dict()},
            "epoch": 0,
            "global_step": 0,
        },
        path,
    )
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_sequences, mlflow_uri):
    from mlflow.tracking import MlflowClient

    from valgusml.data import write_dataset
    from valgusml.data.splits import Split, save_split

    root = tmp_path_factory.mktemp("evaluate")
    ds = write_dataset(root / "data", tiny_sequences, shard_size=64)
    athletes = ds.athletes  # a00 … a09
    split = Split(train=athletes[:6], val=athletes[6:8], test=athletes[8:], method="fractions",
                  dataset_fingerprint=ds.fingerprint)
    split_file = save_split(split, root / "splits.json")
    uri = mlflow_uri
    client = MlflowClient(uri)
    training_run = client.create_run(ensure_experiment(uri, "valgusml")).info.run_id
    checkpoint = write_checkpoint(root / "best.ckpt", training_run, split)
    # what the training app records on its run
    client.set_tag(training_run, "best_checkpoint", str(checkpoint))
    client.set_tag(training_run, "dataset", str(root / "data"))
    # Other athletes, which neither the checkpoint nor the baselines trained on: what split=all and
    # transfer.other_data score whole.
    write_dataset(root / "external", make_sequences(n_athletes=10, per_athlete=3, seed=5), shard_size=64)
    return {"root": root, "data": root / "data", "split_file": split_file, "uri": uri, "checkpoint": checkpoint,
            "training_run": training_run, "fingerprint": ds.fingerprint, "external": root / "external"}


@pytest.mark.slow
def test_evaluate_cli_scores_held_out_athletes_and_logs_a_child_run(setup):
    from mlflow.tracking import MlflowClient

    report_dir = setup["root"] / "report"
    code = main([
        f"ckpt_path={setup['checkpoint']}", f"data_dir={setup['data']}",  # split: the checkpoint's own
        "baselines=[fppa_rule,ensemble]", "scorers.ensemble.members=[model,fppa_rule]", "bootstrap.n_boot=100",
        f"report_dir={report_dir}", f"mlflow.tracking_uri={setup['uri']}", f"root_dir={setup['root']}",
    ])
    assert code == 0
    assert (report_dir / "report.html").is_file()
    summary = json.loads((report_dir / "metrics.json").read_text())
    assert set(summary["scorers"]) == {"model", "fppa_rule", "ensemble"}
    assert summary["scorers"]["ensemble"]["threshold_source"] == "validation"
    assert summary["info"]["n_test_athletes"] == 2 and summary["info"]["n_val_athletes"] == 2
    assert summary["scorers"]["model"]["threshold_source"] == "validation"
    client = MlflowClient(setup["uri"])
    runs = client.search_runs([client.get_experiment_by_name("valgusml").experiment_id],
                              filter_string="tags.task_name = 'evaluate'")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["mlflow.parentRunId"] == setup["training_run"]
    assert "eval/model/valgus_auroc" in run.data.metrics
    assert "eval/fppa_rule/mechanism_macro_f1_lo" in run.data.metrics
    assert "eval/fppa_rule/valgus_auroc_minus_first_hi" in run.data.metrics  # the baseline, paired to the model
    assert "eval/model/valgus_auroc_minus_first" not in run.data.metrics
    assert set(summary["scorers"]["fppa_rule"]["minus_first"]) >= {"valgus_auroc", "mechanism_macro_f1"}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert "report/report.html" in artifacts


@pytest.mark.slow
def test_external_dataset_scores_every_sequence(setup, tmp_path):
    cfg = compose_eval_config([
        f"ckpt_path={setup['checkpoint']}", f"data_dir={setup['external']}", "split=all", "baselines=[]",
        "bootstrap.n_boot=50", f"report_dir={tmp_path}", "mlflow.enabled=false",
    ])
    out = run_evaluation(cfg)
    result = out["result"]
    assert list(result.results) == ["model"]
    assert result.info["n_test_athletes"] == 10 and "caution" not in result.info
    assert result.results["model"].threshold_source == "model"  # no validation athletes: the stored one
    assert result.results["model"].threshold == pytest.approx(0.4)
    assert out["report"].is_file() and out["mlflow_run_id"] is None


def test_the_training_dataset_is_never_scored_whole(setup, tmp_path, monkeypatch):
    """split=all and transfer.other_data score every athlete of a folder: the model's own training dataset (or the
    one the baselines were fitted on) would put its training athletes among the scored ones, so it is refused,
    before any sequence is read (the held-out ones were read first, and every other set's)."""
    from valgusml.data.format import Dataset

    def read(*args, **kwargs):
        raise AssertionError("sequences read before the refusal")

    monkeypatch.setattr(Dataset, "sequences_of", read)
    base = [f"ckpt_path={setup['checkpoint']}", "baselines=[]", "bootstrap.n_boot=20", "mlflow.enabled=false",
            "transfer.real_motion.enabled=false", f"report_dir={tmp_path}"]
    with pytest.raises(ConfigError, match="the model or the baselines trained on"):
        run_evaluation(compose_eval_config([*base, f"data_dir={setup['data']}", "split=all"]))
    with pytest.raises(ConfigError, match="the model or the baselines trained on"):
        run_evaluation(compose_eval_config([*base, f"data_dir={setup['data']}",
                                            f"transfer.other_data=[{setup['data']}]"]))
    # Scored whole beside an external split=all, it is refused too (the model's dataset, by its fingerprint).
    with pytest.raises(ConfigError, match="the model or the baselines trained on"):
        run_evaluation(compose_eval_config([*base, f"data_dir={setup['external']}", "split=all",
                                            f"transfer.other_data=[{setup['data']}]"]))


def test_a_folder_the_model_learnt_from_beside_its_own_data_is_never_held_out(setup, tmp_path):
    """A folder added with data.extra_train_dirs (or its start's, or an ensemble member's data) was scored as
    held-out athletes (split=all: AUROC 0.990 on filmed real motion the model trained on). Its fingerprint is
    refused; its athletes under another fingerprint (a filmed copy keeps the ids) are a caution."""
    from valgusml.data import open_dataset
    from valgusml.evaluation.evaluate import not_trained_on
    from valgusml.predictor.format import athlete_digests, other_training_data

    external = open_dataset(setup["external"])
    added = {"dataset_fingerprint": external.fingerprint, "athletes_sha256": athlete_digests(external.athletes)}
    origin = {"dataset_fingerprint": setup["fingerprint"], "generator_seeds": [],
              "other_training_data": other_training_data({"other_training_data": [added]})}
    with pytest.raises(ConfigError, match="a dataset the model learnt from beside its own"):
        not_trained_on("the scored athletes", setup["external"], external.fingerprint, origin,
                       athletes=external.athletes)
    copy_notes = not_trained_on("other data filmed", tmp_path, "c" * 64, origin, athletes=external.athletes[:4])
    assert len(copy_notes) == 1 and "4 of its athletes have the ids of athletes the model learnt from" in copy_notes[0]
    assert not_trained_on("other data", tmp_path, "c" * 64, origin, athletes=["someone else"]) == []
    # recorded at export, read back by the evaluation (model.json's provenance)
    from valgusml.evaluation.sources import learnt_from

    assert learnt_from({"other_training_data": [added]})["other_training_data"] == [
        {"dataset_fingerprint": external.fingerprint, "athletes_sha256": sorted(added["athletes_sha256"])}]
    # a start's or a member's own dataset joins with `own`, athletes unrecorded
    merged = other_training_data({"dataset_fingerprint": "a" * 64, "other_training_data": [added]}, own=True)
    assert [e["dataset_fingerprint"] for e in merged] == sorted(["a" * 64, external.fingerprint])


def test_a_generator_seed_the_model_learnt_from_is_a_caution(setup, tmp_path):
    """A generated set of a seed the model learnt from holds its training athletes (the same index is the same
    person at every dataset size): its figures are said not to be held out."""
    import json as _json

    from valgusml.evaluation.evaluate import not_trained_on
    from valgusml.synth.dataset import GENERATOR_FILE

    folder = tmp_path / "seed3"
    folder.mkdir()
    (folder / GENERATOR_FILE).write_text(_json.dumps({"config": {"seed": 3}}))
    origin = {"dataset_fingerprint": "f" * 64, "generator_seeds": [0, 3]}
    notes = not_trained_on("other data seed3", folder, "e" * 64, origin)
    assert len(notes) == 1 and "seed 3" in notes[0]
    assert not_trained_on("other data seed3", folder, "e" * 64, {**origin, "generator_seeds": [0]}) == []


@pytest.mark.slow
def test_run_id_alone_finds_checkpoint_dataset_and_split(setup, tmp_path):
    cfg = compose_eval_config([
        f"run_id={setup['training_run']}", f"mlflow.tracking_uri={setup['uri']}", "baselines=[]",
        "bootstrap.n_boot=50", f"report_dir={tmp_path}", "mlflow.enabled=false",
    ])
    out = run_evaluation(cfg)
    result = out["result"]
    assert result.info["training_run_id"] == setup["training_run"]
    assert result.info["dataset_fingerprint"] == setup["fingerprint"]
    assert result.info["n_test_athletes"] == 2  # the checkpoint's own split
    assert result.info["caution"][0].startswith("the scored athletes: only 2 athlete(s)")  # its CIs are not CIs
    head = out["report"].read_text().split("<h2", 1)[0]  # said before any figure of the report
    assert "<p class='caution'>Caution: the scored athletes: only 2 athlete(s)" in head
    assert "checkpoint" in result.info["model"]


def test_config_errors(setup, tmp_path):
    assert translate_overrides(["model=x", "ckpt_path=y", "robustness=true"]) == [
        "predictor=x", "ckpt_path=y", "robustness.enabled=true"]
    both = compose_eval_config(["model=exports/x", f"ckpt_path={setup['checkpoint']}", "mlflow.enabled=false"])
    with pytest.raises(ConfigError, match="not both"):
        run_evaluation(both)
    with pytest.raises(ConfigError, match="nothing to evaluate"):
        run_evaluation(compose_eval_config(["mlflow.enabled=false"]))
    other = tmp_path / "splits.json"
    other.write_text(json.dumps({"train": ["a00"], "val": ["a01"], "test": ["a02"], "method": "fractions",
                                 "dataset_fingerprint": "0" * 16}))
    wrong = compose_eval_config([f"ckpt_path={setup['checkpoint']}", f"data_dir={setup['data']}",
                                 f"split_file={other}", "mlflow.enabled=false", "baselines=[]"])
    with pytest.raises(ConfigError, match="not the dataset"):
        run_evaluation(wrong)
    with pytest.raises(ConfigError, match="unknown"):
        run_evaluation(compose_eval_config([f"ckpt_path={setup['checkpoint']}", f"data_dir={setup['data']}",
                                            f"split_file={setup['split_file']}", "baselines=[nope]",
                                            "mlflow.enabled=false"]))


def test_exported_model_maps_limbs_and_mechanisms(monkeypatch, tiny_test_sequences):
    """`ExportedModel` turns `Predictor.predict_batch` answers into ScoreArrays (limb order, MECHANISMS order,
    and the frontal-plane angle each limb's call rests on, NaN where it has none)."""
    from types import SimpleNamespace

    import numpy as np

    import valgusml.predictor
    from valgusml.evaluation.scorers import ExportedModel
    from valgusml.labels import MECHANISMS
    from valgusml.predictor.results import LimbPrediction

    class StandIn:
        decision_threshold = 0.3
        undecided = 0.5
        mechanism_offsets = np.zeros(4)
        metadata = {"training_run_id": "r"}

        seen = 0

        def predict_batch(self, sequences):
            out = []
            for i in range(self.seen, self.seen + len(sequences)):
                limbs = {}
                for k, limb in enumerate(("left", "right")):
                    probs = dict.fromkeys(reversed(MECHANISMS), 0.0)  # read by name, not by order
                    probs[MECHANISMS[(i + k) % 5]] = 1.0
                    limbs[limb] = LimbPrediction(valgus_probability=0.1 * k + 0.01 * i, mechanism="none",
                                                 mechanism_probabilities=probs, valgus=False,
                                                 severity_deg=float(i + 10 * k),
                                                 frontal_fppa_deg=None if k == 0 else float(i))
                out.append(SimpleNamespace(limbs=limbs, warnings=[f"resampled from {i} fps to 30 fps"] * (i % 2)))
            self.seen += len(sequences)
            return out

    monkeypatch.setattr(valgusml.predictor.Predictor, "load", classmethod(lambda cls, path, threads=1: StandIn()))
    model = ExportedModel("somewhere", batch_size=4)  # several predict_batch calls
    assert model.fit([]) is model and model.decision_threshold == 0.3 and model.pretrained
    scores = model.predict(tiny_test_sequences)
    n = len(tiny_test_sequences)
    assert np.allclose(scores.valgus_probability[:, 1] - scores.valgus_probability[:, 0], 0.1)
    assert np.array_equal(scores.mechanism_probabilities.argmax(-1)[:, 0], np.arange(n) % 5)
    assert np.array_equal(scores.severity_deg[:, 1], np.arange(n) + 10.0)
    assert np.isnan(scores.frontal_fppa_deg[:, 0]).all() and np.array_equal(scores.frontal_fppa_deg[:, 1], np.arange(n))
    # the warnings of the recordings scored last, one list per recording, in order
    assert model.last_warnings == [[f"resampled from {i} fps to 30 fps"] * (i % 2) for i in range(n)]
    assert len(model.predict([])) == 0 and model.predict([]).frontal_fppa_deg.shape == (0, 2)


@pytest.mark.slow
def test_other_data_gets_its_own_columns_in_the_transfer_table(setup, tmp_path, capsys):
    import pandas as pd

    from valgusml.data import open_dataset
    from valgusml.evaluation.metrics import compute_metrics
    from valgusml.scoring.arrays import LabelArrays

    cfg = compose_eval_config([
        f"ckpt_path={setup['checkpoint']}", f"data_dir={setup['data']}", "baselines=[fppa_rule]",
        "bootstrap.n_boot=50", "robustness.n_boot=50", f"report_dir={tmp_path}", "mlflow.enabled=false",
        "transfer.real_motion.enabled=false", f"transfer.other_data=[{setup['external']}]",
    ])
    result = run_evaluation(cfg)["result"]
    table = result.transfer.set_index("scorer")
    everything = [s for s in open_dataset(setup["external"])]
    for name, scored in result.results.items():  # every sequence of the folder, at the scorer's own threshold
        expected = compute_metrics(LabelArrays.from_sequences(everything), scored.scorer.predict(everything),
                                   scored.threshold)
        assert table.loc[name, "external: AUROC"] == pytest.approx(expected["valgus_auroc"])
        assert table.loc[name, "external: macro-F1"] == pytest.approx(expected["mechanism_macro_f1"])
        assert table.loc[name, "external: AUROC CI low"] <= table.loc[name, "external: AUROC"]
        assert table.loc[name, "external: worst task AUROC"].endswith("(bilateral_squat)")
    rows = pd.read_csv(tmp_path / "other_data.csv")
    assert list(rows["scorer"]) == ["model", "fppa_rule"] and set(rows["n_sequences"]) == {len(everything)}
    printed = capsys.readouterr().out  # the console summary shows them too, after the held-out table
    assert printed.index("held-out athletes") < printed.index("other data, every sequence") < printed.index("report:")
    with pytest.raises(ConfigError, match="not a data set folder"):
        run_evaluation(compose_eval_config([
            f"ckpt_path={setup['checkpoint']}", f"data_dir={setup['data']}", "baselines=[]", "bootstrap.n_boot=20",
            f"report_dir={tmp_path / 'missing'}", "mlflow.enabled=false", "transfer.real_motion.enabled=false",
            f"transfer.other_data=[{tmp_path / 'no-such-data'}]",
        ]))


REAL_DJ = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "opencap_validation_subject4" / "DJ1.trc"


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_DJ.is_file(), reason="../shared/realdata is absent")
def test_transfer_table_scores_every_scorer_on_real_motion(setup, tmp_path):
    import pandas as pd

    cfg = compose_eval_config([
        f"ckpt_path={setup['checkpoint']}", f"data_dir={setup['data']}", "baselines=[fppa_rule]",
        "bootstrap.n_boot=50", f"report_dir={tmp_path}", "mlflow.enabled=false",
        f"transfer.real_motion.paths=[{REAL_DJ}]", "transfer.real_motion.yaws=[0,180,90]",
    ])
    result = run_evaluation(cfg)["result"]
    table = result.transfer
    assert list(table["scorer"]) == ["model", "fppa_rule"]
    assert table["real 3D agree"].between(0, 1).all()
    assert table["real front/rear ±20° agree"].between(0, 1).all()
    assert (table["real front/rear ±20° agree CI low"] <= table["real front/rear ±20° agree"]).all()
    assert (table["real front/rear ±20° agree"] <= table["real front/rear ±20° agree CI high"]).all()
    paired = table.set_index("scorer")["real ±20° agree - model's [paired CI]"]
    assert pd.isna(paired["model"]) and paired["fppa_rule"].count("[") == 1  # "value [lo, hi]" for the baseline
    real = pd.read_csv(tmp_path / "real_motion.csv")
    assert set(real["family"]) == {"3d", "front", "rear", "side"}
    assert len(real) == 2 * 2 * 4  # scorers x limbs x (3D + three views)
    assert (tmp_path / "transfer.csv").is_file()
    html = (tmp_path / "report.html").read_text()
    assert html.index("id='transfer'") < html.index("id='comparison'")  # the first table of the report


def test_exported_checkpoint_path_is_checkout_relative_and_found_from_anywhere(tmp_path, monkeypatch):
    """An exported folder names its run's checkpoint relative to the checkout, so its split is found from any
    working directory of any clone (an absolute path names one machine's folders)."""
    from omegaconf import OmegaConf

    from valgusml import paths
    from valgusml.data.splits import Split
    from valgusml.evaluation import sources

    assert paths.relative_to_checkout(paths.REPO_ROOT / "logs" / "run" / "best.ckpt") == "logs/run/best.ckpt"
    assert paths.relative_to_checkout(tmp_path / "best.ckpt") == str(tmp_path / "best.ckpt")
    assert paths.relative_to_checkout(None) is None
    checkout = tmp_path / "clone"
    (checkout / "logs" / "run").mkdir(parents=True)
    split = Split(train=["a00"], val=["a01"], test=["a02"], method="fractions", dataset_fingerprint="0" * 16)
    (checkout / "logs" / "run" / "splits.json").write_text(json.dumps(split.to_dict()))
    monkeypatch.setattr(paths, "REPO_ROOT", checkout)
    monkeypatch.chdir(tmp_path)
    found = sources.resolve_split(OmegaConf.create({}), {"checkpoint": "logs/run/best.ckpt"})
    assert list(found.test) == ["a02"] and found.dataset_fingerprint == "0" * 16


@pytest.mark.parametrize("override,message", [
    ("bootstrap.n_boot=-5", "bootstrap.n_boot must be an integer >= 1"),  # was numpy's "negative dimensions"
    ("bootstrap.n_boot=0", "bootstrap.n_boot must be an integer >= 1"),  # was a table of CIs with none in it
    ("bootstrap.level=95", r"bootstrap.level must be a fraction in \(0, 1\)"),  # was numpy's "Quantiles must be"
    ("threshold_rule=best", "threshold_rule must be one of"),  # was ignored when validation had one class
    ("max_athletes=0", "max_athletes must be an integer >= 1"),  # was read as no cap
    ("robustness.n_boot=0", "robustness.n_boot must be an integer >= 1"),
])
def test_bad_evaluation_values_are_named_before_any_scoring(override, message):
    """Checked before the model is even looked for (no model is given: that error would come next)."""
    with pytest.raises(ConfigError, match=message):
        run_evaluation(compose_eval_config(["mlflow.enabled=false", override]))


def test_app_reports_a_valgusml_error_in_one_line(tmp_path, monkeypatch, capsys):
    """A bad value given to a Hydra app is one line on stderr and exit status 1, not Hydra's traceback."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["valgusml evaluate"])
    with pytest.raises(SystemExit) as exit_info:
        main(["mlflow.enabled=false", f"report_dir={tmp_path}"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "valgusml evaluate: ConfigError: nothing to evaluate" in err and "Traceback" not in err


def test_cautions_name_what_a_set_cannot_tell():
    """Too few athletes for a bootstrap CI, and rule-labelled data (no known deficit) for the mechanism figures."""
    from valgusml.evaluation.evaluate import MIN_ATHLETES_FOR_CI, cautions
    from valgusml.io.samples import squat_3d

    def limb(valgus, mechanism):
        return {"valgus": valgus, "mechanism": mechanism, "severity_deg": 9.0 if valgus else 1.0}

    squat = squat_3d()
    rule_labelled = [squat.replace(athlete_id=f"s{k}", labels={"left": limb(True, None), "right": limb(False, "none")})
                     for k in range(2)]
    notes = cautions("mocap", rule_labelled)
    assert len(notes) == 2 and notes[0].startswith("mocap: only 2 athlete(s)") and "no limb has a known deficit" in notes[1]
    many = [squat.replace(athlete_id=f"a{k}", labels={"left": limb(True, "pronation"), "right": limb(False, "none")})
            for k in range(MIN_ATHLETES_FOR_CI)]
    assert cautions("held out", many) == []
    assert cautions("unlabelled", [squat.replace(athlete_id=f"u{k}") for k in range(MIN_ATHLETES_FOR_CI)]) == []


def test_robustness_on_a_folder_the_generator_did_not_write_says_how_to_evaluate_it(tmp_path):
    from valgusml.evaluation.robustness import generator_config_of

    with pytest.raises(InputError, match="robustness.enabled=false and no leave_out"):
        generator_config_of(tmp_path)
    (tmp_path / "generator.json").write_text("{not json")
    with pytest.raises(InputError, match="no readable generator.json"):
        generator_config_of(tmp_path)
