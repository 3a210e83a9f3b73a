"""The generated motion: physically sound, labelled from measured FPPA, and each mechanism with its signature
(BIOMECH.md) measured by `valgusml.features` in the documented direction against `none`."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from valgusml.features import fppa_deg, measures
from valgusml.features.phases import foot_height, knee_flexion
from valgusml.labels import MECHANISMS, task_family
from valgusml.synth import generate_sequences, load_preset
from valgusml.synth.generator import trials_of
from valgusml.synth.kinematics import J
from valgusml.synth.simulation import simulate

NO_HARD_NEGATIVES = {f"hard_negatives.{k}": 0.0 for k in
                     ("deep_squat", "wide_stance", "narrow_stance", "toe_out", "trunk_lean", "genu_valgum", "pelvic_drop")}


@cache
def cohort(mechanism: str, task: str, n: int = 8) -> tuple:
    """Pure, severe, bilateral cases of one mechanism doing one task, clean 3D, no knee-alone valgus."""
    probs = {m: float(m == mechanism) for m in MECHANISMS}
    cfg = load_preset(
        "clean", n_athletes=n,
        **{"mechanisms.probabilities": probs, "mechanisms.pure_probability": 1.0, "mechanisms.mild_probability": 0.0,
           "mechanisms.side_probabilities": {"both": 1.0}, "tasks.probabilities": {task: 1.0},
           "tasks.trials_per_athlete": 2, "athletes.habitual_valgus_probability": 0.0, **NO_HARD_NEGATIVES},
    )
    return tuple(generate_sequences(cfg, range(n)))


def healthy_with(hard_negative: str, task: str, n: int = 8) -> list:
    """Healthy athletes (no deficit) doing one task, every one of them with one hard negative, clean 3D."""
    cfg = load_preset(
        "clean", n_athletes=n,
        **{"mechanisms.probabilities": {m: float(m == "none") for m in MECHANISMS}, "tasks.probabilities": {task: 1.0},
           "tasks.trials_per_athlete": 2, **NO_HARD_NEGATIVES, f"hard_negatives.{hard_negative}": 1.0},
    )
    return list(generate_sequences(cfg, range(n)))


def mean_measure(mechanism: str, task: str, name: str, limb: str = "left") -> float:
    values = []
    for seq in cohort(mechanism, task):
        m = measures(seq)
        value = m["bilateral"][name] if name in m["bilateral"] else m[limb][name]
        if value is not None and np.isfinite(value):
            values.append(value)
    return float(np.mean(values)) if values else float("nan")  # NaN: no athlete shows it (healthy heels never rise)


SLS = "single_leg_squat_left"


def test_hip_weakness_drops_the_pelvis_under_single_leg_load():
    assert mean_measure("hip_weakness", SLS, "pelvic_drop_deg") > mean_measure("none", SLS, "pelvic_drop_deg") + 2.0
    assert mean_measure("hip_weakness", SLS, "trunk_lean_toward_deg") > mean_measure("none", SLS, "trunk_lean_toward_deg") + 2.0
    # Much smaller in a bilateral squat than in single-leg work; foot normal.
    sls_fppa = mean_measure("hip_weakness", SLS, "peak_fppa_deg")
    assert mean_measure("hip_weakness", "bilateral_squat", "peak_fppa_deg") < sls_fppa - 8.0
    assert mean_measure("hip_weakness", SLS, "foot_roll_in") == pytest.approx(mean_measure("none", SLS, "foot_roll_in"), abs=0.005)


def test_adductor_tfl_collapses_in_bilateral_squats_with_a_level_pelvis():
    assert mean_measure("adductor_tfl_overactivity", "bilateral_squat", "peak_fppa_deg") > mean_measure("none", "bilateral_squat", "peak_fppa_deg") + 10
    assert (mean_measure("adductor_tfl_overactivity", "bilateral_squat", "min_knee_ankle_separation_ratio")
            < mean_measure("none", "bilateral_squat", "min_knee_ankle_separation_ratio") - 0.3)
    assert mean_measure("adductor_tfl_overactivity", SLS, "pelvic_drop_deg") <= mean_measure("none", SLS, "pelvic_drop_deg")
    # Visible from the start of the movement: the knee already swivels in at shallow depth.
    early = []
    for seq in cohort("adductor_tfl_overactivity", "bilateral_squat") + cohort("none", "bilateral_squat"):
        fppa = fppa_deg(seq.keypoints)[:, 0]
        early.append(np.percentile(fppa, 25) - seq.meta["measured"]["fppa_standing_deg"][0])
    half = len(early) // 2
    assert np.mean(early[:half]) > np.mean(early[half:]) + 1.0


def test_pronation_rolls_the_foot_in_with_a_normal_pelvis():
    assert mean_measure("pronation", SLS, "foot_roll_in") > mean_measure("none", SLS, "foot_roll_in") + 0.01
    assert mean_measure("pronation", SLS, "rearfoot_eversion_deg") > mean_measure("none", SLS, "rearfoot_eversion_deg") + 4
    assert mean_measure("pronation", SLS, "pelvic_drop_deg") == pytest.approx(mean_measure("none", SLS, "pelvic_drop_deg"), abs=1.0)
    assert mean_measure("pronation", SLS, "peak_fppa_deg") > mean_measure("none", SLS, "peak_fppa_deg") + 8


def test_limited_dorsiflexion_squats_shallower_with_early_heel_rise():
    task = "bilateral_squat"
    assert mean_measure("limited_dorsiflexion", task, "peak_knee_flexion_deg") < mean_measure("none", task, "peak_knee_flexion_deg") - 5
    assert mean_measure("limited_dorsiflexion", task, "peak_shank_tilt_deg") < mean_measure("none", task, "peak_shank_tilt_deg") - 3
    assert mean_measure("limited_dorsiflexion", task, "peak_heel_rise") > mean_measure("none", task, "peak_heel_rise") + 0.01
    # Heels rise before the deepest point (healthy heels rarely rise at all: no onset to compare with).
    healthy_onset = mean_measure("none", task, "heel_rise_onset_s")
    assert mean_measure("limited_dorsiflexion", task, "heel_rise_onset_s") < (0.0 if np.isnan(healthy_onset) else healthy_onset)
    assert mean_measure("limited_dorsiflexion", task, "peak_trunk_lean_sagittal_deg") > mean_measure("none", task, "peak_trunk_lean_sagittal_deg") + 3
    assert mean_measure("limited_dorsiflexion", task, "foot_progression_deg") > mean_measure("none", task, "foot_progression_deg") + 3
    # Valgus near the bottom: the peak comes with the deepest frames.
    for seq in cohort("limited_dorsiflexion", task):
        if seq.labels["left"]["valgus"]:
            fppa = fppa_deg(seq.keypoints)[:, 0]
            hip_z = seq.keypoints[:, J["left_hip"], 2]
            assert hip_z[np.argmax(fppa)] < np.percentile(hip_z, 25)


@pytest.mark.parametrize("mechanism", MECHANISMS[1:])
def test_severe_mechanisms_are_labelled_and_healthy_are_not(mechanism):
    task = "bilateral_squat" if mechanism != "hip_weakness" else SLS
    seqs = cohort(mechanism, task)
    labels = [s.labels["left"] for s in seqs]
    assert np.mean([lab["valgus"] for lab in labels]) >= 0.7
    assert all(lab["mechanism"] == mechanism for lab in labels if lab["valgus"])
    assert not any(s.labels[limb]["valgus"] for s in cohort("none", task) for limb in ("left", "right"))


def test_labels_agree_with_measured_fppa():
    cfg = load_preset("clean", n_athletes=10)
    for seq in generate_sequences(cfg, range(10)):
        measured = seq.meta["measured"]
        fppa = fppa_deg(seq.keypoints)  # the 3D path of valgusml.features, independent of the generator's view
        threshold = cfg.labels.threshold_deg[task_family(seq.task)][seq.meta["athlete"]["sex"]]
        for k, limb in enumerate(("left", "right")):
            label = seq.labels[limb]
            frame = int(round(measured["peak_time_s"][k] * seq.fps))
            assert fppa[frame, k] == pytest.approx(label["severity_deg"], abs=1.0)
            dynamic = label["severity_deg"] - measured["fppa_standing_deg"][k]
            assert label["valgus"] == (measured["loaded"][k] and dynamic > threshold)
            assert (label["mechanism"] != "none") == label["valgus"]
            if label["mechanism"] is None:  # knee-alone valgus: presence by the rule, no mechanism to name
                assert label["contributions"] == {}
            elif label["valgus"]:
                assert sum(label["contributions"].values()) == pytest.approx(1.0)
                assert max(label["contributions"], key=label["contributions"].get) == label["mechanism"]


def test_feet_planted_bones_rigid_nothing_below_the_floor():
    cfg = load_preset("clean", n_athletes=12)
    trials = trials_of(cfg, range(12))
    for trial, sim in zip(trials, simulate(cfg, trials), strict=True):
        j = sim.joints
        for side in ("left", "right"):
            for a, b in (("hip", "knee"), ("knee", "ankle")):
                length = np.linalg.norm(j[:, J[f"{side}_{b}"]] - j[:, J[f"{side}_{a}"]], axis=1)
                # < 8 mm: structural valgus offsets the knee off its circle a little (genu valgum up to 8 deg)
                assert np.ptp(length) < 0.008, (trial.task, side, a, b)
        assert j[..., 2].min() > -0.005, trial.task
        family = task_family(trial.task)
        stance = trial.task.rsplit("_", 1)[-1]
        planted = {"bilateral_squat": ("left", "right"), "single_leg_squat": (stance,),
                   "lateral_step_down": (stance,)}.get(family, ())
        for side in planted:
            toe = j[:, J[f"{side}_big_toe"]]
            assert np.ptp(toe, axis=0).max() < 1e-6, (trial.task, side)  # no sliding, no floating
            assert np.all(j[:, J[f"{side}_heel"], 2] >= toe[0, 2] - 0.03)


def test_structural_genu_valgum_is_not_labelled_valgus():
    cfg = load_preset("clean", n_athletes=12, **{"mechanisms.probabilities": {"none": 1.0},
                                                  "athletes.habitual_valgus_probability": 0.0,
                                                  **NO_HARD_NEGATIVES, "hard_negatives.genu_valgum": 1.0})
    seqs = list(generate_sequences(cfg, range(12)))
    standing = np.array([s.meta["measured"]["fppa_standing_deg"] for s in seqs])
    assert standing.mean() > 4.0  # the static angle is there ...
    assert not any(s.labels[limb]["valgus"] for s in seqs for limb in ("left", "right"))  # ... but not dynamic


def test_rotate_matches_rotation_matrices():
    from scipy.spatial.transform import Rotation

    from valgusml.synth.kinematics import rotate, zyx_trig

    rng = np.random.default_rng(0)
    z, y, x = rng.uniform(-1, 1, (3, 5))
    v = rng.normal(size=(5, 3))
    expected = Rotation.from_euler("ZYX", np.stack([z, y, x], 1)).apply(v)
    np.testing.assert_allclose(rotate(v.T, zyx_trig(z, y, x)).T, expected, atol=1e-12)  # coordinate-first


def _step_width_and_heel_up(seqs) -> tuple[float, float]:
    widths, heel_up = [], []
    for seq in seqs:
        kp = seq.keypoints
        widths.append(np.mean(np.abs(kp[:, J["left_ankle"], 0] - kp[:, J["right_ankle"], 0])))
        toe_down = kp[:, J["left_big_toe"], 2] < kp[:, J["left_big_toe"], 2].min() + 0.01  # the forefoot on the floor
        heel_up.append(np.mean(kp[toe_down, J["left_heel"], 2] - kp[toe_down, J["left_big_toe"], 2] > 0.03))
    return float(np.mean(widths)), float(np.mean(heel_up))


def test_gait_signatures_narrow_steps_and_early_heel_off():
    width_none, heel_none = _step_width_and_heel_up(cohort("none", "walking"))
    width_add, _ = _step_width_and_heel_up(cohort("adductor_tfl_overactivity", "walking"))
    _, heel_df = _step_width_and_heel_up(cohort("limited_dorsiflexion", "walking"))
    assert width_add < 0.6 * width_none  # adductors pull the steps narrow
    assert heel_df > heel_none + 0.05  # a tight calf lifts the heel earlier in stance


def test_healthy_athletes_walk_narrow_too():
    """Step width is every athlete's trait: with one width for every healthy walker and narrow steps only from
    adductor overactivity, the default model once called most healthy midline walkers valgus."""
    widths = [_step_width_and_heel_up([seq])[0] for seq in cohort("none", "walking")]
    assert max(widths) > 3.0 * min(widths)  # drawn per athlete, not one template
    width_narrow, _ = _step_width_and_heel_up(healthy_with("narrow_stance", "walking"))
    width_add, _ = _step_width_and_heel_up(cohort("adductor_tfl_overactivity", "walking"))
    assert width_narrow < 0.4 * np.mean(widths)  # the narrow-stance hard negatives walk narrow
    assert width_narrow < 1.5 * width_add  # about as narrow as severe adductor overactivity


def test_healthy_athletes_may_drop_the_pelvis_as_a_weak_hip_does():
    """The pelvic-drop hard negative: a weak hip's pelvis and trunk on healthy knees, so that a large drop alone
    says nothing about the knee (the default model once called most such walkers valgus)."""
    seqs = healthy_with("pelvic_drop", SLS)
    drop = np.nanmean([measures(s)["left"]["pelvic_drop_deg"] for s in seqs])
    lean = np.nanmean([measures(s)["left"]["trunk_lean_toward_deg"] for s in seqs])
    assert drop > mean_measure("none", SLS, "pelvic_drop_deg") + 2.0
    assert drop > mean_measure("hip_weakness", SLS, "pelvic_drop_deg") - 2.0
    assert lean > mean_measure("none", SLS, "trunk_lean_toward_deg") + 1.0
    assert not any(s.labels[limb]["valgus"] for s in seqs for limb in ("left", "right"))


def test_hip_weakness_trades_pelvic_drop_for_trunk_lean():
    rows = []
    for seq in cohort("hip_weakness", SLS, 12):
        m = measures(seq)["left"]
        rows.append((m["pelvic_drop_deg"], m["trunk_lean_toward_deg"]))
    drop, lean = np.array(rows, dtype=float).T
    assert np.corrcoef(drop, lean)[0, 1] < 0.0  # who leans drops less


def test_walking_knee_straightens_in_mid_stance_and_bends_in_the_loading_response():
    """Measured as here, the four real walks of `../shared/realdata` straighten the stance knee to 3-10 deg after
    the loading response and bend it 11-17 deg more within it; generator v15's walkers stood on ~23 deg through
    stance and bent 5 more. Measured by `valgusml.features` on the clean 3D: every whole contact of every healthy
    walker, its first 40% against the rest."""
    straightest, loading_bend = [], []
    for seq in cohort("none", "walking"):
        flexion = knee_flexion(seq.keypoints, seq.fps)
        on_floor = foot_height(seq.keypoints) < 0.03
        for k in range(2):
            edges = np.flatnonzero(np.diff(np.r_[0, on_floor[:, k].astype(int), 0]))
            for start, end in zip(edges[::2], edges[1::2], strict=True):
                if start == 0 or end == len(flexion) or end - start < 0.3 * seq.fps:
                    continue  # a contact cut by the clip's ends
                contact = flexion[start:end, k]
                split = int(0.4 * len(contact))
                straightest.append(contact[split:].min())
                loading_bend.append(contact[:split].max() - contact[split:].min())
    assert len(straightest) >= 20
    assert 2.0 < np.median(straightest) < 10.0
    assert 6.0 < np.median(loading_bend) < 25.0


def test_walking_deficits_reach_the_gait_threshold_as_real_toe_in_gait_does():
    """Real gait (OpenCap subject 4): 1-3 deg of dynamic FPPA walking normally, 6-7 deg walking toed-in, against
    a 4-5 deg threshold. Severe walking deficits must reach it; healthy walkers stay in the normal range."""
    dynamic = {m: [d for s in cohort(m, "walking") for d in s.meta["measured"]["dynamic_fppa_deg"]]
               for m in ("none", "hip_weakness", "pronation")}
    assert np.median(dynamic["none"]) < 3.5
    for mechanism in ("hip_weakness", "pronation"):
        assert 5.0 < np.median(dynamic[mechanism]) < 15.0, mechanism
        assert np.mean([s.labels["left"]["valgus"] for s in cohort(mechanism, "walking")]) >= 0.5, mechanism


def test_knee_alone_valgus_is_labelled_by_the_rule_with_mechanism_unknown():
    """Athletes with no deficit but a large habitual swivel: their knees cross the threshold with none of the
    mechanisms' signs, are labelled valgus (the rule) with mechanism unknown, and are not toned down."""
    cfg = load_preset("clean", n_athletes=10, **{"mechanisms.probabilities": {"none": 1.0},
                                                  "athletes.habitual_valgus_probability": 1.0,
                                                  "mechanisms.side_probabilities": {"right": 1.0},
                                                  "tasks.probabilities": {"bilateral_squat": 1.0}, **NO_HARD_NEGATIVES})
    seqs = list(generate_sequences(cfg, range(10)))
    right = [s.labels["right"] for s in seqs]
    assert np.mean([lab["valgus"] for lab in right]) >= 0.7
    assert all(lab["mechanism"] is None for lab in right if lab["valgus"])
    for seq in seqs:
        measured = seq.meta["measured"]
        assert seq.labels["right"]["valgus"] == (measured["dynamic_fppa_deg"][1] > measured["threshold_deg"])
        assert not seq.labels["left"]["valgus"]  # the other knee keeps a healthy swivel, toned down if need be


