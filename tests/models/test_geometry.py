"""The geometry anchor: the in-graph 2D rule and its bound on what the learned features can change."""

from __future__ import annotations

import numpy as np
import torch

from valgusml.features import FRAME_MEASURE_INDEX, FRAME_MEASURES
from valgusml.models.geometry import FrontalEvidence, GeometryAnchor


def _measures(fppa_left: np.ndarray, flexion: np.ndarray) -> torch.Tensor:
    m = np.zeros((1, len(flexion), len(FRAME_MEASURES)), dtype=np.float32)
    m[0, :, FRAME_MEASURE_INDEX["left_fppa_deg"]] = fppa_left
    m[0, :, FRAME_MEASURE_INDEX["left_knee_flexion_deg"]] = flexion
    m[0, :, FRAME_MEASURE_INDEX["right_knee_flexion_deg"]] = flexion
    return torch.from_numpy(m)


def test_evidence_is_the_loaded_peak_over_the_standing_fppa():
    t = np.linspace(0.0, 1.0, 60)
    flexion = 90.0 * np.sin(np.pi * t) ** 2  # stand, squat, stand
    fppa = 2.0 + 12.0 * np.sin(np.pi * t) ** 2  # 2 deg standing, 14 deg at the bottom
    mask = torch.ones(1, 60)
    dynamic, has = FrontalEvidence()(_measures(fppa, flexion), mask)
    assert has.tolist() == [[1.0, 1.0]]
    # standing = the frames within 10 deg of the straightest: their FPPA averages a little above 2 deg
    assert 11.0 < float(dynamic[0, 0]) <= 12.0
    assert abs(float(dynamic[0, 1])) < 1e-6  # the right FPPA is flat
    # padding never counts: a huge FPPA on padded frames changes nothing
    padded = _measures(np.concatenate([fppa, np.full(20, 80.0)]), np.concatenate([flexion, np.full(20, 90.0)]))
    mask2 = torch.cat([mask, torch.zeros(1, 20)], dim=1)
    assert torch.allclose(FrontalEvidence()(padded, mask2)[0], dynamic, atol=1e-5)


def test_no_loaded_phase_means_no_evidence():
    flexion = np.full(40, 10.0)
    dynamic, has = FrontalEvidence()(_measures(np.full(40, 15.0), flexion), torch.ones(1, 40))
    assert has.sum() == 0 and dynamic.abs().sum() == 0


def test_the_backbone_moves_the_logit_by_at_most_the_cap():
    t = np.linspace(0.0, 1.0, 60)
    measures = _measures(2.0 + 12.0 * np.sin(np.pi * t) ** 2, 90.0 * np.sin(np.pi * t) ** 2)
    anchor = GeometryAnchor(gain=0.4, offset_deg=9.0, cap=3.0)
    mask = torch.ones(1, 60)
    dynamic, _ = anchor.evidence(measures, mask)
    geometric = 0.4 * (float(dynamic[0, 0]) - 9.0)
    logits = [float(anchor(torch.full((1, 2), b), measures, mask)[0, 0]) for b in (-1e3, 0.0, 1e3)]
    assert abs(logits[1] - geometric) < 1e-5
    assert abs(logits[0] - (geometric - 3.0)) < 1e-4 and abs(logits[2] - (geometric + 3.0)) < 1e-4
