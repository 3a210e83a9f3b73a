"""Real recordings (../shared/realdata: motion capture and triangulated video, 60-100 Hz TRC): the predictor
reads and answers every one of them without error. Skipped when the folder is absent."""

from __future__ import annotations

import json

import numpy as np
import pytest

from .conftest import REALDATA

FILES = sorted(REALDATA.glob("*/*.trc")) if REALDATA.is_dir() else []
pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not FILES, reason=f"no real recordings in {REALDATA}"),
]


def test_predicts_every_real_recording(predictor):
    from valgusml import io

    sequences = [io.read(path) for path in FILES]
    predictions = predictor.predict_batch(sequences)
    for path, seq, p in zip(FILES, sequences, predictions, strict=True):
        assert 0.0 <= p.valgus_probability <= 1.0, path
        assert all(np.isfinite(v) for v in p.mechanism_probabilities.values()), path
        assert any(w.startswith("resampled from") for w in p.warnings), (path, p.warnings)
        assert p.timeline, path
        for segment in p.timeline:  # reps, landings, stances found from the motion (windows where none)
            assert segment["kind"] in ("rep", "landing", "stance", "window"), path
            assert 0.0 <= segment["start_s"] < segment["end_s"] <= seq.duration_s + 0.1, path
        assert p.view["facing"] == "front", path  # 3D input is read in the subject's own frontal plane
        json.dumps(p.to_dict(), allow_nan=False)


def test_real_walks_seen_in_2d_say_their_collapse_may_be_read_low(predictor):
    # The warning a 2D gait prediction carries, on real motion rendered from the front and from behind with the
    # task not named: every walk (1.3-1.4 s, shorter than one window: read from the movement), no drop jump
    # or squat. The Pose2Sim balancing trial is read as gait as well (its free leg swings), and warned alike.
    from valgusml.evaluation.transfer.real_motion import render_views
    from valgusml.preprocess import GAIT_IN_2D_WARNING

    views = [v for v in render_views([REALDATA], yaws=(0.0, 180.0), seeds=(0,)) if v.family != "3d"]
    predictions = predictor.predict_batch([v.sequence.replace(task="") for v in views])
    warned = {(v.file, v.family): GAIT_IN_2D_WARNING in p.warnings for v, p in zip(views, predictions, strict=True)}
    walks = {key: flag for key, flag in warned.items() if "walking" in key[0]}
    set_tasks = {key: flag for key, flag in warned.items() if "DJ" in key[0] or "squats" in key[0]}
    assert len(walks) == 8 and all(walks.values()), walks
    # Each real walk is one stride (1.3-1.4 s), shorter than any walk the network learnt from, and says so.
    strides = {(v.file, v.family) for v, p in zip(views, predictions, strict=True)
               if any(w.startswith("one stride of gait (1.3 s)") or w.startswith("one stride of gait (1.4 s)")
                      for w in p.warnings)}
    assert {key for key in walks} <= strides, sorted(set(walks) - strides)
    assert len(set_tasks) == 20 and not any(set_tasks.values()), set_tasks