@cache
def healthy_in_toers(task: str, in_toeing: float, knee_share: tuple[float, float] = (1.0, 1.0)) -> tuple:
    """Eight athletes without a deficit or knee-alone valgus doing one task, clean 3D, `in_toeing` of them
    in-toeing with the knees following the feet by `knee_share` (the default: the whole leg)."""
    cfg = load_preset(
        "clean", n_athletes=8,
        **{"mechanisms.probabilities": {"none": 1.0}, "athletes.habitual_valgus_probability": 0.0,
           "tasks.probabilities": {task: 1.0}, "athletes.in_toeing_probability": in_toeing,
           "athletes.in_toeing_knee_share": list(knee_share)},
        **NO_HARD_NEGATIVES,
    )
    return tuple(generate_sequences(cfg, range(8)))


def test_in_toeing_gait_turns_the_knees_in_and_is_labelled_by_the_rule():
    """In-toeing athletes without a deficit: walking with feet and knees turned in, their flexed stance knees
    read 3-7 deg of dynamic FPPA (a real toe-in walk: 6-7; a normal walk 1-3) and often cross the gait
    threshold (4-5); the label is the rule on the 3D frontal plane, with mechanism unknown; set tasks (squats)
    keep the feet as instructed."""
    toed_in, normal = healthy_in_toers("walking", 1.0), healthy_in_toers("walking", 0.0)
    dynamic = [d for s in toed_in for d in s.meta["measured"]["dynamic_fppa_deg"]]
    assert np.median(dynamic) > 3.5 > 1.0 > np.median([d for s in normal for d in s.meta["measured"]["dynamic_fppa_deg"]])
    for seq in toed_in:
        measured = seq.meta["measured"]
        for k, limb in enumerate(("left", "right")):
            over = measured["loaded"][k] and measured["dynamic_fppa_deg"][k] > measured["threshold_deg"]
            assert seq.labels[limb]["valgus"] == over
            assert seq.labels[limb]["mechanism"] is None if over else seq.labels[limb]["mechanism"] == "none"
    assert np.mean([s.labels[limb]["valgus"] for s in toed_in for limb in ("left", "right")]) >= 0.4
    assert not any(s.labels[limb]["valgus"] for s in normal for limb in ("left", "right"))
    # Same athletes squatting: the trait does not act, sequence for sequence.
    for a, b in zip(healthy_in_toers("bilateral_squat", 1.0), healthy_in_toers("bilateral_squat", 0.0), strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)


