"""MediaPipe Pose (BlazePose, 33 landmarks) as people save it: per-frame JSON, or a wide CSV.

JSON: the top level is either a list of frames or an object holding one under `frames`, `landmarks`,
`pose_landmarks`, `results` or `data`, with optional `fps` (also `frame_rate`, `video_fps`) and `image_width`
/ `image_height`. A frame is a list of 33 landmarks, or an object holding them under `landmarks`,
`pose_landmarks` (also MediaPipe's protobuf-as-dict `{"landmark": [...]}`) or `keypoints`, with an optional
`timestamp_ms`/`time`/`timestamp` (seconds) giving the frame rate when `fps` is absent. A frame holding a
list of several 33-landmark lists (the Tasks API's `pose_landmarks`) has several people. A landmark is
`{"x", "y", "z", "visibility"}` (also `presence`) or a list `[x, y, z, visibility]`. Empty or null frames
mean no detection.

CSV: one row per frame, one column per landmark coordinate. Accepted headers: `nose_x` / `NOSE.x` /
`x_nose`, `x0` / `x_0` / `landmark_0_x` / `lm0_x` / `0_x`, with `visibility`/`v`/`vis`/`presence`/`score`
for confidence; optional `frame`, `time`/`time_s`/`timestamp` (seconds) or `timestamp_ms` columns.

Coordinates are kept as given: normalised ([0, 1] of the image) or pixels; `meta["coordinates"]` says which
(detected: normalised when every coordinate lies in [-1, 2]). Normalised x and y are fractions of different
lengths (width, height), so angles measured on them are distorted: pass `image_size=(width, height)` to get
pixels. The JSON's own `image_width`/`image_height` are recorded in meta, and the predictor scales normalised
coordinates by them (`valgusml.preprocess`). `z` (MediaPipe's relative depth, not metric)
is dropped: keypoints are 2D image coordinates, skeleton `mediapipe33`, confidence = visibility (1 where
the file has none).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.errors import FormatError, InputError
from valgusml.io import _common
from valgusml.io.tracking import Detection, select_person
from valgusml.json_safe import json_float
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import SKELETONS

SKELETON = "mediapipe33"
LANDMARKS: tuple[str, ...] = SKELETONS[SKELETON].joints
N = len(LANDMARKS)
_FRAME_KEYS = ("frames", "landmarks", "pose_landmarks", "results", "data", "predictions")
_POSE_KEYS = ("landmarks", "pose_landmarks", "keypoints", "landmark", "poseLandmarks")
_FPS_KEYS = ("fps", "frame_rate", "framerate", "video_fps")
_CONF_NAMES = {"visibility": "v", "vis": "v", "v": "v", "presence": "v", "score": "v", "conf": "v", "confidence": "v"}
_COORD_NAMES = {"x": "x", "y": "y", "z": "z", **_CONF_NAMES}


# ---------------------------------------------------------------------------------------------- JSON
def _landmark(value: Any, where: str) -> list[float]:
    if isinstance(value, dict):
        x, y = _common.number(value.get("x"), f"{where}.x"), _common.number(value.get("y"), f"{where}.y")
        vis = value.get("visibility", value.get("presence", value.get("score")))
        v = 1.0 if vis is None else _common.number(vis, f"{where}.visibility")
    elif isinstance(value, (list, tuple)) and 2 <= len(value) <= 5:
        x, y = _common.number(value[0], f"{where}[0]"), _common.number(value[1], f"{where}[1]")
        v = _common.number(value[3], f"{where}[3]") if len(value) >= 4 else 1.0
    else:
        raise FormatError(f"{where}: a landmark must be {{x, y, z, visibility}} or [x, y, z, v], got {value!r:.60}")
    if not (math.isfinite(x) and math.isfinite(y)):
        return [math.nan, math.nan, 0.0]
    return [x, y, v]


def _is_landmark_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) == N and all(isinstance(v, (dict, list)) for v in value) and (
        isinstance(value[0], dict) or all(isinstance(c, (int, float)) or c is None for c in value[0])
    )


def _poses_of_frame(frame: Any, where: str) -> tuple[list[list[Any]], Any]:
    """The landmark lists (one per person) of one frame, and its time stamp if any."""
    stamp = None
    if isinstance(frame, dict):
        for key in ("timestamp_ms",):
            if frame.get(key) is not None:
                stamp = _common.number(frame[key], f"{where}.{key}") / 1000.0
        for key in ("time", "time_s", "timestamp"):
            if stamp is None and frame.get(key) is not None:
                stamp = _common.number(frame[key], f"{where}.{key}")
        body = next((frame[k] for k in _POSE_KEYS if k in frame), None)
        if body is None:
            if not frame or set(frame) <= {"frame", "frame_index", "timestamp_ms", "time", "timestamp", "time_s"}:
                return [], stamp
            raise FormatError(f"{where}: no landmarks under any of {_POSE_KEYS}; keys are {sorted(frame)[:8]}")
        frame = body
        if isinstance(frame, dict) and "landmark" in frame:  # protobuf MessageToDict
            frame = frame["landmark"]
    if frame is None or frame == []:
        return [], stamp
    if _is_landmark_list(frame):
        return [frame], stamp
    if isinstance(frame, list) and all(_is_landmark_list(p) or p in (None, []) for p in frame):
        return [p for p in frame if p], stamp
    if isinstance(frame, list) and frame and isinstance(frame[0], (dict, list)):
        raise FormatError(f"{where}: expected {N} MediaPipe Pose landmarks, got {len(frame)} items")
    raise FormatError(f"{where}: not a MediaPipe frame (a list of {N} landmarks), got {type(frame).__name__}")


def _to_pixels(path: Path, keypoints: np.ndarray, image_size: Any, meta: dict[str, Any]) -> np.ndarray:
    if image_size is None:
        return keypoints
    try:
        width, height = (float(v) for v in image_size)
    except (TypeError, ValueError):
        raise InputError(f"{path}: image_size must be (width, height) in pixels, got {image_size!r}") from None
    if not (width > 0 and height > 0 and math.isfinite(width * height)):
        raise InputError(f"{path}: image_size must be positive, finite pixel counts, got {image_size!r}")
    if meta["coordinates"] == "normalized":
        keypoints = keypoints * np.array([width, height])
        meta["coordinates"] = "pixel"
        meta["scaled_to_pixels"] = [width, height]
    return keypoints


def read_json(path: str | Path, fps: float | None = None, person: int | None = None,
              image_size: tuple[float, float] | None = None, *, document: Any = None) -> KeypointSequence:
    """`document`: the file's parsed JSON when the caller already has it (`valgusml.io.read` after sniffing)."""
    path = Path(path)
    with _common.reading(path, "MediaPipe JSON"):
        doc = _common.load_json(path) if document is None else document
        header: dict[str, Any] = {}
        frames = doc
        if isinstance(doc, dict):
            header = doc
            key = next((k for k in _FRAME_KEYS if k in doc), None)
            if key is None:
                raise FormatError(f"{path}: a JSON object without frames; expected one of {_FRAME_KEYS}")
            frames = doc[key]
        if not isinstance(frames, list):
            raise FormatError(f"{path}: frames must be a list, got {type(frames).__name__}")
        if not frames:
            raise InputError(f"{path}: the file holds no frames")
        if _is_landmark_list(frames):  # a single frame saved on its own
            frames = [frames]
        detections: list[list[Detection]] = []
        stamps: list[float] = []
        stamped: list[int] = []  # the frame of each stamp
        for t, frame in enumerate(frames):
            poses, stamp = _poses_of_frame(frame, f"{path}: frame {t}")
            if stamp is not None:
                stamps.append(stamp)
                stamped.append(t)
            people = []
            for pose in poses:
                arr = np.array([_landmark(lm, f"{path}: frame {t} landmark {j}") for j, lm in enumerate(pose)])
                people.append(Detection(arr[:, :2], _common.as_confidence(arr[:, 2]), None))
            detections.append(people)
        _common.check_time_order(path, stamps, lambda k: f"frame {stamped[k]}", "time stamp (s)", "frames")
        keypoints, confidence, notes, track_meta = select_person(path, detections, N, 2, person)
        meta = {"coordinates": _coordinates(keypoints), **track_meta}
        file_fps = next((header[k] for k in _FPS_KEYS if header.get(k) is not None), None)
        if fps is None and file_fps is not None:
            fps = _common.checked_fps(path, file_fps)
        if fps is None and len(stamps) == len(frames):
            fps = _common.fps_from_times(np.asarray(stamps))
        if fps is None:
            said = " and its time stamps give none" if len(stamps) == len(frames) else ""
            fps = _common.assume_default_fps(meta, notes, f"no frame rate in the file{said}; assumed "
                                             f"{_common.DEFAULT_FPS:g} fps (pass fps=... to set it)")
        for key in ("image_width", "image_height"):
            if isinstance(header.get(key), (int, float)) and not isinstance(header.get(key), bool):
                meta[key] = header[key]
        keypoints = _to_pixels(path, keypoints, image_size, meta)
        return _common.finish(path, keypoints, confidence, SKELETON, _common.checked_fps(path, fps), "mediapipe", meta, notes)


