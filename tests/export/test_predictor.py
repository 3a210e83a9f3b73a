"""`valgusml.Predictor`: the DESIGN.md contract, input handling, model-file safety, threads, fuzzing."""

from __future__ import annotations

import json
import shutil
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import valgusml
from valgusml import InputError, KeypointSequence, ModelFileError
from valgusml.export.example import example_keypoints
from valgusml.labels import MECHANISMS
from valgusml.predictor import Predictor, combine_mechanisms


def _check(p) -> None:
    assert 0.0 <= p.valgus_probability <= 1.0
    assert p.mechanism in MECHANISMS
    for limb in (p, p.limbs["left"], p.limbs["right"]):
        probs = limb.mechanism_probabilities
        assert list(probs) == list(MECHANISMS)
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
        assert probs["none"] == pytest.approx(1.0 - limb.valgus_probability, abs=1e-9)
        assert all(np.isfinite(v) and v >= 0 for v in probs.values())
    assert p.valgus_probability == max(p.limbs[k].valgus_probability for k in ("left", "right"))
    assert p.limbs[p.limb].mechanism == p.mechanism


def test_contract_fields_and_json(predictor, squat):
    p = predictor.predict(squat, skeleton="halpe26", fps=60.0)
    _check(p)
    for limb in ("left", "right"):
        lp = p.limbs[limb]
        assert lp["valgus_probability"] == lp.valgus_probability
        assert lp.valgus == (lp.valgus_probability >= 0.42)
        assert (lp.mechanism == "none") == (not lp.valgus)
    assert "left" in p.measures and "peak_fppa_deg" in p.measures["left"]
    assert "resampled from 60 fps to 30 fps" in p.warnings
    # 3 s at 30 fps = 90 frames → 5 windows of 32; the timeline is the squat's one rep, found from the motion,
    # and the recording's call is its rep's (the windows that overlap it, weighted by the frames they share)
    assert [w["kind"] for w in p.timeline] == ["rep"]
    rep = p.timeline[0]
    assert 0.0 <= rep["start_s"] < rep["end_s"] <= 3.0 + 1e-6
    for limb in ("left", "right"):
        assert rep["valgus_probability"][limb] == pytest.approx(p.limbs[limb].valgus_probability, abs=1e-6)
    assert p.view["facing"] == "front" and abs(p.view["yaw_deg"]) < 45
    d = p.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["limbs"]["right"]["mechanism_probabilities"]["none"] == pytest.approx(1 - d["limbs"]["right"]["valgus_probability"])


def test_the_prediction_reports_the_cameras_signed_yaw(predictor):
    """The view's yaw keeps its sign (the camera to the athlete's left or right), also from behind."""
    from valgusml.evaluation.transfer import ViewSpec, render
    from valgusml.io import samples

    world = samples.squat_3d().keypoints.astype(np.float64)
    world[..., 1] -= np.nanmean(world[..., 1])
    for yaw, facing in ((-20.0, "front"), (20.0, "front"), (160.0, "rear"), (-160.0, "rear")):
        seq = KeypointSequence(render(world, ViewSpec(yaw)).astype(np.float32), "canonical", 30.0)
        view = predictor.predict(seq).view
        assert view["facing"] == facing and abs((view["yaw_deg"] - yaw + 180) % 360 - 180) < 8, (yaw, view)


