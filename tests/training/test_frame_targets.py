"""Per-frame 3D targets: written by the generator, cut into the model's windows like the keypoints, carried
through the augmentations, and trained by the lifter's losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from valgusml.data import open_dataset
from valgusml.data.frame_targets import (
    FRAME_TARGET_COLUMNS,
    FRAME_TARGET_MIRROR_SIGN,
    LIFTED_MEASURE_START,
    LIFTED_MEASURES,
    VIEW_COLUMN,
    read_frame_targets,
    write_frame_targets,
)
from valgusml.preprocess import PreprocessConfig, prepare
from valgusml.training.windows import prepare_dataset, target_windows


def test_generator_targets_are_the_labels_own_frames(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    targets = read_frame_targets(tiny_dataset)
    assert set(targets) == {ds[i].id for i in range(len(ds))}
    for i in range(0, len(ds), 5):
        seq = ds[i]
        frames = targets[seq.id]
        assert frames.shape == (seq.n_frames, len(FRAME_TARGET_COLUMNS))
        for k, limb in enumerate(("left", "right")):
            loaded = frames[:, 2 + k] > 0.5
            assert loaded.any() == seq.meta["measured"]["loaded"][k]
            if loaded.any():  # the label's dynamic FPPA is the peak over the loaded frames (float16 stored)
                assert frames[loaded, k].max() == pytest.approx(seq.meta["measured"]["dynamic_fppa_deg"][k], abs=0.05)
                assert (frames[loaded, k].max() > seq.meta["measured"]["threshold_deg"]) == seq.labels[limb]["valgus"]


def test_write_read_round_trip_and_a_dataset_without_targets(tmp_path):
    frames = np.column_stack([np.linspace(-2, 20, 30)] + [np.full(30, float(c)) for c in range(1, len(FRAME_TARGET_COLUMNS))])
    write_frame_targets(tmp_path, 3, {"a": frames, "b": None})
    back = read_frame_targets(tmp_path)
    assert list(back) == ["a"] and np.allclose(back["a"], frames, atol=0.02)
    assert read_frame_targets(tmp_path / "elsewhere") == {}


@pytest.mark.parametrize("width", [LIFTED_MEASURE_START, VIEW_COLUMN])
def test_targets_written_by_earlier_generators_read_back_with_the_new_columns_missing(tmp_path, width):
    """v8-v11 wrote the label's four columns, v12-v13 the lifted measures too; the columns a file lacks are NaN."""
    legacy = np.column_stack([np.linspace(-2, 20, 30), np.zeros(30), np.ones(30)] + [np.zeros(30)] * (width - 3))
    write_frame_targets(tmp_path, 0, {"a": legacy})
    back = read_frame_targets(tmp_path)["a"]
    assert back.shape == (30, len(FRAME_TARGET_COLUMNS))
    assert np.allclose(back[:, :width], legacy, atol=0.02)
    assert np.isnan(back[:, width:]).all()
    write_frame_targets(tmp_path, 1, {"b": np.zeros((30, 7))})  # no layout's width: that shard is skipped
    with pytest.warns(UserWarning, match=rf"targets of 'b' have shape \(30, 7\), expected \(T, {len(FRAME_TARGET_COLUMNS)}\)"):
        assert list(read_frame_targets(tmp_path)) == ["a"]


def test_lifted_measure_targets_are_the_frame_measures_of_the_clean_3d_motion():
    """The generator's 3D measure columns are `frame_measures` on its clean 3D joints: observed in 3D without
    noise, the sequence's own measures give them back."""
    from valgusml.features import FRAME_MEASURE_INDEX, frame_measures
    from valgusml.synth import generator_config
    from valgusml.synth.generator import sequences_with_targets

    cfg = generator_config("clean", seed=3, n_athletes=1, **{"observation.dims": 3})
    (seq, _, targets), *_ = list(sequences_with_targets(cfg, [0]))
    columns = [FRAME_MEASURE_INDEX[name] for name in LIFTED_MEASURES]
    measured = frame_measures(seq.keypoints)[:, columns]
    lifted = targets[:, LIFTED_MEASURE_START:VIEW_COLUMN]
    assert lifted.shape == measured.shape and np.isfinite(lifted).all()
    assert np.isnan(targets[:, VIEW_COLUMN]).all()  # 3D output: no camera, no view
    assert np.nanmedian(np.abs(lifted - measured)) < 1.0
    knee = LIFTED_MEASURES.index("left_knee_flexion_deg")
    assert lifted[:, knee].max() - lifted[:, knee].min() > 30.0  # the squat's knee bends under load


