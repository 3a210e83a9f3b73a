"""The transfer suites: the real-motion renderer's geometry, rear views, determinism, view inference; other
labelled data scored whole; the transfer table."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import valgusml
from valgusml.cli import main as cli_main
from valgusml.evaluation.transfer import ViewSpec, athlete_frame, render, summarise, view_family
from valgusml.evaluation.transfer.real_motion import (
    clear_of_threshold,
    render_views,
    score_views,
    task_from_name,
)
from valgusml.features.rule import apply_rule
from valgusml.features.view import infer_view
from valgusml.skeleton import canonical_index

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
SUBJECT4 = REAL / "opencap_validation_subject4"
needs_real = pytest.mark.skipif(not SUBJECT4.is_dir(), reason="../shared/realdata is absent")


def test_a_known_point_lands_where_the_pinhole_formula_puts_it():
    view = ViewSpec(yaw_deg=0.0, distance_m=3.5, height_m=1.0, focal_px=1400.0)
    points = np.array([[[0.0, 0.0, 1.0], [0.5, 0.0, 1.0], [0.0, 0.0, 0.3], [0.5, 0.7, 1.0]]])
    pixels = render(points, view, aim_height_m=1.0)[0]
    np.testing.assert_allclose(pixels[0], [960.0, 540.0], atol=1e-9)  # the aim point: the image centre
    np.testing.assert_allclose(pixels[1], [960.0 + 1400.0 * 0.5 / 3.5, 540.0], atol=1e-9)  # the subject's left: image right
    np.testing.assert_allclose(pixels[2], [960.0, 540.0 + 1400.0 * 0.7 / 3.5], atol=1e-9)  # lower: further down
    np.testing.assert_allclose(pixels[3], [960.0 + 1400.0 * 0.5 / 4.2, 540.0], atol=1e-9)  # 0.7 m further away
    behind = render(points, ViewSpec(yaw_deg=180.0), aim_height_m=1.0)[0]
    np.testing.assert_allclose(behind[1], [960.0 - 1400.0 * 0.5 / 3.5, 540.0], atol=1e-9)  # mirrored in the image
    side = render(points, ViewSpec(yaw_deg=90.0), aim_height_m=1.0)[0]
    np.testing.assert_allclose(side[1], [960.0, 540.0], atol=1e-6)  # a sideways offset points at the camera


def test_view_families():
    assert [view_family(y) for y in (0, 20, -40, 70, -90, 160, 180, -160)] == [
        "front", "front", "front", "side", "side", "rear", "rear", "rear"
    ]


def test_task_from_file_names():
    assert task_from_name(Path("DJAsym2.trc")) == "drop_vertical_jump"
    assert task_from_name(Path("squatsAsym1.trc")) == "bilateral_squat"
    assert task_from_name(Path("walkingTI1.trc")) == "walking"
    assert task_from_name(Path("BalancingTrial_0-100.trc")) == "single_leg_squat_left"
    assert task_from_name(Path("static1.trc")) is None
    assert task_from_name(Path("trial7.trc")) == ""


@pytest.mark.realdata
@needs_real
def test_rear_views_mirror_left_and_right_in_the_image_but_not_in_the_labels():
    seq = valgusml.io.read(SUBJECT4 / "DJ1.trc").to_canonical()
    world = athlete_frame(seq.keypoints.astype(np.float64))
    lh, rh = canonical_index("left_hip"), canonical_index("right_hip")
    front, rear = render(world, ViewSpec(0.0)), render(world, ViewSpec(180.0))
    assert np.nanmedian(front[:, lh, 0] - front[:, rh, 0]) > 20  # pixels: left on the image right
    assert np.nanmedian(rear[:, lh, 0] - rear[:, rh, 0]) < -20  # from behind: left on the image left
    for yaw, facing in ((0.0, "front"), (20.0, "front"), (-20.0, "front"), (180.0, "rear"), (160.0, "rear"),
                        (90.0, "side"), (-80.0, "side")):
        assert infer_view(render(world, ViewSpec(yaw))).facing == facing, yaw
    # the labels come from the 3D motion: the same whatever the view
    rule = apply_rule(seq.keypoints.astype(np.float64), seq.fps, "drop_vertical_jump")
    assert rule["left"]["valgus"] == {"female": False, "male": False}


def _generated_world(**overrides) -> tuple[np.ndarray, float]:
    from valgusml.synth import generate_sequences, generator_config

    cfg = generator_config("realistic", n_athletes=1, **{"observation.dims": 3, "noise.enabled": False,
                                                         "tasks.probabilities": {"bilateral_squat": 1.0}, **overrides})
    seq = next(iter(generate_sequences(cfg, [0]))).to_canonical()
    return athlete_frame(seq.keypoints.astype(np.float64)), seq.fps


def test_a_pose_estimator_family_films_the_motion_with_its_own_error():
    from valgusml.evaluation.transfer.render import framing_distance_m, render_through
    from valgusml.features.geometry import limb_fppa_deg

    world, fps = _generated_world()
    clean = render(world, ViewSpec(0.0))
    mocap, confidence = render_through(world, fps, ViewSpec(0.0), "mocap", seed=3)
    assert np.nanmedian(np.abs(mocap - clean)) < 3.0 and confidence.max() == 1.0  # markers: pixels off, no more
    again = render_through(world, fps, ViewSpec(0.0), "mediapipe", seed=3)[0]
    np.testing.assert_array_equal(again, render_through(world, fps, ViewSpec(0.0), "mediapipe", seed=3)[0])
    assert np.nanmedian(np.abs(again - clean)) > np.nanmedian(np.abs(mocap - clean))

    # MediaPipe pulls the knee towards the hip-ankle line (it regresses towards the average pose): a collapsing
    # knee reads a smaller frontal angle through it than through marker-based motion capture.
    hip, knee, ankle = ([canonical_index(f"{side}_{j}") for side in ("left", "right")] for j in ("hip", "knee", "ankle"))
    caved = world.copy()
    caved[:, knee[0], 0] -= 0.08  # 8 cm medially: the athlete's left knee towards the midline

    def left_fppa(pixels):  # y up, as the frontal angle is read
        x, y = pixels[..., 0], -pixels[..., 1]
        return np.nanmedian(limb_fppa_deg(x[:, hip], y[:, hip], x[:, knee], y[:, knee], x[:, ankle], y[:, ankle])[:, 0])

    seen = {f: left_fppa(render_through(caved, fps, ViewSpec(0.0), f, seed=0)[0]) for f in ("mocap", "mediapipe")}
    assert seen["mediapipe"] < seen["mocap"] - 1.0, seen

    # A gap in the recording stays a gap: the family's smoothing does not carry it on.
    gappy = world.copy()
    gappy[10:20, knee[0]] = np.nan
    filmed = render_through(gappy, fps, ViewSpec(0.0), "mediapipe", seed=0)[0]
    assert np.isnan(filmed[10:20, knee[0]]).all() and np.isfinite(filmed[25:, knee[0]]).mean() > 0.9

    # A walk towards the camera is filmed from further back, so that it stays in the frame.
    walk = world.copy()
    walk[..., 1] -= np.linspace(-1.5, 1.5, len(walk))[:, None]  # 3 m towards a camera in front (-y)
    distance = framing_distance_m(walk, 0.0)
    assert distance > 3.5 and framing_distance_m(walk, 90.0) == pytest.approx(3.5)
    pixels = render(walk, ViewSpec(0.0, distance_m=distance))
    assert np.nanmax(pixels[..., 1]) < 1080 and np.nanmin(pixels[..., 1]) > 0


def test_a_labelled_3d_data_set_is_filmed_from_any_view_with_its_labels(tmp_path):
    from valgusml.data import open_dataset, write_dataset
    from valgusml.errors import ConfigError, InputError
    from valgusml.evaluation.transfer.film import film_sequences
    from valgusml.synth import generate_sequences, generator_config

    cfg = generator_config("realistic", n_athletes=2, **{"observation.dims": 3, "tasks.trials_per_athlete": 2,
                                                         "tasks.probabilities": {"bilateral_squat": 1.0}})
    source = list(generate_sequences(cfg, [0, 1]))
    rear = list(film_sequences(source, (150.0, 180.0), "openpose", seed=4))
    assert [(s.id, s.athlete_id, s.task, s.labels) for s in rear] == [
        (s.id, s.athlete_id, s.task, s.labels) for s in source]
    assert all(s.dims == 2 and s.confidence is not None and s.meta["estimator"] == "openpose" for s in rear)
    assert all(150.0 <= abs(s.meta["camera"]["yaw_deg"]) <= 180.0 for s in rear)
    assert all(infer_view(s.keypoints).facing == "rear" for s in rear)  # read as filmed: from behind
    again = list(film_sequences(source, (150.0, 180.0), "openpose", seed=4))
    assert all(np.array_equal(a.keypoints, b.keypoints, equal_nan=True) for a, b in zip(rear, again, strict=True))
    front = list(film_sequences(source, (0.0, 10.0)))  # generic error
    assert all(infer_view(s.keypoints).facing == "front" and s.meta["estimator"] == "generic" for s in front)
    with pytest.raises(InputError, match="2D"):
        next(film_sequences(rear))
    with pytest.raises(ConfigError, match="yaw band"):
        next(film_sequences(source, (45.0, 0.0)))
    for jitter in (-0.005, float("nan")):  # numpy's "scale < 0", or every filmed point missing
        with pytest.raises(ConfigError, match="jitter must be a finite length >= 0"):
            next(film_sequences(source, jitter_m=jitter))
    with pytest.raises(ConfigError, match="seed must be an integer >= 0, got -1"):  # numpy's "expected non-negative"
        next(film_sequences(source, seed=-1))
    hipless = source[0].to_canonical()
    hipless = hipless.replace(keypoints=np.where(np.isin(np.arange(hipless.n_joints), [canonical_index("left_hip")])[
        None, :, None], np.nan, hipless.keypoints))
    with pytest.raises(InputError, match=f"{hipless.id}.*both hips"):
        next(film_sequences([hipless]))

    # the script writes it as a data set `valgusml evaluate transfer.other_data=` reads
    write_dataset(tmp_path / "mocap", source, shard_size=64)
    assert cli_main(["film", str(tmp_path / "mocap"), str(tmp_path / "filmed"), "--yaw", "150", "180",
                     "--estimator", "openpose", "--seed", "4"]) == 0
    filmed = open_dataset(tmp_path / "filmed")
    assert len(filmed) == len(source) and filmed.dims == 2
    np.testing.assert_array_equal(filmed[0].keypoints, rear[0].keypoints)

    # many views of each trial in one data set: bands x estimators x copies, ids kept unique
    from valgusml.evaluation.transfer.film import film_views

    many = list(film_views(source, [(0.0, 45.0), (150.0, 180.0)], ["generic", "openpose"], copies=2, seed=4))
    assert len(many) == 8 * len(source) and len({s.id for s in many}) == len(many)
    assert many[0].id == f"{source[0].id}@0-45/generic/0" and many[-1].id == f"{source[-1].id}@150-180/openpose/1"
    assert [s.labels for s in many] == [s.labels for s in source] * 8
    rear_first = many[4 * len(source):5 * len(source)]  # the second band's first filming
    assert all(150.0 <= abs(s.meta["camera"]["yaw_deg"]) <= 180.0 for s in rear_first)
    np.testing.assert_array_equal(many[0].keypoints, next(film_sequences(source, (0.0, 45.0), "generic", seed=4)).keypoints)
    with pytest.raises(ConfigError, match="copies"):
        next(film_views(source, copies=0))
    assert cli_main(["film", str(tmp_path / "mocap"), str(tmp_path / "views"), "--yaw", "0", "45", "--yaw", "150",
                     "180", "--estimator", "generic", "openpose", "--copies", "2", "--seed", "4"]) == 0
    views = open_dataset(tmp_path / "views")
    assert [s.id for s in views] == [s.id for s in many]
    np.testing.assert_array_equal(views[len(views) - 1].keypoints, many[-1].keypoints)
    assert cli_main(["film", str(tmp_path / "absent"), str(tmp_path / "never")]) == 1  # told, not a traceback
    assert cli_main(["film", str(tmp_path / "views"), str(tmp_path / "twice")]) == 1  # 2D cannot be filmed again
    assert not (tmp_path / "never").exists()
    # An existing OUT is refused; --overwrite replaces it whole (writing over it in place kept the old set's shards
    # past the new last, and the two sets mixed)
    assert cli_main(["film", str(tmp_path / "mocap"), str(tmp_path / "views"), "--seed", "4"]) == 1
    assert len(open_dataset(tmp_path / "views")) == 8 * len(source)
    assert cli_main(["film", str(tmp_path / "mocap"), str(tmp_path / "views"), "--seed", "4", "--overwrite"]) == 0
    assert [s.id for s in open_dataset(tmp_path / "views")] == [s.id for s in source]
    assert not list(tmp_path.glob(".views.*"))  # no temporary folder left beside it


@pytest.mark.realdata
@needs_real
def test_real_views_filmed_through_each_estimator_family_are_told_apart():
    files = [SUBJECT4 / "DJ1.trc"]
    generic = render_views(files, yaws=(0.0, 180.0), seeds=(0,))
    both = render_views(files, yaws=(0.0, 180.0), seeds=(0,), estimators=("generic", "openpose"))
    assert [v.estimator for v in both] == ["none", "generic", "generic", "openpose", "openpose"]
    for a, b in zip(generic, both[:3], strict=True):  # the generic views are the same with a family beside them
        np.testing.assert_array_equal(a.sequence.keypoints, b.sequence.keypoints)
    filmed = both[3:]
    assert all(v.sequence.confidence is not None and v.rule == both[0].rule for v in filmed)
    rows = score_views(both, _RuleScorer(), 0.5)
    assert {r["estimator"] for r in rows} == {"none", "generic", "openpose"}
    summary = summarise(rows)
    assert set(summary["by_estimator"]) == {"generic", "openpose"}
    near = [r for r in rows if r["family"] in ("front", "rear")]  # every view here is square on
    assert summary["all"]["agreement_front_rear_20_female"] == pytest.approx(
        np.mean([r["call"] == r["rule_female"] for r in near]))  # pooled over both estimators' views
    assert "by_estimator" not in summarise(score_views(generic, _RuleScorer(), 0.5))
    from valgusml.errors import ConfigError

    with pytest.raises(ConfigError, match="openpos"):
        render_views(files, yaws=(0.0,), seeds=(0,), estimators=("openpos",))


def _yaw_error(read: float, true: float) -> float:
    return abs((read - true + 180.0) % 360.0 - 180.0)


@pytest.mark.parametrize("source", ["sample", "real"])
def test_the_view_reads_a_signed_yaw_from_rendered_front_rear_and_side_views(source):
    """The camera's yaw, signed, near square on from the feet (the hips' width hardly changes there) and from
    the side by the hips' width: within 5 deg + 30% near square on, 10 deg from the side."""
    from valgusml.features.view import read_view
    from valgusml.io import samples

    if source == "sample":
        world = samples.squat_3d().keypoints.astype(np.float64)
        world[..., 1] -= np.nanmean(world[..., 1])
    else:
        if not SUBJECT4.is_dir():
            pytest.skip("../shared/realdata not present")
        world = athlete_frame(valgusml.io.read(SUBJECT4 / "squats1.trc").to_canonical().keypoints.astype(np.float64))
    for yaw in (-30.0, -15.0, 0.0, 15.0, 30.0, 160.0, -165.0, 180.0):
        view = read_view(render(world, ViewSpec(yaw)))
        off_axis = min(abs(yaw), 180.0 - abs(yaw))
        assert _yaw_error(view.yaw_deg, yaw) <= 5.0 + 0.3 * off_axis, (yaw, view)
        assert view.facing == ("front" if abs(yaw) < 90 else "rear")
    for yaw in (-75.0, 75.0):
        view = read_view(render(world, ViewSpec(yaw)))
        assert view.facing == "side" and _yaw_error(view.yaw_deg, yaw) <= 10.0, (yaw, view)