def test_in_toeing_below_the_knee_turns_the_feet_in_and_leaves_the_knees_as_a_normal_walk_has_them():
    """`in_toeing_knee_share` 0 is a tibia twisted in below a knee that keeps its course: the same healthy
    walkers as above, the feet as far in as with the whole leg turned (share 1, the default), but the knees
    read the dynamic FPPA and labels of a normal walk. Drawn over [0, 1] toe-in raises the valgus rate without
    setting it, so the label is the knee's, not the foot's."""
    def progression(seqs: tuple) -> float:
        return float(np.nanmedian([measures(s)[limb]["foot_progression_deg"] for s in seqs for limb in ("left", "right")]))

    def dynamic(seqs: tuple) -> float:
        return float(np.median([d for s in seqs for d in s.meta["measured"]["dynamic_fppa_deg"]]))

    def valgus_rate(seqs: tuple) -> float:
        return float(np.mean([s.labels[limb]["valgus"] for s in seqs for limb in ("left", "right")]))

    below_knee, drawn = healthy_in_toers("walking", 1.0, (0.0, 0.0)), healthy_in_toers("walking", 1.0, (0.0, 1.0))
    whole_leg, normal = healthy_in_toers("walking", 1.0), healthy_in_toers("walking", 0.0)
    assert abs(progression(below_knee) - progression(whole_leg)) < 1.5
    assert progression(normal) - progression(below_knee) > 6.0  # toe-in drawn 8-18 deg
    assert abs(dynamic(below_knee) - dynamic(normal)) < 1.0 < dynamic(whole_leg) - 3.0
    assert valgus_rate(below_knee) <= 0.05 and valgus_rate(whole_leg) >= 0.6
    assert valgus_rate(below_knee) < valgus_rate(drawn) < valgus_rate(whole_leg)
    # the share is drawn after every other trait and turns only the knee: every other joint moves as before
    knees = [J["left_knee"], J["right_knee"]]
    for a, b in zip(below_knee, whole_leg, strict=True):
        np.testing.assert_array_equal(np.delete(a.keypoints, knees, axis=1), np.delete(b.keypoints, knees, axis=1))
        assert not np.array_equal(a.keypoints[:, knees], b.keypoints[:, knees])