def _coordinates(keypoints: np.ndarray) -> str:
    finite = keypoints[np.isfinite(keypoints)]
    return "normalized" if finite.size and finite.min() >= -1.0 and finite.max() <= 2.0 else "pixel"


def write_json(seq: KeypointSequence, path: str | Path, digits: int = 5) -> Path:
    """Write a `mediapipe33` 2D sequence as `{"fps", "coordinates", "frames": [{"frame", "timestamp_ms",
    "landmarks": [{x, y, z, visibility} * 33]}]}`; z is written as 0 (not kept), missing points as null."""
    _check_writable(seq)
    frames = []
    for t in range(seq.n_frames):
        landmarks = [
            {
                "x": json_float(seq.keypoints[t, j, 0], digits),
                "y": json_float(seq.keypoints[t, j, 1], digits),
                "z": 0.0,
                "visibility": round(float(seq.confidence[t, j]), 4),
            }
            for j in range(N)
        ]
        frames.append({"frame": t, "timestamp_ms": round(1000.0 * t / seq.fps, 3), "landmarks": landmarks})
    doc: dict[str, Any] = {"fps": seq.fps, "coordinates": _coordinates(seq.keypoints)}
    for key in ("image_width", "image_height"):
        if key in seq.meta:
            doc[key] = seq.meta[key]
    doc["frames"] = frames
    path = Path(path)
    _common.atomic_write_text(path, json.dumps(doc, separators=(",", ":")) + "\n")
    return path


