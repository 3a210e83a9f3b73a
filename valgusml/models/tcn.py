"""Dilated residual temporal convolution network: the default backbone (fast on CPU, exports cleanly)."""

from __future__ import annotations

import torch
from torch import nn

from valgusml.models.base import flat_channels, flatten_frames


class TemporalBlock(nn.Module):
    """Dilated conv (k) → BN → GELU → dropout → pointwise conv → BN, residual, GELU, re-masked.

    Re-masking after every block keeps padded frames at exactly zero, which is what a conv's own zero padding
    sees at the sequence end: outputs on real frames do not depend on how much padding follows.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float):
        super().__init__()
        self.temporal = nn.Conv1d(
            channels, channels, kernel_size, dilation=dilation, padding=dilation * (kernel_size - 1) // 2
        )
        self.bn1 = nn.BatchNorm1d(channels)
        self.pointwise = nn.Conv1d(channels, channels, 1)
        self.bn2 = nn.BatchNorm1d(channels)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.act(self.bn1(self.temporal(x))))
        h = self.bn2(self.pointwise(h))
        return self.act(x + h) * m


class TCN(nn.Module):
    """`n_blocks` residual blocks with dilations 1, 2, 4, …: receptive field 1 + (k−1)(2^n_blocks − 1) frames
    (31 frames, about 1 s at 30 fps, with the defaults; the head pools over the whole window)."""

    def __init__(
        self,
        node_channels: int,
        n_joints: int,
        n_measures: int,
        channels: int = 48,
        n_blocks: int = 4,
        kernel_size: int = 3,
        dropout: float = 0.1,
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"TCN kernel_size must be odd (symmetric padding), got {kernel_size}")
        self.input = nn.Sequential(
            nn.Conv1d(flat_channels(node_channels, n_joints, n_measures), channels, 1),
            nn.BatchNorm1d(channels),
            nn.GELU(),
        )
        self.blocks = nn.ModuleList(
            TemporalBlock(channels, kernel_size, 2**i, dropout) for i in range(n_blocks)
        )
        self.out_channels = channels
        self.receptive_field = 1 + (kernel_size - 1) * (2**n_blocks - 1)

    def forward(
        self, nodes: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m = mask[:, None, :]
        x = self.input(flatten_frames(nodes, measures)) * m
        for block in self.blocks:
            x = block(x, m)
        return x.transpose(1, 2), mask
