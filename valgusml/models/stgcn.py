"""ST-GCN (Yan et al., AAAI 2018) over the canonical skeleton graph.

The graph is the canonical skeleton's bones (`valgusml.skeleton.CANONICAL.bones`) with self-loops, split by
the paper's spatial partitioning into three subsets: the node itself (and neighbours as far from the centre),
centripetal neighbours (closer to the centre, the neck) and centrifugal ones (farther), each normalised
D⁻¹A, with a learnable edge importance per subset. A block is graph conv → BN → ReLU → temporal conv (k × 1,
optional stride) → BN → dropout, with a residual, re-masked after each block.

The frame measures enter as a per-frame embedding added to every node after the first block. Pooling keeps the
limbs apart: mean over all nodes, over the left-leg nodes and over the right-leg nodes, concatenated.
The small default is for CPUs; `configs/model/stgcn_paper.yaml` is the paper's 9 blocks, 64 → 256 channels.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch
from torch import nn

from valgusml.skeleton import CANONICAL, CANONICAL_JOINTS, canonical_index

CENTRE = canonical_index("neck")
LEG_NODES = {
    side: tuple(
        canonical_index(f"{side}_{j}") for j in ("hip", "knee", "ankle", "heel", "big_toe", "small_toe")
    )
    for side in ("left", "right")
}


def hop_distance(n_nodes: int, edges: list[tuple[int, int]], centre: int) -> np.ndarray:
    neighbours: list[list[int]] = [[] for _ in range(n_nodes)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    dist = np.full(n_nodes, np.inf)
    dist[centre] = 0
    queue = deque([centre])
    while queue:
        i = queue.popleft()
        for j in neighbours[i]:
            if dist[j] == np.inf:
                dist[j] = dist[i] + 1
                queue.append(j)
    return dist


def spatial_partition_adjacency() -> np.ndarray:
    """`(3, V, V)` adjacency: [root, centripetal, centrifugal], column-normalised as in the paper
    (`A[k, j, i]` is the weight of node j's features in node i's update)."""
    n = len(CANONICAL_JOINTS)
    edges = [(CANONICAL.index(a), CANONICAL.index(b)) for a, b in CANONICAL.bones]
    adjacency = np.eye(n)
    for a, b in edges:
        adjacency[a, b] = adjacency[b, a] = 1.0
    degree = adjacency.sum(0)
    normalised = adjacency / degree[None, :]
    hops = hop_distance(n, edges, CENTRE)
    parts = np.zeros((3, n, n))
    for i in range(n):
        for j in range(n):
            if adjacency[j, i] == 0:
                continue
            if hops[j] == hops[i]:
                parts[0, j, i] = normalised[j, i]
            elif hops[j] < hops[i]:
                parts[1, j, i] = normalised[j, i]
            else:
                parts[2, j, i] = normalised[j, i]
    return parts.astype(np.float32)


class GraphConv(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, n_subsets: int):
        super().__init__()
        self.n_subsets = n_subsets
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, out_channels * n_subsets, 1)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        b, _, t, v = x.shape
        h = self.conv(x).reshape(b, self.n_subsets, self.out_channels, t, v)
        return torch.einsum("bkctv,kvw->bctw", h, adjacency)


class STGCNBlock(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_subsets: int,
        temporal_kernel: int,
        stride: int,
        dropout: float,
        residual: bool,
    ):
        super().__init__()
        self.stride = stride
        self.gcn = GraphConv(in_channels, out_channels, n_subsets)
        pad = (temporal_kernel - 1) // 2
        self.gcn_bn = nn.BatchNorm2d(out_channels)
        self.tcn = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1), (pad, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, (stride, 1)), nn.BatchNorm2d(out_channels)
            )
        self.act = nn.ReLU(inplace=True)

    def forward(
        self, x: torch.Tensor, adjacency: torch.Tensor, m_in: torch.Tensor, m_out: torch.Tensor
    ) -> torch.Tensor:
        # Re-mask before the temporal conv: the graph conv's bias through BN makes padded frames non-zero, and
        # the temporal conv would carry them into real frames near the end.
        h = self.tcn(self.act(self.gcn_bn(self.gcn(x, adjacency))) * m_in)
        if self.residual is not None:
            h = h + self.residual(x)
        return self.act(h) * m_out


class STGCN(nn.Module):
    """`channels[i]`, `strides[i]` per block. Time is downsampled by the product of the strides; the frame mask
    is subsampled with it (`mask[:, ::stride]` matches a k×1 conv with padding (k−1)/2)."""

    def __init__(
        self,
        node_channels: int,
        n_joints: int,
        n_measures: int,
        channels: tuple[int, ...] = (32, 32, 64, 64),
        strides: tuple[int, ...] = (1, 2, 1, 1),
        temporal_kernel: int = 9,
        dropout: float = 0.1,
        edge_importance: bool = True,
    ):
        super().__init__()
        channels, strides = tuple(channels), tuple(strides)
        if len(channels) != len(strides):
            raise ValueError(f"STGCN channels {channels} and strides {strides} must have the same length")
        if temporal_kernel % 2 == 0:
            raise ValueError(f"STGCN temporal_kernel must be odd, got {temporal_kernel}")
        if n_joints != len(CANONICAL_JOINTS):
            raise ValueError(
                f"STGCN runs on the canonical graph ({len(CANONICAL_JOINTS)} joints), got {n_joints}"
            )
        adjacency = torch.from_numpy(spatial_partition_adjacency())
        self.register_buffer("adjacency", adjacency)
        n_subsets = adjacency.shape[0]
        self.edge_importance = nn.Parameter(torch.ones_like(adjacency)) if edge_importance else None
        self.data_bn = nn.BatchNorm1d(node_channels * n_joints)
        self.blocks = nn.ModuleList()
        in_ch = node_channels
        for i, (out_ch, stride) in enumerate(zip(channels, strides, strict=True)):
            self.blocks.append(
                STGCNBlock(in_ch, out_ch, n_subsets, temporal_kernel, stride, dropout, residual=i > 0)
            )
            in_ch = out_ch
        self.measures = nn.Conv1d(n_measures, channels[0], 1) if n_measures > 0 else None
        self.strides = strides
        self.register_buffer("left_leg", torch.tensor(LEG_NODES["left"]), persistent=False)
        self.register_buffer("right_leg", torch.tensor(LEG_NODES["right"]), persistent=False)
        self.out_channels = 3 * channels[-1]

    def forward(
        self, nodes: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, t, v = nodes.shape
        x = self.data_bn(nodes.permute(0, 3, 1, 2).reshape(b, v * c, t))  # (B, V·C, T), per joint and channel
        x = x.reshape(b, v, c, t).permute(0, 2, 3, 1)  # (B, C, T, V)
        adjacency = (
            self.adjacency * self.edge_importance if self.edge_importance is not None else self.adjacency
        )
        m_in = mask[:, None, :, None]
        x = x * m_in
        for i, (block, stride) in enumerate(zip(self.blocks, self.strides, strict=True)):
            if stride > 1:
                mask = mask[:, ::stride]
            m_out = mask[:, None, :, None]
            x = block(x, adjacency, m_in, m_out)
            if i == 0 and self.measures is not None:
                meas = self.measures(measures[..., ::stride] if stride > 1 else measures)  # (B, C0, T)
                x = x + meas[..., None] * m_out
            m_in = m_out
        pooled = torch.stack(
            [
                x.mean(-1),
                x.index_select(3, self.left_leg).mean(-1),
                x.index_select(3, self.right_leg).mean(-1),
            ],
            dim=1,
        )  # (B, 3, C, T')
        return pooled.flatten(1, 2).transpose(1, 2), mask
