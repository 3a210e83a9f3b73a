"""Real 3D recordings as a motion source: found by file name, read, aligned, resampled (`realmotion.py`
superimposes the mechanisms on them; `tasks.py` draws which recording a trial uses).

Recordings are found by file name (`valgusml.features.rule.task_from_file_name`, as the real-motion suite
reads them) among the tasks real motion can carry: drop jumps, bilateral squats, walking, running. Each is
read with `valgusml.io.read(...)`, mapped to the canonical skeleton, gaps interpolated, turned so the athlete
faces -y with the left at +x, its floor at z = 0 and its pelvis centred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from valgusml.errors import ConfigError
from valgusml.features.rule import task_from_file_name
from valgusml.paths import REPO_ROOT
from valgusml.skeleton import CANONICAL_JOINTS

# The tasks whose real motion can carry the mechanisms (read from file names as the real-motion suite does).
SUPPORTED_TASKS: tuple[str, ...] = ("drop_vertical_jump", "bilateral_squat", "walking", "running")
SUFFIXES = (".trc",)
C = {name: k for k, name in enumerate(CANONICAL_JOINTS)}


@dataclass(frozen=True)
class Recording:
    name: str
    task: str
    fps: float
    joints: np.ndarray  # (T, 20, 3) canonical, metres: facing -y, left at +x, floor z = 0, pelvis centred
    height_m: float
    base_dynamic_fppa_deg: float  # the person's own peak FPPA over the scored phase, above standing


def task_of(path: Path) -> str | None:
    task = task_from_file_name(path.stem)
    return task if task in SUPPORTED_TASKS else None


def _files(paths: tuple[str, ...]) -> list[Path]:
    out: list[Path] = []
    for entry in paths:
        path = Path(entry) if Path(entry).is_absolute() else REPO_ROOT / entry
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
        elif path.is_file():
            out.append(path)
    return out


def _fill(kp: np.ndarray) -> np.ndarray:
    """Interpolate gaps over time; rebuild joints missing throughout (a nose, a toe) from their neighbours."""
    kp = np.array(kp, dtype=np.float64)
    T = len(kp)
    frames = np.arange(T)
    for j in range(kp.shape[1]):
        for c in range(3):
            ok = np.isfinite(kp[:, j, c])
            if ok.any() and not ok.all():
                kp[:, j, c] = np.interp(frames, frames[ok], kp[ok, j, c])
    for side in ("left", "right"):
        heel, ankle = kp[:, C[f"{side}_heel"]], kp[:, C[f"{side}_ankle"]]
        forward = ankle - heel
        forward[:, 2] = 0.0
        for part, reach in (("big_toe", 2.2), ("small_toe", 1.9)):
            j = C[f"{side}_{part}"]
            if not np.isfinite(kp[:, j]).all():
                kp[:, j] = heel + reach * forward
                kp[:, j, 2] = heel[:, 2]
    return kp


def _align(kp: np.ndarray) -> np.ndarray:
    """Turn about z so the hips' left-right axis is +x; floor at z = 0; pelvis centred (mid-clip for gait)."""
    across = np.nanmedian(kp[:, C["left_hip"], :2] - kp[:, C["right_hip"], :2], axis=0)
    angle = math.atan2(across[1], across[0])
    c, s = math.cos(-angle), math.sin(-angle)
    x, y = kp[..., 0].copy(), kp[..., 1].copy()
    kp[..., 0], kp[..., 1] = c * x - s * y, s * x + c * y
    pelvis = 0.5 * (kp[:, C["left_hip"]] + kp[:, C["right_hip"]])
    kp[..., :2] -= np.median(pelvis[:, :2], axis=0)
    feet = [C[f"{side}_{p}"] for side in ("left", "right") for p in ("heel", "big_toe", "small_toe", "ankle")]
    kp[..., 2] -= np.percentile(kp[:, feet, 2].min(axis=1), 2)
    return kp


def _load(path: Path) -> Recording | None:
    from valgusml.features.geometry import fppa_deg
    from valgusml.features.phases import knee_flexion, loaded_mask, standing_frames
    from valgusml.io import read

    task = task_of(path)
    if task is None:
        return None
    try:
        seq = read(path)
    except Exception as exc:  # a user's unreadable file names itself
        raise ConfigError(f"motion.real_paths: cannot read {path}: {exc}") from None
    if seq.dims != 3:
        raise ConfigError(f"motion.real_paths: {path} holds {seq.dims}D keypoints; real motion must be 3D")
    kp = _align(_fill(seq.to_canonical().keypoints))
    toes_ahead = np.median(kp[:, C["left_big_toe"], 1] - kp[:, C["left_heel"], 1])
    if not toes_ahead < 0:
        raise ConfigError(f"motion.real_paths: {path}: the toes are not ahead of the heels after alignment "
                          "(a mirrored or left-handed coordinate system?)")
    standing = standing_frames(knee_flexion(kp, seq.fps))
    feet = [C[f"{side}_{p}"] for side in ("left", "right") for p in ("heel", "big_toe")]
    stature = kp[:, C["neck"], 2] - kp[:, feet, 2].min(axis=1)  # on a box too
    neck = stature[standing] if standing.any() else stature
    fppa = fppa_deg(kp)
    loaded = loaded_mask(kp, seq.fps, task)
    base = np.where(standing[:, None], fppa, np.nan)
    reference = np.nanmedian(base, axis=0) if standing.any() else np.nanmin(fppa, axis=0)
    peak = np.where(loaded, fppa, -np.inf).max(axis=0)
    dynamic = float(np.max(np.where(np.isfinite(peak), peak - reference, -np.inf)))
    return Recording(path.stem, task, float(seq.fps), kp.astype(np.float32), float(np.median(neck) / 0.818), dynamic)


@cache
def recordings(paths: tuple[str, ...]) -> tuple[Recording, ...]:
    """Every usable recording under `paths` (files or folders; relative ones from the checkout), in path
    order; `ConfigError` when there is none (the real-motion source is unavailable)."""
    found = [r for r in (_load(p) for p in _files(paths)) if r is not None]
    if not found:
        where = ", ".join(str(Path(p) if Path(p).is_absolute() else REPO_ROOT / p) for p in paths) or "(none given)"
        raise ConfigError(
            f"motion.real_fraction > 0 but the real-motion source is unavailable: no recording of a known task "
            f"(file names naming one of {list(SUPPORTED_TASKS)}, {', '.join(SUFFIXES)}) under "
            f"motion.real_paths: {where}"
        )
    return tuple(found)


def resample(rec: Recording, fps: float, start_s: float, n_frames: int) -> np.ndarray:
    """`n_frames` frames of `rec` from `start_s` at `fps` (linear interpolation), float64 `(n, 20, 3)`."""
    t = start_s + np.arange(n_frames) / fps
    position = np.clip(t * rec.fps, 0.0, len(rec.joints) - 1.0)
    i0 = np.minimum(position.astype(int), len(rec.joints) - 2)
    w = (position - i0)[:, None, None]
    kp = rec.joints.astype(np.float64)
    return kp[i0] * (1.0 - w) + kp[i0 + 1] * w


def usable(rec: Recording, threshold_deg: float, margin_deg: float) -> bool:
    return rec.base_dynamic_fppa_deg < threshold_deg - margin_deg
