"""Bounds on the work one input may cause, checked before anything is allocated (numpy-free, one place).

A file or array can claim far more than it holds: a frame rate of 1e-6 turns 100 frames into 3 years of
samples to resample, a COCO file's last `image_id` of 999999 into a million-frame sequence, an `.npz` header
into (1e9, 20, 3) floats, a 12 MB zip into gigabytes. Every importer, `valgusml.preprocess.prepare` and the
predictor check the claim against these limits first and raise `InputError`/`FormatError` naming the file,
the value and the limit (and how to raise it).

| limit | default | environment variable | what it bounds |
|---|---|---|---|
| `min_fps` | 1 | `VALGUSML_MIN_FPS` | a frame rate below it is refused (no pose recording samples slower) |
| `max_fps` | 10000 | `VALGUSML_MAX_FPS` | a frame rate above it is refused |
| `max_frames` | 1,000,000 | `VALGUSML_MAX_FRAMES` | frames of one recording: in a file, in a frame-number span, after resampling |
| `max_duration_s` | 3600 | `VALGUSML_MAX_DURATION_S` | length of one recording (frames / fps) |
| `max_array_bytes` | 1 GiB | `VALGUSML_MAX_ARRAY_BYTES` | one array declared in a file (npz header), or decompressed from it |
| `min_frame_coverage` | 0.01 | `VALGUSML_MIN_FRAME_COVERAGE` | a span of frame numbers longer than 1000 must have detections in this share of its frames |

An hour at the model's 30 fps is ~0.4 GB of model windows at peak; raise `max_duration_s` for longer
recordings. Override per process with the environment variables, or in code with
`valgusml.limits.override(max_duration_s=7200)` (a context manager; also usable as `with override(...):`).
"""

from __future__ import annotations

import contextvars
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any

from valgusml.errors import ConfigError, InputError


def frame_rate(fps: Any, where: str = "") -> float:
    """`fps` as a float, refused (`InputError` after `where`) unless a finite number > 0; a bool is no rate."""
    if type(fps).__name__ in ("bool", "bool_"):  # Python's and numpy's (1.x, 2.x); float(True) is 1.0: a flag
        raise InputError(f"{where}fps must be a number, got {fps!r}")
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"{where}fps must be a number, got {fps!r:.40}") from None
    except OverflowError:  # an int beyond float's range
        raise InputError(f"{where}fps must be finite and > 0, got {fps!r:.40}") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}fps must be finite and > 0, got {fps!r}")
    return value


@dataclass(frozen=True)
class Limits:
    min_fps: float = 1.0
    max_fps: float = 10_000.0
    max_frames: int = 1_000_000
    max_duration_s: float = 3600.0
    max_array_bytes: int = 1 << 30
    min_frame_coverage: float = 0.01

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"limit {f.name} must be a finite number >= 0, got {value!r}")
        if not 0 < self.min_fps <= self.max_fps:
            raise ConfigError(f"limits need 0 < min_fps <= max_fps, got {self.min_fps!r} and {self.max_fps!r}")

    # -- checks -------------------------------------------------------------------------------------------
    def check_fps(self, fps: float, where: str = "") -> float:
        """`fps` as a float (`frame_rate`), refused unless within [min_fps, max_fps]."""
        value = frame_rate(fps, where)
        if not self.min_fps <= value <= self.max_fps:
            raise InputError(
                f"{where}fps {value:g} is outside [{self.min_fps:g}, {self.max_fps:g}]; a pose recording is not "
                f"sampled that {'slowly' if value < self.min_fps else 'fast'} ({_how_to_raise('min_fps' if value < self.min_fps else 'max_fps')})"
            )
        return value

    def check_frames(self, n_frames: int, fps: float | None = None, where: str = "", what: str = "frames") -> None:
        """A recording of `n_frames` (at `fps`, when known) within `max_frames` and `max_duration_s`."""
        if n_frames > self.max_frames:
            raise InputError(f"{where}{n_frames} {what} exceed the limit of {self.max_frames} ({_how_to_raise('max_frames')})")
        if fps is not None and fps > 0 and n_frames / fps > self.max_duration_s:
            raise InputError(
                f"{where}{n_frames} {what} at {fps:g} fps last {n_frames / fps:.4g} s, beyond the limit of "
                f"{self.max_duration_s:g} s ({_how_to_raise('max_duration_s')})"
            )

    def check_bytes(self, n_bytes: int, where: str = "", what: str = "array") -> None:
        if n_bytes > self.max_array_bytes:
            raise InputError(
                f"{where}{what} of {n_bytes:,} bytes exceeds the limit of {self.max_array_bytes:,} "
                f"({_how_to_raise('max_array_bytes')})"
            )

    def check_span(self, span: int, n_present: int, where: str = "", what: str = "frame numbers") -> None:
        """A span of frame numbers (first to last) that holds `n_present` frames with data."""
        self.check_frames(span, where=where, what=f"frames spanned by the {what}")
        if span > 1000 and n_present < self.min_frame_coverage * span:
            raise InputError(
                f"{where}the {what} span {span} frames but only {n_present} hold detections "
                f"(under {self.min_frame_coverage:.0%}); are these from one video? ({_how_to_raise('min_frame_coverage')})"
            )


def _how_to_raise(name: str) -> str:
    return f"set {ENV_PREFIX}{name.upper()} or valgusml.limits.override({name}=...) to change it"


ENV_PREFIX = "VALGUSML_"
_OVERRIDE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("valgusml_limits", default=None)


_NAMES = tuple(f.name for f in fields(Limits))


def _parse(raw_env: tuple[str | None, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f, raw in zip(fields(Limits), raw_env, strict=True):
        if raw is None or not raw.strip():
            continue
        try:
            out[f.name] = int(raw) if f.type in ("int", int) else float(raw)
        except ValueError:
            raise ConfigError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a number") from None
    return out


@lru_cache(maxsize=32)
def _limits(raw_env: tuple[str | None, ...], overrides: tuple[tuple[str, Any], ...]) -> Limits:
    return replace(Limits(), **{**_parse(raw_env), **dict(overrides)})


def current() -> Limits:
    """The limits in force: defaults, then environment variables, then `override(...)` in this context.
    Read on every prediction, so built once per (environment, overrides) and shared (`Limits` is frozen)."""
    raw_env = tuple(os.environ.get(ENV_PREFIX + name.upper()) for name in _NAMES)
    return _limits(raw_env, tuple(sorted((_OVERRIDE.get() or {}).items())))


@contextmanager
def override(**values: Any) -> Iterator[Limits]:
    """Change limits inside a `with` block (this thread/task only): `with override(max_frames=10**7): ...`."""
    unknown = set(values) - {f.name for f in fields(Limits)}
    if unknown:
        raise ConfigError(f"unknown limits {sorted(unknown)}; known: {[f.name for f in fields(Limits)]}")
    token = _OVERRIDE.set({**(_OVERRIDE.get() or {}), **values})
    try:
        yield current()
    finally:
        _OVERRIDE.reset(token)


__all__ = ["ENV_PREFIX", "Limits", "current", "override"]
