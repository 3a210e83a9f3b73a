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
