"""The HTML report renders: one self-contained file naming every plot, with the images embedded."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import numpy as np
import pytest

from valgusml.evaluation.baselines import FeatureModel, FPPARule
from valgusml.evaluation.report import REPORT_FILE, write_report
from valgusml.evaluation.robustness import (
    DEFAULT_FACTORS,
    athlete_index,
    factors_from_config,
    robustness_table,
)
from valgusml.evaluation.runner import evaluate_scorers

from .conftest import make_sequences


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.captions, self.tables, self.ids, self._in_caption = [], [], 0, set(), False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs)
        elif tag == "figcaption":
            self._in_caption = True
            self.captions.append("")
        elif tag == "table":
            self.tables += 1

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False

    def handle_data(self, data):
        if self._in_caption:
            self.captions[-1] += data


@pytest.fixture(scope="module")
def evaluation(tiny_sequences):
    train, val, test = tiny_sequences[:18], tiny_sequences[18:], make_sequences(6, 2, seed=9)
    scorers = {"fppa_rule": FPPARule(), "features_logreg": FeatureModel("logreg")}
    result = evaluate_scorers(scorers, train, val, test, n_boot=100, info={"dataset": "tiny", "run": "r1"})
    conditions = [
        ("noise_sd", level, make_sequences(4, 2, seed=20 + k)) for k, level in enumerate(("low", "high"))
    ]
    robustness = robustness_table(
        {n: r.scorer for n, r in result.results.items()},
        {n: r.threshold for n, r in result.results.items()},
        conditions,
        n_boot=50,
    )
    return result, robustness


def test_comparison_table_has_cis_and_costs(evaluation):
    result, _ = evaluation
    table = result.comparison_table()
    assert list(table["scorer"]) == ["fppa_rule", "features_logreg"]
    assert all("[" in v for v in table["valgus_auroc"])  # value [lo, hi]
    assert (table["fit_s"] >= 0).all() and (table["predict_ms_per_sequence"] > 0).all()
    values = result.comparison_table(formatted=False)
    assert (values["valgus_auroc_lo"] <= values["valgus_auroc"]).all()


def test_each_later_scorer_is_compared_with_the_first_on_the_same_athletes(evaluation):
    """The held-out table gives each baseline's difference from the first scorer's metrics, exact at its point,
    with the CI of replicates that draw the same athletes for both."""
    result, _ = evaluation
    first, later = result.results["fppa_rule"], result.results["features_logreg"]
    assert first.minus_first is None
    for metric in ("valgus_auroc", "mechanism_macro_f1", "severity_mae_deg"):
        difference = later.minus_first[metric]
        assert difference.value == pytest.approx(later.metrics[metric] - first.metrics[metric])
        assert difference.lo <= difference.value <= difference.hi
    table = result.comparison_table().set_index("scorer")
    column = "valgus_auroc - fppa_rule's [paired CI]"
    assert table.loc["fppa_rule", column] == "" and table.loc["features_logreg", column].startswith(("+", "-"))
    values = result.comparison_table(formatted=False).set_index("scorer")
    assert values.loc["features_logreg", "valgus_auroc_minus_first"] == pytest.approx(
        later.minus_first["valgus_auroc"].value)


def test_robustness_table_rows(evaluation):
    _, robustness = evaluation
    assert len(robustness) == 4  # 2 levels × 2 scorers
    assert set(robustness["level"]) == {"low", "high"}
    assert {"valgus_auroc", "valgus_auroc_lo", "mechanism_macro_f1_hi"} <= set(robustness.columns)


def test_html_report_renders_and_embeds_every_plot(evaluation, tmp_path):
    result, robustness = evaluation
    path = write_report(result, tmp_path / "report", robustness=robustness, title="tiny evaluation")
    assert path.name == REPORT_FILE
    text = path.read_text()
    parser = _Collector()
    parser.feed(text)
    expected_plots = {
        "comparison", "roc", "pr", "reliability", "confusion_fppa_rule", "confusion_features_logreg",
        "per_athlete_fppa_rule", "robustness_noise_sd_valgus_auroc", "robustness_noise_sd_mechanism_macro_f1",
    }
    assert expected_plots <= parser.ids
    for name in expected_plots:
        assert any(f"{name}.png" in c for c in parser.captions), name
        assert (tmp_path / "report" / "plots" / f"{name}.png").is_file()
    assert len(parser.images) == len(expected_plots)
    for img in parser.images:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert img["alt"]
    assert "src=\"http" not in text and "<script" not in text  # self-contained
    assert {"provenance", "comparison", "robustness", "scorer-fppa_rule"} <= parser.ids
    assert parser.tables >= 10
    assert "tiny" in text and "r1" in text  # run and dataset ids
    summary = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(summary["scorers"]) == {"fppa_rule", "features_logreg"}
    assert (tmp_path / "report" / "comparison.csv").is_file()


def test_the_camera_height_levels_film_from_the_floor_looking_up_and_from_a_wall_mount_looking_down():
    from valgusml.evaluation.robustness import synthetic_condition_sets

    cameras = {level: [s.meta["camera"] for s in seqs] for _, level, seqs in synthetic_condition_sets(
        {"n_athletes": 3}, ["a000000", "a000001", "a000002"], {"camera_height_m": DEFAULT_FACTORS["camera_height_m"]},
        trials_per_athlete=2)}
    assert list(cameras) == ["floor", "overhead"]
    assert all(0.2 <= c["height_m"] <= 0.35 and c["pitch_deg"] < 0 for c in cameras["floor"])  # looking up
    assert all(2.6 <= c["height_m"] <= 3.2 and c["pitch_deg"] > 5 for c in cameras["overhead"])
    assert np.median([c["pitch_deg"] for c in cameras["overhead"]]) > 15  # training's cameras: 0.4-2.2 m


def test_robustness_factors():
    assert set(DEFAULT_FACTORS) == {"camera_view", "estimator_family", "noise_jitter_mm", "fps", "clip_s",
                                    "camera_height_m", "body_height_m", "skeleton", "dropped_frames", "valgus_ceiling_deg",
                                    "observation_dims", "gait_step_width", "pelvic_drop_share"}
    assert [lv for lv, _ in DEFAULT_FACTORS["camera_view"]] == ["front", "oblique", "side", "rear"]
    # every level is a valid generator config: one factor moved, the rest of the preset kept
    from valgusml.synth import load_preset

    for factor, levels in DEFAULT_FACTORS.items():
        for level, overrides in levels:
            cfg = load_preset("realistic", **overrides)
            if factor == "camera_view":
                assert {k for k, w in cfg.camera.views.items() if w > 0} == {level}
            if factor == "estimator_family":
                assert {k for k, w in cfg.noise.families.items() if w > 0} == {level}
    assert [lv for lv, _ in DEFAULT_FACTORS["skeleton"]] == ["halpe26", "mediapipe33", "body25", "coco17"]
    assert [load_preset("realistic", **o).observation.dims for _, o in DEFAULT_FACTORS["observation_dims"]] == [2, 3]
    gait = [load_preset("realistic", **o) for _, o in DEFAULT_FACTORS["gait_step_width"]]
    assert all({k for k, w in cfg.tasks.probabilities.items() if w > 0} == {"walking", "running"} for cfg in gait)
    assert [cfg.athletes.gait_step_width_ratio for cfg in gait] == [(0.35, 1.0), (0.05, 0.25), (0.9, 1.1)]
    assert [load_preset("realistic", **o).hard_negatives.pelvic_drop for _, o in DEFAULT_FACTORS["pelvic_drop_share"]] == [0, 1]
    only = factors_from_config(None, ["skeleton"])
    assert list(only) == ["skeleton"]
    custom = factors_from_config({"yaw": [{"level": "0", "overrides": {"camera": {"yaw_deg": [0, 0]}}}]})
    assert custom == {"yaw": [("0", {"camera": {"yaw_deg": [0, 0]}})]}
    assert athlete_index("a000042") == 42


def test_report_says_how_many_replicates_each_interval_rests_on(tiny_sequences, tmp_path):
    """Two held-out athletes, one of whom has no valgus limb: replicates drawing that athlete twice have one class
    and no AUROC, and are left out of its interval; the report says how many of the drawn replicates it kept."""
    train, val = tiny_sequences[:18], tiny_sequences[18:]
    test = [s for s in make_sequences(5, 2, seed=9) if s.athlete_id in ("a03", "a04")]  # a04: no deficit
    result = evaluate_scorers({"fppa_rule": FPPARule()}, train, val, test, n_boot=200)
    auroc = result.results["fppa_rule"].estimates["valgus_auroc"]
    assert 0 < auroc.n_valid < 200
    text = write_report(result, tmp_path / "report").read_text()
    assert "bootstrap replicates kept" in text and f"{auroc.n_valid}/200" in text