def test_a_side_view_is_never_called_valgus_for_being_unreadable(predictor):
    """Admitting a side view pulls its probabilities towards 0.5, or to just under a decision threshold below
    0.5 (this folder's is 0.42): admission can take a valgus call back but never make one."""
    from valgusml.evaluation.transfer import ViewSpec, render
    from valgusml.features.view import View, admission_neutral, admit_view
    from valgusml.io import samples

    assert predictor.decision_threshold < 0.5
    assert admission_neutral(0.62) == 0.5 and admission_neutral(None) == 0.5
    assert admission_neutral(0.42) == pytest.approx(0.42 - 1e-4) and admission_neutral(0.5) < 0.5
    side_on = View("side", 90.0, 0.0)
    admitted, note = admit_view(np.array([0.1, 0.9]), side_on, admission_neutral(0.42))
    assert (admitted < 0.42).all() and "pulled towards 0.4199" in note
    world = samples.squat_3d().keypoints.astype(np.float64)
    world[..., 1] -= np.nanmean(world[..., 1])
    seq = KeypointSequence(render(world, ViewSpec(90.0)).astype(np.float32), "canonical", 30.0)
    p = predictor.predict(seq)
    assert p.view["facing"] == "side" and any("side view" in w for w in p.warnings)
    for limb in ("left", "right"):
        assert p.limbs[limb].valgus_probability < predictor.decision_threshold and not p.limbs[limb].valgus
    assert all(v is None or v < predictor.decision_threshold
               for span in p.timeline for v in span["valgus_probability"].values())
    # The answers a threshold is chosen on admit towards 0.5 whatever the threshold; the folder's own do not move.
    free = predictor.threshold_free().predict(seq)
    assert any("pulled towards 0.5, where the model leaves a view it cannot read" in w for w in free.warnings)
    assert any(free.limbs[limb].valgus_probability > p.limbs[limb].valgus_probability for limb in ("left", "right"))
    assert predictor.predict(seq).limbs["left"].valgus_probability == p.limbs["left"].valgus_probability


def test_mechanism_combination_rule():
    combined = combine_mechanisms(np.array([0.8, 0.1]), np.array([[0.5, 0.3, 0.1, 0.1, 0.0], [1.0, 0, 0, 0, 0]]))
    np.testing.assert_allclose(combined[0], [0.2, 0.8 * 0.6, 0.8 * 0.2, 0.8 * 0.2, 0.0])
    np.testing.assert_allclose(combined[1], [0.9, 0.025, 0.025, 0.025, 0.025])  # no deficit mass: spread evenly


def test_sequence_and_array_give_the_same_answer(predictor, squat):
    a = predictor.predict(squat, skeleton="halpe26", fps=60.0)
    b = predictor.predict(KeypointSequence(squat, "halpe26", 60.0))
    assert a.to_dict() == b.to_dict()


def test_every_skeleton_and_3d(predictor):
    for skeleton in sorted(valgusml.SKELETONS):
        p = predictor.predict(example_keypoints(skeleton, seconds=1.5, fps=30.0), skeleton=skeleton, fps=30.0)
        _check(p)
        if skeleton in ("coco17", "openpose18"):
            assert any("missing feet" in w for w in p.warnings), (skeleton, p.warnings)
    flat = example_keypoints("canonical", seconds=1.5, fps=100.0) / 600.0
    world = np.stack([flat[..., 0], np.full_like(flat[..., 0], 2.0), 1.8 - flat[..., 1]], axis=-1)
    _check(predictor.predict(world, skeleton="canonical", fps=100.0))


def test_low_confidence_and_short_recordings(predictor, squat):
    conf = np.full(squat.shape[:2], 0.1, np.float32)
    p = predictor.predict(squat, confidence=conf)
    assert any("low confidence" in w for w in p.warnings)
    short = predictor.predict(squat[:30], fps=60.0)  # 0.5 s: one padded window
    assert len(short.timeline) == 1 and short.timeline[0]["end_s"] == pytest.approx(0.5, abs=0.02)


def test_predict_batch_matches_single_calls(predictor):
    items = [example_keypoints("halpe26", seconds=s, fps=60.0, valgus=v, seed=i) for i, (s, v) in
             enumerate([(0.5, 0.0), (3.0, 1.0), (8.0, 0.5), (1.0, 0.2)])]
    items.append(KeypointSequence(example_keypoints("coco17", seconds=2.0, fps=25.0), "coco17", 25.0))
    batch = predictor.predict_batch(items, skeleton="halpe26", fps=60.0)
    assert len(batch) == len(items)
    for item, p in zip(items, batch, strict=True):
        single = predictor.predict(item, skeleton="halpe26", fps=60.0)
        assert p.limbs["left"].valgus_probability == pytest.approx(single.limbs["left"].valgus_probability, abs=1e-6)
        assert p.mechanism_probabilities == pytest.approx(single.mechanism_probabilities, abs=1e-6)
        assert p.warnings == single.warnings
    assert predictor.predict_batch([]) == []


