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

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Sampler

from valgusml.data.format import Dataset, dumps, open_dataset
from valgusml.data.splits import Split, assert_disjoint, load_split, split_athletes
from valgusml.errors import ConfigError, InputError
from valgusml.labels import LIMBS, MECHANISM_INDEX, MECHANISMS

CACHE_FORMAT = 1
_WINDOW_ARRAYS = ("joints", "measures", "mask", "sequence_index", "window_start_s")


def _plain(value: Any) -> Any:
    """DictConfig/ListConfig → plain containers (hyper-parameters and hashes must not hold OmegaConf nodes)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, DictConfig | ListConfig):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover - hydra is a training dependency
        pass
    return value


def config_hash(value: Any, length: int = 12) -> str:
    return hashlib.sha256(dumps(_plain(value)).encode()).hexdigest()[:length]


# -- synthetic data on first use ---------------------------------------------------------------------------


def synthetic_dataset_dir(data_dir: str | Path, generator: dict[str, Any], n_athletes: int, seed: int) -> Path:
    """Where the synthetic set of this generator config lives: `<data_dir>/synthetic-<config hash>` (the hash
    covers the generator's version: a new generator never reuses, nor refuses, an older one's folder)."""
    from valgusml.synth.generator import GENERATOR_VERSION

    key = {"generator": _plain(generator), "n_athletes": int(n_athletes), "seed": int(seed),
           "generator_version": GENERATOR_VERSION}
    return Path(data_dir) / f"synthetic-{config_hash(key)}"


def ensure_synthetic(
    data_dir: str | Path, generator: dict[str, Any], n_athletes: int, seed: int, workers: int | None = None
) -> Path:
    """Generate the synthetic set unless it is already there (the generator resumes a partial one)."""
    out = synthetic_dataset_dir(data_dir, generator, n_athletes, seed)
    if (out / "dataset.json").is_file():
        return out
    from valgusml.synth import generate_dataset
    from valgusml.synth.config import GeneratorConfig

    try:
        cfg = GeneratorConfig.from_dict({**_plain(generator), "n_athletes": int(n_athletes), "seed": int(seed)})
    except TypeError as exc:
        raise ConfigError(f"data.generator: {exc}") from None
    generate_dataset(cfg, out, workers=workers)
    return out


# -- preprocessing cache -------------------------------------------------------------------------------------


def _preprocess_config(preprocess: dict[str, Any] | None):
    from valgusml.preprocess import PreprocessConfig

    try:
        return PreprocessConfig.from_dict(_plain(preprocess) or {})
    except TypeError as exc:
        raise ConfigError(f"data.preprocess: {exc}") from None


def prepared_cache_dir(cache_root: str | Path, dataset: Dataset, preprocess: dict[str, Any]) -> Path:
    key = {"fingerprint": dataset.fingerprint, "preprocess": preprocess, "format": CACHE_FORMAT}
    return Path(cache_root) / "prepared" / f"{dataset.fingerprint[:16]}-{config_hash(key)}"


def prepare_dataset(
    dataset: Dataset, preprocess: dict[str, Any], cache_root: str | Path | None, chunk: int = 1024
) -> dict[str, np.ndarray]:
    """Window arrays of EVERY sequence of the dataset (sequence_index = dataset index), cached as .npy."""
    from valgusml.preprocess import prepare_many

    pp = _preprocess_config(preprocess)
    target = prepared_cache_dir(cache_root, dataset, pp.to_dict()) if cache_root is not None else None
    if target is not None and (target / "done.json").is_file():
        return {k: np.load(target / f"{k}.npy", allow_pickle=False) for k in _WINDOW_ARRAYS}
    parts: dict[str, list[np.ndarray]] = {k: [] for k in _WINDOW_ARRAYS}
    for start in range(0, len(dataset), chunk):
        stop = min(len(dataset), start + chunk)
        try:
            prepared = prepare_many([dataset[i] for i in range(start, stop)], pp)
        except InputError as exc:
            raise InputError(f"{dataset.root}: sequences {start}-{stop - 1}: {exc}") from None
        for k in _WINDOW_ARRAYS:
            value = getattr(prepared, k)
            parts[k].append(value + start if k == "sequence_index" else value)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    if target is not None:
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for k, v in arrays.items():
            np.save(tmp / f"{k}.npy", v, allow_pickle=False)
        info = {"dataset": str(dataset.root), "fingerprint": dataset.fingerprint, "preprocess": pp.to_dict()}
        (tmp / "done.json").write_text(json.dumps(info, indent=1))
        try:
            os.replace(tmp, target)
        except OSError:  # another process finished first: its copy is identical
            shutil.rmtree(tmp, ignore_errors=True)
    return arrays


def sequence_labels(dataset: Dataset) -> dict[str, np.ndarray]:
    """Per-sequence label arrays from the manifest: valgus (S, 2) float, mechanism (S, 2) long, severity_deg (S, 2)
    (NaN where unknown). The names are the batch keys `BatchAugment`'s mirror swaps between limbs."""
    n = len(dataset)
    valgus = np.zeros((n, 2), np.float32)
    mechanism = np.zeros((n, 2), np.int64)
    severity = np.full((n, 2), np.nan, np.float32)
    for i, record in enumerate(dataset.manifest):
        labels = record.get("labels")
        if not labels:
            raise InputError(f"{dataset.root}: sequence {record.get('id')!r} has no labels; training needs them")
        for k, limb in enumerate(LIMBS):
            label = labels[limb]
            valgus[i, k] = float(bool(label["valgus"]))
            mechanism[i, k] = MECHANISM_INDEX[label["mechanism"]]
            value = label.get("severity_deg")
            severity[i, k] = np.nan if value is None else float(value)
    return {"valgus": valgus, "mechanism": mechanism, "severity_deg": severity}


