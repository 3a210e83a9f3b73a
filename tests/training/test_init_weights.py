"""`init_from`: a training's network starts from pretrained weights (a weights file or a checkpoint), and only
from weights made for the same network on windows prepared alike."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from tests.training.conftest import base_overrides, run_training  # noqa: E402
from valgusml.errors import ConfigError  # noqa: E402
from valgusml.training.init_weights import load_initial_weights, save_weights  # noqa: E402
from valgusml.training.module import ValgusLitModule  # noqa: E402

# A network small enough that one epoch of the tiny dataset takes seconds.
TINY_MODEL = ["model=tcn", "model.backbone.channels=8", "model.backbone.n_blocks=1", "model.head.hidden=8"]
# Buffers that a training step updates whatever the learning rate.
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dataset, shared_cache) -> tuple[Path, Path, list[str]]:
    """`(best checkpoint, weights file, overrides)` of one epoch of the tiny network."""
    root = tmp_path_factory.mktemp("trained")
    overrides = base_overrides(root, tiny_dataset, shared_cache) + TINY_MODEL + ["logger=none", "test=false"]
    run_training(overrides + ["trainer.max_epochs=1"])
    (best,) = root.glob("logs/smoke/runs/*/checkpoints/best-*.ckpt")
    return best, save_weights(best, root / "weights.pt"), overrides


def _fresh_module(checkpoint: Path, **model_changes) -> ValgusLitModule:
    """A module built as training builds it, from the checkpoint's model config (with `model_changes` to the
    backbone) and preprocessing, with freshly initialised weights."""
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=True)["hyper_parameters"]
    net = {**hparams["net"], "backbone": {**hparams["net"]["backbone"], **model_changes}}
    torch.manual_seed(123)
    return ValgusLitModule(net=net, optimizer={}, preprocess=hparams["preprocess"])


def _net_state(state_dict: dict) -> dict:
    return {k.removeprefix("net."): v for k, v in state_dict.items() if k.startswith("net.")}


def test_a_weights_file_holds_plain_containers_the_safe_loader_reads(trained):
    best, weights, _ = trained
    saved = torch.load(weights, map_location="cpu", weights_only=True)
    assert saved["format"] == "valgusml-weights-1"
    assert saved["model"]["backbone"]["channels"] == 8 and saved["preprocess"]["window"] == 96
    assert len(saved["source"]["dataset_fingerprint"]) == 64 and saved["source"]["epoch"] == 0
    expected = _net_state(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    assert saved["net"].keys() == expected.keys()
    assert all(torch.equal(saved["net"][k], expected[k]) for k in expected)


@pytest.mark.parametrize("source", ["weights", "checkpoint"])
def test_the_network_starts_from_the_weights(trained, source, caplog):
    best, weights, _ = trained
    path = weights if source == "weights" else best
    expected = torch.load(weights, map_location="cpu", weights_only=True)["net"]
    module = _fresh_module(best)
    before = module.net.state_dict()
    assert not all(torch.equal(before[k], expected[k]) for k in expected)

    with caplog.at_level(logging.INFO, logger="valgusml.train"):
        assert load_initial_weights(module, path)[0] == path
    after = module.net.state_dict()
    assert all(torch.equal(after[k], expected[k]) for k in expected)
    assert f"network weights from {path} (epoch 0, dataset " in caplog.text


def test_weights_of_another_network_are_refused_naming_the_key(trained):
    best, weights, _ = trained
    with pytest.raises(ConfigError, match=r"model config differs .* at backbone\.channels \(this run 16, weights 8\)"):
        load_initial_weights(_fresh_module(best, channels=16), weights)


def test_weights_of_other_windows_are_refused_naming_the_key(trained):
    best, weights, _ = trained
    module = _fresh_module(best)
    module.hparams["preprocess"] = {**module.hparams["preprocess"], "window": 48}
    with pytest.raises(ConfigError, match=r"preprocessing differs .* at window \(this run 48, weights 96\)"):
        load_initial_weights(module, weights)


def test_a_missing_file_is_named_by_the_loader_and_by_the_config_check(trained, tmp_path, monkeypatch):
    from valgusml.training.config import check_config, compose_config

    best, _, _ = trained
    with pytest.raises(ConfigError, match="init_from=nowhere/weights.pt: no such weights file"):
        load_initial_weights(_fresh_module(best), "nowhere/weights.pt")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="init_from=nowhere/weights.pt: no such weights file"):
        check_config(compose_config(["experiment=smoke", "init_from=nowhere/weights.pt"]))


def test_a_training_starts_from_the_weights_with_a_fresh_epoch_count(trained, tiny_dataset, tmp_path):
    from valgusml.synth.dataset import generator_seed_of

    _, weights, overrides = trained
    # Weights that learnt from another seed's athletes before this one's (a pretrained start trained further).
    seed = generator_seed_of(tiny_dataset)
    payload = torch.load(weights, map_location="cpu", weights_only=True)
    payload["source"]["generator_seeds"] = [seed + 7]
    weights = tmp_path / "continued.pt"
    torch.save(payload, weights)
    root = tmp_path / "second"
    overrides = [o for o in overrides if not o.startswith("paths.root_dir")] + [f"paths.root_dir={root}"]
    # With a learning rate of 0 the trained parameters are the starting ones: the weights file's.
    run_training(overrides + [f"init_from={weights}", "trainer.max_epochs=1", "module.optimizer.lr=0"])
    (last,) = root.glob("logs/smoke/runs/*/checkpoints/last.ckpt")
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 0
    # Where it started is part of its provenance (the export's model.json carries it on), and so is every seed
    # whose athletes the network has learnt from: the start's and the run's own.
    fingerprint = payload["source"]["dataset_fingerprint"]
    assert checkpoint["valgusml"]["init_from"] == {
        "path": str(weights), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "generator_seeds": [seed + 7], "other_training_data": [{"dataset_fingerprint": fingerprint, "athletes_sha256": []}]}
    # the start learnt from this run's own dataset: not listed as another (training warned of it)
    assert fingerprint == checkpoint["valgusml"]["dataset_fingerprint"]
    assert checkpoint["valgusml"]["other_training_data"] == []
    assert checkpoint["valgusml"]["generator_seed"] == seed
    assert checkpoint["valgusml"]["generator_seeds"] == [seed, seed + 7]
    assert save_weights(last, tmp_path / "again.pt") and torch.load(
        tmp_path / "again.pt", weights_only=True)["source"]["generator_seeds"] == [seed, seed + 7]
    trained_net = _net_state(checkpoint["state_dict"])
    expected = torch.load(weights, map_location="cpu", weights_only=True)["net"]
    assert trained_net.keys() == expected.keys()
    for key in expected:
        if not key.endswith(RUNNING_STATS):
            assert torch.equal(trained_net[key], expected[key]), key


def test_the_command_line_writes_the_same_weights_and_names_a_bad_checkpoint(trained, tmp_path, capsys):
    from valgusml.training.init_weights import main

    best, weights, _ = trained
    assert main([str(best), str(tmp_path / "w.pt")]) == 0
    written = torch.load(tmp_path / "w.pt", map_location="cpu", weights_only=True)
    expected = torch.load(weights, map_location="cpu", weights_only=True)
    assert written.keys() == expected.keys()
    assert all(torch.equal(written["net"][k], v) for k, v in expected["net"].items())
    assert main([str(tmp_path / "nowhere.ckpt"), str(tmp_path / "x.pt")]) == 1
    assert "nowhere.ckpt does not exist" in capsys.readouterr().err


def test_weights_trained_on_the_same_dataset_are_named_in_a_warning(trained, caplog):
    """Its held-out athletes may be the weights' training athletes: loading says so."""
    best, weights, _ = trained
    module = _fresh_module(best)
    module.run_info["dataset_fingerprint"] = torch.load(weights, weights_only=True)["source"]["dataset_fingerprint"]
    with caplog.at_level(logging.WARNING, logger="valgusml.train"):
        load_initial_weights(module, weights)
    assert "trained on this very dataset" in caplog.text
    caplog.clear()
    module.run_info["dataset_fingerprint"] = "another"
    with caplog.at_level(logging.WARNING, logger="valgusml.train"):
        load_initial_weights(module, weights)
    assert "trained on this very dataset" not in caplog.text


