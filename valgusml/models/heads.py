"""The one multi-task head shared by every backbone: masked temporal pooling, then per-limb outputs."""

from __future__ import annotations

import torch
from torch import nn

from valgusml.labels import LIMBS, MECHANISMS

_NEG = -1e4  # stands in for -inf in the masked max so an all-padding row stays finite


def masked_mean_max(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(B, T, C)` features and `(B, T)` mask → `(B, 2C)`: mean and max over the real frames only."""
    m = mask[..., None].to(features.dtype)
    mean = (features * m).sum(1) / m.sum(1).clamp_min(1.0)
    peak = (features * m + (1.0 - m) * _NEG).amax(1)
    # A window with no real frame at all pools to zeros rather than -1e4.
    peak = torch.where(m.sum(1) > 0, peak, torch.zeros_like(peak))
    return torch.cat([mean, peak], dim=-1)


class MultiTaskHead(nn.Module):
    """Pooled features → `valgus_logit (B, 2)`, `mechanism_logits (B, 2, 5)`, `severity_deg (B, 2)`.

    Limb axis order is `LIMBS` = (left, right). Severity is an auxiliary regression in degrees
    (`severity_scale` sets the initial output range so it starts near the target's). `extra_channels` widens the
    trunk's input for per-clip values given to `forward` as `extra`.
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int = 128,
        dropout: float = 0.1,
        n_mechanisms: int = len(MECHANISMS),
        severity_scale: float = 10.0,
        extra_channels: int = 0,
    ):
        super().__init__()
        self.n_limbs, self.n_mechanisms = len(LIMBS), int(n_mechanisms)
        self.severity_scale = float(severity_scale)
        self.extra_channels = int(extra_channels)
        self.trunk = nn.Sequential(
            nn.Linear(2 * in_channels + self.extra_channels, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
        )
        self.valgus = nn.Linear(hidden, self.n_limbs)
        self.mechanism = nn.Linear(hidden, self.n_limbs * self.n_mechanisms)
        self.severity = nn.Linear(hidden, self.n_limbs)

    def forward(self, features: torch.Tensor, mask: torch.Tensor, extra: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """`extra (B, extra_channels)`: per-clip inputs beside the pooled features (the lifted measures' summary)."""
        pooled = masked_mean_max(features, mask)
        h = self.trunk(pooled if extra is None else torch.cat([pooled, extra], dim=-1))
        return {
            "valgus_logit": self.valgus(h),
            "mechanism_logits": self.mechanism(h).reshape(-1, self.n_limbs, self.n_mechanisms),
            "severity_deg": self.severity(h) * self.severity_scale,
        }