def test_view_target_is_the_cameras_yaw_in_the_front_view_the_model_reads():
    """Every frame of a 2D sequence carries sin(yaw) of its camera, a rear camera's as the front view its image is
    mirrored into (180 - yaw)."""
    from valgusml.features.view import front_view_yaw_deg
    from valgusml.synth import generator_config
    from valgusml.synth.generator import sequences_with_targets

    cfg = generator_config("realistic", seed=5, n_athletes=2, **{"observation.duration_s": [2.0, 3.0]})
    seen = set()
    for seq, _, targets in sequences_with_targets(cfg, [0, 1]):
        yaw = seq.meta["camera"]["yaw_deg"]
        expected = np.sin(np.radians(front_view_yaw_deg(yaw)))
        assert np.allclose(targets[:, VIEW_COLUMN], expected, atol=1e-6)
        seen.add("rear" if abs(yaw) > 90 else "front")
    assert seen == {"front", "rear"}


@pytest.mark.parametrize(("yaw", "front"), [(0, 0), (25, 25), (-40, -40), (90, 90), (160, 20), (-160, -20),
                                            (180, 0), (-180, 0), (100, 80), (200, -20)])
def test_front_view_yaw_of_a_rear_view_is_its_mirror_through_the_frontal_plane(yaw, front):
    from valgusml.features.view import front_view_yaw_deg

    assert front_view_yaw_deg(yaw) == pytest.approx(front)


def test_a_mirrored_rear_image_is_the_front_view_at_its_front_view_yaw():
    """The geometry behind `front_view_yaw_deg`: a camera behind at yaw Y, its image mirrored, sees what a camera
    in front at 180 - Y sees of the same body turned front to back (the frontal plane's x and z unchanged)."""
    from valgusml.evaluation.transfer.render import ViewSpec, render
    from valgusml.features.view import canonical_front_view, front_view_yaw_deg
    from valgusml.io import samples

    world = samples.squat_3d().keypoints.astype(np.float64)
    world[..., 1] -= world[..., 1].mean()
    turned = world * np.array([1.0, -1.0, 1.0])  # front and back swapped
    for yaw in (160.0, -165.0, 180.0):
        rear, mirrored = canonical_front_view(render(world, ViewSpec(yaw_deg=yaw)))
        front = render(turned, ViewSpec(yaw_deg=front_view_yaw_deg(yaw)))
        assert mirrored
        rear_x = rear[..., 0] - rear[..., 0].mean(axis=1, keepdims=True)
        front_x = front[..., 0] - front[..., 0].mean(axis=1, keepdims=True)
        assert np.allclose(rear_x, front_x, atol=0.5)  # pixels
        assert np.allclose(rear[..., 1], front[..., 1], atol=0.5)


def test_target_windows_follow_the_keypoints_resampling_and_windows(tiny_dataset):
    ds = open_dataset(tiny_dataset)
    seq = max((ds[i] for i in range(40)), key=lambda s: s.n_frames)
    cfg = PreprocessConfig()
    assert seq.fps != cfg.fps  # resampling is exercised
    frames = np.column_stack([np.arange(seq.n_frames, dtype=float)] * len(FRAME_TARGET_COLUMNS))  # source frame
    model_input = prepare(seq, cfg)
    windows = target_windows(frames, seq.fps, len(model_input), cfg)
    assert windows.shape == (len(model_input), cfg.window, len(FRAME_TARGET_COLUMNS))
    real = model_input.mask > 0
    assert np.isfinite(windows[real]).all() and np.isnan(windows[~real]).all()
    # frame t of window k sits at time window_start + t / fps: the source frame index times fps_out / fps_in
    k = len(model_input) - 1
    time_s = model_input.window_start_s[k] + np.arange(cfg.window)[real[k]] / cfg.fps
    assert np.allclose(windows[k, real[k], 0], time_s * seq.fps, atol=1e-3)