def test_weights_trained_on_the_same_generator_seeds_athletes_are_named_in_a_warning(trained, tiny_dataset, caplog):
    """Another dataset of the same seed (another size, say) holds the same athletes: loading says so too."""
    from valgusml.synth.dataset import generator_seed_of

    best, weights, _ = trained
    seed = generator_seed_of(tiny_dataset)
    assert seed is not None and torch.load(weights, weights_only=True)["source"]["generator_seed"] == seed
    assert torch.load(best, weights_only=True)["valgusml"]["generator_seed"] == seed
    module = _fresh_module(best)
    for run_seed, warned in ((seed, True), (seed + 1, False), (None, False)):
        module.run_info.update(dataset_fingerprint="another", generator_seed=run_seed)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="valgusml.train"):
            load_initial_weights(module, weights)
        assert (f"trained on athletes of generator seed {seed}" in caplog.text) is warned


def test_weights_that_learnt_from_several_seeds_warn_of_each(trained, tiny_dataset, tmp_path, caplog):
    """A start trained further on another seed's athletes still holds the first seed's: both are warned of."""
    from valgusml.synth.dataset import generator_seed_of

    best, weights, _ = trained
    seed = generator_seed_of(tiny_dataset)
    payload = torch.load(weights, map_location="cpu", weights_only=True)
    payload["source"]["generator_seeds"] = [seed + 2, seed + 3]
    continued = tmp_path / "continued.pt"
    torch.save(payload, continued)
    module = _fresh_module(best)
    for run_seed, warned in ((seed + 2, True), (seed + 3, True), (seed + 4, False)):
        module.run_info.update(dataset_fingerprint="another", generator_seed=run_seed)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="valgusml.train"):
            load_initial_weights(module, continued)
        assert (f"trained on athletes of generator seed {run_seed}" in caplog.text) is warned
        assert f"generator seeds {seed + 2}, {seed + 3})" in caplog.text


