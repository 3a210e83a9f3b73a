"""valgusml.models: every config builds, trains a step, respects masks and is invariant where it should be."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from valgusml.features import FRAME_MEASURES
from valgusml.models import TCN, ProbabilityWrapper, Streams, ValgusNet
from valgusml.models.gru import reverse_within_length
from valgusml.models.stgcn import spatial_partition_adjacency
from valgusml.skeleton import CANONICAL, canonical_index

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "model"
MODELS = ("tcn", "gru", "transformer", "stgcn")
F = len(FRAME_MEASURES)


def build(name: str, *overrides: str) -> ValgusNet:
    cfg = OmegaConf.merge(OmegaConf.load(CONFIGS / f"{name}.yaml"), OmegaConf.from_dotlist(list(overrides)))
    torch.manual_seed(0)
    return instantiate(cfg)


def inputs(b: int = 2, t: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    joints = torch.randn(b, t, 20, 3, generator=g) * 50 + 300
    joints[..., 2] = torch.rand(b, t, 20, generator=g) * 0.9 + 0.1
    joints[0, :, canonical_index("left_big_toe"), 2] = 0  # a missing joint
    return joints, torch.randn(b, t, F, generator=g), torch.ones(b, t)


@pytest.fixture(scope="module")
def nets() -> dict[str, ValgusNet]:
    return {name: build(name) for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward_shapes(nets, name):
    net = nets[name].train()
    out = net(*inputs())
    assert out["valgus_logit"].shape == (2, 2)
    assert out["mechanism_logits"].shape == (2, 2, 5)
    assert out["severity_deg"].shape == (2, 2)
    loss = sum(v.square().mean() for v in out.values())
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    net.zero_grad()


def test_paper_size_stgcn_builds_and_runs():
    net = build("stgcn_paper").eval()
    assert 2_000_000 < sum(p.numel() for p in net.parameters()) < 4_000_000
    assert net.backbone.out_channels == 3 * 256 and len(net.backbone.blocks) == 9
    with torch.no_grad():
        assert net(*inputs(1, 16))["mechanism_logits"].shape == (1, 2, 5)


def test_overrides_need_no_sizes():
    net = build("gru", "backbone.hidden=32")
    assert net.backbone.out_channels == 64 and net.head.trunk[0].in_features == 2 * 64
    net = build("tcn", "backbone.channels=16", "streams.motion=false")
    assert net.streams.node_channels == 5 and net.backbone.input[0].in_channels == 20 * 5 + F
    assert net(*inputs())["valgus_logit"].shape == (2, 2)


@pytest.mark.parametrize("name", MODELS)
def test_padding_does_not_change_outputs(nets, name):
    net = nets[name].eval()
    joints, measures, mask = inputs(t=40)
    pad = 24
    junk = torch.randn(2, pad, 20, 3) * 100
    padded = (
        torch.cat([joints, junk], 1),
        torch.cat([measures, torch.randn(2, pad, F)], 1),
        torch.cat([mask, torch.zeros(2, pad)], 1),
    )
    with torch.no_grad():
        ref, got = net(joints, measures, mask), net(*padded)
    for key in ref:
        torch.testing.assert_close(got[key], ref[key], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_invariant_to_translation_and_scale(nets, name):
    net = nets[name].eval()
    joints, measures, mask = inputs()
    moved = joints.clone()
    moved[..., :2] = joints[..., :2] * 3.5 + torch.tensor([250.0, -80.0])
    with torch.no_grad():
        ref, got = net(joints, measures, mask), net(moved, measures, mask)
    for key in ref:
        torch.testing.assert_close(got[key], ref[key], atol=1e-4, rtol=1e-4)


def test_streams_normalise_to_pelvis_and_body_size():
    streams = Streams(n_measures=F)
    joints, measures, mask = inputs(1, 8)
    norm, valid, _ = streams.normalise(joints, mask)
    lh, rh = canonical_index("left_hip"), canonical_index("right_hip")
    torch.testing.assert_close(0.5 * (norm[:, :, :, lh] + norm[:, :, :, rh]), torch.zeros(1, 2, 8))
    scaled, _, _ = streams.normalise(torch.cat([joints[..., :2] * 7 + 3, joints[..., 2:]], -1), mask)
    torch.testing.assert_close(scaled, norm, atol=1e-5, rtol=1e-5)
    nodes, meas = streams(joints, measures, mask)
    assert nodes.shape == (1, streams.node_channels, 8, 20) and meas.shape == (1, F, 8)
    assert streams.out_channels == 20 * 7 + F
    toe = canonical_index("left_big_toe")
    assert not nodes[0, :, :, toe].any()  # a missing joint contributes nothing but its zero confidence
    # motion: the temporal difference of the normalised coordinates, zero on the first frame
    torch.testing.assert_close(
        nodes[0, 4:6, 1:], (norm[0, :, 1:] - norm[0, :, :-1]) * 10 * (valid[0, :, 1:] * valid[0, :, :-1])
    )
    assert not nodes[0, 4:6, 0].any()


def test_probability_wrapper():
    wrapped = ProbabilityWrapper(build("tcn")).eval()
    with torch.no_grad():
        prob, mech, sev, frontal = wrapped(*inputs())
    assert ((prob > 0) & (prob < 1)).all() and prob.shape == (2, 2)
    torch.testing.assert_close(mech.sum(-1), torch.ones(2, 2))
    assert sev.shape == (2, 2)
    assert frontal.shape == (2, 2) and frontal.isnan().all()  # no anchor: no angle the call rests on


def test_probability_wrapper_reports_the_angle_an_anchored_call_rests_on():
    """With a lifter and its anchor, the fourth output is the anchor's evidence (the peak lifted dynamic FPPA over
    the frames it calls loaded), NaN for a limb without load."""
    import functools

    from valgusml.models.geometry import FrameLifter, LiftedAnchor

    torch.manual_seed(0)
    net = ValgusNet(backbone=lambda **kw: TCN(**kw, channels=16, n_blocks=2),
                    lifter=functools.partial(FrameLifter, hidden=8), anchor=LiftedAnchor).eval()
    with torch.no_grad():
        last = net.lifter.net[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([1.2, 0.5, 5.0, -5.0]))  # FPPA 12 and 5 deg; left loaded, right never
        out = net(*inputs())
        frontal = ProbabilityWrapper(net)(*inputs())[3]
    torch.testing.assert_close(frontal[:, 0], torch.full((2,), 12.0))
    assert frontal[:, 1].isnan().all()
    # The call is the anchor's on that evidence: gain x (12 - offset) + the bounded backbone logit.
    assert out["frontal_fppa_deg"].shape == (2, 2) and torch.isfinite(out["valgus_logit"]).all()


def test_mirror_average_reads_a_mirrored_subject_as_the_same_knees_swapped():
    """`mirror_average`: in evaluation the network answers a window and its left/right mirror alike, limbs
    swapped, exactly; its mirror is the training augmentation's; training runs the network as it is."""
    from valgusml.training.augment import Mirror
    from valgusml.training.config import compose_config

    torch.manual_seed(0)
    net = instantiate(compose_config(["model=tcn_lifted", "+model.mirror_average=true"]).model).eval()
    joints, measures, mask = inputs()
    mirrored_joints, mirrored_measures = net.mirror(joints, measures)
    with torch.no_grad():
        out = net(joints, measures, mask)
        of_mirror = net(mirrored_joints, mirrored_measures, mask)
        own = net._forward(joints, measures, mask)
        augmented = Mirror(p=1.0).mirror({"joints": joints, "measures": measures, "mask": mask})
        as_trained = net._forward(augmented["joints"], augmented["measures"], mask)
        as_here = net._forward(mirrored_joints, mirrored_measures, mask)
    for key in ("valgus_logit", "mechanism_logits", "severity_deg", "frontal_fppa_deg"):
        torch.testing.assert_close(of_mirror[key], out[key].flip(1), msg=key)
        torch.testing.assert_close(as_here[key], as_trained[key], atol=1e-4, rtol=1e-4, msg=key)
    assert not torch.allclose(out["valgus_logit"], own["valgus_logit"])  # the mean is not the network alone
    assert out["frame_fppa_deg"].shape == own["frame_fppa_deg"].shape
    twice = net.mirror(mirrored_joints, mirrored_measures)
    assert torch.equal(twice[0], joints) and torch.equal(twice[1], measures)
    net.train()
    torch.manual_seed(1)
    trained = net(joints, measures, mask)["valgus_logit"]
    torch.manual_seed(1)
    torch.testing.assert_close(trained, net._forward(joints, measures, mask)["valgus_logit"])


def test_reverse_within_length_is_an_involution():
    x = torch.arange(12.0).reshape(2, 6, 1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.float32)
    r = reverse_within_length(x, mask)
    assert r[0, :, 0].tolist() == [3, 2, 1, 0, 4, 5] and r[1, :, 0].tolist() == [11, 10, 9, 8, 7, 6]
    torch.testing.assert_close(reverse_within_length(r, mask), x)


def test_stgcn_graph_partitions_cover_the_skeleton():
    parts = spatial_partition_adjacency()
    assert parts.shape == (3, 20, 20)
    adjacency = parts.sum(0) > 0
    for a, b in CANONICAL.bones:
        assert (
            adjacency[CANONICAL.index(a), CANONICAL.index(b)]
            and adjacency[CANONICAL.index(b), CANONICAL.index(a)]
        )
    torch.testing.assert_close(torch.from_numpy(parts.sum((0, 1))), torch.ones(20))  # columns normalised
    knee, hip, ankle = (
        canonical_index("left_knee"),
        canonical_index("left_hip"),
        canonical_index("left_ankle"),
    )
    assert parts[1, hip, knee] > 0 and parts[2, ankle, knee] > 0 and parts[0, knee, knee] > 0