def test_prepared_dataset_carries_targets_and_nan_without_them(tiny_dataset, tmp_path):
    ds = open_dataset(tiny_dataset)
    arrays = prepare_dataset(ds, {}, None)
    targets = arrays["frame_targets"]
    assert targets.shape == (*arrays["mask"].shape, len(FRAME_TARGET_COLUMNS))
    real = arrays["mask"] > 0
    assert np.isfinite(targets[real][:, :LIFTED_MEASURE_START]).all()
    assert np.isfinite(targets[real]).mean() > 0.99


def test_mirror_swaps_and_time_warp_moves_the_targets():
    from valgusml.training.augment import Mirror, TimeWarp

    b, t = 4, 30
    batch = {
        "joints": torch.rand(b, t, 20, 3) + 0.5,
        "measures": torch.zeros(b, t, 0),
        "mask": torch.ones(b, t),
        "frame_targets": torch.stack([torch.arange(t, dtype=torch.float32).expand(b, t) + c * 100
                                      for c in range(len(FRAME_TARGET_COLUMNS))], -1),
    }
    mirrored = Mirror(p=1.0).mirror(batch)["frame_targets"]
    assert torch.equal(mirrored[..., :LIFTED_MEASURE_START], batch["frame_targets"][..., [1, 0, 3, 2]])
    # each limb's measures swap sides; pelvic obliquity and frontal trunk lean change sign
    left, right = (LIFTED_MEASURE_START + LIFTED_MEASURES.index(f"{side}_hip_adduction_deg") for side in ("left", "right"))
    assert torch.equal(mirrored[..., left], batch["frame_targets"][..., right])
    pelvis = LIFTED_MEASURE_START + LIFTED_MEASURES.index("pelvic_obliquity_deg")
    assert torch.equal(mirrored[..., pelvis], -batch["frame_targets"][..., pelvis])
    # a mirrored image is seen from the other side: the view's yaw changes sign
    assert torch.equal(mirrored[..., VIEW_COLUMN], -batch["frame_targets"][..., VIEW_COLUMN])
    assert FRAME_TARGET_MIRROR_SIGN.count(-1.0) == 3
    warp = TimeWarp(p=1.0, speed=(1.5, 1.5), min_keep=1.0).train()
    torch.manual_seed(0)
    out = warp(batch)
    real = out["mask"] > 0
    # column c reads c * 100 + the source frame: the same source position as the measures would
    source = out["frame_targets"][..., 0]
    assert torch.allclose(out["frame_targets"][..., 3][real], source[real] + 300.0)
    steps = source[0, 1 : int(real[0].sum())] - source[0, : int(real[0].sum()) - 1]
    assert torch.allclose(steps, torch.full_like(steps, 1.5), atol=1e-4)