class _RuleScorer:
    """Stands in for a model: p from the 2D rule's dynamic FPPA (deterministic, no ONNX needed)."""

    def predict(self, sequences):
        from valgusml.scoring.arrays import ScoreArrays

        prob, angle = [], []
        for seq in sequences:
            rule = apply_rule(seq.keypoints.astype(np.float64), seq.fps, seq.task or "")
            dynamic = [rule[limb]["dynamic_fppa_deg"] for limb in ("left", "right")]
            prob.append([1.0 / (1.0 + math.exp(-((d or 0.0) - 10.0) / 2.0)) for d in dynamic])
            angle.append([np.nan if d is None else d for d in dynamic])  # the angle its call rests on
        prob = np.array(prob)
        mech = np.zeros(prob.shape + (5,))
        mech[..., 0] = 1.0
        return ScoreArrays(prob, mech, np.zeros_like(prob), np.array(angle))


@pytest.mark.realdata
@needs_real
def test_the_suite_is_deterministic_and_summarised_per_view_family():
    files = [SUBJECT4 / "DJ1.trc", SUBJECT4 / "static1.trc"]
    first = score_views(render_views(files, yaws=(0.0, 180.0, 90.0), seeds=(0,)), _RuleScorer(), 0.5)
    second = score_views(render_views(files, yaws=(0.0, 180.0, 90.0), seeds=(0,)), _RuleScorer(), 0.5)
    assert first == second
    assert {r["family"] for r in first} == {"3d", "front", "rear", "side"}
    assert {r["file"] for r in first} == {"opencap_validation_subject4/DJ1.trc"}  # static trials are skipped
    summary = summarise(first)
    assert summary["front"]["facing_correct"] == 1.0 and summary["rear"]["facing_correct"] == 1.0
    assert summary["3d"]["agreement_female"] == 1.0  # the rule agrees with itself on the 3D motion
    assert summary["3d"]["angle_error_median_deg"] <= 0.01  # and reads its own angle (float32, 3 decimals)
    assert summary["front"]["angle_n"] == summary["3d"]["angle_n"] == 2
    assert 0.0 <= summary["all"]["view_spread_median"] <= 1.0
    # A recording is filmed alike alone or beside others (its noise is keyed by its name, not its place).
    alone = render_views([SUBJECT4 / "DJ2.trc"], yaws=(180.0,), seeds=(0, 1))
    among = [v for v in render_views([*files, SUBJECT4 / "DJ2.trc"], yaws=(180.0,), seeds=(0, 1))
             if v.file == "opencap_validation_subject4/DJ2.trc"]
    assert [v.seed for v in alone] == [v.seed for v in among] == [-1, 0, 1]
    for a, b in zip(alone, among, strict=True):
        np.testing.assert_array_equal(a.sequence.keypoints, b.sequence.keypoints)
    assert not np.array_equal(alone[1].sequence.keypoints, alone[2].sequence.keypoints)  # seeds still differ


