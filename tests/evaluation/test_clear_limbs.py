"""Presence ranked over the limbs the rule calls clear of its threshold: the margins come from what the labelling
recorded (the generator's `measured`, the presence rule's `rule`), the metric is the AUROC of that subset in the
point estimate and in every bootstrap replicate, and a set that records no angle has no such figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from valgusml.evaluation.bootstrap import athlete_weights, bootstrap_replicates
from valgusml.evaluation.metrics import compute_metrics
from valgusml.evaluation.transfer.other_data import other_data_rows
from valgusml.evaluation.transfer.table import transfer_table
from valgusml.labels import FPPA_SEM_DEG
from valgusml.scoring.arrays import LabelArrays, ScoreArrays, rule_margin_deg
from valgusml.sequence import KeypointSequence


def _sequence(i: int, valgus: tuple[bool, bool], meta: dict, task: str = "walking") -> KeypointSequence:
    rng = np.random.default_rng(i)
    labels = {limb: {"valgus": v, "mechanism": "hip_weakness" if v else "none", "severity_deg": 5.0}
              for limb, v in zip(("left", "right"), valgus, strict=True)}
    return KeypointSequence(keypoints=rng.normal(size=(40, 17, 2)).astype("float32"), skeleton="coco17", fps=30.0,
                            id=f"s{i}", athlete_id=f"a{i // 2}", task=task, labels=labels, meta=meta)


def test_margins_are_read_from_the_generators_measures_and_the_presence_rules():
    generator = {"measured": {"dynamic_fppa_deg": [7.5, 2.0], "loaded": [True, False], "threshold_deg": 5.0}}
    assert rule_margin_deg(_sequence(0, (True, False), generator)).tolist() == [2.5, -np.inf]
    rule = {"sex": "male", "rule": {limb: {"dynamic_fppa_deg": fppa, "loaded": fppa is not None,
                                           "threshold_deg": {"female": 5.0, "male": 4.0}}
                                    for limb, fppa in (("left", 9.0), ("right", None))}}
    assert rule_margin_deg(_sequence(1, (True, False), rule)).tolist() == [5.0, -np.inf]
    # sex unknown: the higher threshold, the one `rule_limb_labels` calls at
    del rule["sex"]
    assert rule_margin_deg(_sequence(1, (True, False), rule))[0] == 4.0
    # labels from a CSV record no angle; a hand-edited record that is not one value per limb is read as none
    assert np.isnan(rule_margin_deg(_sequence(2, (True, False), {}))).all()
    for broken in ({"dynamic_fppa_deg": [7.5], "threshold_deg": 5.0},
                   {"dynamic_fppa_deg": "7.5", "threshold_deg": 5.0},
                   {"dynamic_fppa_deg": [7.5, None], "threshold_deg": "five"}):
        assert np.isnan(rule_margin_deg(_sequence(3, (True, False), {"measured": broken}))).all(), broken
    # a rule record without one of the limbs, or with a threshold that is not one per sex
    bad_threshold = {limb: {"dynamic_fppa_deg": 7.0, "threshold_deg": 5.0} for limb in ("left", "right")}
    assert np.isnan(rule_margin_deg(_sequence(3, (True, False), {"rule": bad_threshold}))).all()
    assert np.isnan(rule_margin_deg(_sequence(3, (True, False), {"rule": {"left": {"dynamic_fppa_deg": 7.0}}}))).all()
    labels = LabelArrays.from_sequences([_sequence(0, (True, False), generator), _sequence(2, (True, False), {})])
    # a limb never loaded is clearly none; unknown margins are never clear
    assert labels.clear_of_threshold().tolist() == [[False, True], [False, False]]
    assert labels.clear_share() == 0.25
    assert LabelArrays.from_sequences([_sequence(2, (True, False), {})]).rule_margin_deg is None


def _scored(n: int = 60, seed: int = 0) -> tuple[LabelArrays, ScoreArrays]:
    """Limbs near the threshold are scored at random, limbs clear of it well: the clear AUROC must be higher."""
    rng = np.random.default_rng(seed)
    margin = rng.uniform(-10, 10, (n, 2))
    valgus = (margin > 0).astype(int)
    near = np.abs(margin) < FPPA_SEM_DEG
    prob = np.where(near, rng.random((n, 2)), np.clip(0.5 + margin / 25 + rng.normal(0, 0.1, (n, 2)), 0, 1))
    labels = LabelArrays(valgus, np.where(valgus == 1, 1, 0), np.full((n, 2), np.nan),
                         np.array([f"a{i // 3}" for i in range(n)]), np.array(["walking"] * n),
                         np.arange(n).astype(str), margin)
    return labels, ScoreArrays(prob, rng.random((n, 2, 5)), np.full((n, 2), np.nan))


def test_the_clear_auroc_is_the_auroc_of_the_clear_limbs_in_the_point_and_every_replicate():
    labels, scores = _scored()
    clear = np.abs(labels.rule_margin_deg) >= FPPA_SEM_DEG
    point = compute_metrics(labels, scores, 0.5)
    expected = roc_auc_score(labels.valgus[clear], scores.valgus_probability[clear])
    assert point["valgus_auroc_clear"] == pytest.approx(expected)
    assert point["valgus_auroc_clear"] > point["valgus_auroc"]
    assert point["valgus_clear_share"] == pytest.approx(clear.mean())
    weights = athlete_weights(labels.athlete_id, 4, seed=1)
    reps = bootstrap_replicates(labels, scores, 0.5, np.vstack([np.ones(len(labels)), weights]))
    assert reps["valgus_auroc_clear"][0] == pytest.approx(expected)
    for b in range(4):
        index = np.repeat(np.arange(len(labels)), weights[b].astype(int))
        assert reps["valgus_auroc_clear"][b + 1] == pytest.approx(
            compute_metrics(labels.take(index), scores.take(index), 0.5)["valgus_auroc_clear"])


def test_a_set_without_the_rules_angle_has_no_clear_figure_and_the_table_leaves_it_out():
    labels, scores = _scored()
    unknown = LabelArrays(**{**labels.__dict__, "rule_margin_deg": None})
    assert np.isnan(compute_metrics(unknown, scores, 0.5)["valgus_auroc_clear"])
    assert np.isnan(bootstrap_replicates(unknown, scores, 0.5, np.ones((2, len(labels))))["valgus_auroc_clear"]).all()

    class Fixed:
        def __init__(self, scores):
            self.scores = scores

        def predict(self, sequences):
            return self.scores

    generator = [_sequence(i, (i % 2 == 0, False),
                           {"measured": {"dynamic_fppa_deg": [9.0 if i % 2 == 0 else 0.5, 0.0],
                                         "loaded": [True, True], "threshold_deg": 5.0}}) for i in range(8)]
    csv = [_sequence(i, (i % 2 == 0, False), {}) for i in range(8)]
    prob = np.array([[0.9 if i % 2 == 0 else 0.2, 0.1] for i in range(8)])
    fixed = Fixed(ScoreArrays(prob, np.full((8, 2, 5), 0.2), np.full((8, 2), np.nan)))
    rows = other_data_rows({"generator": generator, "csv": csv}, {"model": fixed}, {"model": 0.5}, n_boot=20)
    by_set = rows.set_index("dataset")
    assert by_set.loc["generator", "valgus_auroc_clear"] == 1.0 and by_set.loc["generator", "clear_share"] == 1.0
    assert np.isnan(by_set.loc["csv", "valgus_auroc_clear"]) and np.isnan(by_set.loc["csv", "clear_share"])
    table = transfer_table({"model": {"valgus_auroc": 0.9, "mechanism_macro_f1": 0.5, "valgus_auroc_clear": 0.95}},
                           other_data=rows)
    assert table.loc[0, "generator: AUROC, limbs clear of the threshold"] == 1.0
    assert table.loc[0, "in-dist AUROC, limbs clear of the threshold"] == 0.95
    assert "csv: AUROC, limbs clear of the threshold" not in table.columns
    assert "csv: AUROC" in table.columns


TOE_IN_WALK = (Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "opencap_validation_subject4"
               / "walkingTI1.trc")


@pytest.mark.realdata
@pytest.mark.skipif(not TOE_IN_WALK.is_file(), reason="../shared/realdata is absent")
def test_the_real_toe_in_walk_labelled_by_the_rule_is_valgus_within_the_angles_error():
    """Subject 4's toe-in walk, the real-motion suite's largest group of misses: `convert --label-by-rule`
    labels both knees valgus, 1-2 deg past the gait threshold, so neither is clear of it."""
    import valgusml
    from valgusml.data.convert import label_by_rule

    seq = label_by_rule(valgusml.io.read(TOE_IN_WALK), TOE_IN_WALK, sex=None)
    labels = LabelArrays.from_sequences([seq])
    assert labels.valgus.tolist() == [[1, 1]]
    assert labels.rule_margin_deg[0] == pytest.approx([1.2, 2.0], abs=0.1)
    assert not labels.clear_of_threshold().any()
