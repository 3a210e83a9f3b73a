"""Views all round: yaw over the whole circle by view family, rear views mirror the image (not the labels),
the far leg is hidden in side views, lens distortion is radial."""

from __future__ import annotations

from collections import Counter

import numpy as np

from valgusml.synth import generate_sequences, load_preset
from valgusml.synth.observation import project, sample_camera

QUIET = {"noise.enabled": False, "observation.dims": 2, "observation.skeleton": "halpe26",
         "camera.distortion_probability": 0.0, "tasks.trials_per_athlete": 3}


def views(yaw, **extra):
    view = {0.0: "front", 180.0: "rear", 90.0: "side"}[yaw]
    cfg = load_preset("realistic", n_athletes=4, **QUIET, **{"camera.yaw_deg": [yaw, yaw], "camera.views": {view: 1.0}}, **extra)
    return list(generate_sequences(cfg, range(4)))


def test_rear_view_puts_the_athletes_left_on_the_image_left_labels_unchanged():
    front, rear = views(0.0), views(180.0)
    for f, r in zip(front, rear, strict=True):
        assert f.id == r.id and f.labels == r.labels and f.meta["measured"] == r.meta["measured"]
        left, right = f.joints.index("left_hip"), f.joints.index("right_hip")
        # From the front the athlete's left is on the image's right; from behind, on the image's left.
        assert np.nanmean(f.keypoints[:, left, 0] > f.keypoints[:, right, 0]) > 0.95
        assert np.nanmean(r.keypoints[:, left, 0] < r.keypoints[:, right, 0]) > 0.95
        assert abs(abs(r.meta["camera"]["yaw_deg"]) - 180.0) < 1e-9 and r.meta["camera"]["view"] == "rear"


def test_realistic_views_cover_the_circle():
    cfg = load_preset("realistic", n_athletes=30, **{"tasks.trials_per_athlete": 2})
    cams = [s.meta["camera"] for s in generate_sequences(cfg, range(30))]
    seen = Counter(c["view"] for c in cams)
    assert set(seen) == {"front", "oblique", "side", "rear"} and min(seen.values()) >= 3
    yaws = np.array([c["yaw_deg"] for c in cams])
    assert (yaws > 0).any() and (yaws < 0).any() and np.abs(yaws).max() > 150
    heights = np.array([c["height_m"] for c in cams])
    assert heights.min() < 0.8 and heights.max() > 1.6  # floor tripods to raised mounts
    assert all(c["pitch_deg"] > 0 for c in cams if c["height_m"] > 1.8)  # raised cameras look down


def test_side_views_hide_the_far_leg():
    cfg = load_preset("realistic", n_athletes=6, **{"camera.yaw_deg": [90.0, 90.0], "camera.views": {"side": 1.0},
                                                      "noise.dropout_fraction": 0.0, "tasks.trials_per_athlete": 2})
    near, far = [], []
    for seq in generate_sequences(cfg, range(6)):
        # yaw +90: the camera stands on the athlete's left (+x): the right leg is the far one
        side = "left" if seq.meta["camera"]["yaw_deg"] > 0 else "right"
        other = "right" if side == "left" else "left"
        for part in ("knee", "ankle"):
            near.append(np.nanmean(seq.confidence[:, seq.joints.index(f"{side}_{part}")]))
            far.append(np.nanmean(seq.confidence[:, seq.joints.index(f"{other}_{part}")]))
    assert np.mean(far) < np.mean(near) - 0.2


def test_lens_distortion_is_radial():
    cfg = load_preset("realistic", **{"camera.distortion_probability": 1.0, "camera.distortion_k1": [-0.2, -0.2]})
    cam = sample_camera(cfg, np.random.default_rng(0), 1.75)
    plain = dict(cam, distortion_k1=0.0)
    points = np.random.default_rng(1).uniform([-0.5, -0.3, 0.0], [0.5, 0.3, 1.9], (1, 1, 40, 3))
    bent, straight = project(points, [cam], np.array([1.0]))[0, 0], project(points, [plain], np.array([1.0]))[0, 0]
    centre = np.array([cam["width"], cam["height"]]) / 2
    r_bent, r_straight = np.linalg.norm(bent - centre, axis=1), np.linalg.norm(straight - centre, axis=1)
    assert (r_bent <= r_straight + 1e-6).all()  # barrel: pulled towards the centre
    cross = (bent - centre)[:, 0] * (straight - centre)[:, 1] - (bent - centre)[:, 1] * (straight - centre)[:, 0]
    assert np.abs(cross).max() < 1e-3 * r_straight.max() ** 2  # along the same ray