@pytest.mark.realdata
@needs_real
def test_rows_say_when_the_rule_read_estimated_3d():
    """Pose2Sim's triangulated keypoints are estimated 3D (the rule's label can carry their error); OpenCap's lab
    motion capture is not."""
    markerless = sorted((SUBJECT4.parent / "pose2sim_demo").glob("*.trc"))
    if not markerless:
        pytest.skip("no Pose2Sim recordings")
    rows = score_views(render_views([SUBJECT4 / "DJ1.trc", markerless[0]], yaws=(0.0,), seeds=(0,)), _RuleScorer(), 0.5)
    flagged = {r["file"]: r["rule_on_estimated_3d"] for r in rows}
    assert flagged == {"opencap_validation_subject4/DJ1.trc": False, f"pose2sim_demo/{markerless[0].name}": True}


def _row(yaw: float, fppa: float | None, call: bool, task: str = "walking", limb: str = "left") -> dict:
    threshold = 5.0  # walking, female
    return {"file": f"f{fppa}", "task": task, "family": view_family(yaw), "yaw_deg": yaw, "seed": 0, "limb": limb,
            "probability": float(call), "call": call, "rule_female": fppa is not None and fppa >= threshold,
            "rule_male": fppa is not None and fppa >= 4.0, "dynamic_fppa_deg": fppa,
            "inferred_facing": view_family(yaw)}


