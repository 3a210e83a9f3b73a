"""Batches as tensor slices: a split's windows held as tensors, and a sampler that yields one index tensor per batch.

Per-sample Python in DataLoader workers cannot feed models that train at thousands of sequences/s on a GPU;
a batch here is one tensor slice.
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler

from valgusml.errors import ConfigError


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