def _check_writable(seq: KeypointSequence) -> None:
    if seq.skeleton != SKELETON or seq.dims != 2:
        raise InputError(f"MediaPipe files hold 2D {SKELETON} keypoints; got {seq.skeleton} {seq.dims}D")


# ----------------------------------------------------------------------------------------------- CSV
_SEP = r"[\s_.\-]*"
_COORD = "|".join(sorted(_COORD_NAMES, key=len, reverse=True))
_INDEX_FIRST = re.compile(rf"^(?:landmark|lm|kp|keypoint|point|joint|p)?{_SEP}(\d+){_SEP}({_COORD})$")
_COORD_FIRST = re.compile(rf"^({_COORD}){_SEP}(\d+)$")
_NAME_INDEX = {name: j for j, name in enumerate(LANDMARKS)}
_NAME_FIRST = re.compile(rf"^([a-z_]+?){_SEP}({_COORD})$")
_COORD_NAME = re.compile(rf"^({_COORD}){_SEP}([a-z_]+)$")
_TIME_COLUMNS = {"time": 1.0, "time_s": 1.0, "timestamp": 1.0, "timestamp_s": 1.0, "t": 1.0, "timestamp_ms": 1e-3,
                 "time_ms": 1e-3}


def _parse_header(name: str) -> tuple[int, str] | None:
    key = name.strip().lower()
    for pattern, order in ((_INDEX_FIRST, "ic"), (_COORD_FIRST, "ci")):
        m = pattern.match(key)
        if m:
            index, coord = (m.group(1), m.group(2)) if order == "ic" else (m.group(2), m.group(1))
            return int(index), _COORD_NAMES[coord]
    for pattern, order in ((_NAME_FIRST, "nc"), (_COORD_NAME, "cn")):
        m = pattern.match(key)
        if m:
            joint, coord = (m.group(1), m.group(2)) if order == "nc" else (m.group(2), m.group(1))
            joint = joint.strip("_")
            if joint in _NAME_INDEX:
                return _NAME_INDEX[joint], _COORD_NAMES[coord]
    return None