def test_agreement_on_clear_limbs_leaves_out_calls_within_the_measurement_error():
    rows = [
        _row(0.0, 6.2, False),  # borderline valgus (threshold 5, SEM 3) missed: counts only in the plain figure
        _row(180.0, 4.0, True),  # borderline none called valgus: likewise
        _row(20.0, 12.0, True),  # clear valgus, agreed
        _row(-20.0, 1.0, True),  # clear none, called valgus
        _row(160.0, None, False),  # no scored phase: clearly none, agreed
        _row(90.0, 30.0, False),  # side view: not in the near-straight-on figures
    ]
    near = summarise(rows)["all"]
    assert near["agreement_front_rear_20_female"] == pytest.approx(2 / 5)
    assert near["clear_share_front_rear_20"] == pytest.approx(3 / 5)
    assert near["agreement_front_rear_20_clear"] == pytest.approx(2 / 3)
    assert clear_of_threshold(_row(0.0, 8.0, True)) and not clear_of_threshold(_row(0.0, 7.9, True))
    assert clear_of_threshold(_row(0.0, 8.9, True), sex="male") and not clear_of_threshold(_row(0.0, 6.9, True), sex="male")


def test_the_angle_a_call_rests_on_is_scored_against_the_rules_angle_per_view_family():
    from valgusml.evaluation.transfer.real_motion import angle_agreement

    def row(yaw: float, rule_deg: float | None, angle: float | None) -> dict:
        return {**_row(yaw, rule_deg, False), "frontal_fppa_deg": angle}

    rule_deg = [2.0, 6.0, 9.0, 14.0]
    front = [row(0.0, d, d - 1.0 + 0.5 * k) for k, d in enumerate(rule_deg)]  # reads low, in the rule's order
    side = [row(90.0, d, a) for d, a in zip(rule_deg, [8.0, 3.0, 7.0, 1.0], strict=True)]  # ordered otherwise
    unread = [row(180.0, 5.0, None), row(180.0, None, 4.0)]  # no angle, or no scored phase: left out
    summary = summarise(front + side + unread)
    assert summary["front"]["angle_error_median_deg"] == pytest.approx(0.5)  # |-1, -0.5, 0, +0.5|
    assert summary["front"]["angle_bias_median_deg"] == pytest.approx(-0.25)
    assert summary["front"]["angle_rank_correlation"] == pytest.approx(1.0)
    assert summary["side"]["angle_rank_correlation"] == pytest.approx(-0.8)
    assert "angle_n" not in summary["rear"] and summary["rear"]["n"] == 2
    assert angle_agreement([_row(0.0, 6.0, False)]) == {}  # a scorer that reads no angle: nothing to report


