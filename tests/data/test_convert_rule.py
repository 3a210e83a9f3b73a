"""`valgusml convert --label-by-rule`: real 3D motion labelled by the presence rule, mechanism unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

from valgusml.data import open_dataset
from valgusml.data.convert import convert, main
from valgusml.errors import InputError

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
DJ1 = REAL / "opencap_validation_subject4" / "DJ1.trc"


@pytest.mark.realdata
@pytest.mark.skipif(not DJ1.is_file(), reason="../shared/realdata is absent")
def test_real_drop_jump_is_labelled_by_its_landing(tmp_path):
    assert main([str(DJ1), "--label-by-rule", "--out", str(tmp_path / "ds")]) == 0
    seq = open_dataset(tmp_path / "ds")[0]
    assert seq.task == "drop_vertical_jump"  # from the file name
    assert seq.labels["right"]["valgus"] is False and seq.labels["right"]["mechanism"] == "none"
    rule = seq.meta["rule"]
    assert rule["right"]["push_off_dynamic_fppa_deg"] > 12.0  # measured, not the label
    assert seq.meta["labelled_by"] == "presence rule"
    assert rule["segment_length_jitter"] < 0.004 and not seq.meta.get("warnings")  # motion capture: no warning


def test_2d_keypoints_cannot_be_labelled_by_the_rule(tmp_path):
    sample = Path(__file__).resolve().parents[2] / "data" / "samples" / "squat_halpe26.json"
    with pytest.raises(InputError, match="3D joint centres"):
        convert([sample], tmp_path / "ds", label_by_rule=True)


def _write_squat(folder: Path, name: str, noise_m: float) -> Path:
    import numpy as np

    from valgusml.io import samples, trc

    seq = samples.squat_3d(n_frames=180)
    noise = np.random.default_rng(0).normal(0.0, noise_m, seq.keypoints.shape) if noise_m else 0.0
    path = folder / name
    trc.write(seq.replace(keypoints=(seq.keypoints + noise).astype(np.float32)), path)
    return path


def test_rule_labels_of_estimated_3d_carry_a_warning(tmp_path, capsys):
    """Marker-steady joint centres are labelled quietly; joint centres that jitter as an estimator's do (1 cm per
    joint and frame) are labelled too, with a warning naming the file and the jitter, counted in the summary."""
    from valgusml.features.rule import MEASURED_3D_MAX_JITTER

    steady = _write_squat(tmp_path, "squat_steady.trc", 0.0)
    jittery = _write_squat(tmp_path, "squat_estimated.trc", 0.01)
    header = convert([steady, jittery], tmp_path / "ds", label_by_rule=True)
    assert header["n_labelled"] == 2 and header["n_warnings"] == 1
    by_name = {Path(seq.meta["input"]).stem: seq for seq in open_dataset(tmp_path / "ds")}
    quiet, warned = by_name["squat_steady"], by_name["squat_estimated"]
    assert quiet.meta["rule"]["segment_length_jitter"] < 0.1 * MEASURED_3D_MAX_JITTER
    assert not quiet.meta.get("warnings")
    assert warned.meta["rule"]["segment_length_jitter"] > 3 * MEASURED_3D_MAX_JITTER
    (note,) = warned.meta["warnings"]
    assert "squat_estimated.trc" in note and "estimated 3D" in note
    assert f"{warned.meta['rule']['segment_length_jitter']:.1%}" in note
    assert warned.labels["left"]["valgus"] in (True, False)  # still labelled: the warning informs, it does not drop

    assert main([str(jittery), "--label-by-rule", "--out", str(tmp_path / "cli")]) == 0
    assert "estimated 3D labelled by the rule" in capsys.readouterr().out