def test_long_recording_is_chunked(exported):
    small = Predictor.load(exported, max_batch_windows=2)
    full = Predictor.load(exported)
    long = example_keypoints("halpe26", seconds=12.0, fps=30.0, valgus=0.7)
    a, b = small.predict(long, fps=30.0), full.predict(long, fps=30.0)
    assert len(a.timeline) == len(b.timeline) >= 1
    for x, y in zip(a.timeline, b.timeline, strict=True):
        assert (x["start_s"], x["end_s"], x["kind"]) == (y["start_s"], y["end_s"], y["kind"])
        assert x["valgus_probability"] == pytest.approx(y["valgus_probability"], abs=1e-6)
    assert a.valgus_probability == pytest.approx(b.valgus_probability, abs=1e-6)


def test_same_answers_from_four_threads(predictor):
    items = [example_keypoints("halpe26", seconds=2.0, fps=60.0, valgus=v, seed=i) for i, v in enumerate((0, 0.5, 1))]
    expected = [predictor.predict(x).to_dict() for x in items]
    results: dict[int, list] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(k: int) -> None:
        try:
            start.wait()
            results[k] = [predictor.predict(items[(k + j) % 3]).to_dict() for j in range(9)]
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, got in results.items():
        assert got == [expected[(k + j) % 3] for j in range(9)]


# -- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"keypoints": np.zeros((60, 26)), "skeleton": "halpe26"}, "shape"),
        ({"keypoints": np.zeros((60, 17, 2)), "skeleton": "halpe26"}, "26 joints"),
        ({"keypoints": np.zeros((60, 26, 2)), "skeleton": "kinect"}, "unknown skeleton"),
        ({"keypoints": np.full((60, 26, 2), np.nan), "skeleton": "halpe26"}, "no frame"),
        ({"keypoints": np.ones((3, 26, 2)) + np.arange(26.0)[:, None], "skeleton": "halpe26"}, "too short"),
        ({"keypoints": np.ones((60, 26, 2)), "skeleton": "halpe26"}, "all joints are at one point"),
        ({"keypoints": np.ones((60, 26, 2)), "skeleton": "halpe26", "fps": -1}, "fps"),
        ({"keypoints": [["a"]], "skeleton": "halpe26"}, "numeric"),
        ({"keypoints": np.ones((60, 26, 2)), "skeleton": "halpe26", "fps": True}, "fps must be a number, got True"),
        ({"keypoints": np.ones((60, 26, 2)), "skeleton": "halpe26", "fps": 10**400}, "fps must be finite"),
        ({"keypoints": np.ones((60, 26, 2)), "skeleton": "halpe26", "confidence": [[1.0], [1.0, 1.0]]},
         "confidence is not a numeric array"),
    ],
)
def test_bad_input_raises_input_error(predictor, kwargs, match):
    with pytest.raises(InputError, match=match):
        predictor.predict(**kwargs)


def test_absurd_coordinates_are_refused(predictor, squat):
    squat = squat.copy()
    squat[5, 3] = 1e12
    with pytest.raises(InputError, match="frame 5"):
        predictor.predict(squat)


def test_batch_error_names_the_recording(predictor, squat):
    with pytest.raises(InputError, match="recording 1"):
        predictor.predict_batch([squat, np.zeros((5, 26, 3, 1))])