def test_agreement_ci_resamples_recordings_and_a_paired_difference_is_read_on_the_same_views():
    from valgusml.evaluation.transfer.real_motion import agreement_estimate

    def recording(name: str, call: bool) -> list[dict]:
        rows = []
        for yaw in (0.0, 20.0, -20.0, 180.0, 160.0):
            for limb in ("left", "right"):
                row = _row(yaw, 12.0, call, limb=limb)  # clear valgus: the rule says yes
                rows.append({**row, "file": name})
        return rows

    # one recording of four missed in every view: agreement 0.75, and its CI spans what drawing that recording
    # more or less often gives, not the tight interval 40 independent limb-views would
    rows = [r for k in range(3) for r in recording(f"ok{k}", True)] + recording("missed", False)
    estimate = agreement_estimate(rows)
    assert estimate.value == pytest.approx(0.75)
    assert estimate.lo <= 0.5 and estimate.hi == 1.0
    assert agreement_estimate(rows) == estimate  # deterministic
    same = agreement_estimate(rows, baseline=rows)
    assert (same.value, same.lo, same.hi) == (0.0, 0.0, 0.0)
    better = [{**r, "call": True} for r in rows]  # another model that gets the missed recording right
    difference = agreement_estimate(better, baseline=rows)
    assert difference.value == pytest.approx(0.25) and difference.lo == 0.0 and difference.hi >= 0.5
    summary = summarise(rows)["all"]
    assert summary["agreement_front_rear_20_female_lo"] == estimate.lo


