"""Pose-estimator families: how each kind of keypoint source gets a body wrong.

A model trained on one estimator's error learns that error; real users bring several. Each family below
scales the preset's base error (`NoiseConfig`: offsets, jitter, dropouts, swaps) its own way and adds what
sets it apart: the direction of its systematic joint-centre bias (its own population direction, mirrored
left/right), a pose-dependent pull of the knee towards the hip-ankle line (estimators regress towards the
average pose: FPPA and deep flexion come out smaller), temporal smoothing with its lag, left/right swaps
tied to crossing legs and to oblique, side and rear views, far-leg occlusion (noisier, less confident),
single-frame outliers, pixel-level jitter and its own confidence behaviour.

Calibration (what each number is sized to; *design choice* where no study gives it):

- ``mediapipe`` (BlazePose GHUM, `mediapipe33`): frontal knee angle error 5-7 deg MAE in squats (BIOMECH.md);
  hip joint centre offsets at the upper end of Needham 2021's 30-50 mm (its hips sit high and wide); a
  built-in landmark smoothing filter (one-euro-like: ~40 ms lag, low jitter); "visibility" scores high even
  when wrong and low for occluded limbs; left/right confusion in side and rear views is common (Washabaugh
  2022, gait: largest errors of the open estimators). Knee pull towards the line 0.15 (design choice sized to
  the 5-7 deg MAE together with the offsets).
- ``rtmpose`` (RTMPose / AlphaPose on HALPE-26, `halpe26`): per-frame top-down heatmaps, no temporal filter;
  hip/knee offsets ~30-45 mm and ankles < 15 mm (Needham 2021, AlphaPose the most accurate of the three it
  tested); moderate jitter; scores 0.6-0.95; feet noisier than ankles (HALPE foot points).
- ``openpose`` (BODY_25, `body25`): bottom-up part affinity fields: frontal knee angle 2.4 deg MAE in drop
  jumps (Ino 2024) with larger jitter and more left/right swaps than the others (Needham 2021 had to correct
  them by hand), occasional single-frame outliers (limb assignment failures), low foot scores.
- ``mocap`` (marker-based, 3D): joint centres from lateral knee and ankle markers offset medially by half
  the measured joint width, whose error (~10% of ~100 mm) shifts the centre along the limb's lateral axis;
  hip centres from pelvis-marker regressions (10-15 mm, Harrington 2007 / Leardini 1999); marker noise
  ~1 mm; occlusion gaps (NaN) of 0.05-0.5 s; no swaps, no outliers, full confidence where present.
  Through a camera (2D) it stands for clean image keypoints (motion capture or multi-camera markerless 3D
  reprojected); the realistic preset gives it a share so that not every 2D frontal angle a model sees
  overshoots the 3D one (the other families' peak frontal angle does, squats seen square on most).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EstimatorFamily:
    name: str
    offset_gain: float  # x the preset's offset ranges
    consistency: float  # share of each offset's direction that is the family's own population direction
    lateral_offsets: bool  # mocap: knee/ankle offsets along the limb's lateral axis (marker width error)
    jitter_gain: float  # x the preset's jitter
    jitter_time_constant_s: float
    foot_gain: float  # feet noise, x the preset's foot factor
    knee_pull: float  # knee pulled this share of the way towards the hip-ankle line (2D)
    smoothing_s: float  # one-pole low-pass time constant (lag ~ this)
    swap_gain: float  # x the preset's swap probability
    view_swap_gain: float  # extra swap probability at side and rear views (x |sin yaw| + rear share)
    crossing_swap: float  # probability of a swap burst when the legs cross in the image
    outlier_rate: float  # share of joint-frames thrown far off (single frames)
    outlier_mm: float
    dropout_gain: float  # x the preset's dropout fraction
    nan_share: float | None  # dropped points emitted as NaN (None: the preset's share)
    confidence: tuple[float, float]
    occlusion_drop: float  # confidence lost by the far leg in a side view
    occlusion_noise: float  # extra jitter (relative) of the far leg in a side view
    pixel_jitter_px: float  # pixel-level error (sd, pixels): coordinates snapped to a grid of sqrt(12) x this (heatmap resolution)
    seed: int  # fixes the family's population directions


FAMILIES: dict[str, EstimatorFamily] = {
    "mediapipe": EstimatorFamily(
        "mediapipe", offset_gain=1.15, consistency=0.8, lateral_offsets=False, jitter_gain=0.6,
        jitter_time_constant_s=0.08, foot_gain=1.3, knee_pull=0.15, smoothing_s=0.04, swap_gain=1.0,
        view_swap_gain=0.12, crossing_swap=0.15, outlier_rate=0.0005, outlier_mm=80.0, dropout_gain=0.7,
        nan_share=None, confidence=(0.8, 1.0), occlusion_drop=0.35, occlusion_noise=1.0, pixel_jitter_px=0.5,
        seed=33,
    ),
    "rtmpose": EstimatorFamily(
        "rtmpose", offset_gain=0.9, consistency=0.7, lateral_offsets=False, jitter_gain=1.0,
        jitter_time_constant_s=0.05, foot_gain=1.0, knee_pull=0.05, smoothing_s=0.0, swap_gain=1.0,
        view_swap_gain=0.08, crossing_swap=0.1, outlier_rate=0.0008, outlier_mm=100.0, dropout_gain=1.0,
        nan_share=None, confidence=(0.6, 0.95), occlusion_drop=0.4, occlusion_noise=1.5, pixel_jitter_px=0.8,
        seed=26,
    ),
    "openpose": EstimatorFamily(
        "openpose", offset_gain=1.05, consistency=0.6, lateral_offsets=False, jitter_gain=1.15,
        jitter_time_constant_s=0.04, foot_gain=1.3, knee_pull=0.08, smoothing_s=0.0, swap_gain=1.6,
        view_swap_gain=0.2, crossing_swap=0.25, outlier_rate=0.0015, outlier_mm=120.0, dropout_gain=1.5,
        nan_share=None, confidence=(0.45, 0.9), occlusion_drop=0.5, occlusion_noise=2.0, pixel_jitter_px=1.0,
        seed=25,
    ),
    "mocap": EstimatorFamily(
        "mocap", offset_gain=0.25, consistency=0.9, lateral_offsets=True, jitter_gain=0.17,
        jitter_time_constant_s=0.01, foot_gain=0.6, knee_pull=0.0, smoothing_s=0.0, swap_gain=0.0,
        view_swap_gain=0.0, crossing_swap=0.0, outlier_rate=0.0, outlier_mm=0.0, dropout_gain=0.5,
        nan_share=1.0, confidence=(1.0, 1.0), occlusion_drop=0.0, occlusion_noise=0.0, pixel_jitter_px=0.0,
        seed=1,
    ),
}
FAMILY_NAMES = tuple(FAMILIES)


def pick_family(weights: dict[str, float], draw: float) -> EstimatorFamily:
    names = [n for n in FAMILY_NAMES if weights.get(n, 0.0) > 0]
    cumulative = np.cumsum([weights[n] for n in names])
    return FAMILIES[names[min(int(np.searchsorted(cumulative, draw * cumulative[-1], side="right")), len(names) - 1)]]


def far_leg_weight(yaw_deg: float) -> tuple[float, float]:
    """How hidden each leg (left, right) is behind the other from a camera at `yaw_deg`: 0 front/rear, 1
    for the far leg of a side view (the camera at +x, the athlete's left, hides the right leg)."""
    s = float(np.sin(np.radians(yaw_deg)))
    return max(0.0, -s) ** 2, max(0.0, s) ** 2


def pull_knees_to_line(points: np.ndarray, hips: tuple[int, int], knees: tuple[int, int], ankles: tuple[int, int],
                       pull: np.ndarray) -> None:
    """Move each knee `pull` `(n,)` of the way towards its hip-ankle line, in place (`points` `(n, T, K, D)`);
    coordinate by coordinate (numpy reduces over a short last axis slowly)."""
    if not np.any(pull > 0):
        return
    rows = np.flatnonzero(pull > 0)
    w = pull[rows].astype(points.dtype)[:, None]
    D = points.shape[-1]
    for h, k, a in zip(hips, knees, ankles, strict=True):
        hip = [points[rows, :, h, c] for c in range(D)]
        knee = [points[rows, :, k, c] for c in range(D)]
        axis = [points[rows, :, a, c] - hip[c] for c in range(D)]
        along = sum((knee[c] - hip[c]) * axis[c] for c in range(D)) / np.maximum(sum(x * x for x in axis), 1e-12)
        for c in range(D):
            points[rows, :, k, c] = knee[c] + w * (hip[c] + along * axis[c] - knee[c])


def low_pass_in_place(points: np.ndarray, fps: np.ndarray, time_constant_s: np.ndarray) -> None:
    """One-pole causal low-pass `(n, T, ...)` per row (its own fps and time constant; 0 = none), in place:
    the smoothing and the lag of a tracker's landmark filter."""
    rows = np.flatnonzero(time_constant_s > 0)
    if rows.size == 0:
        return
    a = np.exp(-1.0 / (time_constant_s[rows] * fps[rows])).astype(points.dtype)
    shape = (len(rows),) + (1,) * (points.ndim - 2)
    a, b = a.reshape(shape), (1.0 - a).reshape(shape)
    sub = points[rows]
    for t in range(1, sub.shape[1]):
        sub[:, t] = a * sub[:, t - 1] + b * sub[:, t]
    points[rows] = sub
