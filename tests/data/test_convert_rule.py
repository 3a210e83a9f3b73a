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


def test_2d_keypoints_cannot_be_labelled_by_the_rule(tmp_path):
    sample = Path(__file__).resolve().parents[2] / "data" / "samples" / "squat_halpe26.json"
    with pytest.raises(InputError, match="3D joint centres"):
        convert([sample], tmp_path / "ds", label_by_rule=True)