def test_lifter_losses_skip_frames_without_targets():
    from valgusml.training.module import ValgusLitModule

    net = {"_target_": "valgusml.models.ValgusNet",
           "backbone": {"_target_": "valgusml.models.TCN", "_partial_": True, "channels": 8, "n_blocks": 1},
           "lifter": {"_target_": "valgusml.models.geometry.FrameLifter", "_partial_": True, "hidden": 8}}
    module = ValgusLitModule(net=net, optimizer={"_target_": "torch.optim.AdamW", "_partial_": True})
    b, t = 2, 20
    out = {"valgus_logit": torch.zeros(b, 2), "mechanism_logits": torch.zeros(b, 2, 5), "severity_deg": torch.zeros(b, 2),
           "frame_fppa_deg": torch.zeros(b, t, 2, requires_grad=True), "frame_loaded_logit": torch.zeros(b, t, 2)}
    batch = {"valgus": torch.zeros(b, 2), "mechanism": torch.zeros(b, 2, dtype=torch.long),
             "severity_deg": torch.zeros(b, 2), "mask": torch.ones(b, t),
             "frame_targets": torch.full((b, t, len(FRAME_TARGET_COLUMNS)), float("nan"))}
    losses = module._losses(out, batch)
    assert float(losses["loss_frame_fppa"].detach()) == 0.0 and torch.isfinite(losses["loss"])
    batch["frame_targets"][0, :5, :4] = torch.tensor([10.0, 0.0, 1.0, 0.0])  # five known frames of one window
    losses = module._losses(out, batch)
    # smooth L1 in units of 10 deg: |0 - 10| / 10 = 1 -> 0.5 on the left column, 0 on the right; mean 0.25
    assert float(losses["loss_frame_fppa"].detach()) == pytest.approx(0.25)
    assert float(losses["loss_frame_loaded"].detach()) == pytest.approx(np.log(2.0), rel=1e-5)
    assert "loss_frame_measures" not in losses  # this lifter does not lift the measures
    # In units of 4 deg the same 10-deg miss is linear: 10 / 4 - 0.5 = 2 on the left column; mean 1.0. The
    # severity loss keeps its own unit.
    module = ValgusLitModule(net=net, optimizer={"_target_": "torch.optim.AdamW", "_partial_": True},
                             frame_fppa_scale_deg=4.0)
    batch["severity_deg"][0, 0] = 10.0
    losses = module._losses(out, batch)
    assert float(losses["loss_frame_fppa"].detach()) == pytest.approx(1.0)
    assert float(losses["loss_severity"].detach()) == pytest.approx(0.5 * 1.0**2 / 4)  # (10 / 10)^2 / 2, one limb of four


def test_lifted_measures_are_trained_where_their_3d_values_are_known():
    from valgusml.training.module import ValgusLitModule

    net = {"_target_": "valgusml.models.ValgusNet",
           "backbone": {"_target_": "valgusml.models.TCN", "_partial_": True, "channels": 8, "n_blocks": 1},
           "lifter": {"_target_": "valgusml.models.geometry.FrameLifter", "_partial_": True, "hidden": 8,
                      "lift_measures": True}}
    module = ValgusLitModule(net=net, optimizer={"_target_": "torch.optim.AdamW", "_partial_": True})
    b, t, m = 2, 20, len(LIFTED_MEASURES)
    out = module(torch.rand(b, t, 20, 3), torch.zeros(b, t, module.net.n_measures), torch.ones(b, t))
    assert out["frame_measures_3d"].shape == (b, t, m)
    out["frame_measures_3d"] = torch.zeros(b, t, m, requires_grad=True)
    targets = torch.full((b, t, len(FRAME_TARGET_COLUMNS)), float("nan"))
    batch = {"valgus": torch.zeros(b, 2), "mechanism": torch.zeros(b, 2, dtype=torch.long),
             "severity_deg": torch.zeros(b, 2), "mask": torch.ones(b, t), "frame_targets": targets}
    assert float(module._losses(out, batch)["loss_frame_measures"].detach()) == 0.0  # legacy data: nothing known
    targets[0, :4, LIFTED_MEASURE_START] = 20.0  # 2 units of 10 deg off: smooth L1 1.5 on four frames
    targets[0, :4, LIFTED_MEASURE_START + 1] = 0.0
    losses = module._losses(out, batch)
    assert float(losses["loss_frame_measures"].detach()) == pytest.approx(0.75)
    losses["loss"].backward()
    assert out["frame_measures_3d"].grad[0, :4, 0].abs().min() > 0 and out["frame_measures_3d"].grad[1].abs().max() == 0


