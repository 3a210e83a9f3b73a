"""valgusml.preprocess: resampling, gaps, windows, warnings, errors, aggregation (numpy only, tiny data)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from valgusml.errors import ConfigError, InputError
from valgusml.preprocess import (
    LEG_SEEN_MIN,
    PreprocessConfig,
    aggregate_recordings,
    aggregate_windows,
    leg_seen_fraction,
    prepare,
    prepare_many,
    resample,
    window_starts,
)
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import SKELETONS, canonical_index

LKNEE = canonical_index("left_knee")


def standing_pose(skeleton: str = "canonical") -> np.ndarray:
    """A person facing the camera in image coordinates (pixels, y down), joints of `skeleton`."""
    height = {
        "nose": 0.93,
        "neck": 0.82,
        "shoulder": 0.8,
        "elbow": 0.62,
        "wrist": 0.48,
        "hip": 0.52,
        "knee": 0.28,
        "ankle": 0.05,
        "heel": 0.02,
        "big_toe": 0.0,
        "small_toe": 0.0,
        "eye": 0.95,
        "ear": 0.94,
        "head": 1.0,
        "foot_index": 0.0,
    }
    joints = SKELETONS[skeleton].joints
    pose = np.zeros((len(joints), 2))
    for k, name in enumerate(joints):
        side = 1.0 if name.startswith("left") else -1.0 if name.startswith("right") else 0.0
        part = name.split("_", 1)[1] if side else name
        pose[k] = [
            640 + side * (110 if part in ("shoulder", "elbow", "wrist") else 60),
            700 - 600 * height.get(part, 0.5),
        ]
    return pose


def squat(skeleton="canonical", fps=30.0, seconds=3.0, amplitude=40.0, **kw) -> KeypointSequence:
    """Knees move sideways sinusoidally at 1 Hz: a known motion to check resampling against."""
    n = int(round(seconds * fps))
    t = np.arange(n) / fps
    kp = np.repeat(standing_pose(skeleton)[None], n, 0)
    joints = SKELETONS[skeleton].joints
    for side in ("left", "right"):
        if f"{side}_knee" in joints:
            kp[:, joints.index(f"{side}_knee"), 0] += amplitude * np.sin(2 * np.pi * t)
    return KeypointSequence(kp.astype(np.float32), skeleton, fps, id=kw.pop("id", "squat"), **kw)


def test_config_roundtrip_and_validation():
    cfg = PreprocessConfig(fps=25, window=64, stride=32)
    assert PreprocessConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["window"] == 64
    with pytest.raises(ConfigError, match="stride"):
        PreprocessConfig(window=32, stride=64)
    with pytest.raises(ConfigError, match="fps"):
        PreprocessConfig(fps=0)
    with pytest.raises(ConfigError, match="unknown preprocessing keys"):
        PreprocessConfig.from_dict({"fps": 30, "windw": 3})


@pytest.mark.parametrize("fps_in", [60.0, 120.0, 25.0])
def test_resampling_keeps_the_motion(fps_in):
    seq = squat(fps=fps_in, seconds=3.0)
    out = prepare(seq, PreprocessConfig())
    n = int(np.floor(2.999 * 30)) + 1 if fps_in != 30 else 90
    t = np.arange(out.mask.shape[1]) / 30.0
    real = out.mask[0] > 0
    assert abs(real.sum() - n) <= 1
    expected = standing_pose()[LKNEE, 0] + 40.0 * np.sin(2 * np.pi * t[real])
    # linear interpolation of a 1 Hz sine sampled at >= 25 fps: error <= A(1 - cos(pi f / fs)) ~ 0.3 px
    np.testing.assert_allclose(out.joints[0, real, LKNEE, 0], expected, atol=0.5)
    assert any(w.startswith(f"resampled from {fps_in:g} fps to 30 fps") for w in out.warnings[0])


def test_same_fps_is_exact_and_quiet():
    seq = squat(fps=30.0)
    out = prepare(seq)
    np.testing.assert_array_equal(out.joints[0, :90, :, :2], seq.keypoints)
    assert out.warnings == [[]]


def test_windows_padding_and_mask():
    short = prepare(squat(seconds=3.0))  # 90 frames < window 96: one padded window
    assert short.joints.shape == (1, 96, 20, 3) and short.mask.shape == (1, 96)
    assert short.mask[0, :90].all() and not short.mask[0, 90:].any()
    assert not short.joints[0, 90:].any() and not short.measures[0, 90:].any()
    assert short.measures.dtype == np.float32 and short.joints.dtype == np.float32

    long = prepare(squat(seconds=10.0))  # 300 frames: windows every 48 plus one aligned to the end
    np.testing.assert_array_equal(window_starts(300, 96, 48), [0, 48, 96, 144, 192, 204])
    assert len(long) == 6 and long.mask.all()
    np.testing.assert_allclose(long.window_start_s, np.array([0, 48, 96, 144, 192, 204]) / 30.0)
    np.testing.assert_array_equal(long.joints[5, 0], long.joints[4, 12])  # frame 204 in both
    last = standing_pose()[LKNEE, 0] + 40 * np.sin(2 * np.pi * 299 / 30)
    np.testing.assert_allclose(
        long.joints[5, -1, LKNEE, 0], last, atol=1e-3
    )  # the last window ends at frame 299


def test_3d_input_is_projected_to_the_front_view():
    n = 60
    pose2d = standing_pose()
    kp = np.zeros((n, 20, 3), dtype=np.float32)
    kp[..., 0] = (pose2d[:, 0] - 640) / 600  # subject's left along +x (metres), facing -y
    kp[..., 2] = (700 - pose2d[:, 1]) / 600  # up
    out = prepare(KeypointSequence(kp, "canonical", 50.0))
    assert np.isfinite(out.joints).all() and np.isfinite(out.measures).all()
    xy = out.joints[0, out.mask[0] > 0, :, :2]
    left, right = canonical_index("left_hip"), canonical_index("right_hip")
    assert (xy[:, left, 0] > xy[:, right, 0]).all()  # subject's left on +x, as in 2D image input
    head, ankle = canonical_index("nose"), canonical_index("left_ankle")
    assert (xy[:, head, 1] < xy[:, ankle, 1]).all()  # y down


def test_coco17_gets_its_feet_placed_and_says_so():
    out = prepare(squat("coco17"))
    warnings = " | ".join(out.warnings[0])
    assert "missing feet: no heel or toe keypoints (e.g. coco17), placed from the ankle" in warnings
    assert "cannot be seen" in warnings and "placed from the big toe" not in warnings
    feet = [canonical_index(f"{s}_{j}") for s in ("left", "right") for j in ("heel", "big_toe", "small_toe")]
    assert (out.joints[0, out.mask[0] > 0][:, feet, 2] > 0).all()
    assert np.isfinite(out.joints).all() and np.isfinite(out.measures).all()


def test_legs_only_are_named_and_look_as_upper_body_dropout_draws_them():
    """A camera framing the legs: a warning with the measured cost, and the model input that
    `training.augment.UpperBodyDropout` imitates (points above the hips at confidence 0, the trunk's lean 0)."""
    from valgusml.features import FRAME_MEASURE_INDEX
    from valgusml.preprocess import UPPER_BODY_UNSEEN

    seq = squat("halpe26")
    upper = [j for j in seq.joints if not any(part in j for part in ("hip", "knee", "ankle", "heel", "toe"))]
    keypoints = seq.keypoints.copy()
    keypoints[:, [seq.joints.index(j) for j in upper]] = np.nan
    out = prepare(seq.replace(keypoints=keypoints))
    assert UPPER_BODY_UNSEEN in out.warnings[0]
    assert UPPER_BODY_UNSEEN not in prepare(seq).warnings[0]
    for joint in ("nose", "neck", "left_shoulder", "right_shoulder", "left_elbow", "right_wrist"):
        assert not out.joints[..., canonical_index(joint), 2].any()
    for measure in ("trunk_lean_frontal_deg", "trunk_lean_sagittal_deg"):
        assert not out.measures[..., FRAME_MEASURE_INDEX[measure]].any()


def _without_feet(seq: KeypointSequence) -> KeypointSequence:
    joints = list(seq.joints)
    keypoints, confidence = seq.keypoints.copy(), seq.confidence.copy()
    for side in ("left", "right"):
        for joint in ("heel", "big_toe", "small_toe"):
            keypoints[:, joints.index(f"{side}_{joint}")] = np.nan
            confidence[:, joints.index(f"{side}_{joint}")] = 0.0
    return KeypointSequence(keypoints, seq.skeleton, seq.fps, confidence=confidence)


@pytest.mark.parametrize("yaw_deg", [0.0, 90.0, -90.0])
def test_placed_feet_land_nearer_the_real_ones_than_the_ankle(yaw_deg):
    """A halpe26 squat seen from the front and from either side, its heels and toes removed as a COCO-17
    estimator reports it: each placed point is nearer the real one than the ankle is, and from the side the
    toes point the way the face does."""
    from valgusml.evaluation.transfer.render import ViewSpec, render
    from valgusml.io.samples import squat_points
    from valgusml.skeleton import CANONICAL_JOINTS

    points = squat_points(n_frames=90)
    world = np.stack([points[j] for j in CANONICAL_JOINTS], axis=1)
    full = KeypointSequence(render(world, ViewSpec(yaw_deg=yaw_deg)).astype(np.float32), "canonical", 30.0)
    with_feet, placed = prepare(full), prepare(_without_feet(full))
    assert any(w.startswith("missing feet: no heel or toe keypoints (e.g. coco17), placed") for w in placed.warnings[0])
    frames = with_feet.mask > 0
    for side in ("left", "right"):
        ankle = with_feet.joints[frames][:, canonical_index(f"{side}_ankle"), :2]
        for joint in ("heel", "big_toe", "small_toe"):
            index = canonical_index(f"{side}_{joint}")
            real, guess = with_feet.joints[frames][:, index, :2], placed.joints[frames][:, index, :2]
            assert np.linalg.norm(guess - real, axis=1).mean() < 0.8 * np.linalg.norm(ankle - real, axis=1).mean(), joint
        if yaw_deg:
            toe = placed.joints[frames][:, canonical_index(f"{side}_big_toe"), 0] - ankle[:, 0]
            face = (with_feet.joints[frames][:, canonical_index("nose"), 0]
                    - with_feet.joints[frames][:, canonical_index("neck"), 0])
            assert (np.sign(toe) == np.sign(face)).mean() > 0.95


def test_mediapipe_gets_its_small_toes_placed_and_says_so():
    out = prepare(squat("mediapipe33"))
    warnings = " | ".join(out.warnings[0])
    assert "placed from the big toe, heel and hips (this layout has none): left_small_toe, right_small_toe" in warnings
    assert "missing" not in warnings
    small = [canonical_index(f"{s}_small_toe") for s in ("left", "right")]
    assert (out.joints[0, out.mask[0] > 0][:, small, 2] > 0).all()


def test_placed_small_toes_land_near_the_real_ones():
    """The shipped halpe26 squat with its small toes removed, as MediaPipe reports it: each placed small toe is
    on its own foot's outer side and nearer the real one than the big toe is (which a network trained with
    small toes reads instead of none at all)."""
    import warnings

    from valgusml import io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = io.read(Path(__file__).resolve().parents[1] / "data" / "samples" / "squat_halpe26.json")
    joints = list(full.joints)
    keypoints, confidence = full.keypoints.copy(), full.confidence.copy()
    for side in ("left", "right"):
        keypoints[:, joints.index(f"{side}_small_toe")] = np.nan
        confidence[:, joints.index(f"{side}_small_toe")] = 0.0
    with_toes = prepare(full)
    placed = prepare(KeypointSequence(keypoints, full.skeleton, full.fps, confidence=confidence))
    assert any(w.startswith("placed from the big toe") for w in placed.warnings[0])
    frames = with_toes.mask > 0
    for side, outward in (("left", 1.0), ("right", -1.0)):
        small, big = canonical_index(f"{side}_small_toe"), canonical_index(f"{side}_big_toe")
        real, guess = with_toes.joints[frames][:, small, :2], placed.joints[frames][:, small, :2]
        big_toe = with_toes.joints[frames][:, big, :2]
        assert np.linalg.norm(guess - real, axis=1).mean() < 0.6 * np.linalg.norm(big_toe - real, axis=1).mean()
        assert (outward * (guess[:, 0] - big_toe[:, 0]) > 0).mean() > 0.95  # the subject's left is image +x


def test_too_short_raises_input_error():
    with pytest.raises(InputError, match="too short"):
        prepare(squat(seconds=0.2, id="tiny"))
    seq = squat(seconds=2.0)
    kp = seq.keypoints.copy()
    kp[5:, canonical_index("left_hip")] = np.nan  # hips needed in every valid frame
    with pytest.raises(InputError, match="sequence 'squat': too short"):
        prepare(seq.replace(keypoints=kp, confidence=None))


def test_short_gaps_are_filled_long_gaps_stay_missing():
    seq = squat(seconds=4.0)
    kp = seq.keypoints.copy()
    kp[30:33, LKNEE] = np.nan  # 0.1 s gap: interpolated
    ankle = canonical_index("right_ankle")
    kp[60:90, ankle] = np.nan  # 1 s gap: stays missing
    out = prepare(seq.replace(keypoints=kp, confidence=None))
    j = out.joints[0]
    assert np.isfinite(j).all() and np.isfinite(out.measures).all()
    assert (j[30:33, LKNEE, 2] > 0).all()
    expected = standing_pose()[LKNEE, 0] + 40 * np.sin(2 * np.pi * np.arange(30, 33) / 30)
    np.testing.assert_allclose(j[30:33, LKNEE, 0], expected, atol=1.0)
    assert (j[60:90, ankle, 2] == 0).all() and (j[59, ankle, 2] > 0) and (j[90, ankle, 2] > 0)
    np.testing.assert_allclose(j[60:90, ankle, :2], np.repeat(j[59:60, ankle, :2], 30, 0))  # held, finite
    text = " | ".join(out.warnings[0])
    assert "interpolated 3 missing joint sample(s)" in text and "right_ankle" in text


def test_how_much_of_a_leg_is_seen_and_where_its_task_is_scored():
    from valgusml.export.example import example_keypoints
    from valgusml.features.phases import Segment

    confidence = np.ones((90, len(standing_pose())), dtype=np.float32)
    confidence[30:60, canonical_index("right_knee")] = 0.0  # the right knee hidden for the middle second
    np.testing.assert_allclose(leg_seen_fraction(confidence), [1.0, 2 / 3])  # over every frame
    np.testing.assert_allclose(leg_seen_fraction(confidence, [Segment(30, 70, "rep", ("left", "right"))]), [1.0, 0.25])
    # Hidden through most of its squat (the rep 0.5-3.5 s of 4 s): 43% of the recording shows it, which keeps the
    # network's answer, with a warning that the rep itself was hardly seen. A recording of one window has no
    # segments searched, so no such warning.
    keypoints = example_keypoints("halpe26", seconds=4.0, fps=60.0, valgus=1.0)
    keypoints[60:198, SKELETONS["halpe26"].joints.index("right_knee")] = np.nan  # 1-3.3 s
    out = prepare(KeypointSequence(keypoints, "halpe26", 60.0))
    assert out.segments[0] and out.leg_seen[0][0] == 1.0 and LEG_SEEN_MIN < out.leg_seen[0][1] < 0.5
    (note,) = [w for w in out.warnings[0] if w.startswith("right leg")]
    assert note.endswith("of the frames that are scored (reps, landings, stances): its call rests on the frames "
                         "around them") and float(note.split("seen in ")[1].split("%")[0]) < 100 * LEG_SEEN_MIN
    short = prepare(KeypointSequence(keypoints[:180], "halpe26", 60.0))
    assert short.segments == [[]] and not any(w.startswith("right leg") for w in short.warnings[0])


def test_a_leg_hardly_seen_gets_the_undecided_answer():
    """A valgus knee never seen read 0.01, "no valgus"."""
    windows = {"valgus_probability": np.array([[0.01, 0.01], [0.9, 0.01]]),
               "frontal_fppa_deg": np.array([[1.0, 2.0], [15.0, 2.0]])}
    args = (np.array([0, 1]), np.ones((2, 8)), np.zeros(2), 30.0, 2, [], [])
    seen = [np.array([1.0, 0.2]), np.array([0.1, 1.0])]
    out, notes = aggregate_recordings(windows, *args, [("left", "right"), ("right",)], 0.22, seen)
    np.testing.assert_allclose(out["valgus_probability"], [[0.01, 0.22], [0.0, 0.01]])  # the free leg stays 0
    assert np.isnan(out["frontal_fppa_deg"][0, 1]) and out["frontal_fppa_deg"][0, 0] == 1.0
    assert notes[0] == ["right leg (hip, knee, ankle) seen in 20% of the frames: its knee's frontal-plane angle "
                        "cannot be read; valgus probability set to 0.22, the model's undecided answer; film the leg "
                        "unhidden"]
    assert notes[1] == []  # an unseen free leg is not scored: nothing to say
    untouched, _ = aggregate_recordings(windows, *args, [("left", "right")] * 2, 0.22)
    np.testing.assert_allclose(untouched["valgus_probability"], windows["valgus_probability"])


def test_a_confidence_scale_under_any_learnt_is_rescaled_to_the_typical_one():
    """Another estimator's scores (every confidence x 0.2) moved held-out AUROC 0.937 -> 0.884; the scales the
    generator's estimator families give (90th percentile 0.49-1.0) pass as they are."""
    from valgusml.preprocess import CONFIDENCE_LEVEL_MIN, CONFIDENCE_LEVEL_TYPICAL

    seq = squat(seconds=4.0)
    low = prepare(seq.replace(confidence=np.full(seq.confidence.shape, 0.1, np.float32)))
    np.testing.assert_allclose(low.joints[..., 2][low.mask > 0], CONFIDENCE_LEVEL_TYPICAL, rtol=1e-6)
    assert any(w.startswith("confidence runs low: its 90th percentile on hips, knees and ankles is 0.10")
               for w in low.warnings[0])
    learnt = prepare(seq.replace(confidence=np.full(seq.confidence.shape, CONFIDENCE_LEVEL_MIN + 0.01, np.float32)))
    np.testing.assert_allclose(learnt.joints[..., 2][learnt.mask > 0], CONFIDENCE_LEVEL_MIN + 0.01, rtol=1e-6)
    assert not any(w.startswith("confidence runs low") for w in learnt.warnings[0])


def test_resample_function_edges():
    xy = np.arange(10, dtype=np.float64)[:, None, None].repeat(2, 1).repeat(2, 2)
    conf = np.ones((10, 2), dtype=np.float32)
    conf[:4, 1] = 0  # joint 1 unseen for the first 4 frames: nothing to interpolate from, missing and held
    conf[5:7, 0] = 0  # joint 0: a 0.2 s gap, filled
    out, c, stats = resample(xy, conf, 10.0, 20.0, max_gap_s=0.25)
    assert out.shape == (19, 2, 2)
    np.testing.assert_allclose(out[:, 0, 0], np.arange(19) / 2)
    assert (
        (c[:, 0] == 1).all()
        and stats["filled_samples"] == 5
        and stats["longest_filled_s"] == pytest.approx(0.2)
    )
    assert (c[:8, 1] == 0).all() and (c[8:, 1] == 1).all()
    np.testing.assert_allclose(out[:8, 1, 0], 4.0)


def test_low_confidence_warning():
    seq = squat()
    out = prepare(seq.replace(confidence=np.full(seq.keypoints.shape[:2], 0.1, dtype=np.float32)))
    assert any(w.startswith("low confidence: mean 0.10") for w in out.warnings[0])


def test_prepare_many_indexes_sequences():
    seqs = [squat(seconds=3.0, id="a"), squat(seconds=10.0, fps=60, id="b"), squat("coco17", id="c")]
    out = prepare_many(seqs)
    np.testing.assert_array_equal(out.sequence_index, [0, 1, 1, 1, 1, 1, 1, 2])
    assert out.n_sequences == 3 and len(out.warnings[1]) == 1
    with pytest.raises(InputError, match="input 1: sequence 'short': too short"):
        prepare_many([seqs[0], squat(seconds=0.1, id="short")])
    # alone, it is not numbered; the predictor numbers recordings as it does its own checks
    with pytest.raises(InputError, match="^sequence 'short': too short"):
        prepare_many([squat(seconds=0.1, id="short")])
    with pytest.raises(InputError, match="^recording 1: sequence 'short': too short"):
        prepare_many([seqs[0], squat(seconds=0.1, id="short")], noun="recording")


def test_prepare_is_fast():
    seq = squat("halpe26", fps=60.0, seconds=3.0)
    prepare(seq)
    t0 = time.perf_counter()
    for _ in range(20):
        prepare(seq)
    per_call = (time.perf_counter() - t0) / 20
    assert per_call < 0.02, f"prepare took {per_call * 1e3:.1f} ms for a 3-s sequence"


def test_aggregate_windows_rule():
    prob = np.array([[0.9, 0.1], [0.2, 0.1], [0.3, 0.2], [0.7, 0.6]])
    mech = np.zeros((4, 2, 5))
    mech[:, :, 0] = 1.0
    mech[0, 0] = [0, 1, 0, 0, 0]
    sev = np.array([[20.0, 1.0], [2.0, 1.0], [3.0, 2.0], [10.0, 5.0]])
    mask = np.ones((4, 96))
    mask[3, 48:] = 0  # sequence 1's second window is half padding
    seq = np.array([0, 0, 1, 1])
    out = aggregate_windows(
        {"valgus_probability": prob, "mechanism_probabilities": mech, "severity_deg": sev}, seq, mask
    )
    # sequence 0 (equal windows): the upper half is the stronger window for each limb
    np.testing.assert_allclose(out["valgus_probability"][0], [0.9, 0.1])
    np.testing.assert_allclose(out["mechanism_probabilities"][0, 0], [0, 1, 0, 0, 0])
    np.testing.assert_allclose(out["severity_deg"][0, 0], 20.0)
    # sequence 1: windows of 96 and 48 frames; the 48-frame one is stronger but holds only 1/3 of the frames,
    # so the upper half by frames spans both: frame-weighted mean
    np.testing.assert_allclose(out["valgus_probability"][1, 0], (0.7 * 48 + 0.3 * 96) / 144)
    np.testing.assert_allclose(out["mechanism_probabilities"].sum(-1), 1.0)
    single = aggregate_windows({"valgus_probability": prob[:1]}, np.array([0]), mask[:1])
    np.testing.assert_allclose(single["valgus_probability"], prob[:1])
    # An output some windows do not give (NaN: the frontal angle of a window without load) averages over the
    # windows that give it, and stays NaN where none does.
    frontal = np.array([[12.0, np.nan], [np.nan, np.nan], [4.0, np.nan], [8.0, np.nan]])
    out = aggregate_windows({"valgus_probability": prob, "frontal_fppa_deg": frontal}, seq, mask)
    np.testing.assert_allclose(out["frontal_fppa_deg"][0, 0], 12.0)  # the chosen window gives one
    np.testing.assert_allclose(out["frontal_fppa_deg"][1, 0], (8.0 * 48 + 4.0 * 96) / 144)
    assert np.isnan(out["frontal_fppa_deg"][:, 1]).all() and not np.signbit(out["frontal_fppa_deg"][:, 1]).any()


def test_worst_segment_rule_keeps_one_valgus_rep():
    from valgusml.features.phases import Segment

    n = 41
    prob = np.full((n, 2), 0.01)
    prob[19:22] = [0.9, 0.2]  # the windows that see part of the rep
    prob[20] = [0.999, 0.2]  # the one window over all of it
    mech = np.zeros((n, 2, 5))
    mech[..., 0] = 1.0
    mech[20, 0] = [0, 0, 0, 1, 0]
    mask = np.ones((n, 96))
    starts = np.arange(n) * 48.0
    rep = [Segment(start=20 * 48 + 10, end=20 * 48 + 80, kind="rep", limbs=("left", "right"))]
    seq = np.zeros(n, dtype=np.int64)
    per_window = {"valgus_probability": prob, "mechanism_probabilities": mech}
    with_rep = aggregate_windows(per_window, seq, mask, segments=[rep], window_start=starts)
    # windows weighted by the frames they share with the rep: (70 x 0.999 + 38 x 0.9 + 32 x 0.9) / 140
    np.testing.assert_allclose(with_rep["valgus_probability"][0], [(70 * 0.999 + 70 * 0.9) / 140, 0.2])
    np.testing.assert_allclose(with_rep["mechanism_probabilities"][0, 0], [0.5, 0, 0, 0.5, 0])
    # without segments the window rule dilutes it over the standing windows
    assert aggregate_windows(per_window, seq, mask)["valgus_probability"][0, 0] < 0.2
    # a limb the segment does not load falls back to the window rule
    left_only = [Segment(rep[0].start, rep[0].end, "rep", ("left",))]
    out = aggregate_windows(per_window, seq, mask, segments=[left_only], window_start=starts)
    assert out["valgus_probability"][0, 1] < 0.2


def test_normalised_coordinates_are_scaled_to_pixels_by_the_image_size():
    """x and y of normalised coordinates are fractions of different lengths: on a 1080 x 1920 portrait frame
    the same motion must read as it does in pixels, and without the size the predictor says it is distorted."""
    pixels = squat(amplitude=40.0)
    size = np.array([1080.0, 1920.0], dtype=np.float32)
    normalised = pixels.replace(keypoints=pixels.keypoints / size,
                                meta={"coordinates": "normalized", "image_width": 1080, "image_height": 1920})
    as_pixels, scaled = prepare(pixels), prepare(normalised)
    np.testing.assert_allclose(scaled.measures, as_pixels.measures, atol=0.1)  # float32 round trip
    numpy_size = prepare(normalised.replace(meta={**normalised.meta, "image_width": np.int64(1080),
                                                  "image_height": np.float32(1920)}))  # as a decoder may give them
    np.testing.assert_array_equal(numpy_size.measures, scaled.measures)
    assert scaled.warnings == as_pixels.warnings
    # Without the size, the frame's shape is read off the body (features.image): a portrait frame, read as such.
    unknown = prepare(normalised.replace(meta={"coordinates": "normalized"}))
    assert any(w.startswith("normalised image coordinates without the image size: read as a 9:16 portrait frame")
               for w in unknown.warnings[0])
    np.testing.assert_allclose(unknown.measures, as_pixels.measures, atol=0.1)
    # A body whose feet are never seen shows too little to read the shape: read as it is, and said to be distorted.
    feet = [canonical_index(f"{side}_{part}") for side in ("left", "right") for part in ("heel", "big_toe", "small_toe")]
    confidence = normalised.confidence.copy()
    confidence[:, feet] = 0.0
    no_feet = normalised.replace(meta={"coordinates": "normalized"}, confidence=confidence)
    blind = prepare(no_feet)
    assert any("the body shows too little to read its shape" in w for w in blind.warnings[0])
    assert not np.allclose(blind.measures, as_pixels.measures, atol=1.0)  # and the distortion is real


@pytest.mark.parametrize("width, height", [(1e300, 1e300), (-5, 0), (float("nan"), 1920), ("1080", 1920),
                                           (True, True)])
def test_an_unusable_image_size_is_refused_not_turned_into_nan_outputs(width, height):
    """Scaling by 1e300 overflowed float32 into NaN model outputs; a zero or negative size was taken for no size."""
    pixels = squat(amplitude=40.0)
    normalised = pixels.replace(keypoints=pixels.keypoints / 1000.0, id="clip3",
                                meta={"coordinates": "normalized", "image_width": width, "image_height": height})
    with pytest.raises(InputError, match=r"sequence 'clip3': meta image_width x image_height is .*not an image size"):
        prepare(normalised)


def test_unsure_points_are_treated_as_missing_relative_to_the_joints_usual_confidence():
    """A low-confidence guess (0.1 where the knee usually scores 0.6) lands anywhere: with min_confidence_ratio
    it is gap-filled like a missing point, so the frame reads as its neighbours do; at 0 it is kept."""
    clean = squat(amplitude=0.0)
    keypoints, confidence = clean.keypoints.copy(), np.full(clean.keypoints.shape[:2], 0.6, dtype=np.float32)
    keypoints[40, LKNEE, 0] += 120.0  # a wild guess, 2 thigh-widths off
    confidence[40, LKNEE] = 0.1
    guessed = clean.replace(keypoints=keypoints, confidence=confidence)
    cfg = PreprocessConfig(min_confidence_ratio=0.5)
    reference = prepare(clean.replace(confidence=np.full_like(confidence, 0.6)), cfg)
    np.testing.assert_allclose(prepare(guessed, cfg).measures, reference.measures, atol=1e-3)
    kept = prepare(guessed, PreprocessConfig())
    assert np.abs(kept.measures - reference.measures).max() > 10.0
    with pytest.raises(ConfigError, match="min_confidence_ratio"):
        PreprocessConfig(min_confidence_ratio=1.0)


def test_relative_confidence_gives_every_score_scale_the_same_model_input():
    """OpenPose scores good points 0.4-0.9, MediaPipe 0.8-1: with relative_confidence the model reads each
    recording's confidence against its own 90th percentile, so a uniform rescaling changes nothing."""
    seq = squat()
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.6, 1.0, seq.keypoints.shape[:2]).astype(np.float32)
    cfg = PreprocessConfig(relative_confidence=True)
    given = prepare(seq.replace(confidence=confidence), cfg)
    rescaled = prepare(seq.replace(confidence=0.6 * confidence), cfg)
    np.testing.assert_allclose(rescaled.joints, given.joints, atol=1e-5)
    assert given.joints[..., 2].max() == pytest.approx(1.0)
    raw = prepare(seq.replace(confidence=0.6 * confidence))
    assert raw.joints[..., 2].max() < 0.61  # as reported without it


