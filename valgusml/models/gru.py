"""Bidirectional GRU backbone.

The backward direction runs a second forward GRU over each sequence reversed *within its own length*
(a per-sample gather), so padding always comes after the real frames for both directions and never flows into
them. This replaces `pack_padded_sequence`, which is data-dependent and does not export to ONNX.
"""

from __future__ import annotations

import torch
from torch import nn

from valgusml.models.base import flat_channels, flatten_frames


def reverse_within_length(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reverse `(B, T, C)` along time inside each sample's real frames (`mask` a prefix of ones); padding stays
    where it is. Applying it twice gives `x` back."""
    t = torch.arange(x.shape[1], device=x.device)[None, :]
    length = (mask > 0).to(torch.long).sum(1, keepdim=True)
    idx = torch.where(t < length, length - 1 - t, t)
    return torch.gather(x, 1, idx[..., None].expand(-1, -1, x.shape[2]))


class BiGRU(nn.Module):
    def __init__(
        self,
        node_channels: int,
        n_joints: int,
        n_measures: int,
        hidden: int = 64,
        n_layers: int = 1,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.input = nn.Sequential(
            nn.Linear(flat_channels(node_channels, n_joints, n_measures), hidden),
            nn.LayerNorm(hidden),
            nn.GELU(),
        )
        self.n_layers = n_layers
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        for i in range(n_layers):
            width = hidden if i == 0 else 2 * hidden
            self.forward_layers.append(nn.GRU(width, hidden, batch_first=True))
            self.backward_layers.append(nn.GRU(width, hidden, batch_first=True))
        self.drop = nn.Dropout(dropout)
        self.out_channels = 2 * hidden

    def forward(
        self, nodes: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m = mask[..., None]
        x = self.input(flatten_frames(nodes, measures).transpose(1, 2)) * m
        for fwd, bwd in zip(self.forward_layers, self.backward_layers, strict=True):
            h_fwd, _ = fwd(x)
            h_bwd, _ = bwd(reverse_within_length(x, mask))
            x = self.drop(torch.cat([h_fwd, reverse_within_length(h_bwd, mask)], dim=-1)) * m
        return x, mask