def test_batch_confidence_that_is_not_one_entry_per_recording_is_refused(predictor, squat):
    with pytest.raises(InputError, match="confidence takes one entry .* per recording, got int"):
        predictor.predict_batch([squat, squat], confidence=5)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    data=st.data(),
    skeleton=st.sampled_from(["halpe26", "coco17", "mediapipe33", "canonical"]),
    n_frames=st.integers(0, 70),
    dims=st.sampled_from([2, 3]),
    fps=st.one_of(st.floats(1, 240), st.sampled_from([0.0, -5.0, float("nan"), float("inf")])),
)
def test_fuzzed_inputs_give_input_error_or_finite_probabilities(predictor, data, skeleton, n_frames, dims, fps):
    n_joints = valgusml.SKELETONS[skeleton].n_joints
    base = example_keypoints(skeleton, seconds=max(n_frames, 1) / 30.0, fps=30.0)[:n_frames]
    if dims == 3:
        base = np.concatenate([base, np.zeros_like(base[..., :1])], axis=-1) / 600.0
    kp = base.astype(np.float64)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    kind = data.draw(st.sampled_from(["clean", "nan_holes", "noise", "huge", "inf", "constant", "conf"]))
    conf = None
    if kind == "nan_holes" and kp.size:
        kp[rng.random(kp.shape[:2]) < data.draw(st.floats(0, 1))] = np.nan
    elif kind == "noise":
        kp = kp + rng.normal(0, data.draw(st.floats(0, 1e4)), kp.shape)
    elif kind == "huge" and kp.size:
        kp[rng.integers(0, n_frames)] *= data.draw(st.sampled_from([1e5, 1e9, 1e40]))
    elif kind == "inf" and kp.size:
        kp[0, 0, 0] = np.inf
    elif kind == "constant":
        kp[:] = data.draw(st.floats(-1e3, 1e3))
    elif kind == "conf":
        conf = rng.uniform(-0.2, 1.2, kp.shape[:2]) if data.draw(st.booleans()) else rng.uniform(0, 1, (n_frames, n_joints))
    try:
        p = predictor.predict(kp, skeleton=skeleton, fps=fps, confidence=conf)
    except InputError:
        return
    values = [p.valgus_probability, p.severity_deg, *p.mechanism_probabilities.values()]
    for limb in p.limbs.values():
        values += [limb.valgus_probability, *limb.mechanism_probabilities.values()]
    assert all(np.isfinite(v) for v in values)
    assert 0 <= p.valgus_probability <= 1
    json.dumps(p.to_dict(), allow_nan=False)


# -- model file safety --------------------------------------------------------------------------------------
@pytest.fixture
def copy_of(exported, tmp_path):
    dst = tmp_path / "predictor"
    shutil.copytree(exported, dst)
    return dst


