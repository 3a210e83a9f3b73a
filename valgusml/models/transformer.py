"""Transformer encoder backbone with padding masks.

Written with `scaled_dot_product_attention` rather than `nn.TransformerEncoder`, whose inference fast path
(nested tensors, `_transformer_encoder_layer_fwd`) takes data-dependent branches that the dynamo ONNX exporter
cannot follow. Positions are sinusoidal, computed for any window length.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from valgusml.models.base import flat_channels, flatten_frames

_NEG = -1e4  # additive mask value; -inf would turn an all-padding row into NaN


def sinusoidal_positions(n_frames: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    position = torch.arange(n_frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = position * freq[None, :]
    pe = torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1)[:, :dim]
    return pe.to(dtype)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention + feed-forward block."""

    def __init__(self, dim: int, heads: int, ff_mult: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"Transformer dim {dim} must be divisible by heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_mult * dim, dim)
        )
        self.drop = nn.Dropout(dropout)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_bias, dropout_p=self.dropout if self.training else 0.0
        )
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, t, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class TransformerEncoder(nn.Module):
    def __init__(
        self,
        node_channels: int,
        n_joints: int,
        n_measures: int,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        ff_mult: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.input = nn.Linear(flat_channels(node_channels, n_joints, n_measures), dim)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, ff_mult, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.dim = dim
        self.out_channels = dim

    def forward(
        self, nodes: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.input(flatten_frames(nodes, measures).transpose(1, 2))
        x = x + sinusoidal_positions(x.shape[1], self.dim, x.device, x.dtype)[None]
        # Keys on padding get a large negative bias; queries on padding are computed but masked downstream.
        attn_bias = ((1.0 - mask) * _NEG)[:, None, None, :].to(x.dtype)
        for layer in self.layers:
            x = layer(x, attn_bias)
        return self.norm(x) * mask[..., None], mask
