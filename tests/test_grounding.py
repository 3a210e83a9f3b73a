"""The planted-foot rebuild of root-relative keypoints (`valgusml.predictor.grounding`)."""

import numpy as np
import pytest

from valgusml.features.phases import infer_task
from valgusml.io.samples import squat_3d
from valgusml.predictor.grounding import (
    floor_rise,
    footfalls,
    ground,
    levelled,
    planted_foot_offsets,
    rebuilt_task,
)
from valgusml.skeleton import canonical_index

HIPS = [canonical_index("left_hip"), canonical_index("right_hip")]
LEFT_FOOT = [canonical_index(f"left_{p}") for p in ("ankle", "heel", "big_toe", "small_toe")]
RIGHT_FOOT = [canonical_index(f"right_{p}") for p in ("ankle", "heel", "big_toe", "small_toe")]


def _rooted(keypoints: np.ndarray) -> np.ndarray:
    return keypoints - keypoints[:, HIPS].mean(axis=1, keepdims=True)


def test_a_squat_gets_its_pelvis_motion_back():
    world = squat_3d(90, 30.0).keypoints.astype(np.float64)
    rebuilt = ground(_rooted(world))
    # feet planted in the world: the rebuild is the world up to one translation
    shift = world - rebuilt
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-9)
    pelvis = rebuilt[:, HIPS, 2].mean(axis=1)
    assert pelvis.max() - pelvis.min() == pytest.approx(np.ptp(world[:, HIPS, 2].mean(axis=1)), abs=1e-9)


def _walk(n_frames: int = 120, step_m: float = 0.6) -> np.ndarray:
    """A rigid 'walker' whose feet take turns: the stance foot stays on the floor while the other swings
    forward 5 cm above it, the body moving forward at a steady pace."""
    kp = np.zeros((n_frames, 20, 3))
    kp[:] = squat_3d(2, 30.0).keypoints[0]
    half = n_frames // 4
    for t in range(n_frames):
        step = t // half
        stance, swing = (LEFT_FOOT, RIGHT_FOOT) if step % 2 == 0 else (RIGHT_FOOT, LEFT_FOOT)
        kp[t, :, 0] += step_m * t / half  # the body (and the swinging foot) moves on at a steady pace
        kp[t, stance, 0] = kp[0, stance, 0] + step_m * step  # the stance foot stays where it was set down
        kp[t, swing, 2] += 0.05
    return kp


def test_a_walk_travels_and_keeps_the_stance_foot_still():
    walk = _walk()
    rebuilt = ground(_rooted(walk))
    travel = rebuilt[-1, HIPS, 0].mean() - rebuilt[0, HIPS, 0].mean()
    assert travel > 0.8 * (walk[-1, HIPS, 0].mean() - walk[0, HIPS, 0].mean())
    # within each stance the lower foot does not move
    half = len(walk) // 4
    for step in range(4):
        foot = LEFT_FOOT if step % 2 == 0 else RIGHT_FOOT
        frames = slice(step * half + 1, (step + 1) * half)
        centre = rebuilt[frames][:, foot].mean(axis=1)
        np.testing.assert_allclose(centre, np.broadcast_to(centre[0], centre.shape), atol=1e-9)


def test_frames_without_a_foot_keep_the_last_translation_and_2d_is_image_y_down():
    world = squat_3d(60, 30.0).keypoints.astype(np.float64)
    rooted = _rooted(world)
    rooted[10:15, LEFT_FOOT + RIGHT_FOOT] = np.nan
    offsets = planted_foot_offsets(rooted)
    assert np.isfinite(offsets).all()
    np.testing.assert_array_equal(offsets[10:15], np.broadcast_to(offsets[9], (5, 3)))
    image = np.stack([rooted[..., 0], -rooted[..., 2]], axis=-1) * 300.0  # a front view, y down
    flat_image = ground(image)
    # the image's planted feet hold still, so the pelvis drops (y grows) as the squat goes down
    pelvis_y = flat_image[:, HIPS, 1].mean(axis=1)
    world_drop = world[:, HIPS, 2].mean(axis=1)
    assert np.corrcoef(np.nan_to_num(pelvis_y[15:]), world_drop[15:])[0, 1] < -0.99


def _tilted(keypoints: np.ndarray, rise_deg: float) -> np.ndarray:
    """`keypoints` turned about the y axis so that ground ahead (+x) rises `rise_deg`."""
    angle = np.radians(rise_deg)
    rotation = np.array([[np.cos(angle), 0.0, -np.sin(angle)], [0.0, 1.0, 0.0], [np.sin(angle), 0.0, np.cos(angle)]])
    return keypoints @ rotation.T


