"""Clip structure and within-clip variation: reps, pauses and standing; overground gait; drop jumps scored on
the landing; hard negatives and time profiles drawn independently of the class."""

from __future__ import annotations

import numpy as np

from valgusml.labels import MECHANISMS
from valgusml.synth import generate_sequences, load_preset
from valgusml.synth.athletes import sample_athlete
from valgusml.synth.config import HARD_NEGATIVES
from valgusml.synth.generator import trials_of
from valgusml.synth.kinematics import J
from valgusml.synth.simulation import simulate

CLEAN = {"tasks.trials_per_athlete": 4}


def test_squat_clips_vary_in_reps_length_and_standing():
    cfg = load_preset("realistic", n_athletes=40, **{"tasks.probabilities": {"bilateral_squat": 1.0}, **CLEAN})
    trials = trials_of(cfg, range(40))
    reps = np.array([np.isfinite(t.reps["rep_start"]).sum() for t in trials])
    durations = np.array([t.n_frames / t.fps for t in trials])
    assert reps.min() == 1 and reps.max() == 5 and len(set(reps.tolist())) == 5
    assert durations.min() < 4.0 and durations.max() > 12.0 and durations.max() <= 20.0 + 1e-9
    descent_share = np.array([t.reps["rep_descent"][0] / (t.reps["rep_descent"][0] + t.reps["rep_ascent"][0]) for t in trials])
    assert descent_share.min() < 0.42 and descent_share.max() > 0.58  # descents and ascents at their own speeds
    starts = np.array([t.reps["rep_start"][0] for t in trials])
    assert starts.min() < 0.5 and starts.max() > 1.5  # standing before the first rep


def test_overground_gait_travels_with_planted_stance_feet():
    cfg = load_preset("clean", n_athletes=6, **{"tasks.probabilities": {"walking": 1.0}, "tasks.overground_probability": 1.0,
                                                 "tasks.trials_per_athlete": 1})
    trials = trials_of(cfg, range(6))
    for trial, sim in zip(trials, simulate(cfg, trials), strict=True):
        pelvis = sim.joints[:, J["mid_hip"], 1]
        assert pelvis[0] - pelvis[-1] > 0.5 * trial.params["duration"]  # walks forward (-y), >= 0.5 m/s
        toe = sim.joints[:, J["left_big_toe"]]
        down = toe[:, 2] < toe[:, 2].min() + 0.002
        runs = np.split(np.flatnonzero(down), np.flatnonzero(np.diff(np.flatnonzero(down)) > 1) + 1)
        longest = max(runs, key=len)
        assert np.ptp(toe[longest, 1]) < 0.05  # a stance foot stays put in the world


def test_drop_jump_label_scores_the_landing_only():
    cfg = load_preset("clean", n_athletes=16, **{"tasks.probabilities": {"drop_vertical_jump": 1.0},
                                                  "tasks.pushoff_valgus_probability": 1.0,
                                                  "tasks.pushoff_valgus_deg": [25.0, 30.0],
                                                  "mechanisms.probabilities": {"none": 1.0}, "tasks.trials_per_athlete": 2,
                                                  "athletes.habitual_valgus_probability": 0.0})
    seqs = list(generate_sequences(cfg, range(16)))
    for seq in seqs:
        measured = seq.meta["measured"]
        # The knee caves in hard during the push-off, but the label reads the landing: healthy stays healthy.
        assert max(v for v in measured["unscored_dynamic_fppa_deg"] if v is not None) > measured["threshold_deg"]
        assert not seq.labels["left"]["valgus"] and not seq.labels["right"]["valgus"]


def test_hard_negatives_and_time_profiles_are_independent_of_the_class():
    cfg = load_preset("realistic", n_athletes=1500)
    athletes = [sample_athlete(cfg, i) for i in range(1500)]
    healthy = [a for a in athletes if a.mechanism == "none"]
    deficit = [a for a in athletes if a.mechanism != "none"]
    for flag in HARD_NEGATIVES:
        in_healthy, in_deficit = (np.mean([flag in a.hard_negatives for a in group]) for group in (healthy, deficit))
        assert abs(in_healthy - in_deficit) < 0.06 and in_deficit > 0.05, flag
    # knee-alone valgus too (off in the preset): a trait of any athlete, not a sign of a deficit or of its absence
    knee_alone_cfg = load_preset("realistic", **{"athletes.habitual_valgus_probability": 0.15})
    knee_alone = [sample_athlete(knee_alone_cfg, i) for i in range(1500)]
    in_healthy, in_deficit = (np.mean([a.habitual_valgus.any() for a in knee_alone if (a.mechanism == "none") == none])
                              for none in (True, False))
    assert abs(in_healthy - in_deficit) < 0.06 and in_deficit > 0.05
    in_toeing_cfg = load_preset("realistic", **{"athletes.in_toeing_probability": 0.15})
    in_toeing = [sample_athlete(in_toeing_cfg, i) for i in range(1500)]
    in_healthy, in_deficit = (np.mean([a.in_toeing_deg.any() for a in in_toeing if (a.mechanism == "none") == none])
                              for none in (True, False))
    assert abs(in_healthy - in_deficit) < 0.06 and in_deficit > 0.05
    for mechanism in MECHANISMS[1:]:
        group = [a for a in athletes if a.mechanism == mechanism]
        for attr in ("drive_onset", "drive_exponent"):
            ours = np.array([getattr(a, attr) for a in group])
            theirs = np.array([getattr(a, attr) for a in healthy])
            assert np.abs(ours.mean(0) - theirs.mean(0)).max() < 0.1, (mechanism, attr)
