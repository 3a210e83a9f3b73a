"""The geometry anchor: the in-graph 2D rule and its bound on what the learned features can change."""

from __future__ import annotations

import numpy as np
import pytest
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
    logits = [float(anchor(torch.full((1, 2), b), measures, mask)[0, 0].detach()) for b in (-1e3, 0.0, 1e3)]
    assert abs(logits[1] - geometric) < 1e-5
    assert abs(logits[0] - (geometric - 3.0)) < 1e-4 and abs(logits[2] - (geometric + 3.0)) < 1e-4


def _lifted(peak_left: float, frames: int = 40):
    """Lifted outputs of one window: the left FPPA rises to `peak_left` in the loaded middle third."""
    fppa = torch.zeros(1, frames, 2)
    loaded = torch.full((1, frames, 2), -5.0)
    middle = slice(frames // 3, 2 * frames // 3)
    fppa[0, middle, 0] = torch.linspace(0.0, peak_left, frames // 3)
    fppa[0, :, 1] = 30.0  # large, but never loaded: must not count
    loaded[0, middle, 0] = 5.0
    return fppa, loaded


def test_lifted_evidence_is_the_peak_over_the_frames_the_lifter_calls_loaded():
    from valgusml.models.geometry import LiftedAnchor

    fppa, loaded = _lifted(14.0)
    mask = torch.ones(1, 40)
    peak, has = LiftedAnchor().evidence(fppa, loaded, mask)
    assert has.tolist() == [[1.0, 0.0]]
    assert abs(float(peak[0, 0]) - 14.0) < 1e-5 and float(peak[0, 1]) == 0.0
    # padded frames never count, even loaded with a huge angle
    fppa2, loaded2 = torch.cat([fppa, torch.full((1, 10, 2), 80.0)], 1), torch.cat([loaded, torch.full((1, 10, 2), 5.0)], 1)
    peak2, _ = LiftedAnchor().evidence(fppa2, loaded2, torch.cat([mask, torch.zeros(1, 10)], 1))
    assert torch.allclose(peak2, peak)


def test_lifted_anchor_bounds_the_backbone_and_detaches_the_lifter():
    from valgusml.models.geometry import LiftedAnchor

    anchor = LiftedAnchor(gain=0.3, offset_deg=9.0, cap=2.0)
    fppa, loaded = _lifted(14.0)
    fppa.requires_grad_(True)
    mask = torch.ones(1, 40)
    logits = [anchor(torch.full((1, 2), b), fppa, loaded, mask)[0, 0] for b in (-1e3, 0.0, 1e3)]
    low, middle, high = (float(logit.detach()) for logit in logits)
    assert abs(middle - 0.3 * (14.0 - 9.0)) < 1e-5
    assert abs(low - middle + 2.0) < 1e-4 and abs(high - middle - 2.0) < 1e-4
    logits[1].backward()
    assert fppa.grad is None or float(fppa.grad.abs().sum()) == 0.0  # presence never trains the lifter


def test_valgusnet_with_a_lifter_outputs_frames_and_needs_it_for_the_lifted_anchor():
    import pytest

    from valgusml.models import TCN, ValgusNet
    from valgusml.models.geometry import FrameLifter, LiftedAnchor

    net = ValgusNet(backbone=lambda **kw: TCN(**kw, channels=16, n_blocks=2), lifter=lambda in_channels: FrameLifter(in_channels),
                    anchor=LiftedAnchor)
    joints, measures, mask = torch.randn(3, 50, 20, 3), torch.randn(3, 50, len(FRAME_MEASURES)), torch.ones(3, 50)
    out = net.eval()(joints, measures, mask)
    assert out["frame_fppa_deg"].shape == (3, 50, 2) and out["frame_loaded_logit"].shape == (3, 50, 2)
    assert out["valgus_logit"].shape == (3, 2)
    with pytest.raises(ValueError, match="needs a lifter"):
        ValgusNet(backbone=lambda **kw: TCN(**kw, channels=16, n_blocks=2), anchor=LiftedAnchor)


def test_head_reads_the_lifted_measures_summary_and_not_their_gradient():
    from valgusml.data.frame_targets import LIFTED_MEASURES
    from valgusml.models import TCN, ValgusNet
    from valgusml.models.geometry import FrameLifter, LiftedAnchor
    from valgusml.models.net import lifted_summary

    def build(**kw):
        torch.manual_seed(0)
        return ValgusNet(backbone=lambda **k: TCN(**k, channels=16, n_blocks=2), anchor=LiftedAnchor,
                         lifter=lambda in_channels: FrameLifter(in_channels, lift_measures=True), **kw)

    net = build(head_reads_lifted_measures=True).eval()
    assert net.head.trunk[0].in_features == 2 * 16 + 3 * len(LIFTED_MEASURES)
    joints, measures, mask = torch.randn(2, 40, 20, 3), torch.randn(2, 40, len(FRAME_MEASURES)), torch.ones(2, 40)
    mask[1, 25:] = 0.0
    out = net(joints, measures, mask)
    assert out["frame_measures_3d"].shape == (2, 40, len(LIFTED_MEASURES))
    # the mechanism loss reaches the head's trunk but not the lifter through the summary
    out["mechanism_logits"].sum().backward()
    assert net.head.trunk[0].weight.grad[:, 32:].abs().sum() > 0
    assert net.lifter.net[2].weight.grad is None or net.lifter.net[2].weight.grad.abs().sum() == 0
    # the summary reads only the real frames: padding changes nothing
    lifted = torch.arange(80.0).reshape(2, 40, 1)
    summary = lifted_summary(lifted, mask)
    assert torch.allclose(summary[1] * 30.0, torch.tensor([52.0, 64.0, 40.0]))
    with pytest.raises(ValueError, match="lift_measures=true"):
        ValgusNet(backbone=lambda **k: TCN(**k, channels=16, n_blocks=2), head_reads_lifted_measures=True,
                  lifter=lambda in_channels: FrameLifter(in_channels))


@torch.no_grad()  # forward passes only: floats of tensors without a graph
def test_local_lifter_reads_only_nearby_frames_and_builds_from_a_hydra_partial():
    import functools

    from valgusml.models import TCN, ValgusNet
    from valgusml.models.geometry import LiftedAnchor, LocalLifter
    from valgusml.skeleton import canonical_index

    torch.manual_seed(0)
    net = ValgusNet(backbone=lambda **kw: TCN(**kw, channels=16, n_blocks=2),
                    lifter=functools.partial(LocalLifter, hidden=8, kernel=5), anchor=LiftedAnchor).eval()
    assert net.lifter.geometry[0].in_channels == net.streams.out_channels
    joints, measures, mask = torch.rand(1, 60, 20, 3) + 0.5, torch.randn(1, 60, len(FRAME_MEASURES)), torch.ones(1, 60)
    before = net(joints, measures, mask)["frame_fppa_deg"]
    moved = joints.clone()
    moved[:, 50, canonical_index("right_knee"), 0] += 0.3  # one knee in one frame
    change = (net(moved, measures, mask)["frame_fppa_deg"] - before)[0].abs().amax(1)
    # Two kernel-5 convolutions: frames 46-54 see frame 50; the others only through the window's body size
    # (a statistic over all its frames), which the knee barely moves.
    far = torch.cat([change[:46], change[55:]])
    assert float(far.max()) < 0.2 * float(change[50])


def _lifted_net(lifter: type, **sizes) -> torch.nn.Module:
    """A small TCN with `lifter` (built with `sizes`) and the lifted anchor, seeded."""
    import functools

    from valgusml.models import TCN, ValgusNet
    from valgusml.models.geometry import LiftedAnchor

    torch.manual_seed(0)
    return ValgusNet(backbone=lambda **kw: TCN(**kw, channels=16, n_blocks=2),
                     lifter=functools.partial(lifter, **sizes), anchor=LiftedAnchor).eval()


def _limb_lifted_net():
    from valgusml.models.geometry import LimbLifter

    return _lifted_net(LimbLifter, hidden=8, kernel=5)


@torch.no_grad()  # forward passes only: floats of tensors without a graph
def test_limb_lifter_reads_each_knee_from_its_own_leg():
    from valgusml.features import FRAME_MEASURE_INDEX
    from valgusml.skeleton import canonical_index

    net = _limb_lifted_net()
    joints, measures, mask = torch.rand(1, 60, 20, 3) + 0.5, torch.randn(1, 60, len(FRAME_MEASURES)), torch.ones(1, 60)
    before = net(joints, measures, mask)["frame_fppa_deg"][0]
    # The right foot (not part of the body-size estimate) and the right knee's own measure, in frame 30.
    moved, moved_measures = joints.clone(), measures.clone()
    moved[:, 30, canonical_index("right_big_toe"), 0] += 0.3
    moved_measures[:, 30, FRAME_MEASURE_INDEX["right_fppa_deg"]] += 3.0
    after = net(moved, moved_measures, mask)["frame_fppa_deg"][0]
    torch.testing.assert_close(after[:, 0], before[:, 0])  # the left knee does not see the right leg
    change = (after[:, 1] - before[:, 1]).abs()
    assert float(change[30]) > 0
    # Two kernel-5 convolutions reach 4 frames each way, the motion stream one more forwards.
    assert float(torch.cat([change[:26], change[36:]]).max()) == 0.0


@torch.no_grad()  # forward passes only: floats of tensors without a graph
def test_limb_lifter_reads_a_mirrored_subject_as_the_same_knees_swapped():
    from valgusml.features.frame import mirror_frame_measures
    from valgusml.skeleton import CANONICAL_JOINTS, canonical_index

    net = _limb_lifted_net()
    torch.manual_seed(1)
    joints, measures, mask = torch.rand(1, 60, 20, 3) + 0.5, torch.randn(1, 60, len(FRAME_MEASURES)), torch.ones(1, 60)
    swap = [canonical_index(j.replace("left", "@").replace("right", "left").replace("@", "right")) for j in CANONICAL_JOINTS]
    mirrored = joints[:, :, swap].clone()
    mirrored[..., 0] = 2.0 - mirrored[..., 0]  # x -> c - x: the subject's left and right trade places
    mirrored_measures = torch.from_numpy(mirror_frame_measures(measures.numpy()[0]))[None]
    out = net(joints, measures, mask)["frame_fppa_deg"]
    out_mirrored = net(mirrored, mirrored_measures, mask)["frame_fppa_deg"]
    torch.testing.assert_close(out_mirrored, out.flip(-1), atol=1e-4, rtol=1e-4)


def _guided_net():
    from valgusml.models.geometry import GuidedLifter

    return _lifted_net(GuidedLifter, hidden=8, gate_hidden=4)


@torch.no_grad()  # forward passes only: floats of tensors without a graph
def test_guided_lifter_mixes_the_measured_2d_angle_and_the_network_by_its_gate():
    net = _guided_net()
    t = np.linspace(0.0, 1.0, 60)
    flexion = 90.0 * np.sin(np.pi * t) ** 2
    fppa = 2.0 + 12.0 * np.sin(np.pi * t) ** 2
    measures, mask = _measures(fppa, flexion), torch.ones(1, 60)
    joints = torch.rand(1, 60, 20, 3) + 0.5
    measured = net.lifter.measured(measures, mask)[0, :, 0]
    # The measured reading is the 2D angle less its standing value (the frames within 10 deg of the straightest).
    assert float(measured.max()) == pytest.approx(float(FrontalEvidence()(measures, mask)[0][0, 0]), abs=1e-4)
    out = net(joints, measures, mask)
    gate = torch.sigmoid(out["frame_fppa_gate_logit"])
    assert gate.shape == (1, 60, 2) and float(gate.min()) > 0 and float(gate.max()) < 1
    network = net.lifter.network(net.backbone(*net.streams(joints, measures, mask), mask)[0])["frame_fppa_deg"]
    torch.testing.assert_close(out["frame_fppa_deg"], gate * net.lifter.measured(measures, mask) + (1 - gate) * network)
    # A gate held open reads the 2D angle itself; shut, the network's.
    last = net.lifter.gate[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(30.0)
        torch.testing.assert_close(net(joints, measures, mask)["frame_fppa_deg"], net.lifter.measured(measures, mask))
        last.bias.fill_(-30.0)
        torch.testing.assert_close(net(joints, measures, mask)["frame_fppa_deg"], network)


@torch.no_grad()  # forward passes only: floats of tensors without a graph
def test_guided_lifter_gate_reads_only_yaw_flexion_and_the_2d_angle():
    """The gate sees three cues per frame and limb; a change anywhere else (here the joints) leaves it alone."""
    net = _guided_net()
    measures, mask = torch.randn(2, 40, len(FRAME_MEASURES)), torch.ones(2, 40)
    joints = torch.rand(2, 40, 20, 3) + 0.5
    gate = net(joints, measures, mask)["frame_fppa_gate_logit"]
    torch.testing.assert_close(net(joints + 0.2 * torch.rand_like(joints), measures, mask)["frame_fppa_gate_logit"], gate)
    turned = measures.clone()
    turned[..., FRAME_MEASURE_INDEX["camera_yaw_deg"]] += 40.0
    assert not torch.allclose(net(joints, turned, mask)["frame_fppa_gate_logit"], gate)
