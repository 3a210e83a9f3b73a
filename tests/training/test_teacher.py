"""Distillation (`data.teacher`): a predictor folder's probabilities on the training windows join the training
set only, follow the mirror like the labels, and pull the network towards them."""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from valgusml.errors import ConfigError  # noqa: E402
from valgusml.training.augment import Mirror  # noqa: E402
from valgusml.training.datamodule import ValgusDataModule  # noqa: E402
from valgusml.training.module import ValgusLitModule  # noqa: E402
from valgusml.training.teacher import bound_by_labels, teacher_targets  # noqa: E402


def _teacher(folder, window: int | None = None, generator_seed: int | None = None):
    """An untrained tiny network exported with the data module's preprocessing (or another window), said to
    have trained on `generator_seed`'s athletes."""
    from valgusml.export import export_predictor
    from valgusml.models import TCN, MultiTaskHead, ValgusNet
    from valgusml.preprocess import PreprocessConfig

    torch.manual_seed(0)
    net = ValgusNet(backbone=functools.partial(TCN, channels=8, n_blocks=1, dropout=0.0),
                    head=functools.partial(MultiTaskHead, hidden=8, dropout=0.0)).eval()
    cfg = PreprocessConfig() if window is None else PreprocessConfig(window=window, stride=window // 2)
    return export_predictor((net, cfg, {"decision_threshold": 0.5, "generator_seed": generator_seed}), folder)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return _teacher(tmp_path_factory.mktemp("teacher") / "predictor")


def test_the_teachers_probabilities_join_the_training_windows_only(tiny_dataset, shared_cache, teacher):
    from valgusml.predictor import Predictor

    dm = ValgusDataModule(dataset_dir=str(tiny_dataset), cache_dir=str(shared_cache), batch_size=16, augment=None,
                          teacher=str(teacher))
    dm.setup()
    train = dm.sets["train"].tensors
    assert train["teacher_valgus"].shape == train["valgus"].shape
    assert train["teacher_mechanism"].shape == (*train["valgus"].shape, 5)
    assert not any(k.startswith("teacher") for k in dm.sets["val"].tensors)
    assert not any(k.startswith("teacher") for k in dm.split_set("test").tensors)
    rows = slice(0, 7)
    expected = Predictor.load(teacher).run_windows(*(train[k][rows].numpy() for k in ("joints", "measures", "mask")))
    np.testing.assert_allclose(train["teacher_valgus"][rows].numpy(), expected[0], atol=1e-6)
    np.testing.assert_allclose(train["teacher_mechanism"][rows].numpy(), expected[1], atol=1e-6)
    np.testing.assert_allclose(train["teacher_mechanism"].sum(-1).numpy(), 1.0, atol=1e-5)


def test_a_bounded_teacher_softens_labels_and_never_overturns_them(tiny_dataset, shared_cache, teacher):
    valgus = np.array([[0, 1], [1, 0]])
    mechanism = np.array([[0, 3], [2, -1]])  # -1: rule-labelled, mechanism unknown
    soft = {"teacher_valgus": np.array([[0.9, 0.2], [0.7, 0.1]], np.float32),
            "teacher_mechanism": np.array([[[0.1, 0.6, 0.1, 0.1, 0.1], [0.7, 0.1, 0.1, 0.05, 0.05]],
                                           [[0.2, 0.1, 0.6, 0.05, 0.05], [0.1, 0.2, 0.3, 0.2, 0.2]]], np.float32)}
    out = bound_by_labels(soft, valgus, mechanism)
    # presence: clipped at 0.5 on the label's side; where the teacher agrees it is kept
    np.testing.assert_allclose(out["teacher_valgus"], [[0.5, 0.5], [0.7, 0.1]])
    # mechanism: the label's class raised to 0.5, the others keeping their proportions
    np.testing.assert_allclose(out["teacher_mechanism"][0, 0], [0.5, 1 / 3, 1 / 18, 1 / 18, 1 / 18], rtol=1e-6)
    np.testing.assert_allclose(out["teacher_mechanism"][0, 1], [0.7 * 0.5 / 0.95, 0.1 * 0.5 / 0.95, 0.1 * 0.5 / 0.95, 0.5,
                                                                0.05 * 0.5 / 0.95], rtol=1e-6)
    np.testing.assert_array_equal(out["teacher_mechanism"][1], soft["teacher_mechanism"][1])  # agrees / unknown
    # the data module applies it to the training windows with data.teacher_bounded
    dm = ValgusDataModule(dataset_dir=str(tiny_dataset), cache_dir=str(shared_cache), batch_size=16, augment=None,
                          teacher=str(teacher), teacher_bounded=True)
    dm.setup()
    train = dm.sets["train"].tensors
    label, presence = train["valgus"].numpy(), train["teacher_valgus"].numpy()
    assert (presence[label == 1] >= 0.5).all() and (presence[label == 0] <= 0.5).all()
    chosen = np.take_along_axis(train["teacher_mechanism"].numpy(), train["mechanism"].numpy().clip(0)[..., None], -1)
    assert (chosen[train["mechanism"].numpy() >= 0] >= 0.5 - 1e-6).all()


def test_a_teacher_that_reads_other_windows_is_refused(tmp_path):
    other = _teacher(tmp_path / "other", window=48)
    joints, measures, mask = np.zeros((2, 64, 20, 3), np.float32), np.zeros((2, 64, 30), np.float32), np.ones((2, 64), np.float32)
    with pytest.raises(ConfigError, match="windows of 48 frames"):
        teacher_targets(other, joints, measures, mask)


def test_the_mirror_swaps_the_teachers_limbs_with_the_labels():
    batch = {
        "joints": torch.rand(1, 8, 20, 3), "measures": torch.zeros(1, 8, 0), "mask": torch.ones(1, 8),
        "valgus": torch.tensor([[0, 1]]), "teacher_valgus": torch.tensor([[0.2, 0.9]]),
        "teacher_mechanism": torch.tensor([[[1.0, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0]]]),
    }
    out = Mirror(p=1.0).mirror(batch)
    assert out["valgus"].tolist() == [[1, 0]]
    assert out["teacher_valgus"][0].tolist() == pytest.approx([0.9, 0.2])
    assert out["teacher_mechanism"][0, 0].tolist() == [0, 0, 0.5, 0.5, 0]


def test_the_distillation_loss_is_least_where_the_network_agrees_with_its_teacher():
    teacher_p = torch.tensor([[0.2, 0.9]])
    teacher_mech = torch.tensor([[[0.7, 0.1, 0.1, 0.05, 0.05], [0.1, 0.6, 0.1, 0.1, 0.1]]])
    batch = {"teacher_valgus": teacher_p, "teacher_mechanism": teacher_mech}

    def losses(logit_shift: float):
        out = {"valgus_logit": torch.logit(teacher_p) + logit_shift,
               "mechanism_logits": torch.log(teacher_mech) + torch.tensor([logit_shift, 0, 0, 0, 0])}
        return ValgusLitModule._distill_losses(out, batch)

    agree, off = losses(0.0), losses(0.8)
    for name in ("distill_valgus", "distill_mechanism"):
        assert agree[name] < off[name] < losses(1.6)[name]
    # At agreement the presence term is the teacher's own entropy: nothing left to learn.
    entropy = -(teacher_p * teacher_p.log() + (1 - teacher_p) * (1 - teacher_p).log()).mean()
    assert agree["distill_valgus"].item() == pytest.approx(entropy.item(), rel=1e-5)


def test_the_shipped_teacher_is_found_from_anywhere_and_a_missing_one_is_named(tmp_path, monkeypatch):
    from valgusml.training.config import check_config, compose_config
    from valgusml.training.teacher import resolve_teacher

    monkeypatch.chdir(tmp_path)
    assert (resolve_teacher("data/pretrained/tcn_gpu_ensemble") / "model.onnx").is_file()
    with pytest.raises(ConfigError, match="data.teacher=nowhere/teacher: no such predictor folder"):
        resolve_teacher("nowhere/teacher")
    with pytest.raises(ConfigError, match="no such predictor folder"):
        check_config(compose_config(["experiment=default", "data.teacher=nowhere/teacher"]))


def test_the_teachers_pass_is_kept_and_read_back_for_the_same_teacher_and_windows(tmp_path, teacher, monkeypatch):
    from valgusml.predictor import Predictor

    rng = np.random.default_rng(0)
    _, window, n_measures = Predictor.load(teacher).metadata["inputs"]["measures"]
    joints = rng.normal(size=(5, window, 20, 3)).astype(np.float32)
    measures = rng.normal(size=(5, window, n_measures)).astype(np.float32)
    mask = np.ones((5, window), np.float32)
    first = teacher_targets(teacher, joints, measures, mask, cache_dir=tmp_path)
    kept = list((tmp_path / "teacher").glob("*.npz"))
    assert len(kept) == 1 and not list((tmp_path / "teacher").glob(".*"))  # no partial file left behind

    runs = []
    real_run = Predictor.run_windows
    monkeypatch.setattr(Predictor, "run_windows", lambda self, *a: runs.append(1) or real_run(self, *a))
    again = teacher_targets(teacher, joints, measures, mask, cache_dir=tmp_path)
    assert runs == []  # read back, not run
    for name in first:
        np.testing.assert_array_equal(again[name], first[name])

    moved = joints.copy()
    moved[0, 0, 0, 0] += 1.0  # one coordinate of one window: another key
    teacher_targets(teacher, moved, measures, mask, cache_dir=tmp_path)
    assert runs == [1] and len(list((tmp_path / "teacher").glob("*.npz"))) == 2

    kept[0].write_bytes(b"not an npz")  # a damaged file is computed again and replaced
    repaired = teacher_targets(teacher, joints, measures, mask, cache_dir=tmp_path)
    assert runs == [1, 1]
    np.testing.assert_array_equal(repaired["teacher_valgus"], first["teacher_valgus"])
    assert teacher_targets(teacher, joints, measures, mask, cache_dir=tmp_path) and runs == [1, 1]


def test_a_teacher_trained_on_the_runs_generator_seed_is_named_in_a_warning(tiny_dataset, shared_cache, tmp_path,
                                                                            caplog):
    """Its athletes are the run's own (athlete `index` of a seed is one person in every dataset of that seed)."""
    import json
    import logging

    from valgusml.synth.dataset import generator_seed_of

    seed = generator_seed_of(tiny_dataset)
    for teacher_seed, warned in ((seed, True), (seed + 1, False)):
        teacher = _teacher(tmp_path / f"teacher-{teacher_seed}", generator_seed=teacher_seed)
        assert json.loads((teacher / "model.json").read_text())["generator_seed"] == teacher_seed
        dm = ValgusDataModule(dataset_dir=str(tiny_dataset), cache_dir=str(shared_cache), batch_size=16,
                              augment=None, teacher=str(teacher))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="valgusml.train"):
            dm.setup()
        assert (f"trained on athletes of generator seed {seed}" in caplog.text) is warned


def test_a_cache_write_leaves_no_partial_file_behind(tmp_path, monkeypatch, dead_pid):
    """A failed write removes its partial file; a killed writer's is removed by the next write; a live
    writer's stays."""
    import os

    from valgusml.training import teacher as teacher_module

    path = tmp_path / "teacher" / "key.npz"
    targets = {"teacher_valgus": np.zeros((2, 2), np.float32)}
    killed = path.parent / f".{path.name}.partial-{dead_pid}"
    live = path.parent / f".{path.name}.partial-{os.getppid()}"
    path.parent.mkdir(parents=True)
    killed.write_bytes(b"half")
    live.write_bytes(b"half")

    def failing_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(teacher_module.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        teacher_module.write_cached(path, targets)
    assert not path.exists() and not (path.parent / f".{path.name}.partial-{os.getpid()}").exists()
    monkeypatch.undo()
    teacher_module.write_cached(path, targets)
    assert path.is_file() and not killed.exists() and live.exists()
