"""Helpers shared by the importers: file reading that fails with typed errors, frame numbers, sequence assembly."""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from valgusml import limits
from valgusml.errors import FormatError, InputError
from valgusml.sequence import KeypointSequence

DEFAULT_FPS = 30.0
# The meta key a reader sets when the file holds no frame rate and it used DEFAULT_FPS: {"fps": DEFAULT_FPS,
# "warning": the note it recorded}. Code asks `fps_assumed`, never the note's wording, which is written for people
# and free to change; the note is kept here so that whoever supplies the real rate can drop it (`without_assumed_fps`).
FPS_ASSUMED = "fps_assumed"
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")

# What a malformed file can make ordinary parsing code raise; `reading` turns these into FormatError.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
    UnicodeError,
    zipfile.BadZipFile,
    EOFError,
    csv.Error,
)


@contextmanager
def reading(path: str | Path, what: str) -> Iterator[None]:
    """Run a reader body so that every failure surfaces as InputError/FormatError naming the file.

    Readers raise their own, precise errors; this is the net under them for whatever a corrupt file makes
    numpy or the json module raise, so users never see a deep traceback.
    """
    try:
        yield
    except InputError as exc:
        message = str(exc)
        if str(path) not in message:
            raise type(exc)(f"{path}: {message}") from None
        raise
    except _PARSE_ERRORS as exc:
        raise FormatError(f"{path}: not a readable {what} file ({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise FormatError(f"{path}: file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text (byte {exc.start}); is this really a pose file?") from None


def load_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        ending = text.rstrip()[-1:]
        hint = " (the file looks truncated: it does not end with } or ])" if ending not in ("}", "]") else ""
        raise FormatError(
            f"{path}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}{hint}"
        ) from None
    except RecursionError:
        raise FormatError(f"{path}: JSON nested too deeply to be a pose file") from None


def frame_number(name: Any) -> int | None:
    """The frame number in an image id or file name: 12, "12", "000012.jpg", "clip_000000000012_keypoints"."""
    if isinstance(name, bool):
        return None
    if isinstance(name, (int, np.integer)):
        return int(name)
    if isinstance(name, float) and math.isfinite(name) and name == int(name):
        return int(name)
    if isinstance(name, str):
        match = _LAST_NUMBER.search(Path(name).stem if "." in name else name)
        return int(match.group(1)) if match else None
    return None


def number(value: Any, where: str) -> float:
    """One coordinate from a JSON/CSV value: numbers and numeric strings; null/empty/NaN become NaN."""
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        raise FormatError(f"{where}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise FormatError(f"{where}: expected a number, got {value!r:.40}") from None
    return out


def as_confidence(values: np.ndarray) -> np.ndarray:
    """Scores as [0, 1] confidence: NaN → 0, clipped (some estimators emit scores slightly above 1)."""
    with np.errstate(invalid="ignore"):
        return np.clip(np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def check_coordinates(path: Path, keypoints: np.ndarray) -> None:
    """Refuse coordinates float32 cannot hold (they would turn into inf) with the file named."""
    with np.errstate(invalid="ignore"):
        too_big = np.abs(keypoints) > 1e30
    if too_big.any():
        t, j = np.argwhere(too_big)[0][:2]
        raise FormatError(f"{path}: frame {t} point {j} has an absurd coordinate {keypoints[t, j].tolist()}")


def finish(
    path: Path,
    keypoints: np.ndarray,
    confidence: np.ndarray,
    skeleton: str,
    fps: float,
    source: str,
    meta: dict[str, Any],
    notes: list[str] | None = None,
) -> KeypointSequence:
    """Build the sequence, with the file name in its id and metadata and warnings both raised and recorded."""
    check_coordinates(path, keypoints)
    if not np.isfinite(keypoints).all(axis=-1).any():
        raise InputError(f"{path}: no frame has any valid keypoint (all missing, NaN or zero confidence)")
    notes = list(notes or [])
    for note in notes:
        warnings.warn(f"{path}: {note}", UserWarning, stacklevel=_caller_stacklevel())
    meta = {"file": path.name, "format": source, **meta}
    if notes:
        meta["warnings"] = list(meta.get("warnings", [])) + notes
    name = path.name[: -len(path.suffix)] if path.suffix and path.is_file() else path.name
    return KeypointSequence(
        keypoints=keypoints,
        confidence=confidence,
        skeleton=skeleton,
        fps=fps,
        id=name,
        source=source,
        meta=meta,
    )


def _caller_stacklevel() -> int:
    """The stacklevel that points a warning at the first frame outside valgusml.io (the user's call)."""
    package = str(Path(__file__).resolve().parent)
    frame, level = sys._getframe(1), 1  # level 1 = the function calling warnings.warn
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def assume_default_fps(meta: dict[str, Any], notes: list[str], note: str) -> float:
    """DEFAULT_FPS for a file that holds no frame rate: `note` (appended to `notes`) tells the user, and
    `meta[FPS_ASSUMED]` tells code, so that a caller with the real rate (`valgusml convert --fps`) can put it in."""
    notes.append(note)
    meta[FPS_ASSUMED] = {"fps": DEFAULT_FPS, "warning": note}
    return DEFAULT_FPS


def fps_assumed(meta: Mapping[str, Any]) -> bool:
    """Whether the reader found no frame rate in the file and assumed DEFAULT_FPS (`assume_default_fps`)."""
    return bool(meta.get(FPS_ASSUMED))


def without_assumed_fps(meta: Mapping[str, Any]) -> dict[str, Any]:
    """`meta` once a caller has given the rate the file lacked: no FPS_ASSUMED, and not the note that said so
    (it would tell whoever reads the sequence that its timing is a guess); other warnings are kept."""
    if not fps_assumed(meta):
        return dict(meta)
    said = meta[FPS_ASSUMED].get("warning") if isinstance(meta[FPS_ASSUMED], Mapping) else None
    notes = list(meta.get("warnings", []))
    if said in notes:
        notes.remove(said)
    kept = {k: v for k, v in meta.items() if k not in (FPS_ASSUMED, "warnings")}
    return kept | ({"warnings": notes} if notes else {})


def fps_from_times(times_s: np.ndarray) -> float | None:
    """Frame rate from time stamps in seconds (median step), or None when they cannot tell."""
    t = np.asarray(times_s, dtype=np.float64)
    t = t[np.isfinite(t)]
    if len(t) < 2:
        return None
    steps = np.diff(t)
    steps = steps[steps > 0]
    if not len(steps):
        return None
    fps = 1.0 / float(np.median(steps))
    # Time stamps are often rounded (33.333 ms): 3 decimals of fps is all they can tell.
    return round(fps, 3) if math.isfinite(fps) and 0 < fps < 10_000 else None


def check_time_order(path: Path, times: Any, where: Callable[[int], str], key: str, unit: str) -> None:
    """Refuse time stamps that go back (`unit`, rows or frames, out of order would be read as another motion):
    FormatError naming the first stamp smaller than the last finite one before it, by `where(index)` (its line,
    row or frame) and `key` (the time column). Missing (NaN) stamps are skipped."""
    times = np.asarray(times, dtype=np.float64)
    previous = None
    for k, time in enumerate(times.tolist()):
        if not math.isfinite(time):
            continue
        if previous is not None and time < times[previous]:
            raise FormatError(f"{path}: {where(k)}: {key} {time:g} comes after {times[previous]:g} ({where(previous)}): "
                              f"the {unit} are out of time order; sort them by time")
        previous = k


def checked_fps(path: Path, fps: Any) -> float:
    """The frame rate as a float, refused outside `valgusml.limits` (a tiny one would explode resampling)."""
    return limits.current().check_fps(fps, f"{path}: ")


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)

