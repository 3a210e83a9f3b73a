"""Every skeleton layout is emitted as a valid sequence that maps back onto the canonical joints."""

from __future__ import annotations

import numpy as np
import pytest

from valgusml import SKELETONS, KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS
from valgusml.synth import generate_sequences, load_preset


@pytest.mark.parametrize("skeleton", sorted(SKELETONS))
@pytest.mark.parametrize("dims", [2, 3])
def test_every_layout_emits_valid_sequences(skeleton, dims):
    cfg = load_preset("realistic", n_athletes=1, skeleton=skeleton, dims=dims, **{"tasks.trials_per_athlete": 3})
    seqs = list(generate_sequences(cfg, [0]))
    assert len(seqs) == 3
    for seq in seqs:
        assert isinstance(seq, KeypointSequence)
        assert seq.skeleton == skeleton and seq.dims == dims
        assert seq.keypoints.shape[1] == SKELETONS[skeleton].n_joints
        assert 25 <= seq.fps <= 120 and 2.0 <= seq.duration_s <= 20.0
        assert seq.labels is not None and seq.athlete_id == "a000000"
        canon = seq.to_canonical()
        assert canon.keypoints.shape[1] == len(CANONICAL_JOINTS)
        present = (canon.confidence > 0).mean()
        assert present > (0.45 if skeleton in ("coco17", "openpose18", "h36m17") else 0.65)  # those have no feet
        if dims == 2:
            width, height = seq.meta["camera"]["width"], seq.meta["camera"]["height"]
            seen = np.isfinite(seq.keypoints).all(-1)
            x, y = seq.keypoints[seen][:, 0], seq.keypoints[seen][:, 1]
            assert ((x >= 0) & (x < width) & (y >= 0) & (y < height)).all()  # outside the image: lost (NaN)


@pytest.mark.parametrize("skeleton", ["halpe26", "body25", "mediapipe33", "coco17", "openpose18", "h36m17", "coco23"])
def test_clean_layouts_map_back_to_the_canonical_motion(skeleton):
    canonical = next(generate_sequences(load_preset("clean", n_athletes=1), [0]))
    other = next(generate_sequences(load_preset("clean", n_athletes=1, skeleton=skeleton), [0])).to_canonical()
    seen = other.confidence[0] > 0
    np.testing.assert_allclose(other.keypoints[:, seen], canonical.keypoints[:, seen], atol=1e-5)
    assert seen[CANONICAL_JOINTS.index("left_knee")]


def test_noise_model_statistics():
    clean = next(generate_sequences(load_preset("realistic", n_athletes=1, dims=3, skeleton="canonical",
                                                 **{"noise.enabled": False}), [0]))
    noisy = next(generate_sequences(load_preset("realistic", n_athletes=1, dims=3, skeleton="canonical",
                                                **{"noise.dropout_fraction": 0.0, "noise.families": {"rtmpose": 1.0}}), [0]))
    error = np.linalg.norm(noisy.keypoints - clean.keypoints, axis=-1) * 1000.0  # mm
    knee = CANONICAL_JOINTS.index("left_knee")
    # Systematic 30-50 mm knee offset plus ~6 mm jitter.
    assert 20.0 < np.median(error[:, knee]) < 70.0
    heavy = next(generate_sequences(load_preset("realistic", n_athletes=1, **{"noise.dropout_fraction": 0.2}), [0]))
    assert (heavy.confidence < 0.3).mean() > 0.05