def test_corrupted_model_is_refused(copy_of):
    data = bytearray((copy_of / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy_of / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        Predictor.load(copy_of)


def test_unknown_format_version_is_refused(copy_of):
    meta = json.loads((copy_of / "model.json").read_text())
    meta["format_version"] = 99
    (copy_of / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="format_version 99"):
        Predictor.load(copy_of)


@pytest.mark.parametrize("missing", ["model.onnx", "model.json"])
def test_missing_file_is_refused(copy_of, missing):
    (copy_of / missing).unlink()
    with pytest.raises(ModelFileError, match="model"):
        Predictor.load(copy_of)


@pytest.mark.parametrize("undecided", [0.0, 1.0, "0.3", True])
def test_a_presence_undecided_that_is_not_a_probability_is_refused(copy_of, undecided):
    meta = json.loads((copy_of / "model.json").read_text())
    meta["presence_undecided"] = undecided
    (copy_of / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=r"presence_undecided must be a number in \(0, 1\)"):
        Predictor.load(copy_of)


def test_side_views_are_pulled_towards_the_folders_undecided_answer(copy_of):
    """An older folder (no `presence_undecided`) pulls them to 0.5; a calibrated one to its own answer."""
    from valgusml.features.view import View, admit_view

    meta = json.loads((copy_of / "model.json").read_text())
    meta.pop("presence_undecided", None)
    (copy_of / "model.json").write_text(json.dumps(meta))
    assert Predictor.load(copy_of).undecided == 0.5
    meta["presence_undecided"] = 0.2
    (copy_of / "model.json").write_text(json.dumps(meta))
    predictor = Predictor.load(copy_of)
    assert predictor.undecided == 0.2 and predictor.threshold_free()._neutral == 0.2
    assert admit_view(np.array([0.9, 0.05]), View("side", 90.0, 0.0), predictor._neutral)[0] == pytest.approx([0.2, 0.2])


def test_garbage_metadata_and_missing_folder(copy_of, tmp_path):
    (copy_of / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="JSON"):
        Predictor.load(copy_of)
    with pytest.raises(ModelFileError, match="not a predictor folder"):
        Predictor.load(tmp_path / "nowhere")


@pytest.mark.parametrize("offsets, match", [
    ({"flat_feet": 1.0}, "flat_feet"),
    ({"pronation": "high"}, "map deficits to numbers"),
    ({"pronation": True}, "map deficits to numbers"),
    ([0.0, 0.0, 0.0, 0.0], "map deficits to numbers"),
    ({"pronation": float("nan")}, "finite"),
])
def test_bad_mechanism_offsets_are_refused_at_load(copy_of, offsets, match):
    meta = json.loads((copy_of / "model.json").read_text())
    meta["mechanism_offsets"] = offsets
    (copy_of / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=match):
        Predictor.load(copy_of)


def test_session_threads_are_configurable(exported):
    assert Predictor.load(exported, threads=2)._session.get_session_options().intra_op_num_threads == 2
    assert Predictor.load(exported)._session.get_session_options().intra_op_num_threads == 1


def test_one_valgus_rep_in_minutes_of_standing_is_not_averaged_away(predictor):
    """The recording's call is its worst rep's: two minutes of quiet standing around one valgus squat leave the
    answer where the squat alone puts it (the old window-mean rule gave 0.05 for a rep whose window said 0.999)."""
    from valgusml.export.example import example_keypoints

    rep = example_keypoints("halpe26", seconds=3.0, fps=30.0, valgus=1.0)
    rng = np.random.default_rng(0)
    standing = np.repeat(rep[:1], 60 * 30, axis=0) + rng.normal(0.0, 0.3, (60 * 30, *rep.shape[1:])).astype(np.float32)
    long = np.concatenate([standing, rep, standing])
    alone = predictor.predict(rep, skeleton="halpe26", fps=30.0)
    within = predictor.predict(long, skeleton="halpe26", fps=30.0)
    reps = [s for s in within.timeline if s["kind"] == "rep"]
    assert len(reps) == 1 and 60.0 - 0.5 <= reps[0]["start_s"] and reps[0]["end_s"] <= 63.0 + 0.5
    for limb in ("left", "right"):
        assert within.limbs[limb].valgus_probability == pytest.approx(reps[0]["valgus_probability"][limb], abs=1e-6)
        assert within.limbs[limb].valgus_probability == pytest.approx(alone.limbs[limb].valgus_probability, abs=0.15)


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("seconds", [1.0, 8.0])  # one window, and several (phases searched)
def test_the_free_leg_of_a_single_leg_task_is_not_scored(predictor, dims, seconds):
    """The rule scores loaded frames only, and a single-leg task loads its named limb: the other knee is never
    valgus whatever the network says, in the answer and in every span of the timeline, and a warning says why.
    Both limbs of the same motion stay scored when no task names a stance side."""
    keypoints = example_keypoints("halpe26", seconds=seconds, fps=30.0, valgus=1.0)
    if dims == 3:
        from valgusml.io import samples

        seq = samples.squat_3d(n_frames=int(30 * seconds)).replace(task="single_leg_squat_left")
    else:
        seq = KeypointSequence(keypoints, "halpe26", 30.0, task="single_leg_squat_left")
    single = predictor.predict(seq)
    both = predictor.predict(seq.replace(task=None))
    _check(single)
    assert single.limbs["right"].valgus_probability == 0.0 and single.limbs["right"].mechanism == "none"
    if dims == 2:  # the stance knee keeps the network's answer (3D: the rule's, whose phases follow the task)
        assert single.limbs["left"].valgus_probability == pytest.approx(both.limbs["left"].valgus_probability, abs=1e-9)
    assert any("right knee is not scored" in w for w in single.warnings)
    assert not any("not scored" in w for w in both.warnings)
    assert all(span["valgus_probability"]["right"] in (None, 0.0) for span in single.timeline)
    assert any(span["valgus_probability"]["left"] is not None for span in single.timeline)


def test_a_folder_without_the_frontal_angle_output_still_loads(copy_of, exported, squat):
    """Exports from before `frontal_fppa_deg` have three outputs: they load, answer the same, and report None."""
    import hashlib

    import onnx

    model = onnx.load(str(copy_of / "model.onnx"))
    assert [o.name for o in model.graph.output][-1] == "frontal_fppa_deg"
    del model.graph.output[-1]
    data = model.SerializeToString()
    (copy_of / "model.onnx").write_bytes(data)
    meta = json.loads((copy_of / "model.json").read_text())
    meta["model"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (copy_of / "model.json").write_text(json.dumps(meta))
    old = Predictor.load(copy_of)
    assert old.output_names == ("valgus_probability", "mechanism_probabilities", "severity_deg")
    p = old.predict(squat, fps=60.0)
    assert all(p.limbs[limb].frontal_fppa_deg is None for limb in ("left", "right"))
    assert p.limbs["right"].valgus_probability == Predictor.load(exported).predict(squat, fps=60.0).limbs[
        "right"].valgus_probability


def test_a_lifted_model_reports_the_angle_its_call_rests_on(tmp_path):
    """With a lifter and its anchor, each limb's `frontal_fppa_deg` is the anchor's evidence for the recording
    (a one-window recording: that window's, as torch computes it); the free leg of a single-leg task has none."""
    import functools

    import torch

    from valgusml.export import export_predictor
    from valgusml.models import TCN, MultiTaskHead, ProbabilityWrapper, ValgusNet
    from valgusml.models.geometry import FrameLifter, LiftedAnchor
    from valgusml.preprocess import prepare

    from .conftest import parity_sequences, tiny_source

    torch.manual_seed(0)
    net = ValgusNet(backbone=functools.partial(TCN, channels=16, n_blocks=2, dropout=0.0),
                    head=functools.partial(MultiTaskHead, hidden=16, dropout=0.0),
                    lifter=functools.partial(FrameLifter, hidden=8), anchor=LiftedAnchor).eval()
    with torch.no_grad():  # every frame loaded, so every limb has an angle
        net.lifter.net[-1].bias[2:] = 5.0
    _, cfg, info = tiny_source()
    folder = export_predictor((net, cfg, info), tmp_path / "lifted", parity_sequences())
    lifted = Predictor.load(folder)
    seq = KeypointSequence(example_keypoints("halpe26", seconds=1.0, fps=30.0, valgus=1.0), "halpe26", 30.0)
    p = lifted.predict(seq)
    window = prepare(seq.to_canonical(), cfg)
    with torch.no_grad():
        expected = ProbabilityWrapper(net)(*(torch.from_numpy(a) for a in (window.joints, window.measures,
                                                                            window.mask)))[3][0]
    for k, limb in enumerate(("left", "right")):
        assert p.limbs[limb].frontal_fppa_deg == pytest.approx(float(expected[k]), abs=1e-3)
        assert p.to_dict()["limbs"][limb]["frontal_fppa_deg"] == pytest.approx(float(expected[k]), abs=1e-3)
    single = lifted.predict(seq.replace(task="single_leg_squat_left"))
    assert single.limbs["right"].frontal_fppa_deg is None and single.limbs["left"].frontal_fppa_deg is not None


def test_the_readme_python_example_runs(exported, monkeypatch, capsys):
    """README's "Use a trained model" block, as a user pastes it (with this test's predictor folder)."""
    import re
    import warnings
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    block = re.search(r"## Use a trained model\s+```python\n(.*?)```", (root / "README.md").read_text(), re.S).group(1)
    assert '"exports/default"' in block and "task=" in block
    monkeypatch.chdir(root)  # the example reads data/samples
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the sample's "2 people tracked", "assumed 30 fps"
        exec(compile(block.replace('"exports/default"', repr(str(exported))), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "'facing'" in printed and "'limbs'" in printed


def test_an_evaluation_that_lowers_the_threshold_does_not_call_side_views_valgus(exported):
    """Evaluation re-chooses a model's threshold on its validation athletes. Scored at the folder's threshold
    (0.42: side views pulled to 0.4199) and called at a lower re-chosen one, every side view would be valgus; the
    model answers again as it would with the re-chosen threshold as its own."""
    from valgusml.evaluation.runner import at_chosen_threshold, threshold_free
    from valgusml.evaluation.scorers import ExportedModel
    from valgusml.evaluation.transfer import ViewSpec, render
    from valgusml.io import samples

    world = samples.squat_3d().keypoints.astype(np.float64)
    world[..., 1] -= np.nanmean(world[..., 1])
    side = [KeypointSequence(render(world, ViewSpec(yaw)).astype(np.float32), "canonical", 30.0) for yaw in (90, -90)]
    model = ExportedModel(exported)
    at_folder = model.predict(side).valgus_probability
    assert np.allclose(at_folder, 0.4199, atol=1e-3)  # unreadable: on the folder threshold's neutral
    scorer, rescored = at_chosen_threshold(model, 0.3, side, model.predict(side))
    assert (rescored.valgus_probability < 0.3).all() and scorer.decision_threshold == 0.3
    assert model.decision_threshold == pytest.approx(0.42)  # the loaded model itself is untouched
    unchanged, same = at_chosen_threshold(model, model.decision_threshold, side, model.predict(side))
    assert unchanged is model and np.array_equal(same.valgus_probability, at_folder)
    # A threshold is chosen on answers that admit side views towards 0.5, as training chooses it.
    assert np.allclose(threshold_free(model).predict(side).valgus_probability, 0.5, atol=1e-3)


def test_the_evaluation_chooses_on_threshold_free_answers_and_scores_at_the_chosen_threshold():
    from valgusml.evaluation.runner import evaluate_scorers
    from valgusml.scoring.arrays import ScoreArrays

    calls = []

    class ThresholdedScorer:
        """Answers 0.3 for valgus limbs and 0.1 for the rest, unreadable ones on its threshold's neutral."""

        pretrained, name, valgus_p = True, "model", 0.3

        def __init__(self, decision_threshold):
            self.decision_threshold = decision_threshold

        def fit(self, sequences):
            return self

        def at_threshold(self, threshold):
            return type(self)(threshold)

        def predict(self, sequences):
            calls.append(self.decision_threshold)
            neutral = 0.5 if self.decision_threshold is None else min(0.5, self.decision_threshold - 1e-4)
            prob = np.array([[self.valgus_p if s.labels[limb]["valgus"] else (neutral if s.id.startswith("side") else 0.1)
                              for limb in ("left", "right")] for s in sequences])
            mech = np.tile([1.0, 0.0, 0.0, 0.0, 0.0], (*prob.shape, 1))
            return ScoreArrays(prob, mech, np.zeros_like(prob))

    from .conftest import labelled_sequences

    sequences = labelled_sequences(12)
    for seq in sequences[8:]:
        seq.id = f"side-{seq.id}"  # none of them valgus: odd ids of labelled_sequences are
    val, test = sequences[:6], sequences[6:]
    result = evaluate_scorers({"model": ThresholdedScorer(0.6)}, [], val, test, n_boot=20)
    chosen = result.results["model"]
    assert chosen.threshold_source == "validation" and chosen.threshold == pytest.approx(0.3)
    assert calls == [0.6, None, 0.3]  # test at the stored one, validation threshold-free, test again at 0.3
    assert chosen.scorer.decision_threshold == pytest.approx(0.3)
    # At the stored threshold the two straight side views sat on 0.5, over the chosen 0.3: called valgus.
    straight_side = [i for i, s in enumerate(test) if s.id.startswith("side") and not s.labels["left"]["valgus"]]
    assert len(straight_side) == 2 and (chosen.scores.valgus_probability[straight_side] < 0.3).all()
    assert chosen.metrics["valgus_f1"] == 1.0

    class Sure(ThresholdedScorer):  # valgus limbs at 0.9: the threshold chosen (0.9) keeps the stored one's neutral
        valgus_p = 0.9

    calls.clear()
    again = evaluate_scorers({"model": Sure(0.95)}, [], val, test, n_boot=20).results["model"]
    assert again.threshold == pytest.approx(0.9) and again.scorer.decision_threshold == pytest.approx(0.9)
    assert calls == [0.95, None]  # 2D answers that cannot change are not scored again
