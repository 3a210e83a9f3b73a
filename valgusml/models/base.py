"""What every backbone shares: its constructor receives the stream sizes, its forward the streams.

A backbone is built as `Backbone(node_channels=C, n_joints=J, n_measures=F, **hyperparameters)` (ValgusNet
fills the first three from its `Streams`) and maps channels-first streams `(nodes (B, C, T, J), measures
(B, F, T), mask (B, T))` to `(features (B, T', out_channels), mask (B, T'))`; T' < T when a backbone strides
in time.
"""

from __future__ import annotations

import torch


def flatten_frames(nodes: torch.Tensor, measures: torch.Tensor) -> torch.Tensor:
    """Channels-first per-frame vector `(B, C·J + F, T)` for the 1D backbones."""
    b, c, t, j = nodes.shape
    return torch.cat([nodes.transpose(2, 3).reshape(b, c * j, t), measures], dim=1)


def flat_channels(node_channels: int, n_joints: int, n_measures: int) -> int:
    return int(node_channels) * int(n_joints) + int(n_measures)
