"""`ValgusDataModule`: dataset folder (or generated synthetic set) → athlete splits → in-memory window tensors.

Why it looks like this: the models train at thousands of sequences/s on a GPU, which per-sample Python in
DataLoader workers cannot feed. So preprocessing (`valgusml.preprocess.prepare_many`) runs ONCE over the whole
dataset and is cached on disk as plain .npy (keyed by dataset fingerprint + preprocessing config), each split
is a set of tensors in memory, a batch is one tensor slice chosen by `BatchIndexSampler`, and augmentation
(`BatchAugment`) runs on the whole batch on the training device in `on_after_batch_transfer`.

Distributed training: each rank trains on its own share of the shuffled batches; validation and test are
NOT sharded (every rank scores the whole, small, split), so epoch metrics agree across ranks without a gather.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader

from valgusml.data.format import Dataset, open_dataset
from valgusml.data.splits import Split, assert_disjoint, load_split, split_athletes
from valgusml.errors import ConfigError, InputError
from valgusml.hydra_app import config_integer, to_plain
from valgusml.labels import MECHANISMS
from valgusml.predictor.format import athlete_digests
from valgusml.training.batches import BatchIndexSampler, WindowTensors
from valgusml.training.synthetic import ensure_synthetic, synthetic_dataset_dir
from valgusml.training.windows import (
    WINDOW_ARRAYS,
    decode_recordings,
    prepare_dataset,
    preprocess_config,
    sequence_labels,
    training_windows,
)


class ValgusDataModule(LightningDataModule):
    """Either `dataset_dir` (any dataset folder, e.g. from `valgusml convert`) or `generator` (a synthetic
    preset config, generated into `<data_dir>/synthetic-<hash>` on first use)."""

    def __init__(
        self,
        dataset_dir: str | None = None,
        generator: dict[str, Any] | None = None,
        n_athletes: int = 40,
        generator_seed: int = 0,
        generate_workers: int | None = None,
        data_dir: str = "data",
        cache_dir: str | None = ".cache",
        preprocess: dict[str, Any] | None = None,
        split: dict[str, Any] | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 512,
        augment: dict[str, Any] | None = None,
        class_weights: bool = True,
        require_all_classes: bool = True,
        pin_memory: bool = False,
        device_resident: bool = True,
        compile_augment: bool = False,
        seed: int = 0,
        train_windows_per_sequence: int | None = None,
        extra_train_dirs: list[str] | None = None,
        extra_train_repeat: int = 1,
        teacher: str | None = None,
        teacher_bounded: bool = False,
    ) -> None:
        super().__init__()
        if (dataset_dir is None) == (generator is None):
            raise ConfigError("data: give exactly one of dataset_dir (a dataset folder) or generator (a preset)")
        self.dataset_dir = dataset_dir
        self.generator = to_plain(generator)
        self.n_athletes, self.generator_seed, self.generate_workers = n_athletes, generator_seed, generate_workers
        self.data_dir, self.cache_dir = data_dir, cache_dir
        self.preprocess = preprocess_config(preprocess).to_dict()
        self.split_config = dict(to_plain(split) or {})
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.augment_config = to_plain(augment)
        self.use_class_weights, self.require_all_classes = class_weights, require_all_classes
        self.pin_memory, self.device_resident, self.seed = pin_memory, device_resident, int(seed)
        if train_windows_per_sequence is not None and int(train_windows_per_sequence) < 1:
            raise ConfigError(f"data.train_windows_per_sequence must be >= 1 or null, got {train_windows_per_sequence}")
        self.train_windows_per_sequence = None if train_windows_per_sequence is None else int(train_windows_per_sequence)
        self.extra_train_dirs = [str(d) for d in (to_plain(extra_train_dirs) or [])]
        self.extra_train_repeat = config_integer("data.extra_train_repeat", extra_train_repeat, 1)
        self.teacher = str(teacher) if teacher else None  # a predictor folder whose soft targets join training
        self.teacher_bounded = bool(teacher_bounded)  # the teacher softens a label, never overturns it
        # Eager augmentation launches many small kernels: on a GPU it cannot keep up with the model step
        # unless compiled (scripts/bench_models.py --compile measures both).
        self.compile_augment = bool(compile_augment)
        self.augment: Any = None
        self._augment_call: Any = None
        self._augment_device: Any = None
        self._prepared = False
        self.dataset: Dataset | None = None
        self.split: Split | None = None
        self.sets: dict[str, WindowTensors] = {}  # train and val by setup; test when first asked for (`split_set`)
        self._extra_counts: list[tuple[int, int]] = []  # (sequences, windows) each extra_train_dirs folder added
        # Each added folder's fingerprint and hashed athletes: an evaluation refuses to score them as held out.
        self._extra_sources: list[dict[str, Any]] = []
        # The dataset's prepared windows and SEQUENCE_ARRAYS (memory-mapped when cached), by setup.
        self._windows: dict[str, np.ndarray] = {}
        self._labels: dict[str, np.ndarray] = {}

    # -- where the data is ----------------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        if self.dataset_dir is not None:
            return Path(self.dataset_dir)
        return synthetic_dataset_dir(self.data_dir, self.generator, self.n_athletes, self.generator_seed)

    def prepare_data(self) -> None:
        """Runs on one process per node: generate the synthetic set if missing, then fill the cache."""
        if self._prepared:
            return
        if self.generator is not None:
            ensure_synthetic(self.data_dir, self.generator, self.n_athletes, self.generator_seed, self.generate_workers)
        elif not Path(self.dataset_dir).is_dir():
            raise InputError(f"data.dataset_dir {self.dataset_dir!r} does not exist (make one with `valgusml convert`)")
        if self.cache_dir is not None:
            prepare_dataset(open_dataset(self.root), self.preprocess, self.cache_dir)
        self._prepared = True

    @property
    def fingerprint(self) -> str:
        return self._open().fingerprint

    def athletes_source(self) -> dict[str, Any]:
        """`{"dataset_fingerprint", "generator_seed", "other_training_data"}`: which athletes these are, as
        weights and teachers record theirs (`init_weights.warn_of_shared_athletes` compares them; the seed is None
        unless generated; the last, the `data.extra_train_dirs` folders added by `setup`)."""
        from valgusml.synth.dataset import generator_seed_of

        return {"dataset_fingerprint": self.fingerprint, "generator_seed": generator_seed_of(self.root),
                "other_training_data": list(self._extra_sources)}

    def _open(self) -> Dataset:
        if self.dataset is None:
            if not (self.root / "dataset.json").is_file() and self.generator is not None:
                self.prepare_data()
            self.dataset = open_dataset(self.root)
        return self.dataset

    # -- splits ---------------------------------------------------------------------------------------------
    def make_split(self) -> Split:
        ds = self._open()
        cfg = dict(self.split_config)
        file = cfg.pop("file", None)
        if file:
            split = load_split(file)
            if split.dataset_fingerprint not in (None, ds.fingerprint):
                raise InputError(
                    f"split file {file} was made for dataset {split.dataset_fingerprint[:12]}, not "
                    f"{ds.fingerprint[:12]} ({ds.root})"
                )
            unknown = set(split.train + split.val + split.test) - set(ds.athletes)
            if unknown:
                raise InputError(f"split file {file} names athletes not in {ds.root}: {sorted(unknown)[:5]}")
            return split
        cfg.setdefault("seed", self.seed)
        try:
            return split_athletes(ds.athlete_ids, dataset_fingerprint=ds.fingerprint, **cfg)
        except TypeError as exc:
            raise ConfigError(f"data.split: {exc}") from None
        except InputError as exc:  # too few athletes, an empty split: name the folder
            raise InputError(f"{ds.root}: {exc}") from None

    def setup(self, stage: str | None = None) -> None:
        """The split and the training and validation windows; the test windows wait for `split_set("test")`
        (a run with `test: false` never holds them: a third of a 3,000-athlete student run's memory)."""
        if self.sets:
            return
        ds = self._open()
        self.split = self.make_split()
        assert_disjoint(self.split)
        self._windows = prepare_dataset(ds, self.preprocess, self.cache_dir)
        self._labels = sequence_labels(ds)
        for name in ("train", "val"):
            self.split_set(name)
        n_synthetic = len(self.sets["train"])
        for extra in self.extra_train_dirs:
            self._add_training_data(extra)
        if self.teacher:
            self._add_teacher_targets(self.teacher)
        if self.extra_train_repeat > 1 and len(self.sets["train"]) > n_synthetic:
            # After the teacher's pass, so that it reads each added window once.
            train = self.sets["train"].tensors
            self.sets["train"] = WindowTensors({
                k: torch.cat([v, *[v[n_synthetic:]] * (self.extra_train_repeat - 1)]) for k, v in train.items()
            })
        self._check_train_classes()
        if self.augment_config:
            from hydra.utils import instantiate

            self.augment = instantiate(self.augment_config)

    def split_set(self, name: str) -> WindowTensors:
        """The windows of split `name` ("train", "val", "test"), made from the prepared windows when first asked
        for. Training keeps the windows that hold most of each sequence's scored phase; validation and test keep
        every window and its start (the predictor's rule combines them by scored segment)."""
        if name in self.sets:
            return self.sets[name]
        if not self._windows:
            self.setup()
            return self.split_set(name)
        rows = np.flatnonzero(self._in_split(name))
        if name == "train":
            rows = rows[training_windows(self._windows["scored_frames"][rows], self._windows["sequence_index"][rows],
                                         self.train_windows_per_sequence)]
        if len(rows) == 0:
            raise InputError(f"{self.root}: split {name!r} has no windows (athletes {self.split.athletes(name)[:5]})")
        self.sets[name] = WindowTensors(self._tensors(self._windows, self._labels, rows, keep_start=name != "train"))
        return self.sets[name]

    def _in_split(self, name: str) -> np.ndarray:
        """`(n_windows,)` bool: the prepared windows of split `name`'s athletes."""
        return np.isin(self._open().athlete_ids[self._windows["sequence_index"]], self.split.athletes(name))

    @staticmethod
    def _tensors(arrays: dict[str, np.ndarray], labels: dict[str, np.ndarray], rows: np.ndarray,
                 keep_start: bool = False) -> dict[str, torch.Tensor]:
        tensors = {k: torch.from_numpy(np.ascontiguousarray(arrays[k][rows])) for k in WINDOW_ARRAYS}
        tensors.update({k: torch.from_numpy(v[arrays["sequence_index"][rows]]) for k, v in labels.items()})
        del tensors["scored_frames"]
        if not keep_start:
            del tensors["window_start_s"]
        return tensors

    def recordings(self, sequence_index: np.ndarray) -> dict[str, list]:
        """`{"segments", "views", "scored_limbs", "leg_seen"}` of the dataset's sequences `sequence_index`: what the
        predictor's rule (`valgusml.preprocess.aggregate_recordings`) needs to combine their windows."""
        return decode_recordings(self._windows, np.asarray(sequence_index))

    def athletes_of(self, sequence_index: np.ndarray) -> np.ndarray:
        """The athlete ids of the dataset's sequences `sequence_index` (validation's mechanism offsets resample
        athletes, as the export's do)."""
        return np.asarray(self._open().athlete_ids)[np.asarray(sequence_index, dtype=np.int64)]

    def _add_training_data(self, folder: str) -> None:
        """Every athlete of another dataset folder joins TRAINING only (e.g. real motion capture labelled by the
        presence rule with `valgusml convert --label-by-rule`, mechanism unknown: its mechanism loss is masked).
        Evaluate on such data with `valgusml evaluate ... data_dir=FOLDER split=all`, on other athletes."""
        extra = open_dataset(folder)
        held_out = set(self.split.val) | set(self.split.test)
        clash = sorted(set(extra.athletes) & held_out)
        if clash:
            raise InputError(f"data.extra_train_dirs: {folder} has athletes of the validation/test split {clash[:5]}; "
                             "rename them (athlete ids must name one person across datasets)")
        labels = sequence_labels(extra)  # an unlabelled folder is told before its windows are prepared
        arrays = prepare_dataset(extra, self.preprocess, self.cache_dir)
        rows = training_windows(arrays["scored_frames"], arrays["sequence_index"], self.train_windows_per_sequence)
        added = self._tensors(arrays, labels, rows)
        self._extra_counts.append((len(extra), len(rows)))
        self._extra_sources.append({"dataset_fingerprint": extra.fingerprint,
                                    "athletes_sha256": athlete_digests(extra.athletes)})
        train = self.sets["train"].tensors
        self.sets["train"] = WindowTensors({k: torch.cat([train[k], added[k]]) for k in train})

    def _add_teacher_targets(self, folder: str) -> None:
        """The teacher's probabilities on every training window (`valgusml.training.teacher`), kept beside the
        prepared windows under `cache_dir`."""
        from valgusml.training.teacher import bound_by_labels, teacher_targets

        train = self.sets["train"].tensors
        soft = teacher_targets(folder, *(train[k].numpy() for k in ("joints", "measures", "mask")),
                               threads=max(1, torch.get_num_threads()), cache_dir=self.cache_dir,
                               run_info=self.athletes_source())
        if self.teacher_bounded:
            soft = bound_by_labels(soft, train["valgus"].numpy(), train["mechanism"].numpy())
        self.sets["train"] = WindowTensors({**train, **{k: torch.from_numpy(v) for k, v in soft.items()}})

    def _check_train_classes(self) -> None:
        train = self.sets["train"].tensors
        valgus = train["valgus"].flatten()
        present = set(train["mechanism"].flatten().tolist())
        problems = []
        if valgus.min() == valgus.max():
            problems.append(f"valgus is always {bool(valgus[0])}")
        missing = [MECHANISMS[i] for i in range(len(MECHANISMS)) if i not in present]
        if missing and self.require_all_classes:
            problems.append(f"no training example of mechanism(s) {missing}")
        if problems:
            raise InputError(
                f"{self.root}: the training split ({len(self.split.train)} athletes) leaves a class empty: "
                + "; ".join(problems)
                + ". Use more athletes, another split seed, or data.require_all_classes=false."
            )

    def class_weights(self) -> dict[str, Any]:
        """`valgus_pos_weight` (negatives / positives) and balanced `mechanism_class_weights` from TRAIN labels."""
        if not self.sets:
            self.setup("fit")
        train = self.sets["train"].tensors
        if not self.use_class_weights:
            return {"valgus_pos_weight": None, "mechanism_class_weights": None}
        valgus = train["valgus"].flatten()
        pos = float(valgus.sum())
        mechanism = train["mechanism"].flatten()
        counts = torch.bincount(mechanism[mechanism >= 0], minlength=len(MECHANISMS)).double()  # known ones
        weights = counts.sum() / (len(MECHANISMS) * counts.clamp(min=1))
        return {
            "valgus_pos_weight": (len(valgus) - pos) / max(pos, 1.0),
            "mechanism_class_weights": [round(float(w), 6) for w in weights],
        }

    def summary(self) -> dict[str, Any]:
        ds = self._open()
        out = {"dataset": str(ds.root), "fingerprint": ds.fingerprint, "sequences": len(ds)}
        if self.split is None:
            return out
        for name in ("train", "val", "test"):
            out[f"{name}_athletes"] = len(self.split.athletes(name))
            # a split not made yet is counted, not built
            out[f"{name}_windows"] = len(self.sets[name]) if name in self.sets else int(self._in_split(name).sum())
        if self._extra_counts:  # train_windows counts them too, each as often as it is repeated
            out["extra_train_sequences"] = sum(n for n, _ in self._extra_counts)
            out["extra_train_windows"] = sum(w for _, w in self._extra_counts)
            out["extra_train_repeat"] = self.extra_train_repeat
        return out

    # -- loaders --------------------------------------------------------------------------------------------
    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _on_device(self, data: WindowTensors) -> WindowTensors:
        """On an accelerator, keep the split's tensors in its memory: a batch is then a slice on the device, with
        no host gather or copy per step (which would be slower than the model's step on a GPU)."""
        trainer = self.trainer
        if not self.device_resident or trainer is None:
            return data
        device = trainer.strategy.root_device
        if device.type == "cpu" or next(iter(data.tensors.values())).device == device:
            return data
        data.tensors = {k: v.to(device) for k, v in data.tensors.items()}
        return data

    def _loader(self, name: str, train: bool) -> DataLoader:
        data = self._on_device(self.split_set(name))
        rank, world = self._rank() if train else (0, 1)
        sampler = BatchIndexSampler(
            len(data),
            self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            drop_last=train and len(data) > self.batch_size * world,
            seed=self.seed,
            rank=rank,
            world_size=world,
        )
        # batch_size=None: the sampler's index tensor reaches __getitem__ whole, so a batch is one slice.
        pin = self.pin_memory and next(iter(data.tensors.values())).device.type == "cpu"
        return DataLoader(data, sampler=sampler, batch_size=None, num_workers=0, pin_memory=pin)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        trainer = self.trainer
        if self.augment is not None and trainer is not None and trainer.training:
            device = batch["joints"].device
            if self._augment_device != device:
                self.augment.to(device)
                self._augment_device = device
                use_compile = self.compile_augment and device.type == "cuda"
                self._augment_call = torch.compile(self.augment) if use_compile else self.augment
            batch = self._augment_call(batch)
        return batch