def test_a_recording_with_no_task_stands_on_the_foot_that_stays_put():
    """Without a task name a single-leg task is read from the motion only when one foot stays put and the other
    moves; then the free knee is not scored, and the warning says why. Two planted feet keep both knees."""
    from valgusml.synth import generate_sequences, load_preset

    tasks = {"single_leg_squat_right": 0.5, "bilateral_squat": 0.5}
    cfg = load_preset("clean", n_athletes=4, seed=2, tasks__probabilities=tasks, tasks__trials_per_athlete=2)
    seen = set()
    for seq in generate_sequences(cfg, range(4)):
        unnamed = prepare(seq.replace(task=""))
        if seq.task == "single_leg_squat_right":
            assert unnamed.scored_limbs == [("right",)]
            assert any("no task given: the right foot stays put" in w for w in unnamed.warnings[0])
        else:
            assert unnamed.scored_limbs == [("left", "right")]
            assert not any("no task given" in w for w in unnamed.warnings[0])
        assert prepare(seq).scored_limbs == [("right",) if seq.task.endswith("right") else ("left", "right")]
        seen.add(seq.task)
    assert seen == set(tasks)


def test_gait_seen_in_2d_is_flagged_as_read_low():
    """Walking and running in 2D carry the warning that a few degrees of collapse may be read low, whether the
    task is named or read from the motion (long recordings by their stances, short ones by their movement);
    squats and drop jumps in 2D and gait in 3D do not."""
    from valgusml.preprocess import GAIT_IN_2D_WARNING
    from valgusml.synth import generate_sequences, load_preset

    tasks = {"walking": 0.25, "running": 0.25, "bilateral_squat": 0.25, "drop_vertical_jump": 0.25}
    read = {True: [], False: []}  # unnamed 2D: gait or not -> warned
    for dims, duration_s in ((2, [1.3, 2.5]), (2, [5.0, 6.0]), (3, [5.0, 6.0])):
        cfg = load_preset("clean", n_athletes=4, seed=4, tasks__probabilities=tasks, tasks__trials_per_athlete=4,
                          observation__dims=dims, observation__duration_s=duration_s)
        sequences = list(generate_sequences(cfg, range(4)))
        assert {seq.task for seq in sequences} == set(tasks)
        for seq in sequences:
            gait_2d = dims == 2 and seq.task in ("walking", "running")
            assert (GAIT_IN_2D_WARNING in prepare(seq).warnings[0]) == gait_2d, (dims, seq.task)
            unnamed = GAIT_IN_2D_WARNING in prepare(seq.replace(task="")).warnings[0]
            if dims == 3:
                assert not unnamed
            else:
                read[gait_2d].append(unnamed)
    assert np.mean(read[True]) >= 0.9 and not any(read[False]), read


def test_a_single_stride_of_gait_in_2d_says_it_is_shorter_than_any_training_walk():
    from valgusml.preprocess import SHORT_GAIT_S
    from valgusml.synth import generate_sequences, load_preset

    tasks = {"walking": 0.4, "running": 0.4, "bilateral_squat": 0.2}
    for duration_s, short in (([1.3, 1.6], True), ([3.0, 4.0], False)):
        cfg = load_preset("clean", n_athletes=3, seed=5, tasks__probabilities=tasks, tasks__trials_per_athlete=4,
                          observation__dims=2, observation__duration_s=duration_s)
        for seq in generate_sequences(cfg, range(3)):
            warned = [w for w in prepare(seq).warnings[0] if w.startswith("one stride of gait")]
            gait = seq.task in ("walking", "running")
            assert bool(warned) == (gait and short), (seq.task, seq.n_frames / seq.fps)
            if warned:
                assert f"({seq.n_frames / seq.fps:.1f} s)" in warned[0] and seq.n_frames / seq.fps < SHORT_GAIT_S
