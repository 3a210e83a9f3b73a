"""Property tests: whatever bytes, JSON, text or arrays an importer gets, only InputError/FormatError come out."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import valgusml.io as vio
from valgusml.errors import InputError
from valgusml.sequence import KeypointSequence

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Structured documents cost more per example (several files, deeper parsing): fewer of them keep the suite fast.
SETTINGS_HEAVY = settings(SETTINGS, max_examples=35)
KEYS = ["frames", "landmarks", "pose_landmarks", "landmark", "x", "y", "z", "visibility", "fps", "people",
        "pose_keypoints_2d", "person_id", "image_id", "category_id", "keypoints", "score", "idx", "track_id",
        "instances", "keypoint_scores", "frame_id", "annotations", "timestamp_ms"]
numbers = st.one_of(st.integers(-(10**12), 10**12), st.floats(allow_nan=True, allow_infinity=True), st.none())
json_values = st.recursive(
    st.one_of(numbers, st.booleans(), st.text(max_size=6)),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=6),
    max_leaves=40,
)
# Near-valid documents reach the deep parts of each reader.
landmark = st.fixed_dictionaries({"x": numbers, "y": numbers, "z": numbers, "visibility": numbers})
mediapipe_docs = st.lists(st.lists(landmark, min_size=33, max_size=33) | st.just([]), max_size=5)
flat_points = st.integers(0, 80).flatmap(lambda n: st.lists(numbers, min_size=n, max_size=n))
coco_docs = st.lists(st.fixed_dictionaries({
    "image_id": st.one_of(st.integers(-5, 10**9), st.text(max_size=8), numbers),
    "keypoints": st.one_of(flat_points, st.lists(numbers, min_size=51, max_size=51), st.lists(numbers, min_size=78, max_size=78)),
    "idx": st.one_of(st.integers(-3, 3), numbers, st.text(max_size=2)),
}), max_size=6)
openpose_docs = st.lists(st.fixed_dictionaries({"people": st.lists(st.fixed_dictionaries({
    "pose_keypoints_2d": st.one_of(flat_points, st.lists(numbers, min_size=75, max_size=75)),
    "person_id": st.one_of(st.just([-1]), st.lists(st.integers(-2, 3), max_size=2))}), max_size=3)}), min_size=1, max_size=4)
cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(alphabet="0123456789.-e,\t ", max_size=6), st.just(""))


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="valgusml-prop-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _read_only_typed_errors(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            seq = vio.read(path, **kw)
        except InputError as exc:
            assert str(path.name) in str(exc) or str(path) in str(exc)
            return None
    assert isinstance(seq, KeypointSequence) and np.isfinite(seq.keypoints).any()
    return seq


@pytest.mark.parametrize("suffix,fmt", [(".json", None), (".json", "mediapipe"), (".json", "coco"), (".csv", None),
                                        (".trc", None), (".npz", None), ("_keypoints.json", "openpose")])
@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes(workdir, suffix, fmt, data):
    path = workdir / f"f{suffix}"
    path.write_bytes(data)
    _read_only_typed_errors(path, format=fmt)


@pytest.mark.parametrize("fmt", [None, "mediapipe", "coco", "openpose"])
@SETTINGS_HEAVY
@given(doc=st.one_of(json_values, mediapipe_docs, coco_docs))
def test_random_json(workdir, fmt, doc):
    path = workdir / "x_000000000001_keypoints.json"
    path.write_text(json.dumps(doc))
    _read_only_typed_errors(path, format=fmt)


@SETTINGS_HEAVY
@given(docs=openpose_docs)
def test_random_openpose_folders(workdir, docs):
    folder = workdir / "op"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for t, doc in enumerate(docs):
        (folder / f"c_{t:012d}_keypoints.json").write_text(json.dumps(doc))
    _read_only_typed_errors(folder)


@SETTINGS
@given(header=st.lists(st.sampled_from(["frame", "nose_x", "nose_y", "x0", "y0", "v0", "time", "junk"]) | st.text(max_size=5), max_size=8),
       rows=st.lists(st.lists(cells, max_size=8), max_size=4), full=st.booleans())
def test_random_csv(workdir, header, rows, full):
    if full:
        header = header + [f"{c}{j}" for j in range(33) for c in "xyv"]
    path = workdir / "m.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]))
    _read_only_typed_errors(path)


@SETTINGS
@given(names=st.lists(st.sampled_from(["RHip", "LHip", "RKnee", "LKnee", "RAnkle", "LAnkle", "Neck", "LHeel", "RBigToe", "C7", "r_knee"]) | st.text(max_size=4), max_size=12),
       rows=st.lists(st.lists(cells, max_size=40), max_size=4), units=st.sampled_from(["m", "mm", "", "furlong"]))
def test_random_trc(workdir, names, rows, units):
    lines = ["PathFileType\t4\t(X/Y/Z)\tx.trc", "DataRate\tUnits", f"100\t{units}", "Frame#\tTime\t" + "\t\t\t".join(names), ""]
    lines += ["\t".join(r) for r in rows]
    path = workdir / "r.trc"
    path.write_text("\n".join(lines))
    _read_only_typed_errors(path)


array_dtypes = st.sampled_from([np.float32, np.float64, np.int16, np.bool_, np.uint8, np.complex64, "U3"])
arrays = array_dtypes.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, max_side=34)))


@SETTINGS
@given(keypoints=arrays, confidence=st.none() | arrays, meta=json_values)
def test_random_npz_arrays(workdir, keypoints, confidence, meta):
    path = workdir / "s.npz"
    parts = {"keypoints": keypoints, "metadata": np.array(json.dumps({"format": "valgusml-sequence", "version": 1,
                                                                      "skeleton": "canonical", "fps": 30, "meta": meta}))}
    if confidence is not None:
        parts["confidence"] = confidence
    np.savez(path, **parts)
    _read_only_typed_errors(path)


@SETTINGS
@given(
    keypoints=st.one_of(arrays, hnp.arrays(np.float64, st.tuples(st.integers(0, 5), st.sampled_from([17, 20, 25, 26, 33]),
                                                                   st.integers(1, 4)),
                                           elements=st.floats(allow_nan=True, allow_infinity=True, width=64))),
    skeleton=st.sampled_from(["canonical", "coco17", "halpe26", "body25", "mediapipe33", "openpose18", "nope"]),
    fps=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 500), st.text(max_size=3), st.none()),
    confidence=st.none() | arrays | hnp.arrays(np.float64, st.tuples(st.integers(0, 5), st.sampled_from([17, 20, 25]))),
)
def test_keypoint_sequence_only_raises_input_error(keypoints, skeleton, fps, confidence):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            seq = KeypointSequence(keypoints, skeleton, fps, confidence=confidence)
        except InputError:
            return
    assert seq.keypoints.dtype == np.float32 and seq.confidence.shape == seq.keypoints.shape[:2]
    assert ((seq.confidence >= 0) & (seq.confidence <= 1)).all() and seq.fps > 0
    assert (np.isfinite(seq.keypoints).all(axis=-1) | (seq.confidence == 0)).all()
