"""The generator's fast paths against the plain computation they replace."""

import dataclasses

import numpy as np
import pytest

from valgusml import KeypointSequence
from valgusml.labels import validate_labels
from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth import generate_sequences, load_preset
from valgusml.synth.generator import trials_of
from valgusml.synth.kinematics import JOINTS, built_joints
from valgusml.synth.observation import ar1_in_place, project, sample_camera, standard_normal32
from valgusml.synth.simulation import emitted_joints, scale_swivel, simulate


def test_emitted_joints_are_bit_identical_to_the_full_build():
    cfg = load_preset("realistic", n_athletes=2, seed=5)
    trials = trials_of(cfg, range(2))
    emit = emitted_joints("halpe26")
    full = simulate(cfg, trials)
    lean = simulate(cfg, trials_of(cfg, range(2)), emit=emit)
    built = built_joints(emit)
    assert built[: len(CANONICAL_JOINTS)] == CANONICAL_JOINTS and "left_thumb" not in built and "left_ear" in built
    assert built_joints(None) == JOINTS
    kept = [JOINTS.index(name) for name in built]
    for a, b in zip(full, lean, strict=True):
        assert b.joints.shape[1] == len(built)
        assert np.array_equal(a.joints[:, kept], b.joints)
        assert np.isfinite(a.joints).all()


def test_foot_forward_is_foot_frame_forward():
    from valgusml.synth.kinematics import foot_forward, foot_frame

    g = np.random.default_rng(1).uniform(-30, 30, (3, 4, 2))
    assert np.array_equal(foot_forward(g), foot_frame(g)[0])


def test_knee_only_rescaling_equals_simulating_the_scaled_athletes():
    """Label rescaling re-solves only the knees; simulating athletes whose healthy swivel is already scaled
    must give the same motion (without knee wobble and push-off valgus, which the rescaling scales too)."""
    cfg = load_preset("realistic", n_athletes=4, seed=3, **{"tasks.knee_wobble_deg": [0.0, 0.0],
                                                            "tasks.pushoff_valgus_probability": 0.0})
    trials = trials_of(cfg, range(4))
    factors = np.random.default_rng(0).uniform(0.0, 0.95, (len(trials), 2))
    sims = simulate(cfg, trials)
    scale_swivel(trials, sims, factors, np.ones_like(factors))
    scaled = []
    for trial, factor in zip(trials_of(cfg, range(4)), factors, strict=True):
        athlete = dataclasses.replace(trial.athlete, healthy_swivel_deg=trial.athlete.healthy_swivel_deg * factor)
        scaled.append(dataclasses.replace(trial, athlete=athlete))
    for a, b in zip(sims, simulate(cfg, scaled), strict=True):
        np.testing.assert_allclose(a.joints, b.joints, atol=2e-5)
        np.testing.assert_allclose(a.swivel_parts, b.swivel_parts, atol=1e-4)
    moved = np.abs(sims[0].joints - simulate(cfg, trials_of(cfg, range(4)))[0].joints).max(axis=(0, 2))
    assert set(np.flatnonzero(moved > 1e-6)) <= {JOINTS.index("left_knee"), JOINTS.index("right_knee")}


@pytest.mark.parametrize("preset", ["realistic", "clean", "hard"])
def test_trusted_sequences_equal_validated_ones(preset):
    for seq in generate_sequences(load_preset(preset, n_athletes=3, **{"tasks.trials_per_athlete": 4}), range(3)):
        fields = {f.name: getattr(seq, f.name) for f in dataclasses.fields(KeypointSequence)}
        checked = KeypointSequence(**fields)
        assert seq.keypoints.dtype == checked.keypoints.dtype == np.float32
        np.testing.assert_array_equal(seq.keypoints, checked.keypoints)
        np.testing.assert_array_equal(seq.confidence, checked.confidence)
        assert seq.labels == checked.labels and seq.fps == checked.fps
        assert ((seq.confidence == 0) == np.isnan(seq.keypoints).any(-1)).all()


def test_trusted_constructor_rejects_unknown_and_missing_fields():
    with pytest.raises(TypeError, match="unknown"):
        KeypointSequence.trusted(keypoints=np.zeros((2, 20, 2), np.float32), skeleton="canonical", fps=30.0, colour=1)
    with pytest.raises(TypeError, match="missing field 'skeleton'"):
        KeypointSequence.trusted(keypoints=np.zeros((2, 20, 2), np.float32), fps=30.0)


