"""A user's own dataset folder in training: too few athletes to split is told with the folder named, and a folder
added to training (`data.extra_train_dirs`) never brings in an athlete the run validates or tests on."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from valgusml.data.convert import convert  # noqa: E402
from valgusml.data.format import open_dataset, write_dataset  # noqa: E402
from valgusml.errors import InputError  # noqa: E402
from valgusml.training.datamodule import ValgusDataModule  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def _dm(dataset: Path, cache: Path, **kw) -> ValgusDataModule:
    return ValgusDataModule(dataset_dir=str(dataset), cache_dir=str(cache), batch_size=16, augment=None,
                            split={"method": "fractions", "val_fraction": 0.2, "test_fraction": 0.2}, **kw)


def test_a_one_athlete_folder_is_refused_naming_the_folder_and_the_way_out(tmp_path):
    """Before: "need at least 3 athletes ..." with neither the folder nor what to do with one person's data."""
    one = tmp_path / "clinic"
    convert([SAMPLES / "squat.npz"], one)
    with pytest.raises(InputError, match=rf"{one}: need at least 3 athletes .* has 1 .*data\.extra_train_dirs"):
        _dm(one, tmp_path / "cache").setup("fit")


def test_an_added_folder_holding_a_validation_or_test_athlete_is_refused(tiny_dataset, tmp_path):
    dm = _dm(tiny_dataset, tmp_path / "cache")
    dm.setup("fit")
    ds = open_dataset(tiny_dataset)
    held_out = dm.split.test[0]
    write_dataset(tmp_path / "mine", [ds[i] for i in ds.indices_of([held_out])[:1]])
    leaking = _dm(tiny_dataset, tmp_path / "cache", extra_train_dirs=[str(tmp_path / "mine")])
    with pytest.raises(InputError, match=rf"mine has athletes of the validation/test split \['{held_out}'\]"):
        leaking.setup("fit")


def test_an_unlabelled_added_folder_is_refused_before_its_windows_are_prepared(tiny_dataset, tmp_path, monkeypatch):
    """A big unlabelled folder was prepared (minutes for a large one) before training said it has no labels."""
    import valgusml.training.datamodule as datamodule

    ds = open_dataset(tiny_dataset)
    write_dataset(tmp_path / "unlabelled", [ds[0].replace(athlete_id="someone_new", labels=None)])
    prepared = []
    real = datamodule.prepare_dataset
    monkeypatch.setattr(datamodule, "prepare_dataset", lambda d, *a, **k: prepared.append(d.root) or real(d, *a, **k))
    dm = _dm(tiny_dataset, tmp_path / "cache", extra_train_dirs=[str(tmp_path / "unlabelled")])
    with pytest.raises(InputError, match="unlabelled: sequence .* has no labels; training needs them"):
        dm.setup("fit")
    assert [Path(p).name for p in prepared] == [Path(tiny_dataset).name]
