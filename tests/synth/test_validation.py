"""The generator's validation report renders on a tiny generated set, and its statistics are right."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from valgusml.data import open_dataset, write_dataset
from valgusml.synth import generate_sequences, load_preset
from valgusml.synth.validation import REPORTED, auroc, main, signature_checks, summary_table, write_report


@pytest.fixture(scope="module")
def tiny_sequences():
    cfg = load_preset("realistic", n_athletes=4, seed=3)
    return list(generate_sequences(cfg, range(4)))


def test_report_renders_on_a_tiny_generated_set(tiny_sequences, tmp_path):
    path = write_report(tiny_sequences, tmp_path / "report")
    assert path.name == "validation.md" and path.exists()
    text = path.read_text()
    assert "## Mechanism signatures vs `none`" in text and "## Labels vs the FPPA" in text
    for picture in ("fppa_by_task.png", "measures_by_class.png", "stick_figures.png"):
        data = (path.parent / picture).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000
    with (path.parent / "limb_measures.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and {"athlete_id", "task", "class", "peak_fppa_deg", "pelvic_drop_deg"} <= set(rows[0])
    # every labelled sequence contributes at least its stance limb
    assert len({r["id"] for r in rows}) == sum(s.labels is not None for s in tiny_sequences)
    families = {r["task"].replace("_left", "").replace("_right", "") for r in rows}
    assert any(f"## {family}" in text for family in families)


def test_cli_reads_an_existing_dataset(tiny_sequences, tmp_path):
    write_dataset(tmp_path / "ds", tiny_sequences[:8], shard_size=4)
    assert len(open_dataset(tmp_path / "ds")) == 8
    path = main(["--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "out")])
    assert path.exists() and "8 sequences" in path.read_text()


def test_auroc_matches_the_rank_definition():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert auroc(np.array([1.0, 1.0]), np.array([0, 1])) == pytest.approx(0.5)  # ties count half
    assert math.isnan(auroc(np.array([1.0, 2.0]), np.array([1, 1])))


def _row(cls, family, **values):
    base = {"family": family, "class": cls, "valgus": cls != "none", "label_severity_deg": 10.0}
    return base | {column: values.get(column, math.nan) for _, column, _, _ in REPORTED}


def test_flags_and_signature_verdicts():
    rng = np.random.default_rng(0)
    rows = [
        _row("none", "single_leg_squat", peak_fppa_deg=8 + rng.normal(), pelvic_drop_deg=3 + rng.normal())
        for _ in range(20)
    ]
    rows += [
        _row(
            "hip_weakness",
            "single_leg_squat",
            peak_fppa_deg=30 + rng.normal(),
            pelvic_drop_deg=1 + rng.normal(),
        )
        for _ in range(20)
    ]
    table = {(e["class"], e["column"]): e for e in summary_table(rows)}
    assert table[("none", "peak_fppa_deg")]["flag"] == "ok"
    assert table[("hip_weakness", "peak_fppa_deg")]["flag"] == "OUT"  # 30° is above 16.8±5.4
    assert table[("hip_weakness", "pelvic_drop_deg")]["flag"] == "OUT"  # 1° is below the 6–12° design range
    checks = {(c["mechanism"], c["measure"]): c for c in signature_checks(rows)}
    assert checks[("hip_weakness", "pelvic_drop_deg")]["verdict"] == "WRONG"  # less drop than none
    assert checks[("pronation", "foot_roll_in_mm")]["verdict"] == "n/a"  # no such limbs


def test_transfer_checks_on_generated_pairs(tmp_path):
    from valgusml.synth import generate_with_analysis
    from valgusml.synth.validation.transfer import cramers_v

    cfg = load_preset("realistic", n_athletes=6, seed=2, **{"tasks.trials_per_athlete": 3})
    path = write_report(list(generate_with_analysis(cfg, range(6))), tmp_path / "r")
    text = path.read_text()
    assert "## Signature effect sizes after camera and estimator" in text and "literature d" in text
    assert "## Independence of hard negatives" in text and "hard negatives come from the analysis rows." in text.lower()
    assert "## Peak FPPA error by estimator family and view" in text
    for name in ("effect_sizes.csv", "fppa_error.csv", "independence.csv"):
        assert (path.parent / name).stat().st_size > 0
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, 4000).tolist(), rng.integers(0, 4, 4000).tolist()
    assert cramers_v(a, b) < 0.03 and cramers_v(a, a) == pytest.approx(1.0, abs=1e-3)