# -- batches as tensor slices --------------------------------------------------------------------------------


class WindowTensors(torch.utils.data.Dataset):
    """Windows of one split held as tensors; indexing with a tensor of indices returns a whole batch."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        sizes = {len(v) for v in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"tensors differ in length: { {k: len(v) for k, v in tensors.items()} }")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        device = next(iter(self.tensors.values())).device
        index = index.to(device, non_blocking=True)
        return {k: v[index] for k, v in self.tensors.items()}


class BatchIndexSampler(Sampler[torch.Tensor]):
    """Yields one index tensor per batch: a seeded permutation per epoch (`set_epoch`), sharded across ranks.

    Every rank yields the same number of batches (DDP needs equal step counts), so a training epoch drops the
    last incomplete batch and the leftover batches that do not divide among ranks.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.n, self.batch_size, self.shuffle, self.drop_last = n, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _n_batches_total(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __len__(self) -> int:
        return self._n_batches_total() // self.world_size

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        batches = list(order.split(self.batch_size))[: self._n_batches_total()]
        mine = batches[self.rank :: self.world_size][: len(self)]
        yield from mine


# -- the data module -----------------------------------------------------------------------------------------


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
    ) -> None:
        super().__init__()
        if (dataset_dir is None) == (generator is None):
            raise ConfigError("data: give exactly one of dataset_dir (a dataset folder) or generator (a preset)")
        self.dataset_dir = dataset_dir
        self.generator = _plain(generator)
        self.n_athletes, self.generator_seed, self.generate_workers = n_athletes, generator_seed, generate_workers
        self.data_dir, self.cache_dir = data_dir, cache_dir
        self.preprocess = _preprocess_config(preprocess).to_dict()
        self.split_config = dict(_plain(split) or {})
        self.batch_size, self.eval_batch_size = int(batch_size), int(eval_batch_size)
        self.augment_config = _plain(augment)
        self.use_class_weights, self.require_all_classes = class_weights, require_all_classes
        self.pin_memory, self.device_resident, self.seed = pin_memory, device_resident, int(seed)
        # Eager augmentation launches many small kernels: on a GPU it cannot keep up with the model step
        # unless compiled (scripts/bench_models.py --compile measures both).
        self.compile_augment = bool(compile_augment)
        self.augment: Any = None
        self._augment_call: Any = None
        self._augment_device: Any = None
        self._prepared = False
        self.dataset: Dataset | None = None
        self.split: Split | None = None
        self.sets: dict[str, WindowTensors] = {}

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

    def setup(self, stage: str | None = None) -> None:
        if self.sets:
            return
        ds = self._open()
        self.split = self.make_split()
        assert_disjoint(self.split)
        arrays = prepare_dataset(ds, self.preprocess, self.cache_dir)
        labels = sequence_labels(ds)
        window_seq = arrays["sequence_index"]
        athlete_of_window = ds.athlete_ids[window_seq]
        for name in ("train", "val", "test"):
            rows = np.flatnonzero(np.isin(athlete_of_window, self.split.athletes(name)))
            if len(rows) == 0:
                raise InputError(f"{ds.root}: split {name!r} has no windows (athletes {self.split.athletes(name)[:5]})")
            tensors = {k: torch.from_numpy(np.ascontiguousarray(arrays[k][rows])) for k in _WINDOW_ARRAYS}
            tensors.update({k: torch.from_numpy(v[window_seq[rows]]) for k, v in labels.items()})
            del tensors["window_start_s"]
            self.sets[name] = WindowTensors(tensors)
        self._check_train_classes()
        if self.augment_config:
            from hydra.utils import instantiate

            self.augment = instantiate(self.augment_config)

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
        counts = torch.bincount(train["mechanism"].flatten(), minlength=len(MECHANISMS)).double()
        weights = counts.sum() / (len(MECHANISMS) * counts.clamp(min=1))
        return {
            "valgus_pos_weight": (len(valgus) - pos) / max(pos, 1.0),
            "mechanism_class_weights": [round(float(w), 6) for w in weights],
        }

    def summary(self) -> dict[str, Any]:
        ds = self._open()
        out = {"dataset": str(ds.root), "fingerprint": ds.fingerprint, "sequences": len(ds)}
        for name, data in self.sets.items():
            out[f"{name}_athletes"] = len(self.split.athletes(name))
            out[f"{name}_windows"] = len(data)
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
        if not self.sets:
            self.setup()
        data = self._on_device(self.sets[name])
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