def test_label_normalisation_is_idempotent():
    label = {"valgus": True, "mechanism": "pronation", "severity_deg": 20.0,
             "contributions": {"hip_weakness": 0.0061, "pronation": 0.688, "limited_dorsiflexion": 0.2472}}
    once = validate_labels({"left": label, "right": label})
    assert validate_labels(once) == once
    assert sum(once["left"]["contributions"].values()) == pytest.approx(1.0, abs=1e-12)


def test_box_muller_normals_and_ar1_noise_statistics():
    rng = np.random.default_rng(0)
    white = np.empty((400, 1001, 3), dtype=np.float32)
    for row in white:
        standard_normal32(rng, row)
    assert abs(white.mean()) < 0.01 and abs(white.std() - 1.0) < 0.01
    assert abs(((white - white.mean()) ** 4).mean() / white.var() ** 2 - 3.0) < 0.05  # Gaussian kurtosis
    assert np.isfinite(white).all()
    fps = np.where(np.arange(400) < 200, 30.0, 120.0)
    noise = ar1_in_place(white, fps, time_constant_s=0.05)
    for rows, rate in ((slice(0, 200), 30.0), (slice(200, 400), 120.0)):
        part = noise[rows]
        lag1 = (part[:, 1:] * part[:, :-1]).mean() / part.var()
        assert abs(part.std() - 1.0) < 0.03  # stationary from frame 0
        assert abs(lag1 - np.exp(-1.0 / (0.05 * rate))) < 0.02


def test_projection_matches_a_plain_pinhole_camera():
    cfg = load_preset("realistic", **{"camera.distortion_probability": 0.0})
    rng = np.random.default_rng(4)
    cameras = [sample_camera(cfg, rng, 1.75) for _ in range(5)]
    points = np.stack([rng.uniform(-0.4, 0.4, (5, 3, 7)), rng.uniform(-0.5, 0.5, (5, 3, 7)),
                       rng.uniform(0.0, 1.9, (5, 3, 7))], axis=-1)
    target_z = np.full(5, 0.55 * 1.75)
    pixels = project(points, cameras, target_z)
    for i, cam in enumerate(cameras):
        yaw, pitch = np.radians(cam["yaw_deg"]), np.radians(cam["pitch_offset_deg"])
        target = np.array([cam["aim_jitter_m"][0], 0.0, target_z[i] + cam["aim_jitter_m"][1]])
        position = target + cam["distance_m"] * np.array([np.sin(yaw), -np.cos(yaw), 0.0])
        position[2] = cam["height_m"]
        look = (target - position) / np.linalg.norm(target - position)
        right = np.cross(look, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(look, right)
        look, down = np.cos(pitch) * look - np.sin(pitch) * down, np.sin(pitch) * look + np.cos(pitch) * down
        rel = points[i] - position
        depth = rel @ look
        want = np.stack([cam["focal_px"] * (rel @ right) / depth + cam["width"] / 2,
                         cam["focal_px"] * (rel @ down) / depth + cam["height"] / 2], axis=-1)
        np.testing.assert_allclose(pixels[i], want, atol=1e-6)
    assert np.allclose(project(points.astype(np.float32), cameras, target_z), pixels, atol=0.01)


def test_cameras_keep_the_athlete_in_frame():
    inside = []
    cfg = load_preset("realistic", n_athletes=12, **{"camera.distortion_probability": 0.0})
    for seq in generate_sequences(cfg, range(12)):
        if seq.task in ("walking", "running"):
            continue  # overground gait walks through the scene, in and out of the frame
        width, height = seq.meta["camera"]["width"], seq.meta["camera"]["height"]
        x, y = seq.keypoints[..., 0], seq.keypoints[..., 1]
        feet = [seq.joints.index(j) for j in seq.joints if j.endswith(("ankle", "heel", "toe"))]
        inside.append(np.nanmean(((x > 0) & (x < width) & (y > 0) & (y < height))[:, feet]))
    assert np.mean(inside) > 0.985 and np.min(inside) > 0.85


def test_a_sequence_depends_only_on_its_athlete_not_its_batch():
    cfg = load_preset("realistic", n_athletes=40)
    together = {s.id: s for s in generate_sequences(cfg, range(40))}
    for seq in generate_sequences(cfg, [33, 7, 3]):
        twin = together[seq.id]
        assert np.array_equal(twin.keypoints, seq.keypoints, equal_nan=True)
        assert np.array_equal(twin.confidence, seq.confidence) and twin.labels == seq.labels and twin.meta == seq.meta