def test_the_real_motion_interval_resamples_people_then_their_recordings():
    """One person's recordings share their way of moving: a person with four recordings, all missed, beside two
    people with one clear recording each is drawn as one of three, so the interval reaches down to none agreeing;
    drawn as four recordings of six, it would not."""
    from valgusml.evaluation.transfer.real_motion import person_of, recording_weights

    assert person_of("opencap_subject4/DJ1.trc") == "opencap_subject4" and person_of("walk.trc") == "walk.trc"
    files = [f"p1/r{k}.trc" for k in range(4)] + ["p2/a.trc", "p3/b.trc"]
    rows = np.repeat(files, 10)  # ten limb-views each
    weights = recording_weights(rows, 4000, seed=0)
    assert weights.shape == (4000, 60) and (weights[:, :10] == weights[:, [0]]).all()  # one count per recording
    person_totals = np.stack([weights[:, :40].sum(1) / 40, weights[:, 40:50].mean(1), weights[:, 50:].mean(1)], 1)
    assert (person_totals.sum(1) == 3).all()  # three people drawn in every replicate
    p1 = weights[:, :40].reshape(4000, 4, 10)[:, :, 0]  # p1's recordings drawn within p1's draws
    assert (p1.sum(1) == 4 * person_totals[:, 0]).all()
    missed = np.r_[np.zeros(40), np.ones(20)]  # p1 never agrees
    kept = weights.sum(1) > 0
    agreement = (weights[kept] @ missed) / weights[kept].sum(1)
    assert np.percentile(agreement, 2.5) == 0.0 and np.percentile(agreement, 97.5) == 1.0
    assert (recording_weights(rows, 50, seed=3) == recording_weights(rows, 50, seed=3)).all()


def test_the_transfer_table_gives_each_shifts_worst_level_and_its_gap_to_in_distribution():
    import pandas as pd

    from valgusml.evaluation.transfer import transfer_table

    robustness = pd.DataFrame([
        {"factor": "leave_out_rear_views", "level": "rear", "scorer": "model", "valgus_auroc": 0.81},
        {"factor": "camera_view", "level": "front", "scorer": "model", "valgus_auroc": 0.93},
        {"factor": "camera_view", "level": "side", "scorer": "model", "valgus_auroc": 0.70},
    ])
    table = transfer_table({"model": {"valgus_auroc": 0.90, "mechanism_macro_f1": 0.5}}, robustness)
    row = table.iloc[0]
    assert row["leave_out_rear_views: worst AUROC"] == "0.810 (rear)" and row["leave_out_rear_views: gap"] == "-0.090"
    assert row["camera_view: worst AUROC"] == "0.700 (side)" and row["camera_view: gap"] == "-0.200"


