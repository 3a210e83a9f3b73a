"""The predictor's fast paths give the same numbers as the plain computations they replace (numpy only).

Each fast path exists for speed alone (`scripts/bench_predictor.py`); these tests pin it to the reference
formula, bit for bit, on inputs with gaps, NaN, odd and even lengths, 2D and 3D.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from valgusml.export.example import example_keypoints
from valgusml.features.medians import finite_median, median, percentile
from valgusml.features.phases import _ANKLE, _HIP, _KNEE, _quantile, leg_length
from valgusml.io.samples import squat_3d
from valgusml.predictor.sanity import check_input
from valgusml.preprocess import _resample_with_gaps, resample
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS, SKELETONS, _mapping_plan, map_to_canonical, missing_points


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_medians_equal_np_median(dtype):
    rng = np.random.default_rng(0)
    for n in range(1, 40):
        for trial in range(10):
            values = (rng.normal(size=n) * 10.0 ** rng.integers(-3, 6)).astype(dtype)
            if trial % 2:
                values[rng.random(n) < 0.3] = np.nan
            if trial % 3 == 0:
                values[rng.random(n) < 0.2] = np.inf
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                reference = float(np.median(values))
                finite = values[np.isfinite(values)]
                finite_reference = float(np.median(finite)) if finite.size else np.nan
            assert _same(median(values), reference)
            assert _same(finite_median(values), finite_reference)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_percentile_equals_np_percentile(dtype):
    """One value to hundreds, ties, constant arrays, every rank from 0 to 100 and between; a float32 array in
    float32 arithmetic, as numpy computes it."""
    rng = np.random.default_rng(1)
    for n in (*range(1, 30), 97, 180, 301):
        for trial in range(6):
            values = (rng.normal(size=n) * 10.0 ** rng.integers(-3, 6)).astype(dtype)
            if trial == 1:
                values = np.round(values, 1)
            if trial == 2:
                values = np.full(n, values[0])
            for q in (0.0, 1.0, 5.0, 10.0, 33.3, 50.0, 90.0, 95.0, 99.9, 100.0, rng.uniform(0, 100)):
                kept = values.copy()
                assert _same(percentile(values, q), float(np.percentile(values, q)))
                assert _same(values, kept)  # the input is left as it was


def _joint_gaps(n_frames: int, n_joints: int, seed: int) -> np.ndarray:
    conf = np.random.default_rng(seed).uniform(0.2, 1.0, (n_frames, n_joints)).astype(np.float32)
    conf[:, 3] = 0.0  # a joint never seen
    return conf


@pytest.mark.parametrize("fps_in, fps_out", [(60.0, 30.0), (25.0, 30.0), (29.97, 30.0), (100.0, 30.0), (30.0, 30.0)])
def test_resample_without_gaps_equals_general_path(fps_in, fps_out):
    rng = np.random.default_rng(1)
    xy = rng.normal(300.0, 80.0, (97, len(CANONICAL_JOINTS), 2))
    conf = _joint_gaps(*xy.shape[:2], seed=2)
    xy[conf <= 0] = 0.0
    for max_gap_s in (0.0, 0.25, 1.0):
        fast = resample(xy, conf, fps_in, fps_out, max_gap_s)
        general = _resample_with_gaps(xy, conf, fps_in, fps_out, max_gap_s)
        assert _same(fast[0], general[0]) and _same(fast[1], general[1])
        assert fast[2] == general[2]


def test_resample_with_gaps_takes_the_general_path():
    xy = np.random.default_rng(3).normal(size=(60, len(CANONICAL_JOINTS), 2))
    conf = np.ones(xy.shape[:2], dtype=np.float32)
    conf[20:30, 5] = 0.0
    out = resample(xy, conf, 60.0, 30.0, 0.1)
    assert out[2]["missing_joints_in_long_gaps"] == [CANONICAL_JOINTS[5]]
    assert _same(out[0], _resample_with_gaps(xy, conf, 60.0, 30.0, 0.1)[0])


def _reference_map(keypoints, confidence, skeleton):
    """The general mapping: gather into a NaN-filled canonical array."""
    plan = _mapping_plan(skeleton)
    out = np.full((len(keypoints), len(CANONICAL_JOINTS), keypoints.shape[2]), np.nan, dtype=np.float32)
    conf = np.zeros((len(keypoints), len(CANONICAL_JOINTS)), dtype=np.float32)
    out[:, plan.targets] = keypoints[:, plan.sources]
    conf[:, plan.targets] = confidence[:, plan.sources]
    for k, idx in plan.derived:
        out[:, k] = keypoints[:, list(idx)].mean(axis=1)
        conf[:, k] = confidence[:, list(idx)].min(axis=1)
    conf[np.isnan(out).any(axis=-1)] = 0.0
    return out, conf


@pytest.mark.parametrize("skeleton", sorted(set(SKELETONS) - {"canonical"}))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_map_to_canonical_equals_reference(skeleton, dtype):
    kp = example_keypoints(skeleton, seconds=1.0, fps=30.0, valgus=0.5, seed=4).astype(dtype)
    kp[5:9, 2] = np.nan
    conf = np.random.default_rng(5).uniform(0, 1, kp.shape[:2]).astype(dtype)
    got, expected = map_to_canonical(kp, conf, skeleton), _reference_map(kp, conf, skeleton)
    assert _same(got[0], expected[0]) and _same(got[1], expected[1])


def test_missing_points_equals_isnan_any():
    kp = np.random.default_rng(6).normal(size=(40, 7, 3))
    kp[np.random.default_rng(7).random(kp.shape) < 0.2] = np.nan
    for dims in (2, 3):
        assert _same(missing_points(kp[..., :dims]), np.isnan(kp[..., :dims]).any(axis=-1))


def test_leg_length_equals_reference():
    kp = example_keypoints("halpe26", seconds=2.0, fps=30.0, valgus=1.0)
    for keypoints in (KeypointSequence(kp, "halpe26", 30.0).to_canonical().keypoints, squat_3d(60).keypoints):
        keypoints = keypoints.copy()
        keypoints[3:7, _KNEE[0]] = np.nan
        ref = keypoints.astype(np.float64)
        thigh, shank = ref[:, list(_KNEE)] - ref[:, list(_HIP)], ref[:, list(_ANKLE)] - ref[:, list(_KNEE)]
        legs = np.sqrt((thigh * thigh).sum(-1)) + np.sqrt((shank * shank).sum(-1))
        assert _same(leg_length(keypoints), _quantile(legs, 0.9))


def _reference_sanity(seq):
    """The checks' numbers as first written: (T, J, C) float64 with nanmean / nanmax / np.median."""
    from valgusml.predictor.sanity import _FEET, _HEAD, MEDIAN_FRAMES

    def med(values):
        values = values[np.isfinite(values)]
        return float(np.median(values)) if len(values) else float("nan")

    def extent(kp):
        return np.fmax.reduce(kp, axis=1) - np.fmin.reduce(kp, axis=1)

    kp = np.where((seq.confidence > 0)[..., None], seq.keypoints, np.nan).astype(np.float64)
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        ext = extent(kp)
        size = np.fmax.reduce(ext, axis=1)
        magnitude = np.nan_to_num(np.fmax.reduce(np.abs(kp).reshape(len(kp), -1), axis=1))
        collapsed = np.isfinite(size) & (size <= 1e-6 * np.maximum(magnitude, 1e-30))
        body = med(size[np.isfinite(size) & ~collapsed])
        step = max(1, len(kp) // MEDIAN_FRAMES)
        kp, ext = kp[::step], ext[::step]
        axis = seq.dims - 1
        head_feet = med(np.nanmean(kp[:, _HEAD, axis], axis=1) - np.nanmean(kp[:, _FEET, axis], axis=1))
        height = med(np.abs(extent(kp[:, _HEAD + _FEET])[:, 1]))
        hips, ankles = kp[:, list(_HIP)].mean(axis=1), kp[:, list(_ANKLE)].mean(axis=1)
        legs = [med(hips[:, axis] - ankles[:, axis]) for axis in range(2)]  # the legs' lean (2D)
    return collapsed, body, head_feet, height, med(ext[:, 0]), legs


def test_check_input_reads_the_reference_numbers(monkeypatch):
    """check_input's verdicts come from the same body size, head-minus-feet and height/width as the plain
    formulas: compare the numbers its helpers give with the reference on 2D and 3D recordings with gaps."""
    from valgusml.predictor import sanity

    seen = {}
    real_median = sanity.finite_median

    def recording_median(values):
        value = real_median(values)
        seen.setdefault("medians", []).append(value)
        return value

    monkeypatch.setattr(sanity, "finite_median", recording_median)
    kp2 = example_keypoints("halpe26", seconds=3.0, fps=60.0, valgus=0.8)
    kp2[10:20, 4] = np.nan
    kp2[30:40] = kp2[30:40, :1]  # collapsed frames
    conf = np.random.default_rng(8).uniform(0, 1, kp2.shape[:2]).astype(np.float32)
    conf[conf < 0.1] = 0.0
    for seq in (KeypointSequence(kp2, "halpe26", 60.0, confidence=conf).to_canonical(), squat_3d(120)):
        seen.clear()
        _, notes = check_input(seq)
        collapsed, body, head_feet, height, width, legs = _reference_sanity(seq)
        medians = seen["medians"]
        assert _same(medians[0], body)
        if seq.dims == 2:  # body, height, width, head - feet; the legs' lean in float32 arithmetic
            assert _same(medians[1:4], [height, width, head_feet])
            np.testing.assert_allclose(medians[4:6], legs, rtol=1e-5)
            assert f"in {int(collapsed.sum())} of" in notes[0]
        else:  # body, xy, z, head - feet
            assert _same(medians[3], head_feet)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("real_frames", [0, 1, 37, 90, 96])
def test_single_window_aggregation_equals_general_path(monkeypatch, dtype, real_frames):
    from valgusml import preprocess

    rng = np.random.default_rng(real_frames)
    valgus = rng.uniform(0, 1, (1, 2)).astype(dtype)
    mechanism = rng.dirichlet(np.ones(5), (1, 2)).astype(dtype)
    severity = rng.normal(0, 10, (1, 2)).astype(dtype)
    severity[0, 0], mechanism[0, 1, 2] = -0.0, np.nan  # the one-row sum turns -0.0 into 0.0; NaN stays NaN
    per_window = {"valgus_probability": valgus, "mechanism_probabilities": mechanism, "severity_deg": severity,
                  "extra": rng.normal(size=(1, 3)).astype(dtype)}
    mask = np.zeros((1, 96), np.float32)
    mask[0, :real_frames] = 1.0
    calls = [
        {},
        {"n_sequences": 1, "segments": [[]], "window_start": np.zeros(1)},
        {"n_sequences": 1, "segments": None, "window_start": np.zeros(1)},
    ]
    fast = [preprocess.aggregate_windows(per_window, np.zeros(1, np.int64), mask, **kw) for kw in calls]
    monkeypatch.setattr(
        preprocess, "_single_window",
        lambda arrays, frames: preprocess._each_sequence(arrays, np.zeros(1, np.int64), np.array([frames]), 1, None, None),
    )
    general = [preprocess.aggregate_windows(per_window, np.zeros(1, np.int64), mask, **kw) for kw in calls]
    for a, b in zip(fast, general, strict=True):
        assert list(a) == list(b)
        assert all(_same(a[k], b[k]) for k in a)
        assert all(np.array_equal(np.signbit(a[k]), np.signbit(b[k])) for k in a)


@pytest.mark.parametrize("n_in, fps_in, fps_out", [(180, 60.0, 30.0), (97, 29.97, 30.0), (40, 25.0, 30.0), (1, 60.0, 30.0)])
def test_cached_frame_plan_equals_fresh_plan(n_in, fps_in, fps_out):
    from valgusml.preprocess import _frame_plan, _whole_frame_plan

    for cached, fresh in zip(_whole_frame_plan(n_in, fps_in, fps_out), _frame_plan(n_in, fps_in, fps_out), strict=True):
        assert _same(cached, fresh)
        assert not cached.flags.writeable  # shared between calls: nobody may change it


def test_float32_columns_equal_concatenate():
    from valgusml.features.frame import _float32_columns

    rng = np.random.default_rng(3)
    for n_frames in (0, 1, 90):
        per_limb = tuple(rng.normal(0, 10.0 ** rng.integers(-8, 40), (n_frames, 2)) for _ in range(9))
        bilateral = tuple(rng.normal(0, 100, n_frames) for _ in range(5))
        if n_frames:
            per_limb[0][0, 0], per_limb[1][-1, 1], bilateral[0][0] = np.nan, np.inf, -0.0
        with np.errstate(over="ignore"):  # float64 beyond float32's range rounds to inf (and warns) in both
            reference = np.concatenate([*per_limb, np.stack(bilateral, axis=1)], axis=1, dtype=np.float32)
            fast = _float32_columns(n_frames, per_limb, bilateral)
        assert _same(fast, reference)
        assert np.array_equal(np.signbit(fast), np.signbit(reference))
