"""3D input: the valgus probability and severity come from the measured frontal-plane angle (the label's rule),
the mechanism from the network; 2D input is untouched."""

from __future__ import annotations

import math

import numpy as np
import pytest

from valgusml.features.rule import apply_rule
from valgusml.io import samples
from valgusml.labels import FPPA_SEM_DEG
from valgusml.predictor import Predictor
from valgusml.predictor.measured import measured_presence
from valgusml.sequence import KeypointSequence


def _squat(valgus_m: float, sex: str | None = None):
    seq = samples.squat_3d(n_frames=90)
    pts = samples.squat_points(90, valgus_m=valgus_m)
    kp = np.stack([pts[j] for j in seq.joints], axis=1)
    return seq.replace(keypoints=kp, meta={"sex": sex} if sex else {})


def test_the_call_on_3d_is_the_rule(predictor):
    for valgus_m, right_valgus in ((0.0, False), (0.05, True)):
        seq = _squat(valgus_m)
        rule = apply_rule(seq.keypoints, seq.fps, seq.task)
        p = predictor.predict(seq)
        assert p.limbs["right"].valgus is right_valgus and p.limbs["left"].valgus is False
        assert p.limbs["right"].severity_deg == pytest.approx(rule["right"]["peak_fppa_deg"], abs=1e-3)
        for limb in ("left", "right"):  # the angle the call rests on: the rule's own dynamic FPPA
            assert p.limbs[limb].frontal_fppa_deg == pytest.approx(rule[limb]["dynamic_fppa_deg"], abs=1e-3)
        assert p.view["presence_from"] == {"left": "measured", "right": "measured"}
        assert max(s["valgus_probability"]["right"] for s in p.timeline) == pytest.approx(
            p.limbs["right"].valgus_probability, abs=1e-6)
        if right_valgus:  # a called limb names a deficit, from the network's mechanism head
            assert p.limbs["right"].mechanism != "none"


def test_the_measured_probability_admits_the_error_and_the_sex():
    seq = _squat(0.05)
    presence = measured_presence(seq, decision_threshold=0.7)
    thresholds = {"female": 10.0, "male": 8.0}  # bilateral squat (BIOMECH.md)
    # Exactly at the midpoint of the sexes' thresholds the unknown-sex probability sits on the decision threshold.
    assert presence.probability(9.0) == pytest.approx(0.7, abs=1e-9)
    # One SEM above a known sex's threshold: Phi(1) ~ 0.84 on the logistic scale, shifted to the model's.
    male = measured_presence(_squat(0.05, sex="male"), decision_threshold=0.5)
    assert male.sex == "male"
    assert male.probability(thresholds["male"] + FPPA_SEM_DEG) == pytest.approx(0.845, abs=0.01)
    assert male.probability(thresholds["male"]) == pytest.approx(0.5)
    assert presence.probability(0.0) < 0.02 < 0.99 < presence.probability(30.0)


def test_2d_input_and_the_opt_out_keep_the_network(exported, predictor, squat):
    assert measured_presence(samples.squat_2d("halpe26")[0].to_canonical(), 0.5) is None
    assert "presence_from" not in predictor.predict(squat).view
    network = Predictor.load(exported, measure_3d=False)
    seq = _squat(0.05)
    p_net, p_measured = network.predict(seq), predictor.predict(seq)
    assert "presence_from" not in p_net.view
    assert p_net.limbs["right"].valgus_probability != p_measured.limbs["right"].valgus_probability
    assert p_net.limbs["left"].mechanism_probabilities["hip_weakness"] / (
        1 - p_net.limbs["left"].mechanism_probabilities["none"]) == pytest.approx(
        p_measured.limbs["left"].mechanism_probabilities["hip_weakness"] / (
            1 - p_measured.limbs["left"].mechanism_probabilities["none"]), rel=1e-6)


def test_a_standing_recording_falls_back_to_the_network_and_says_so(predictor):
    still = samples.squat_3d(n_frames=90)
    kp = np.repeat(still.keypoints[:1], 90, axis=0)
    p = predictor.predict(still.replace(keypoints=kp))
    assert p.view["presence_from"] == {"left": "network", "right": "network"}
    assert any("no scored phase" in w for w in p.warnings)
    assert all(math.isfinite(limb.valgus_probability) for limb in p.limbs.values())


