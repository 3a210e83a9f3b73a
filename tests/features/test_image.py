"""Normalised image coordinates in units of one length (`features.image`): the frame's shape read off the body."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml.errors import InputError
from valgusml.features import measures
from valgusml.features.image import equal_axis_keypoints, frontal_radius, image_aspect
from valgusml.io.samples import project, squat_2d, squat_points
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS, canonical_index

FEET = [canonical_index(f"{side}_{part}") for side in ("left", "right") for part in ("heel", "big_toe", "small_toe")]
SHAPES = {"16:9": (1920.0, 1080.0), "9:16": (1080.0, 1920.0), "square": (1500.0, 1500.0)}


def squat_seen_from(yaw_deg: float) -> np.ndarray:
    """`(T, 20, 2)` pixels of the sample squat turned by `yaw_deg` about the vertical through its hips."""
    points = squat_points(60)
    world = np.stack([points[j] for j in CANONICAL_JOINTS], axis=1)
    centre = world[:, [canonical_index("left_hip"), canonical_index("right_hip")]].mean(axis=(0, 1))
    a = np.radians(yaw_deg)
    turn = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return project((world - centre) @ turn.T + centre)


@pytest.mark.parametrize("yaw_deg", [0.0, 45.0, 90.0, 160.0, 180.0])
def test_the_frontal_radius_of_a_body_in_pixels_is_about_one_from_any_view(yaw_deg):
    assert 0.8 < frontal_radius(squat_seen_from(yaw_deg)) < 1.2


@pytest.mark.parametrize("yaw_deg", [0.0, 30.0, 160.0, 180.0])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_frame_shape_is_read_off_the_body(yaw_deg, shape):
    width, height = SHAPES[shape]
    normalised = squat_seen_from(yaw_deg) / np.array([width, height])
    assert image_aspect(normalised) == pytest.approx(width / height)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_side_view_is_read_as_its_shape_or_left_square_never_stretched_the_wrong_way(shape):
    """From the side the legs reach along x too, so a stretch moves the body's proportions less: where no shape
    fits clearly better, the keypoints are left as they are (`SQUARE_MARGIN`)."""
    width, height = SHAPES[shape]
    assert image_aspect(squat_seen_from(90.0) / np.array([width, height])) in (pytest.approx(width / height), 1.0)


def test_a_body_whose_feet_are_unseen_gives_no_shape():
    pixels = squat_seen_from(0.0)
    pixels[:, FEET] = np.nan
    assert np.isnan(frontal_radius(pixels))
    assert image_aspect(pixels / 1000.0) is None


def test_equal_axis_keypoints_scales_by_the_size_given_else_by_the_shape_read():
    pixels = squat_seen_from(20.0).astype(np.float32)
    normalised = (pixels / np.array([1080.0, 1920.0])).astype(np.float32)
    seq = KeypointSequence(normalised, "canonical", 30.0, meta={"coordinates": "normalized"})
    sized = seq.replace(meta={**seq.meta, "image_width": 1080, "image_height": 1920})
    scaled, note = equal_axis_keypoints(sized)
    assert note is None
    np.testing.assert_allclose(scaled, pixels, rtol=1e-5)
    read, note = equal_axis_keypoints(seq)
    assert note.startswith("normalised image coordinates without the image size: read as a 9:16 portrait frame")
    np.testing.assert_allclose(read * 1920.0, pixels, rtol=1e-5)  # pixels up to one scale
    for as_is in (KeypointSequence(pixels, "canonical", 30.0), sized.replace(meta={"coordinates": "pixel"})):
        assert equal_axis_keypoints(as_is)[0] is as_is.keypoints
    with pytest.raises(InputError, match="recording x: meta image_width x image_height is 0 x 1920"):
        equal_axis_keypoints(sized.replace(meta={**sized.meta, "image_width": 0}), "recording x: ")


def test_summary_measures_of_normalised_keypoints_are_those_of_their_pixels():
    """`measures` (and so `Prediction.measures` and the features baselines) read normalised keypoints as the
    model does: the shipped MediaPipe squat, fractions of its 1080 x 1920 frame, peaked at 37 deg of right FPPA
    against 21 deg in pixels."""
    (normalised,) = squat_2d("mediapipe33", n_frames=60, normalized=True)
    (pixels,) = squat_2d("mediapipe33", n_frames=60)
    for limb in ("left", "right"):
        for name, value in measures(pixels)[limb].items():
            got = measures(normalised)[limb][name]
            assert (got is None) == (value is None), name
            if value is not None:
                assert got == pytest.approx(value, rel=1e-3, abs=1e-3), (limb, name)
