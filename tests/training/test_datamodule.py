"""ValgusDataModule: cached preprocessing, athlete splits, tensor-slice batches, class checks and weights."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tests.training.conftest import make_tiny_dataset  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("dm") / "tiny")
from valgusml.errors import ConfigError, InputError  # noqa: E402
from valgusml.training.batches import BatchIndexSampler  # noqa: E402
from valgusml.training.datamodule import ValgusDataModule  # noqa: E402
from valgusml.training.windows import SEQUENCE_ARRAYS, WINDOW_ARRAYS, prepared_cache_dir  # noqa: E402


def _dm(dataset, cache, **kw):
    kw.setdefault("split", {"method": "fractions", "val_fraction": 0.2, "test_fraction": 0.2})
    return ValgusDataModule(dataset_dir=str(dataset), cache_dir=str(cache), batch_size=16, augment=None, **kw)


def test_setup_splits_by_athlete_and_caches(tiny_dataset, tmp_path):
    dm = _dm(tiny_dataset, tmp_path)
    dm.prepare_data()
    dm.setup("fit")
    ds = dm.dataset
    cache = prepared_cache_dir(tmp_path, ds, dm.preprocess)
    assert (cache / "done.json").is_file() and sorted(p.name for p in cache.glob("*.npy")) == sorted(
        f"{k}.npy" for k in WINDOW_ARRAYS + SEQUENCE_ARRAYS)
    assert {"frame_targets", "window_start_s", "view_facing", "segment_start"} <= set(WINDOW_ARRAYS + SEQUENCE_ARRAYS)
    seen = {}
    for name in ("train", "val", "test"):
        tensors = dm.split_set(name).tensors
        athletes = set(ds.athlete_ids[tensors["sequence_index"].numpy()].tolist())
        assert athletes == set(dm.split.athletes(name))
        for a in athletes:
            assert seen.setdefault(a, name) == name
        assert tensors["joints"].shape[1:] == (dm.preprocess["window"], 20, 3)
        assert tensors["joints"].dtype == torch.float32 and tensors["mechanism"].dtype == torch.int64
    assert len(seen) == len(ds.athletes)
    # A second module reads the cache (same arrays, no recomputation).
    again = _dm(tiny_dataset, tmp_path)
    again.setup("fit")
    assert torch.equal(again.sets["val"].tensors["joints"], dm.sets["val"].tensors["joints"])


def test_cached_windows_stay_on_disk_and_match_a_fresh_preparation(tiny_dataset, tmp_path):
    # A split copies its own rows out of memory-mapped arrays: the whole dataset's windows are never held in
    # memory at once (3,000 athletes' are ~5 GB), and what a split holds is its own writable copy.
    from valgusml.synth.dataset import open_dataset
    from valgusml.training.windows import prepare_dataset

    ds = open_dataset(tiny_dataset)
    fresh = prepare_dataset(ds, {}, None)
    built = prepare_dataset(ds, {}, tmp_path)  # prepares, writes the cache, reads it back
    cached = prepare_dataset(ds, {}, tmp_path)
    for arrays in (built, cached):
        assert set(arrays) == set(fresh)
        for k, v in arrays.items():
            assert isinstance(v, np.memmap) and not v.flags.writeable, k
            np.testing.assert_array_equal(v, fresh[k], err_msg=k)
    dm = _dm(tiny_dataset, tmp_path)
    dm.setup("fit")
    assert all(t.numpy().flags.writeable for t in dm.sets["train"].tensors.values())
    # The test windows are made when first asked for, so a run that never tests never holds them.
    assert set(dm.sets) == {"train", "val"}
    counted = dm.summary()["test_windows"]
    assert len(dm.split_set("test")) == counted and set(dm.sets) == {"train", "val", "test"}
    assert dm.summary()["test_windows"] == counted


def test_an_interrupted_preparation_resumes_at_its_first_missing_chunk(tiny_dataset, tmp_path, monkeypatch):
    from valgusml.synth.dataset import open_dataset
    from valgusml.training import windows

    ds = open_dataset(tiny_dataset)
    assert len(ds) > 12
    real, made = windows._prepare_chunk, []

    def interrupted(dataset, pp, start, chunk):
        if start >= 2 * chunk:
            raise KeyboardInterrupt
        made.append(start)
        return real(dataset, pp, start, chunk)

    monkeypatch.setattr(windows, "_prepare_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        windows.prepare_dataset(ds, {}, tmp_path, chunk=4)
    assert made == [0, 4]
    made.clear()
    monkeypatch.setattr(windows, "_prepare_chunk", lambda *a: made.append(a[2]) or real(*a))
    resumed = windows.prepare_dataset(ds, {}, tmp_path, chunk=4)
    assert made == list(range(8, len(ds), 4))  # the two chunks on disk are not made again
    fresh = windows.prepare_dataset(ds, {}, None)
    for k, v in fresh.items():
        np.testing.assert_array_equal(resumed[k], v, err_msg=k)
    cache = windows.prepared_cache_dir(tmp_path, ds, windows.preprocess_config({}).to_dict())
    assert list(cache.parent.iterdir()) == [cache]  # no chunk or temporary folder left beside it


def test_a_join_left_by_a_killed_preparation_is_removed(tiny_dataset, tmp_path, dead_pid):
    # SIGKILL while the chunks were being joined leaves `.NAME.tmp-PID` (as large as the cache): the next
    # preparation deletes it; a live process's folder is left alone.
    import os

    from valgusml.synth.dataset import open_dataset
    from valgusml.training import windows

    ds = open_dataset(tiny_dataset)
    cache = windows.prepared_cache_dir(tmp_path, ds, windows.preprocess_config({}).to_dict())
    stale = cache.with_name(f".{cache.name}.tmp-{dead_pid}")
    live = cache.with_name(f".{cache.name}.tmp-{os.getppid()}")
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "joints.npy").write_bytes(b"half written")
    windows.prepare_dataset(ds, {}, tmp_path, chunk=4)
    assert sorted(cache.parent.iterdir()) == sorted([cache, live])


def test_a_parallel_preparation_that_finishes_first_is_used(tiny_dataset, tmp_path, monkeypatch):
    # Two runs of a sweep preparing the same data share its chunks; the one that finishes first removes them.
    from valgusml.synth.dataset import open_dataset
    from valgusml.training import windows

    ds = open_dataset(tiny_dataset)
    join = windows._join_chunks

    def the_other_finishes_first(folders, out):
        monkeypatch.setattr(windows, "_join_chunks", join)
        windows.prepare_dataset(ds, {}, tmp_path, chunk=4)  # the other run: joins, publishes, cleans up
        join(folders, out)  # this one: its chunks are gone

    monkeypatch.setattr(windows, "_join_chunks", the_other_finishes_first)
    arrays = windows.prepare_dataset(ds, {}, tmp_path, chunk=4)
    for k, v in windows.prepare_dataset(ds, {}, None).items():
        np.testing.assert_array_equal(arrays[k], v, err_msg=k)
    cache = windows.prepared_cache_dir(tmp_path, ds, windows.preprocess_config({}).to_dict())
    assert list(cache.parent.iterdir()) == [cache]


def test_batches_are_slices_and_weights_come_from_train(tiny_dataset, tmp_path):
    dm = _dm(tiny_dataset, tmp_path)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    n = len(dm.sets["train"])
    assert len(batches) == n // 16 and all(b["joints"].shape[0] == 16 for b in batches)
    assert set(batches[0]) == {"joints", "measures", "mask", "frame_targets", "sequence_index", "valgus", "mechanism",
                               "severity_deg"}
    val = list(dm.val_dataloader())
    assert sum(len(b["mask"]) for b in val) == len(dm.sets["val"])  # evaluation keeps every window
    w = dm.class_weights()
    train_valgus = dm.sets["train"].tensors["valgus"]
    assert w["valgus_pos_weight"] == pytest.approx(float((1 - train_valgus).sum() / train_valgus.sum()))
    counts = np.bincount(dm.sets["train"].tensors["mechanism"].flatten().numpy(), minlength=5)
    assert np.allclose(w["mechanism_class_weights"], counts.sum() / (5 * counts), rtol=1e-4)


def test_sampler_is_seeded_per_epoch_and_sharded():
    a = BatchIndexSampler(10, 3, shuffle=True, drop_last=True, seed=1)
    first = [b.tolist() for b in a]
    assert len(first) == 3 and all(len(b) == 3 for b in first)
    assert first == [b.tolist() for b in a]
    a.set_epoch(1)
    assert first != [b.tolist() for b in a]
    shards = [list(BatchIndexSampler(20, 3, True, True, seed=0, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 3
    flat = torch.cat([b for s in shards for b in s]).tolist()
    assert len(set(flat)) == len(flat)  # ranks never see the same window in one epoch


def test_bad_inputs_fail_before_training(tiny_dataset, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ValgusDataModule(dataset_dir=str(tmp_path / "nope"), cache_dir=None).prepare_data()
    with pytest.raises(ConfigError, match="exactly one"):
        ValgusDataModule(cache_dir=None)
    with pytest.raises(InputError, match="has no athletes"):
        _dm(tiny_dataset, tmp_path, split={"val_fraction": 0.0}).setup("fit")
    # A training split without any example of one mechanism is refused, naming it.
    dm = _dm(tiny_dataset, tmp_path)
    dm.setup()
    mechanism = dm.sets["train"].tensors["mechanism"]
    mechanism[mechanism == 4] = 1
    with pytest.raises(InputError, match=r"leaves a class empty: no training example of mechanism\(s\) \['limited_dorsiflexion'\]"):
        dm._check_train_classes()
    with pytest.raises(ConfigError, match="preprocessing"):
        _dm(tiny_dataset, tmp_path, preprocess={"window": 1})


def test_training_windows_hold_the_scored_phase():
    from valgusml.training.windows import training_windows

    scored = np.array([0, 10, 30, 0, 0, 0, 5, 96, 96, 96], dtype=np.float32)
    sequence = np.array([0, 0, 0, 1, 1, 2, 2, 3, 3, 3])
    # windows without any scored frame are dropped, unless their sequence has none scored at all
    assert training_windows(scored, sequence, None).tolist() == [1, 2, 3, 4, 6, 7, 8, 9]
    # at most k per sequence, those holding most of the scored phase (ties: the earlier window)
    assert training_windows(scored, sequence, 1).tolist() == [2, 3, 6, 7]
    assert training_windows(scored, sequence, 2).tolist() == [1, 2, 3, 4, 6, 7, 8]


def test_rule_labelled_data_joins_training_with_its_mechanism_masked(tiny_dataset, tmp_path):
    """3D recordings labelled by the presence rule (`valgusml convert --label-by-rule`) train presence beside
    synthetic data; their unknown mechanism is MECHANISM_UNKNOWN, which the loss ignores."""
    from valgusml.data.convert import convert
    from valgusml.io import trc
    from valgusml.labels import MECHANISM_UNKNOWN
    from valgusml.synth import generate_sequences, load_preset
    from valgusml.training.module import ValgusLitModule

    cfg = load_preset("clean", n_athletes=2, seed=5, observation__dims=3)
    folder = tmp_path / "mocap"
    folder.mkdir()
    for k, seq in enumerate(generate_sequences(cfg, range(2))):
        if seq.task.startswith("bilateral_squat") or k < 3:
            canon = seq.to_canonical().replace(athlete_id=f"mocap{k}", labels=None)
            trc.write(canon, folder / f"squat{k}.trc")
    header = convert([folder], tmp_path / "rule_ds", label_by_rule=True)
    assert header["n_labelled"] == header["n_sequences"] >= 3
    dm = _dm(tiny_dataset, tmp_path / "cache", extra_train_dirs=[str(tmp_path / "rule_ds")])
    dm.setup("fit")
    plain = _dm(tiny_dataset, tmp_path / "cache")
    plain.setup("fit")
    train = dm.sets["train"].tensors
    assert len(train["joints"]) > len(plain.sets["train"].tensors["joints"])
    assert len(dm.sets["val"].tensors["joints"]) == len(plain.sets["val"].tensors["joints"])  # training only
    # the run's data summary (logged, and MLflow's data.* params) counts what was added
    added = len(train["joints"]) - len(plain.sets["train"].tensors["joints"])
    assert dm.summary()["extra_train_sequences"] == header["n_sequences"]
    assert dm.summary()["extra_train_windows"] == added and dm.summary()["train_windows"] == len(train["joints"])
    assert "extra_train_windows" not in plain.summary()
    # what the checkpoint and model.json record of it, so that an evaluation refuses to score it as held out
    from valgusml.data.format import open_dataset
    from valgusml.predictor.format import athlete_digests

    added_set = open_dataset(tmp_path / "rule_ds")
    assert dm.athletes_source()["other_training_data"] == [
        {"dataset_fingerprint": added_set.fingerprint, "athletes_sha256": athlete_digests(added_set.athletes)}]
    assert plain.athletes_source()["other_training_data"] == []
    # repeated: each added window three times (a few real trials beside thousands of synthetic ones)
    thrice = _dm(tiny_dataset, tmp_path / "cache", extra_train_dirs=[str(tmp_path / "rule_ds")], extra_train_repeat=3)
    thrice.setup("fit")
    n_plain = len(plain.sets["train"].tensors["joints"])
    tiled = thrice.sets["train"].tensors["joints"]
    assert len(tiled) == n_plain + 3 * added and thrice.summary()["train_windows"] == len(tiled)
    assert thrice.summary()["extra_train_windows"] == added and thrice.summary()["extra_train_repeat"] == 3
    for k in range(3):
        assert torch.equal(tiled[n_plain + k * added: n_plain + (k + 1) * added], train["joints"][n_plain:])
    with pytest.raises(ConfigError, match="extra_train_repeat"):
        _dm(tiny_dataset, tmp_path / "cache", extra_train_dirs=[str(tmp_path / "rule_ds")], extra_train_repeat=0)
    # a valgus limb of the rule-labelled data has an unknown mechanism; a none limb is 'none' (index 0)
    extra = train["mechanism"][len(plain.sets["train"].tensors["joints"]):]
    assert set(extra.flatten().tolist()) <= {0, MECHANISM_UNKNOWN}
    # the module's loss skips unknown mechanisms: finite, and equal to the loss of the known limbs alone
    from valgusml.models import TCN, ValgusNet

    module = ValgusLitModule(net=ValgusNet(backbone=TCN), optimizer=torch.optim.Adam)
    out = {"valgus_logit": torch.zeros(1, 2), "mechanism_logits": torch.tensor([[[0.0, 2, 0, 0, 0], [0.0, 2, 0, 0, 0]]]),
           "severity_deg": torch.zeros(1, 2)}
    batch = {"valgus": torch.ones(1, 2), "mechanism": torch.tensor([[MECHANISM_UNKNOWN, 1]]),
             "severity_deg": torch.full((1, 2), float("nan"))}
    known = {**batch, "mechanism": torch.tensor([[1, 1]])}
    assert torch.isfinite(module._losses(out, batch)["loss_mechanism"])
    assert torch.allclose(module._losses(out, batch)["loss_mechanism"], module._losses(out, known)["loss_mechanism"])


def test_the_cache_keeps_what_the_predictors_rule_needs_of_each_recording(tiny_dataset, tmp_path):
    """Views, loaded limbs and scored segments come back from the cache as `prepare` found them."""
    from valgusml.preprocess import PreprocessConfig, prepare_many

    dm = _dm(tiny_dataset, tmp_path)
    dm.setup("fit")
    indices = np.array(dm.dataset.indices_of(dm.split.test))
    prepared = prepare_many([dm.dataset[int(i)] for i in indices], PreprocessConfig.from_dict(dm.preprocess))
    again = _dm(tiny_dataset, tmp_path)  # a second module reads the cache the first one wrote
    again.setup("fit")
    for cached in (dm.recordings(indices), again.recordings(indices)):
        assert cached["views"] == prepared.views
        assert cached["scored_limbs"] == [tuple(s) for s in prepared.scored_limbs]
        assert cached["segments"] == prepared.segments
    assert any(prepared.segments) and {v.facing for v in prepared.views} <= {"front", "rear", "side"}