def test_estimated_3d_is_read_by_the_network_and_says_so(predictor):
    from valgusml.predictor.measured import MEASURED_3D_MAX_JITTER, segment_length_jitter

    steady = _squat(0.05)
    assert segment_length_jitter(steady.to_canonical()) < 0.1 * MEASURED_3D_MAX_JITTER
    # 1 cm of independent error per joint and frame, an estimator's: the segments' lengths jitter by percents
    noise = np.random.default_rng(0).normal(0.0, 0.01, steady.keypoints.shape)
    estimated = steady.replace(keypoints=(steady.keypoints + noise).astype(np.float32))
    assert segment_length_jitter(estimated.to_canonical()) > 3 * MEASURED_3D_MAX_JITTER
    assert measured_presence(estimated.to_canonical(), 0.5) is None
    p = predictor.predict(estimated)
    assert p.view["presence_from"] == {"left": "network", "right": "network"}
    assert any("estimated 3D" in w for w in p.warnings)
    network = Predictor.load(predictor.folder, measure_3d=False).predict(estimated)
    for limb in ("left", "right"):
        assert p.limbs[limb].valgus_probability == pytest.approx(network.limbs[limb].valgus_probability, abs=1e-9)
    assert not any("estimated 3D" in w for w in predictor.predict(steady).warnings)


def test_segment_jitter_reads_the_same_at_any_frame_rate():
    from valgusml.predictor.measured import segment_length_jitter

    noisy = samples.squat_3d(n_frames=180).keypoints + np.random.default_rng(1).normal(0.0, 0.01, (180, 20, 3))
    at_60 = KeypointSequence(noisy.astype(np.float32), "canonical", 60.0)
    at_30 = KeypointSequence(noisy[::2].astype(np.float32), "canonical", 30.0)
    assert segment_length_jitter(at_60.to_canonical()) == pytest.approx(
        segment_length_jitter(at_30.to_canonical()), rel=1e-6)


@pytest.mark.realdata
def test_real_motion_capture_is_measured_and_markerless_3d_is_estimated(predictor):
    """OpenCap's lab motion capture holds its segments steady from frame to frame (the rule reads it); Pose2Sim's
    triangulated OpenPose keypoints do not (the network reads them)."""
    from valgusml import io
    from valgusml.predictor.measured import MEASURED_3D_MAX_JITTER, segment_length_jitter

    from .conftest import REALDATA

    mocap = sorted(REALDATA.glob("opencap_validation_subject*/*.trc")) if REALDATA.is_dir() else []
    markerless = sorted(REALDATA.glob("pose2sim_demo/*.trc")) if REALDATA.is_dir() else []
    if not mocap or not markerless:
        pytest.skip(f"no real recordings in {REALDATA}")
    for path in mocap:
        assert segment_length_jitter(io.read(path).to_canonical()) < MEASURED_3D_MAX_JITTER, path
    for path in markerless:
        seq = io.read(path)
        assert segment_length_jitter(seq.to_canonical()) > 2 * MEASURED_3D_MAX_JITTER, path
        p = predictor.predict(seq)
        assert p.view["presence_from"] == {"left": "network", "right": "network"}, path
        assert any("estimated 3D" in w for w in p.warnings), path


@pytest.mark.realdata
def test_real_3d_recordings_are_read_by_the_rule_and_their_timeline_peaks_at_the_recording(predictor):
    from valgusml import io
    from valgusml.features.rule import rule_labels

    from .conftest import REALDATA

    files = sorted(REALDATA.glob("opencap_validation_subject4/*.trc")) if REALDATA.is_dir() else []
    if not files:
        pytest.skip(f"no real recordings in {REALDATA}")
    for path in files[:4]:
        seq = io.read(path)
        p = predictor.predict(seq)
        labels = rule_labels(seq)
        assert "measured" in p.view["presence_from"].values(), path
        for limb in ("left", "right"):
            if p.view["presence_from"][limb] != "measured":
                continue
            assert p.limbs[limb].severity_deg == pytest.approx(labels[limb]["peak_fppa_deg"], abs=1e-3), path
            spans = [s["valgus_probability"][limb] for s in p.timeline if s["valgus_probability"][limb] is not None]
            assert max(spans) == pytest.approx(p.limbs[limb].valgus_probability, abs=1e-6), (path, limb)