def read_csv(path: str | Path, fps: float | None = None, person: int | None = None,
             image_size: tuple[float, float] | None = None) -> KeypointSequence:
    path = Path(path)
    with _common.reading(path, "MediaPipe CSV"):
        text = _common.read_text(path)
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        rows = list(csv.reader(io.StringIO(text), dialect))
        rows = [r for r in rows if any(c.strip() for c in r)]
        header, body = rows[0], rows[1:]
        columns: dict[tuple[int, str], int] = {}
        time_col, time_scale = None, 1.0
        for c, name in enumerate(header):
            parsed = _parse_header(name)
            if parsed is not None:
                if parsed in columns:
                    raise FormatError(f"{path}: column {name!r} repeats landmark {parsed[0]} {parsed[1]}")
                columns[parsed] = c
            elif name.strip().lower() in _TIME_COLUMNS and time_col is None:
                time_col, time_scale = c, _TIME_COLUMNS[name.strip().lower()]
        if not columns:
            raise FormatError(
                f"{path}: no landmark coordinate columns in the header {header[:6]}...; expected MediaPipe Pose "
                "columns such as nose_x, nose_y, nose_visibility or x0, y0, v0 or landmark_0_x"
            )
        indices = {j for j, _ in columns}
        if max(indices) >= N:
            raise FormatError(f"{path}: landmark index {max(indices)} in the header; MediaPipe Pose has {N} (0-{N - 1})")
        missing = [LANDMARKS[j] for j in range(N) if (j, "x") not in columns or (j, "y") not in columns]
        if missing:
            raise FormatError(
                f"{path}: wrong columns: no x/y column for {len(missing)} landmark(s) ({', '.join(missing[:5])}"
                f"{', ...' if len(missing) > 5 else ''}); a MediaPipe Pose CSV has x and y for all {N}"
            )
        if not body:
            raise InputError(f"{path}: the CSV has a header but no data rows")
        values = np.full((len(body), N, 3), np.nan)
        values[:, :, 2] = 1.0
        times = np.full(len(body), np.nan)
        for r, row in enumerate(body, start=2):
            for (j, coord), c in columns.items():
                if coord == "z":
                    continue
                cell = row[c] if c < len(row) else ""
                values[r - 2, j, "xyv".index(coord)] = _common.number(cell.strip(), f"{path}: row {r} column {header[c]!r}")
            if time_col is not None and time_col < len(row):
                times[r - 2] = _common.number(row[time_col].strip(), f"{path}: row {r} column {header[time_col]!r}")
        if time_col is not None:
            _common.check_time_order(path, times, lambda k: f"row {k + 2}", repr(header[time_col]), "rows")
        keypoints = values[:, :, :2]
        confidence = _common.as_confidence(values[:, :, 2])
        confidence[~np.isfinite(keypoints).all(axis=-1)] = 0.0
        detections = [
            [Detection(keypoints[t], confidence[t])] if np.isfinite(keypoints[t]).any() else []
            for t in range(len(body))
        ]
        keypoints, confidence, notes, track_meta = select_person(path, detections, N, 2, person)
        if len(body) > 1 and len(body[-1]) < len(header) <= len(body[-2]):
            notes.append(
                f"the last row holds {len(body[-1])} of {len(header)} columns: the file looks truncated "
                f"({len(body) - 1} complete rows)"
            )
        meta = {"coordinates": _coordinates(keypoints)}
        if fps is None and time_col is not None:
            fps = _common.fps_from_times(times * time_scale)
        if fps is None:
            said = "no time column" if time_col is None else f"the time column {header[time_col]!r} gives no frame rate"
            fps = _common.assume_default_fps(meta, notes, f"{said}; assumed {_common.DEFAULT_FPS:g} fps "
                                             "(pass fps=... to set it)")
        keypoints = _to_pixels(path, keypoints, image_size, meta)
        return _common.finish(path, keypoints, confidence, SKELETON, _common.checked_fps(path, fps), "mediapipe", meta, notes)


def write_csv(seq: KeypointSequence, path: str | Path, digits: int = 5) -> Path:
    """Write a `mediapipe33` 2D sequence as `frame,timestamp_ms,nose_x,nose_y,nose_z,nose_visibility,...`."""
    _check_writable(seq)
    header = ["frame", "timestamp_ms"] + [f"{name}_{c}" for name in LANDMARKS for c in ("x", "y", "z", "visibility")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for t in range(seq.n_frames):
        row: list[Any] = [t, round(1000.0 * t / seq.fps, 3)]
        for j in range(N):
            x, y = (seq.keypoints[t, j, k] for k in range(2))
            row += [
                "" if not math.isfinite(x) else round(float(x), digits),
                "" if not math.isfinite(y) else round(float(y), digits),
                0.0,
                round(float(seq.confidence[t, j]), 4),
            ]
        writer.writerow(row)
    path = Path(path)
    _common.atomic_write_text(path, out.getvalue())
    return path


def write(seq: KeypointSequence, path: str | Path) -> Path:
    return write_csv(seq, path) if Path(path).suffix.lower() == ".csv" else write_json(seq, path)


def read(path: str | Path, fps: float | None = None, person: int | None = None,
         image_size: tuple[float, float] | None = None, *, document: Any = None) -> KeypointSequence:
    """MediaPipe JSON or CSV (by extension: .csv/.tsv/.txt are CSV); `document` as in `read_json`."""
    if Path(path).suffix.lower() in (".csv", ".tsv", ".txt"):
        return read_csv(path, fps, person, image_size)
    return read_json(path, fps, person, image_size, document=document)


__all__: Sequence[str] = ("read", "read_csv", "read_json", "write", "write_csv", "write_json")