@pytest.mark.parametrize("rise_deg", [-10.0, 4.0, 8.0])
def test_a_walk_over_a_tilted_floor_is_read_and_levelled(rise_deg):
    walk = _walk(n_frames=160)
    placed, foot = footfalls(walk, 30.0, leg=0.85)
    assert foot.tolist() == [0, 0, 1, 1]  # the four stances, each foot's in turn
    np.testing.assert_allclose(np.diff(placed[:, 0])[[0, 2]], [1.2, 1.2], atol=1e-9)  # two steps of 0.6 m apart
    level = floor_rise(walk, 30.0)
    assert level is not None and level[0] == pytest.approx(0.0, abs=1e-6)
    tilted = _tilted(walk, rise_deg)
    rise, direction, centre = floor_rise(tilted, 30.0)
    assert rise * np.sign(direction[0]) == pytest.approx(rise_deg, abs=0.05)
    back = levelled(tilted, rise, direction, centre)
    assert floor_rise(back, 30.0)[0] == pytest.approx(0.0, abs=0.05)
    # levelled is the walk itself up to a rigid shift: the body's own shape and motion are kept
    shift = back - walk
    np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0], shift.shape), atol=1e-3)


def test_no_floor_is_read_where_nothing_travels_or_both_feet_stand_together():
    squat = squat_3d(90, 30.0).keypoints.astype(np.float64)
    assert floor_rise(_tilted(squat, 8.0), 30.0) is None  # in place: nothing travels
    # a drop jump's box and landing: both feet together at each place, 30 cm apart in height
    box = np.repeat(squat[:1], 60, axis=0)
    landing = box.copy()
    landing[..., 0] += 1.0
    landing[..., 2] -= 0.3
    jump = np.concatenate([box, landing])
    assert floor_rise(jump, 30.0) is None
    assert floor_rise(np.full((40, 20, 3), np.nan), 30.0) is None


def test_the_predictor_levels_a_tilted_walk_but_not_a_rebuilt_root_relative_one():
    """A root-relative walk's rebuilt footfalls carry the rebuild's own drift in height: no floor is read there."""
    from valgusml.predictor.sanity import check_input
    from valgusml.sequence import KeypointSequence

    tilted = _tilted(_walk(n_frames=160), 8.0)
    world, world_notes = check_input(KeypointSequence(tilted.astype(np.float32), "canonical", 30.0))
    assert [n for n in world_notes if n.startswith("a tilted floor: the footfalls rise 8.0 deg")]
    assert floor_rise(world.keypoints, 30.0)[0] == pytest.approx(0.0, abs=0.05)
    _, rooted_notes = check_input(KeypointSequence(_rooted(tilted).astype(np.float32), "canonical", 30.0))
    assert any(n.startswith("root-relative keypoints") for n in rooted_notes)
    assert not any("a tilted floor" in n for n in rooted_notes)


def _squat_with_the_right_foot(lift_m: float) -> np.ndarray:
    """The 3D squat whose right foot slides 25 cm forward early on and stays there, `lift_m` above the floor."""
    world = squat_3d(90, 30.0).keypoints.astype(np.float64)
    moved = np.clip((np.arange(90) - 10) / 15.0, 0.0, 1.0)[:, None]
    world[:, RIGHT_FOOT, 1] -= 0.25 * moved
    world[:, RIGHT_FOOT, 2] += lift_m * moved
    return world


def test_a_rebuilt_recording_is_single_leg_only_where_the_free_foot_is_held_up():
    """The rebuild holds the lower foot still, so one foot staying put is its own doing: read alone, it made
    every rebuilt motion whose other foot moved a single-leg task (real drop jumps among them)."""
    on_the_floor = ground(_rooted(_squat_with_the_right_foot(0.0)))
    assert infer_task(on_the_floor, 30.0) == "single_leg_squat_left"  # the clue the rebuild fakes
    assert not rebuilt_task(on_the_floor, 30.0).startswith("single_leg")
    held_up = ground(_rooted(_squat_with_the_right_foot(0.15)))
    assert rebuilt_task(held_up, 30.0) == "single_leg_squat_left"
    assert rebuilt_task(ground(_rooted(squat_3d(90, 30.0).keypoints.astype(np.float64))), 30.0) == "bilateral_squat"


def test_the_predictor_names_the_task_it_read_from_rebuilt_motion_and_keeps_a_given_one():
    from valgusml.predictor.sanity import check_input
    from valgusml.sequence import KeypointSequence

    rooted = _rooted(_squat_with_the_right_foot(0.0)).astype(np.float32)
    read, notes = check_input(KeypointSequence(rooted, "canonical", 30.0))
    assert read.task and not read.task.startswith("single_leg")
    assert any(n.startswith(f"no task given: read from the rebuilt motion as {read.task}") for n in notes)
    named, notes = check_input(KeypointSequence(rooted, "canonical", 30.0, task="drop_vertical_jump"))
    assert named.task == "drop_vertical_jump" and not any(n.startswith("no task given") for n in notes)
