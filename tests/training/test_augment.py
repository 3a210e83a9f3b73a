"""valgusml.training.augment: batch augmentations keep batches valid and do what they claim."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from valgusml.features import FRAME_MEASURES, mirror_frame_measures
from valgusml.skeleton import CANONICAL, canonical_index
from valgusml.training.augment import (
    DEFAULTS,
    Augmentation,
    BatchAugment,
    CameraYaw,
    JointDropout,
    Mirror,
    RotateScale,
    TimeWarp,
    UpperBodyDropout,
)

F = len(FRAME_MEASURES)
LH, RH = canonical_index("left_hip"), canonical_index("right_hip")
LK, RK = canonical_index("left_knee"), canonical_index("right_knee")


def make_batch(b: int = 6, t: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    joints = torch.rand(b, t, 20, 3, generator=g) * 100 + 200
    joints[..., 2] = torch.rand(b, t, 20, generator=g) * 0.8 + 0.2
    mask = torch.ones(b, t)
    mask[0, t // 2 :] = 0  # a padded window
    joints[0, t // 2 :] = 0
    return {
        "joints": joints,
        "measures": torch.randn(b, t, F, generator=g),
        "mask": mask,
        "valgus": torch.tensor([[1.0, 0.0]] * b),
        "mechanism": torch.tensor([[2, 0]] * b),
        "severity_deg": torch.tensor([[15.0, 3.0]] * b),
        "sequence_id": list(range(b)),  # other keys pass through
    }


def test_mirror_swaps_joints_measures_and_labels():
    batch = make_batch()
    out = Mirror().mirror(batch)
    assert out["valgus"][0].tolist() == [0.0, 1.0] and out["mechanism"][0].tolist() == [0, 2]
    assert out["severity_deg"][0].tolist() == [3.0, 15.0] and out["sequence_id"] == batch["sequence_id"]
    j, o = batch["joints"][1], out["joints"][1]
    centre = 0.5 * (j[:, LH, 0] + j[:, RH, 0]).mean()
    torch.testing.assert_close(o[:, RK, 0], 2 * centre - j[:, LK, 0])  # left knee is now the right one
    torch.testing.assert_close(o[:, RK, 1:], j[:, LK, 1:])
    expected = mirror_frame_measures(batch["measures"].numpy())
    np.testing.assert_allclose(out["measures"].numpy(), expected, atol=1e-6)
    assert not out["joints"][0, 16:].any()  # padding stays padding


def test_mirror_is_an_involution():
    batch = make_batch()
    twice = Mirror().mirror(Mirror().mirror(batch))
    for key in ("joints", "measures", "mask", "valgus", "mechanism", "severity_deg"):
        torch.testing.assert_close(twice[key], batch[key], atol=1e-4, rtol=1e-5)


def test_eval_mode_is_identity_and_input_is_not_modified():
    batch = make_batch()
    before = {k: v.clone() for k, v in batch.items() if isinstance(v, torch.Tensor)}
    aug = BatchAugment()
    assert aug.eval()(batch) is batch
    out = aug.train()(batch)
    for key, value in before.items():
        torch.testing.assert_close(batch[key], value)  # caller's tensors untouched
    assert out["joints"].shape == batch["joints"].shape and out["measures"].shape == batch["measures"].shape


@pytest.mark.parametrize("select_rows", [True, False])
def test_full_pipeline_keeps_batches_valid(select_rows, monkeypatch):
    monkeypatch.setattr(Augmentation, "select_rows", select_rows)
    torch.manual_seed(1)
    aug = BatchAugment(**{name: {"p": 1.0} for name in DEFAULTS}).train()
    out = aug(make_batch(b=16))
    for key in ("joints", "measures", "mask"):
        assert torch.isfinite(out[key]).all()
    mask = out["mask"]
    assert ((mask == 0) | (mask == 1)).all()
    assert (mask[:, 1:] <= mask[:, :-1]).all()  # real frames stay a prefix
    assert (mask.sum(1) >= 0.75 * 16 / 1.25 - 1).all()
    assert not out["joints"][mask == 0].any() and not out["measures"][mask == 0].any()
    conf = out["joints"][..., 2]
    assert ((conf >= 0) & (conf <= 1)).all()
    # labels are swapped or kept, never mixed
    swapped = out["valgus"][:, 0] == 0
    assert (out["mechanism"][swapped] == torch.tensor([0, 2])).all()
    assert (out["mechanism"][~swapped] == torch.tensor([2, 0])).all()


def test_switching_off_and_bad_specs():
    assert list(BatchAugment(yaw=None, jitter=None).steps) == [
        "time_warp",
        "mirror",
        "rotate_scale",
        "joint_dropout",
    ]
    assert BatchAugment(mirror={"p": 0.1}).steps["mirror"].p == 0.1
    with pytest.raises(ValueError, match="p must be in"):
        BatchAugment(mirror={"p": 2})
    with pytest.raises(ValueError, match="expected a dict"):
        BatchAugment(yaw=3)


def test_time_warp_identity_and_speed():
    batch = make_batch()
    same = TimeWarp(p=1.0, speed=(1.0, 1.0), min_keep=1.0).train()(batch)
    torch.testing.assert_close(same["joints"], batch["joints"])
    torch.testing.assert_close(same["mask"], batch["mask"])
    fast = TimeWarp(p=1.0, speed=(2.0, 2.0), min_keep=1.0).train()(batch)
    assert fast["mask"][1].sum() == 16 and fast["mask"][0].sum() == 8  # twice as fast: half the frames
    torch.testing.assert_close(fast["joints"][1, :16, :, :2], batch["joints"][1, ::2, :, :2])


def test_rotation_and_yaw_about_the_pelvis():
    batch = make_batch()
    rotated = RotateScale(p=1.0, max_deg=30, scale=(2.0, 2.0)).train()(batch)
    length = lambda j: (j[:, :, LK, :2] - j[:, :, LH, :2]).norm(dim=-1)  # noqa: E731
    torch.testing.assert_close(
        length(rotated["joints"])[1:], 2 * length(batch["joints"])[1:], rtol=1e-4, atol=1e-3
    )
    torch.manual_seed(0)
    yawed = CameraYaw(p=1.0, max_deg=60).train()(batch)
    width = lambda j: j[1:, :, LH, 0] - j[1:, :, RH, 0]  # noqa: E731
    ratio = width(yawed["joints"]) / width(batch["joints"])
    assert ((ratio >= math.cos(math.radians(60)) - 1e-5) & (ratio <= 1 + 1e-5)).all()
    torch.testing.assert_close(
        yawed["joints"][..., 1:], batch["joints"][..., 1:]
    )  # y and confidence untouched


def test_joint_dropout_only_zeroes_confidence():
    batch = make_batch()
    out = JointDropout(p=1.0, joint_rate=0.5, point_rate=0.1).train()(batch)
    conf, before = out["joints"][..., 2], batch["joints"][..., 2]
    assert ((conf == before) | (conf == 0)).all() and (conf == 0).float().mean() > 0.3
    torch.testing.assert_close(out["joints"][..., :2], batch["joints"][..., :2])


def test_upper_body_dropout_hides_what_a_camera_framing_the_legs_misses():
    """As `preprocess` gives a recording whose points above the hips are never seen: their confidence 0 and the
    trunk's lean measures 0; the legs and every other measure untouched."""
    from valgusml.features import FRAME_MEASURE_INDEX

    batch = make_batch()
    out = UpperBodyDropout(p=1.0).train()(batch)
    upper = [canonical_index(j) for j in ("nose", "neck", "left_shoulder", "right_shoulder", "left_elbow",
                                          "right_elbow", "left_wrist", "right_wrist")]
    rest = [j for j in range(20) if j not in upper]
    assert not out["joints"][:, :, upper].any()
    torch.testing.assert_close(out["joints"][:, :, rest], batch["joints"][:, :, rest])
    trunk = [FRAME_MEASURE_INDEX[n] for n in ("trunk_lean_frontal_deg", "trunk_lean_sagittal_deg")]
    assert not out["measures"][..., trunk].any()
    others = [k for k in range(F) if k not in trunk]
    torch.testing.assert_close(out["measures"][..., others], batch["measures"][..., others])
    assert "upper_body_dropout" not in BatchAugment().steps  # off unless named
    assert BatchAugment(upper_body_dropout="default").steps["upper_body_dropout"].p == DEFAULTS["upper_body_dropout"]["p"]


def test_flip_index_pairs_sides():
    flip = CANONICAL.flip_index
    assert flip[LK] == RK and flip[RK] == LK and flip[canonical_index("neck")] == canonical_index("neck")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_runs_on_gpu():
    batch = {k: v.cuda() if isinstance(v, torch.Tensor) else v for k, v in make_batch().items()}
    out = BatchAugment().cuda().train()(batch)
    assert out["joints"].is_cuda and torch.isfinite(out["joints"]).all()