@pytest.mark.realdata
@pytest.mark.parametrize("rise_deg", [6.0, -10.0])
def test_a_real_walk_in_a_tilted_frame_is_levelled_and_read_as_level(predictor, rise_deg):
    """The OpenCap toe-in walk (valgus by the rule on both knees) in a frame tilted along its travel: its far
    footfalls sit above the rule's floor, and 6 deg lost every scored frame of the left leg (0.64 -> 0.15)."""
    from valgusml import io

    from .conftest import REALDATA

    path = REALDATA / "opencap_validation_subject4" / "walkingTI1.trc"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    seq = io.read(path)
    angle = np.radians(rise_deg)
    turn = np.array([[np.cos(angle), 0.0, np.sin(angle)], [0.0, 1.0, 0.0], [-np.sin(angle), 0.0, np.cos(angle)]])
    tilted = seq.replace(keypoints=(seq.keypoints.astype(np.float64) @ turn.T).astype(np.float32))
    level, read = predictor.predict(seq), predictor.predict(tilted)
    assert not any("a tilted floor" in w for w in level.warnings)
    (note,) = [w for w in read.warnings if "a tilted floor" in w]
    assert note.startswith("a tilted floor: the footfalls rise ")
    assert float(note.split("rise ")[1].split(" deg")[0]) == pytest.approx(abs(rise_deg), abs=0.6)  # level: 0.3-0.4
    for limb in ("left", "right"):
        assert read.view["presence_from"][limb] == level.view["presence_from"][limb] == "measured"
        assert read.limbs[limb].valgus_probability == pytest.approx(level.limbs[limb].valgus_probability, abs=0.02)


def _camera_root_relative(world: np.ndarray, pitch_deg: float, root: np.ndarray) -> np.ndarray:
    """World keypoints (+z up, facing -y) as a lifter gives them: camera axes (x right, y down, z away from a camera
    in front), pitched by `pitch_deg`, with `root` (the hips' centre) at the origin in every frame."""
    camera = np.stack([world[..., 0], -world[..., 2], world[..., 1]], axis=-1)
    a = np.radians(pitch_deg)
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])
    root = np.stack([root[:, 0], -root[:, 2], root[:, 1]], axis=-1) @ pitch.T
    return camera @ pitch.T - root[:, None]


@pytest.mark.realdata
@pytest.mark.parametrize("layout", ["canonical", "h36m17"])
def test_real_drop_jumps_from_a_lifter_without_a_task_are_called_as_in_the_world(predictor, layout):
    """Subject 4's drop jumps as a monocular lifter writes them (root-relative camera axes, a camera pitched 10 deg;
    canonical joints, or Human3.6M's 17 without feet) and no task: the rebuild holds the lower foot still, and
    read as a foot that stays put it made four of them single-leg squats scored in their push-off (p 0.45-0.99)."""
    from valgusml import io
    from valgusml.skeleton import CANONICAL_JOINTS, SKELETONS

    from .conftest import REALDATA

    paths = sorted((REALDATA / "opencap_validation_subject4").glob("DJ*.trc"))
    if not paths:
        pytest.skip("subject 4's drop jumps absent")
    at = {joint: k for k, joint in enumerate(CANONICAL_JOINTS)}
    for path in paths:
        seq = io.read(path).to_canonical()
        world = seq.keypoints.astype(np.float64)
        hips = 0.5 * (world[:, at["left_hip"]] + world[:, at["right_hip"]])
        if layout == "h36m17":
            derived = {"mid_hip": hips, "spine": 0.5 * (hips + world[:, at["neck"]]), "thorax": world[:, at["neck"]],
                       "head": np.full_like(hips, np.nan)}
            world = np.stack([derived[j] if j in derived else world[:, at[j]] for j in SKELETONS[layout].joints], axis=1)
        lifted = KeypointSequence(_camera_root_relative(world, 10.0, hips).astype(np.float32), layout, seq.fps)
        expected, read = predictor.predict(seq), predictor.predict(lifted)
        (note,) = [w for w in read.warnings if w.startswith("no task given: read from the rebuilt motion as")]
        assert not note.split(" as ")[1].startswith("single_leg"), (path.name, note)
        for limb in ("left", "right"):  # the rule's calls (this tiny test network's own are no measure)
            if read.view["presence_from"][limb] == "measured":
                assert read.limbs[limb].valgus is expected.limbs[limb].valgus is False, (path.name, limb)