def test_the_view_is_trained_where_the_camera_is_known():
    from valgusml.training.module import ValgusLitModule

    def module(**lifter):
        net = {"_target_": "valgusml.models.ValgusNet",
               "backbone": {"_target_": "valgusml.models.TCN", "_partial_": True, "channels": 8, "n_blocks": 1},
               "lifter": {"_target_": "valgusml.models.geometry.FrameLifter", "_partial_": True, "hidden": 8, **lifter}}
        torch.manual_seed(0)
        return ValgusLitModule(net=net, optimizer={"_target_": "torch.optim.AdamW", "_partial_": True})

    viewing = module(lift_view=True)
    b, t = 2, 20
    x, mask = torch.rand(b, t, 20, 3), torch.ones(b, t)
    out = viewing(x, torch.zeros(b, t, viewing.net.n_measures), mask)
    assert out["frame_view_sin_yaw"].shape == (b, t) and "frame_measures_3d" not in out
    assert "frame_view_sin_yaw" not in module()(x, torch.zeros(b, t, viewing.net.n_measures), mask)
    out["frame_view_sin_yaw"] = torch.zeros(b, t, requires_grad=True)
    targets = torch.full((b, t, len(FRAME_TARGET_COLUMNS)), float("nan"))
    batch = {"valgus": torch.zeros(b, 2), "mechanism": torch.zeros(b, 2, dtype=torch.long),
             "severity_deg": torch.zeros(b, 2), "mask": mask, "frame_targets": targets}
    assert float(viewing._losses(out, batch)["loss_frame_view"].detach()) == 0.0  # 3D or legacy data: no camera
    targets[1, :, VIEW_COLUMN] = 0.5  # one window seen from 30 deg: smooth L1 0.125 on its frames
    losses = viewing._losses(out, batch)
    assert float(losses["loss_frame_view"].detach()) == pytest.approx(0.125)
    losses["loss"].backward()
    grad = out["frame_view_sin_yaw"].grad
    assert grad[1].abs().min() > 0 and grad[0].abs().max() == 0


def test_guided_lifter_gate_learns_whether_the_2d_reading_was_right():
    """The gate's target is 1 where the measured 2D angle is within the tolerance of the 3D answer, 0 elsewhere;
    frames without a target do not count."""
    from valgusml.training.module import ValgusLitModule

    net = {"_target_": "valgusml.models.ValgusNet",
           "backbone": {"_target_": "valgusml.models.TCN", "_partial_": True, "channels": 8, "n_blocks": 1},
           "lifter": {"_target_": "valgusml.models.geometry.GuidedLifter", "_partial_": True, "hidden": 8,
                      "tolerance_deg": 3.0}}
    module = ValgusLitModule(net=net, optimizer={"_target_": "torch.optim.AdamW", "_partial_": True})
    b, t = 1, 4
    measured = torch.tensor([[[10.0, 0.0], [12.0, 0.0], [20.0, 0.0], [5.0, 0.0]]])
    out = {"valgus_logit": torch.zeros(b, 2), "mechanism_logits": torch.zeros(b, 2, 5), "severity_deg": torch.zeros(b, 2),
           "frame_fppa_deg": torch.zeros(b, t, 2), "frame_loaded_logit": torch.zeros(b, t, 2),
           "frame_fppa_gate_logit": torch.full((b, t, 2), 20.0, requires_grad=True), "frame_measured_fppa_deg": measured}
    targets = torch.full((b, t, len(FRAME_TARGET_COLUMNS)), float("nan"))
    targets[0, :3, 0] = 11.0  # left: the 2D reading is right in frames 0 and 1 (1 deg off), wrong in 2 (9 deg off)
    batch = {"valgus": torch.zeros(b, 2), "mechanism": torch.zeros(b, 2, dtype=torch.long),
             "severity_deg": torch.zeros(b, 2), "mask": torch.ones(b, t), "frame_targets": targets}
    losses = module._losses(out, batch)
    # logit 20 says "right" everywhere: ~0 loss on the two right frames, 20 on the wrong one; frame 3 unknown
    assert float(losses["loss_frame_gate"].detach()) == pytest.approx(20.0 / 3, rel=1e-3)
    assert losses["loss"].requires_grad