def test_the_transfer_table_gives_the_angle_each_scorers_call_rests_on_where_it_reads_one():
    import pandas as pd

    from valgusml.evaluation.transfer import transfer_table

    views = [{**_row(yaw, 8.0, True), "frontal_fppa_deg": 8.0 + error} for yaw, error in ((0.0, -1.0), (180.0, 3.0))]
    real = pd.DataFrame([*({**r, "scorer": "model"} for r in views),
                         *({**r, "frontal_fppa_deg": None, "scorer": "rule"} for r in views)])
    table = transfer_table({"model": {}, "rule": {}}, real_motion=real).set_index("scorer")
    assert table.loc["model", "real front angle error (median deg)"] == pytest.approx(1.0)
    assert table.loc["model", "real rear angle error (median deg)"] == pytest.approx(3.0)
    assert pd.isna(table.loc["rule", "real front angle error (median deg)"])  # reads no angle


class _Reads:
    """A stand-in scorer: the labels themselves (`flip=False`: every call right) or their opposite."""

    def __init__(self, flip: bool = False, fails: bool = False):
        self.flip, self.fails = flip, fails

    def predict(self, sequences):
        from valgusml.errors import InputError
        from valgusml.scoring.arrays import LabelArrays, ScoreArrays

        if self.fails:
            raise InputError("cannot read canonical keypoints")
        labels = LabelArrays.from_sequences(sequences)
        valgus = (1 - labels.valgus) if self.flip else labels.valgus
        mechanism = np.eye(5)[np.where(labels.mechanism < 0, 0, labels.mechanism)]
        return ScoreArrays(0.1 + 0.8 * valgus, mechanism, labels.severity_deg)


def test_other_data_sets_are_scored_whole_with_the_task_and_class_they_read_worst(tmp_path, tiny_test_sequences):
    from valgusml.data import write_dataset
    from valgusml.errors import ConfigError
    from valgusml.evaluation.transfer import open_other_data, other_data_rows, transfer_table

    for parent in ("gen_a", "gen_b"):  # two folders of one name are told apart by their parents
        write_dataset(tmp_path / parent / "lab", tiny_test_sequences, shard_size=64)
    datasets = open_other_data([tmp_path / "gen_a" / "lab", tmp_path / "gen_b" / "lab"])
    assert list(datasets) == ["gen_a/lab", "gen_b/lab"] and len(datasets["gen_a/lab"]) == len(tiny_test_sequences)
    scorers = {"right": _Reads(), "wrong": _Reads(flip=True), "unreadable": _Reads(fails=True)}
    rows = other_data_rows(datasets, scorers, dict.fromkeys(scorers, 0.5), n_boot=50)
    assert set(rows["scorer"]) == {"right", "wrong"}  # the one that cannot read the data is left out, not fatal
    right = rows[rows["scorer"] == "right"].iloc[0]
    assert (right["valgus_auroc"], right["valgus_auroc_lo"], right["mechanism_macro_f1"]) == (1.0, 1.0, 1.0)
    assert right["worst_task"] == "1.000 (bilateral_squat)" and right["n_athletes"] == 5
    wrong = rows[rows["scorer"] == "wrong"].iloc[0]
    assert wrong["valgus_auroc"] == 0.0 and wrong["worst_mechanism"].startswith("0.000 (")

    table = transfer_table({"right": {"valgus_auroc": 0.9}, "wrong": {"valgus_auroc": 0.1}}, other_data=rows)
    by_scorer = table.set_index("scorer")
    assert by_scorer.loc["right", "gen_b/lab: AUROC"] == 1.0 and by_scorer.loc["wrong", "gen_a/lab: AUROC"] == 0.0
    assert by_scorer.loc["right", "gen_a/lab: macro-F1 CI low"] == 1.0
    assert by_scorer.loc["right", "gen_a/lab: worst task AUROC"] == "1.000 (bilateral_squat)"
    # 0.9 for every valgus limb and 0.1 for the rest: off by 0.1 in both bins; the opposite, by 0.9
    assert by_scorer.loc["right", "gen_a/lab: ECE"] == pytest.approx(0.1)
    assert by_scorer.loc["wrong", "gen_b/lab: ECE"] == pytest.approx(0.9)
    # Paired to "right": the others' rows hold their difference from it on the same sequences; its own do not.
    paired = other_data_rows(datasets, scorers, dict.fromkeys(scorers, 0.5), n_boot=50, paired_to="right")
    wrong = paired[paired["scorer"] == "wrong"].iloc[0]
    assert (wrong["valgus_auroc_minus_paired"], wrong["valgus_auroc_minus_paired_hi"]) == (-1.0, -1.0)
    assert paired[paired["scorer"] == "right"]["valgus_auroc_minus_paired"].isna().all()
    table = transfer_table({"right": {"valgus_auroc": 0.9}, "wrong": {"valgus_auroc": 0.1}}, other_data=paired)
    by_scorer = table.set_index("scorer")
    assert by_scorer.loc["wrong", "gen_a/lab: AUROC - right's [paired CI]"] == "-1.000 [-1.000, -1.000]"
    assert pd.isna(by_scorer.loc["right", "gen_a/lab: AUROC - right's [paired CI]"])
    with pytest.raises(ValueError, match="paired_to"):
        other_data_rows(datasets, scorers, dict.fromkeys(scorers, 0.5), paired_to="nobody")
    capped = open_other_data([tmp_path / "gen_a" / "lab"], max_athletes=2)["lab"]
    assert sorted({s.athlete_id for s in capped}) == sorted({s.athlete_id for s in tiny_test_sequences})[:2]
    with pytest.raises(ConfigError, match="missing"):
        open_other_data([tmp_path / "missing"])


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", "c0a5b57^{commit}"],
                                   capture_output=True).returncode != 0, reason="no git history (shallow clone?)")
