"""The report says which real recordings the real-motion suite read and which it skipped (and why, in the log's
words), and its per-limb presence figures and robustness plots carry the evaluation's athlete-bootstrap CIs."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

import valgusml
from valgusml.evaluation import plots
from valgusml.evaluation.baselines import FPPARule
from valgusml.evaluation.report import limb_presence_estimates, write_report
from valgusml.evaluation.runner import evaluate_scorers
from valgusml.evaluation.transfer.real_motion import recording_files_table, render_views
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS

from .conftest import make_sequences

STATIC_REASON = "a static trial (its name says so): no movement to score"


@pytest.fixture(scope="module")
def evaluation(tiny_sequences):
    train, val, test = tiny_sequences[:18], tiny_sequences[18:], make_sequences(6, 2, seed=9)
    return evaluate_scorers({"fppa_rule": FPPARule()}, train, val, test, n_boot=200, seed=3, level=0.9)


def _squat_3d(path) -> None:
    """A generated 3D squat (no estimator noise), written where the suite reads it: one recording to score."""
    from valgusml.synth import generate_sequences, generator_config

    cfg = generator_config("realistic", n_athletes=1, **{"observation.dims": 3, "noise.enabled": False,
                                                         "tasks.probabilities": {"bilateral_squat": 1.0}})
    valgusml.io.write(next(iter(generate_sequences(cfg, [0]))), path, "npz")


def _recordings(root) -> list:
    """person1: a static trial (by name), a 2D file and a squat in 3D; and a path that does not exist."""
    (root / "person1").mkdir()
    (root / "person1" / "static1.trc").write_text("")  # skipped by its name, never read
    flat = np.random.default_rng(0).normal(size=(30, len(CANONICAL_JOINTS), 2)).astype(np.float32)
    valgusml.io.write(KeypointSequence(flat, "canonical", 30.0, id="x"), root / "person1" / "squat_2d.npz", "npz")
    _squat_3d(root / "person1" / "squat1.npz")
    return [root / "person1", root / "typo"]


def test_the_suite_lists_every_file_it_read_or_skipped_with_the_logs_reason(tmp_path, caplog):
    files: list = []
    caplog.set_level(logging.INFO)
    views = render_views(_recordings(tmp_path), yaws=[0.0], seeds=[0], files=files)
    table = recording_files_table(files).set_index("file")
    assert {v.file for v in views} == {"person1/squat1.npz"}
    assert table.loc["person1/squat1.npz", ["person", "task", "status", "reason"]].tolist() == [
        "person1", "bilateral_squat", "read", ""]
    assert table.loc["person1/static1.trc", ["person", "status", "reason"]].tolist() == [
        "person1", "skipped", STATIC_REASON]
    assert table.loc["person1/squat_2d.npz", "task"] == "bilateral_squat"
    assert table.loc["person1/squat_2d.npz", "reason"].startswith("2D keypoints")
    assert table.loc[str(tmp_path / "typo"), "reason"] == "does not exist; nothing read from it"
    # the report's reason is the log's, word for word
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for file, reason in table["reason"].items():
        if reason and file.startswith("person1/"):
            assert f"{file.split('/')[1]} skipped: {reason}" in logged


def test_the_report_lists_the_real_recordings_and_why_each_skipped_one_was(evaluation, tmp_path):
    files = pd.DataFrame([
        {"file": "person1/DJ1.trc", "person": "person1", "task": "drop_vertical_jump", "status": "read",
         "reason": ""},
        {"file": "person1/static1.trc", "person": "person1", "task": "", "status": "skipped",
         "reason": STATIC_REASON},
    ])
    text = write_report(evaluation, tmp_path / "report", real_motion_files=files).read_text()
    section = text[text.index("id='real-motion-files'"):]
    assert "1 recording(s) of 1 person(s) read and scored; 1 skipped" in section
    static_row = section[section.index("person1/static1.trc"):].split("</tr>")[0]
    assert "skipped" in static_row and STATIC_REASON in static_row
    assert "drop_vertical_jump" in section
    assert pd.read_csv(tmp_path / "report" / "real_motion_files.csv")["file"].tolist() == files["file"].tolist()


def test_a_report_without_the_suite_has_no_files_section_nor_csv(evaluation, tmp_path):
    text = write_report(evaluation, tmp_path / "report").read_text()
    assert "real-motion-files" not in text and not (tmp_path / "report" / "real_motion_files.csv").exists()


def test_a_suite_that_found_nothing_says_so(evaluation, tmp_path):
    nothing = recording_files_table([])
    text = write_report(evaluation, tmp_path / "report", real_motion_files=nothing).read_text()
    assert "No recording was found under the suite&#x27;s paths" in text


def test_the_evaluation_hands_the_suites_files_to_the_report(tmp_path, tiny_sequences):
    """`run_transfer` returns what the suite read and skipped, also when it scored nothing (then the list is all
    the report can say of the real-motion suite)."""
    from omegaconf import OmegaConf

    from valgusml.evaluation.evaluate import run_transfer

    (tmp_path / "person1").mkdir()
    (tmp_path / "person1" / "static1.trc").write_text("")
    result = evaluate_scorers({"fppa_rule": FPPARule()}, tiny_sequences[:18], tiny_sequences[18:24],
                              tiny_sequences[24:], n_boot=10)
    cfg = OmegaConf.create({"transfer": {"real_motion": {"enabled": True, "paths": [str(tmp_path)]}},
                            "robustness": {"n_boot": 10}, "bootstrap": {"seed": 0}})
    files = run_transfer(cfg, result, None)
    assert result.real_motion is None
    assert files.to_dict("records") == [{"file": "person1/static1.trc", "person": "person1", "task": "",
                                         "status": "skipped", "reason": STATIC_REASON}]
    off = OmegaConf.create({"transfer": {"real_motion": {"enabled": False}}, "robustness": {"n_boot": 10},
                            "bootstrap": {"seed": 0}})
    assert run_transfer(off, result, None) is None


def test_per_limb_presence_has_the_evaluations_athlete_bootstrap_cis(evaluation, tmp_path):
    scorer = evaluation.results["fppa_rule"]
    estimates = limb_presence_estimates(evaluation, scorer)
    for limb in ("left", "right"):
        for metric in ("auroc", "f1", "sensitivity", "specificity"):
            est = estimates[limb][metric]
            assert est.value == scorer.metrics[f"valgus_{limb}_{metric}"]
            if est.n_valid:
                assert est.lo <= est.hi and est.n_valid <= 200
    assert estimates == limb_presence_estimates(evaluation, scorer)  # the evaluation's seed: the same CI each time
    # ... and its level: a wider one gives intervals that hold these
    wider = limb_presence_estimates(evaluation.__class__(evaluation.labels, evaluation.results,
                                                         {**evaluation.info, "ci_level": 0.99}), scorer)
    assert wider["left"]["sensitivity"].lo <= estimates["left"]["sensitivity"].lo
    assert wider["left"]["sensitivity"].hi >= estimates["left"]["sensitivity"].hi
    text = write_report(evaluation, tmp_path / "report").read_text()
    limbs = text[text.index("Presence per limb (with 90% athlete-bootstrap CIs)"):].split("</table>")[0]
    for limb in ("left", "right"):
        sensitivity = estimates[limb]["sensitivity"]
        assert f"[{sensitivity.lo:.3f}, {sensitivity.hi:.3f}]" in limbs


def _robustness_rows() -> pd.DataFrame:
    rows = []
    for scorer, shift in (("model", 0.0), ("fppa_rule", -0.2)):
        for level, value in (("front", 0.9), ("side", 0.7), ("rear", 0.85)):
            rows.append({"factor": "camera_view", "level": level, "scorer": scorer, "valgus_auroc": value + shift,
                         "valgus_auroc_lo": value + shift - 0.05, "valgus_auroc_hi": value + shift + 0.03})
    rows.append({"factor": "fps", "level": "30", "scorer": "model", "valgus_auroc": 0.8, "valgus_auroc_lo": 0.7,
                 "valgus_auroc_hi": 0.85})  # one level only, as a leave-out run has: a band would not show
    return pd.DataFrame(rows)


def _drawn_figure(monkeypatch, draw):
    """The matplotlib figure `draw()` saves (kept open to look at)."""
    kept = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: kept.append(fig) or save(fig, path))
    draw()
    return kept[0]


def _intervals(ax) -> list[tuple[float, float, float]]:
    """`(x, lo, hi)` of every vertical error bar on `ax`."""
    out = []
    for container in ax.containers:
        for collection in container.lines[2]:
            out += [(seg[0][0], min(seg[0][1], seg[1][1]), max(seg[0][1], seg[1][1])) for seg in collection.get_segments()]
    return out


def test_robustness_plots_draw_each_levels_interval_around_its_point(monkeypatch, tmp_path):
    table = _robustness_rows()
    fig = _drawn_figure(monkeypatch, lambda: plots.robustness_plot(table, "camera_view", "valgus_auroc",
                                                                   tmp_path / "r.png", "90%"))
    ax = fig.axes[0]
    bars = _intervals(ax)
    assert len(bars) == 6  # one per scorer and level
    points = [(x, y) for line in ax.lines if line.get_label() in ("model", "fppa_rule")
              for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True)]
    part = table[table["factor"] == "camera_view"]
    assert sorted((round(lo, 6), round(hi, 6)) for _, lo, hi in bars) == sorted(
        zip(part["valgus_auroc_lo"].round(6), part["valgus_auroc_hi"].round(6), strict=True))
    for x, y in points:  # each bar stands at its point's x and brackets it
        assert any(bx == pytest.approx(x) and lo <= y <= hi for bx, lo, hi in bars)
    assert "90% athlete-bootstrap CI" in ax.get_title()
    one_level = _drawn_figure(monkeypatch, lambda: plots.robustness_plot(table, "fps", "valgus_auroc",
                                                                         tmp_path / "f.png"))
    assert [(lo, hi) for _, lo, hi in _intervals(one_level.axes[0])] == [pytest.approx((0.7, 0.85))]


def test_the_reports_robustness_figures_draw_the_robustness_tables_cis(evaluation, tmp_path, monkeypatch):
    from valgusml.evaluation.robustness import robustness_table

    conditions = [("noise_sd", level, make_sequences(4, 2, seed=20 + k)) for k, level in enumerate(("low", "high"))]
    level = float(evaluation.info["ci_level"])  # as `valgusml evaluate` draws it: the evaluation's own level
    table = robustness_table({n: r.scorer for n, r in evaluation.results.items()},
                             {n: r.threshold for n, r in evaluation.results.items()}, conditions, n_boot=50,
                             ci_level=level)
    drawn = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append((path.stem, fig)) or save(fig, path))
    text = write_report(evaluation, tmp_path / "report", robustness=table).read_text()
    assert f"Robustness: valgus_auroc vs noise_sd; bars: each level&#x27;s {level:.0%} athlete-bootstrap CI" in text
    ax = dict(drawn)["robustness_noise_sd_valgus_auroc"].axes[0]
    assert sorted(round(hi, 9) for _, _, hi in _intervals(ax)) == sorted(table["valgus_auroc_hi"].round(9))


def test_robustness_intervals_are_drawn_at_the_evaluations_level(evaluation):
    from valgusml.evaluation.robustness import robustness_table

    conditions = [("noise_sd", "low", make_sequences(4, 2, seed=20))]
    scorers = {n: r.scorer for n, r in evaluation.results.items()}
    thresholds = {n: r.threshold for n, r in evaluation.results.items()}
    wide = robustness_table(scorers, thresholds, conditions, n_boot=200)
    narrow = robustness_table(scorers, thresholds, conditions, n_boot=200, ci_level=0.5)
    width = lambda t: (t["severity_mae_deg_hi"] - t["severity_mae_deg_lo"]).to_numpy()  # noqa: E731
    assert (width(narrow) < width(wide)).all()  # the same replicates, a narrower percentile interval
    assert narrow["severity_mae_deg"].tolist() == wide["severity_mae_deg"].tolist()
