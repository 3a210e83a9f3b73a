"""What an integrator passes the predictor as plain arrays: normalised image coordinates lose the image size the
importers keep in `meta`, and every frontal angle of a portrait or landscape frame is stretched; that is said."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml.errors import ConfigError
from valgusml.io.samples import IMAGE_HEIGHT, IMAGE_WIDTH, squat_2d

NORMALISED = "look like normalised image coordinates"


def test_normalised_arrays_without_the_image_size_read_as_their_pixels_with_a_warning(predictor):
    """MediaPipe's landmarks as its Python API gives them (x / width, y / height) passed as an array: the portrait
    frame's shape is read off the body, so the answer is the pixels' (read as given it was not), and said."""
    (seq,) = squat_2d("mediapipe33", n_frames=60)
    fractions = seq.keypoints / np.array([IMAGE_WIDTH, IMAGE_HEIGHT], dtype=np.float32)
    as_array = predictor.predict(fractions, skeleton="mediapipe33", fps=30.0, confidence=seq.confidence)
    assert any(NORMALISED in w for w in as_array.warnings)
    assert any("without the image size: read as a 9:16 portrait frame" in w for w in as_array.warnings)
    in_pixels = predictor.predict(seq)
    for limb in ("left", "right"):
        assert as_array.limbs[limb].valgus_probability == pytest.approx(in_pixels.limbs[limb].valgus_probability,
                                                                         abs=1e-4)
    assert as_array.measures["right"]["peak_fppa_deg"] == pytest.approx(in_pixels.measures["right"]["peak_fppa_deg"],
                                                                       abs=0.01)
    # ... not when the sequence says what they are (an importer's), nor for pixels
    declared = seq.replace(keypoints=fractions, meta={**seq.meta, "coordinates": "normalized"})
    assert not any(NORMALISED in w for w in predictor.predict(declared).warnings)
    assert not any(NORMALISED in w for w in predictor.predict(seq).warnings)
    assert not any(NORMALISED in w for w in predictor.predict(seq.keypoints, skeleton="mediapipe33", fps=30.0).warnings)


def test_the_normalised_sample_says_what_it_is_and_reads_as_its_pixels(predictor):
    """`io.samples.squat_2d(normalized=True)` kept the image size but not that its keypoints are fractions of it,
    so it was read as pixels of a 1x1 image (and, since the normalised warning, warned of)."""
    (normalised,) = squat_2d("mediapipe33", n_frames=60, normalized=True)
    (pixels,) = squat_2d("mediapipe33", n_frames=60)
    assert normalised.meta["coordinates"] == "normalized" and pixels.meta["coordinates"] == "pixel"
    a, b = predictor.predict(normalised), predictor.predict(pixels)
    assert a.valgus_probability == pytest.approx(b.valgus_probability, abs=1e-5)
    assert not any(NORMALISED in w for w in a.warnings)


@pytest.mark.parametrize("threads", [0, -1, 2.5, "x", True])
def test_load_refuses_a_thread_count_that_is_not_one_or_more(exported, threads):
    from valgusml import Predictor

    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        Predictor.load(exported, threads=threads)