def test_init_blend_ships_the_mean_of_the_trained_and_the_starting_weights(trained, tmp_path):
    """WiSE-FT: the best checkpoint's network is blended with its start, validated again for its own threshold,
    saved beside it, and that blend is what the run tests and exports."""
    import json

    _, weights, overrides = trained
    root = tmp_path / "blend"
    overrides = [o for o in overrides if not o.startswith(("paths.root_dir", "export=", "test="))]
    metrics = run_training(overrides + [f"paths.root_dir={root}", f"init_from={weights}", "init_blend=0.25",
                                        "trainer.max_epochs=1", "test=true", "export=true",
                                        f"export_dir={root / 'predictor'}"])
    (fine_tuned,) = root.glob("logs/smoke/runs/*/checkpoints/best-epoch000.ckpt")
    blended = torch.load(fine_tuned.with_name("best-epoch000-blend0.25.ckpt"), map_location="cpu", weights_only=True)
    trained_net = _net_state(torch.load(fine_tuned, map_location="cpu", weights_only=True)["state_dict"])
    start = torch.load(weights, map_location="cpu", weights_only=True)["net"]
    blended_net = _net_state(blended["state_dict"])
    assert blended_net.keys() == trained_net.keys()
    moved = 0
    for key, value in trained_net.items():
        if value.is_floating_point():
            torch.testing.assert_close(blended_net[key], 0.25 * value + 0.75 * start[key])
            moved += not torch.equal(value, start[key])
        else:  # batch counts are the trained network's
            assert torch.equal(blended_net[key], value), key
    assert moved > 10  # one epoch moved the weights, so the blend is neither end

    info = blended["valgusml"]
    assert info["init_from"]["blend"] == 0.25 and info["init_from"]["path"] == str(weights)
    # Validated again: the run's val metrics and threshold are the blend's, and so is the test that follows.
    assert info["val_metrics"]["decision_threshold"] == pytest.approx(info["decision_threshold"])
    assert metrics["val/mechanism_macro_f1"] == pytest.approx(info["val_metrics"]["mechanism_macro_f1"])
    assert metrics["test/decision_threshold"] == pytest.approx(info["decision_threshold"], abs=1e-4)
    assert info["test_metrics"]["valgus_auroc"] == pytest.approx(metrics["test/valgus_auroc"])
    exported = json.loads((root / "predictor" / "model.json").read_text())
    assert exported["init_from"]["blend"] == 0.25
    assert exported["checkpoint"].endswith("best-epoch000-blend0.25.ckpt")


