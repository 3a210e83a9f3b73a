"""Real recordings in ../shared/realdata (OpenCap lab mocap, Pose2Sim demo); skipped when the folder is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import valgusml.io as vio
from valgusml.features.geometry import fppa_deg

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
FILES = sorted(REALDATA.glob("*/*.trc")) if REALDATA.is_dir() else []
pytestmark = [pytest.mark.realdata, pytest.mark.filterwarnings("ignore:All-NaN slice"), pytest.mark.skipif(not FILES, reason=f"{REALDATA} is absent")]


def _distance(seq, a, b):
    return np.nanmedian(np.linalg.norm(seq.joint(a) - seq.joint(b), axis=1))


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_real_trc_reads_with_right_sides_units_and_floor(path):
    seq = vio.read(path)
    assert seq.skeleton == "canonical" and seq.dims == 3
    assert seq.fps == (60.0 if "pose2sim" in str(path) else 100.0)
    assert seq.meta["units_in_file"] == "m" and seq.meta["up_axis_in_file"] == "+y"
    assert 0.15 <= _distance(seq, "left_hip", "right_hip") <= 0.40
    leg = _distance(seq, "left_hip", "left_knee") + _distance(seq, "left_knee", "left_ankle")
    assert 0.65 <= leg <= 1.05
    # left really is the subject's left: up × forward (toes ahead of heels) points from the right hip to the left
    forward = np.nanmean(seq.joint("left_big_toe") - seq.joint("left_heel"), axis=0)
    forward[2] = 0.0
    left_dir = np.cross([0.0, 0.0, 1.0], forward / np.linalg.norm(forward))
    assert np.nanmedian((seq.joint("left_hip") - seq.joint("right_hip")) @ left_dir) > 0.1
    # feet on the floor, head well above it
    lowest = np.nanmin(seq.keypoints[:, [seq.joints.index(j) for j in ("left_heel", "right_heel", "left_big_toe", "right_big_toe")], 2], axis=1)
    assert abs(np.nanpercentile(lowest, 1)) < 0.01
    assert np.nanmedian(seq.joint("neck")[:, 2]) > 1.1
    # knee centres lie between the hips' width, not on the lateral skin markers
    assert _distance(seq, "left_knee", "right_knee") < 0.45


def test_opencap_drop_jump_right_knee_valgus_matches_the_readme():
    path = REALDATA / "opencap_validation_subject4" / "DJ1.trc"
    if not path.is_file():
        pytest.skip("DJ1.trc absent")
    seq = vio.read(path)
    assert seq.meta["medial_shift_m"] == {"left_knee": 0.05, "right_knee": 0.05, "left_ankle": 0.035, "right_ankle": 0.035}
    peak_left, peak_right = np.nanmax(fppa_deg(seq.keypoints), axis=0)
    assert 12.0 <= peak_right <= 22.0 and peak_left < peak_right  # realdata/README.md: roughly 15-20° at landing