def test_valgus_ceiling_keeps_deep_valgus_moderate():
    """Without a ceiling a deficit's valgus past ~110 deg of squat reads 30-70 deg of dynamic FPPA, with none
    in between healthy knees and those; with `valgus_ceiling_deg` every deficit-valgus knee stays at or under
    its athlete's ceiling, still over the threshold (valgus, with its mechanism), and knees under the ceiling
    are left as they are, so healthy limbs and the other joints do not move."""
    base = {"mechanisms.probabilities": {"hip_weakness": 0.5, "adductor_tfl_overactivity": 0.5},
            "athletes.squat_depth_deg": [110.0, 120.0], "tasks.probabilities": {"bilateral_squat": 1.0},
            "mechanisms.mild_probability": 0.0, **NO_HARD_NEGATIVES}

    def run(ceiling: list[float]) -> list:
        cfg = load_preset("clean", n_athletes=8, seed=2, **base, **{"mechanisms.valgus_ceiling_deg": ceiling})
        return list(generate_sequences(cfg, range(8)))

    free, capped = run([0.0, 0.0]), run([15.0, 20.0])
    valgus = [(a, b, k) for a, b in zip(free, capped, strict=True) for k, limb in enumerate(("left", "right"))
              if a.labels[limb]["valgus"] and a.labels[limb]["mechanism"] is not None]
    assert len(valgus) >= 10
    assert np.median([a.meta["measured"]["dynamic_fppa_deg"][k] for a, _, k in valgus]) > 30.0
    for a, b, k in valgus:
        limb = ("left", "right")[k]
        dynamic = b.meta["measured"]["dynamic_fppa_deg"][k]
        assert b.meta["measured"]["threshold_deg"] < dynamic <= 20.5 + 1.0
        assert b.labels[limb]["valgus"] and b.labels[limb]["mechanism"] == a.labels[limb]["mechanism"]
    for a, b in zip(free, capped, strict=True):
        below = [not a.labels[limb]["valgus"] for limb in ("left", "right")]
        if all(below):
            np.testing.assert_array_equal(a.keypoints, b.keypoints)