def test_the_other_generator_data_set_is_rebuilt_from_history(tmp_path):
    # The transfer tables' "other generator" column: generator v2 run from its commit, the same 1,600
    # sequences (fingerprint) every transfer table in docs/experiments.md was scored on.
    out = tmp_path / "v2"
    subprocess.run([str(ROOT / "scripts" / "other_generator_data.sh"), str(out)], check=True, capture_output=True)
    ds = valgusml.data.open_dataset(out)
    assert (len(ds), ds.fingerprint[:16]) == (1600, "a447bc92a659bd92")
    # the same motion in MediaPipe's 33-point layout, the independent sets' second layout
    layout = tmp_path / "v2-mediapipe33"
    subprocess.run([str(ROOT / "scripts" / "other_generator_data.sh"), str(layout),
                    "preset.observation.skeleton=mediapipe33"], check=True, capture_output=True)
    ds = valgusml.data.open_dataset(layout)
    assert (len(ds), ds.skeleton, ds.fingerprint[:16]) == (1600, "mediapipe33", "4b65be11ac2aeb96")
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True).stdout
    assert "valgusml-v2" not in worktrees  # its throwaway worktree is gone


def test_real_motion_probabilities_are_scored_against_the_rules_call():
    """Brier and ECE of the limb-views' probabilities against the female rule's call, per family and over every
    2D view, worked out by hand."""
    from valgusml.evaluation.transfer.real_motion import probability_scores

    def row(family, probability, valgus):
        return {"family": family, "probability": probability, "rule_female": valgus}

    front = [row("front", 0.9, True), row("front", 0.2, False), row("front", 0.6, False), row("front", 0.05, False)]
    scores = probability_scores(front)
    assert scores["brier_female"] == pytest.approx((0.01 + 0.04 + 0.36 + 0.0025) / 4)
    assert scores["ece_female"] == pytest.approx((0.1 + 0.2 + 0.6 + 0.05) / 4)  # one limb per bin
    assert scores["rule_rate_female"] == 0.25
    assert all(math.isnan(v) for v in probability_scores([]).values())


def test_other_data_intervals_are_drawn_at_the_level_asked(tmp_path, tiny_test_sequences):
    """`valgusml evaluate` passes `bootstrap.level`: the other data's CIs are drawn at it, as the held-out ones."""
    from valgusml.data import write_dataset
    from valgusml.evaluation.transfer import open_other_data, other_data_rows
    from valgusml.scoring.arrays import ScoreArrays

    class Noisy(_Reads):
        def predict(self, sequences):
            scores = super().predict(sequences)
            noise = np.random.default_rng(0).uniform(-0.3, 0.3, scores.valgus_probability.shape)
            return ScoreArrays(np.clip(scores.valgus_probability + noise, 0, 1), scores.mechanism_probabilities,
                               scores.severity_deg)

    write_dataset(tmp_path / "lab", tiny_test_sequences, shard_size=64)
    datasets = open_other_data([tmp_path / "lab"])
    wide, narrow = (other_data_rows(datasets, {"noisy": Noisy()}, {"noisy": 0.5}, n_boot=200, ci_level=level).iloc[0]
                    for level in (0.95, 0.5))
    assert narrow["valgus_ece_hi"] - narrow["valgus_ece_lo"] < wide["valgus_ece_hi"] - wide["valgus_ece_lo"]
    assert narrow["valgus_ece"] == wide["valgus_ece"]