@pytest.mark.parametrize(("overrides", "message"), [
    (["init_blend=0.5"], "init_blend=0.5 blends the trained weights with init_from's, and init_from is not set"),
    (["init_from=data/pretrained/tcn_student/weights.pt", "init_blend=1.5"], r"init_blend must be a number in \(0, 1\]"),
    (["init_from=data/pretrained/tcn_student/weights.pt", "init_blend=0"], r"init_blend must be a number in \(0, 1\]"),
])
def test_a_bad_init_blend_is_refused_before_any_work(overrides, message):
    from valgusml.training.config import check_config, compose_config

    with pytest.raises(ConfigError, match=message):
        check_config(compose_config(["experiment=smoke", *overrides]))


def test_weights_load_into_a_network_that_also_averages_its_mirror(trained):
    """`mirror_average` changes what the network computes in evaluation, not its weights: the weights of a
    network without it load into one with it (the default recipe's start has none)."""
    best, weights, _ = trained
    hparams = torch.load(best, map_location="cpu", weights_only=True)["hyper_parameters"]
    module = ValgusLitModule(net={**hparams["net"], "mirror_average": True}, optimizer={},
                             preprocess=hparams["preprocess"])
    load_initial_weights(module, weights)
    assert module.net.mirror_average
    expected = torch.load(weights, map_location="cpu", weights_only=True)["net"]
    assert all(torch.equal(module.net.state_dict()[k], v) for k, v in expected.items())


def test_weights_of_a_checkpoint_well_below_its_runs_best_come_with_a_warning(trained, tmp_path, caplog):
    """A CPU stage's last epoch broke (val AUROC 0.941 → 0.868) and its recipe keeps the last epoch: writing such
    weights says so; a checkpoint level with its run's best does not."""
    best, _, _ = trained
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    own = checkpoint["valgusml"]["val_metrics"]["valgus_auroc"]
    run = tmp_path / "checkpoints"
    run.mkdir()
    torch.save(checkpoint, run / "last.ckpt")
    (run / "metrics.json").write_text(f'{{"val/valgus_auroc": {own + 0.01}}}')
    with caplog.at_level(logging.WARNING, logger="valgusml.train"):
        save_weights(run / "last.ckpt", tmp_path / "level.pt")
    assert "best checkpoint" not in caplog.text
    (run / "metrics.json").write_text(f'{{"val/valgus_auroc": {own + 0.05}}}')
    with caplog.at_level(logging.WARNING, logger="valgusml.train"):
        save_weights(run / "last.ckpt", tmp_path / "broken.pt")
    assert f"validation AUROC {own:.3f}, against {own + 0.05:.3f} for its run's best checkpoint" in caplog.text
    assert (tmp_path / "broken.pt").is_file()  # written all the same: the warning informs, it does not refuse
