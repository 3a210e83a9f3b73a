"""OpenPose output: a folder of per-frame `*_keypoints.json` files (`people[].pose_keypoints_2d`).

BODY_25 (75 numbers per person) gives skeleton `body25`; the older COCO model (18 points, 54 numbers) gives
`openpose18`. The frame index is the last number in each file name (`clip_000000000012_keypoints.json`);
missing file numbers are frames without detections. OpenPose marks undetected points as (0, 0, 0): they
become NaN with confidence 0. The files hold no frame rate: pass `fps` (default 30). Several people per
frame are linked into tracks (`person_id` when OpenPose tracked them, else box overlap) and one is kept
(see `valgusml.io.tracking`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valgusml import limits
from valgusml.errors import FormatError, InputError
from valgusml.io import _common
from valgusml.io.tracking import Detection, select_person
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import SKELETONS

SKELETON_BY_POINTS = {25: "body25", 18: "openpose18"}
PATTERN = "*_keypoints.json"


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(PATTERN) if p.is_file())


def _person(path: Path, k: int, person: object) -> tuple[np.ndarray, int | None]:
    if not isinstance(person, dict) or "pose_keypoints_2d" not in person:
        raise FormatError(f"{path}: people[{k}] has no pose_keypoints_2d")
    flat = person["pose_keypoints_2d"]
    if not isinstance(flat, list) or any(isinstance(v, (bool, list, dict, str)) for v in flat):
        raise FormatError(f"{path}: people[{k}].pose_keypoints_2d must be a flat list of numbers")
    if not flat:
        return np.zeros((0, 3)), None
    values = np.array([np.nan if v is None else v for v in flat], dtype=np.float64)
    if len(values) % 3 or len(values) // 3 not in SKELETON_BY_POINTS:
        raise FormatError(
            f"{path}: people[{k}].pose_keypoints_2d has {len(values)} numbers; expected 75 (BODY_25) or 54 (COCO 18)"
        )
    pid = person.get("person_id")
    pid = pid[0] if isinstance(pid, list) and pid else pid
    hint = int(pid) if isinstance(pid, (int, float)) and not isinstance(pid, bool) and 0 <= pid < 2**31 else None
    return values.reshape(-1, 3), hint


def read(path: str | Path, fps: float | None = None, person: int | None = None, *,
         document: Any = None) -> KeypointSequence:
    """Read a folder of OpenPose `*_keypoints.json` files (or one such file; `document`: its parsed JSON when
    the caller already has it, as `valgusml.io.read` does after sniffing)."""
    path = Path(path)
    with _common.reading(path, "OpenPose"):
        if path.is_dir():
            files = frame_files(path)
            if not files:
                raise InputError(f"{path}: empty OpenPose folder: no {PATTERN} files in it")
        else:
            files = [path]
        numbers = [_common.frame_number(f.name[: -len("_keypoints.json")] if f.name.endswith("_keypoints.json") else f.stem) for f in files]
        if any(n is None for n in numbers) or len(set(numbers)) != len(numbers):
            numbers = list(range(len(files)))  # no usable numbers: file order
        first = min(numbers)
        n_frames = max(numbers) - first + 1
        limits.current().check_span(n_frames, len(files), f"{path}: ", "file frame numbers")
        frames: list[list[Detection]] = [[] for _ in range(n_frames)]
        n_points = None
        for f, num in zip(files, numbers, strict=True):
            doc = document if document is not None and f == path else _common.load_json(f)
            if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
                raise FormatError(f"{f}: not an OpenPose keypoints file (no 'people' list)")
            for k, p in enumerate(doc["people"]):
                values, hint = _person(f, k, p)
                if not len(values):
                    continue
                if n_points is None:
                    n_points = len(values)
                elif len(values) != n_points:
                    raise FormatError(f"{f}: people[{k}] has {len(values)} points but earlier frames have {n_points}")
                conf = _common.as_confidence(values[:, 2])
                xy = values[:, :2].copy()
                xy[conf <= 0] = np.nan  # OpenPose writes undetected points as (0, 0, 0)
                frames[num - first].append(Detection(xy, conf, hint))
        if n_points is None:
            raise InputError(f"{path}: zero people: no person detected in any of the {len(files)} file(s)")
        skeleton = SKELETON_BY_POINTS[n_points]
        keypoints, confidence, notes, meta = select_person(path, frames, SKELETONS[skeleton].n_joints, 2, person)
        meta = {"first_frame": first, "n_files": len(files), **meta}
        if fps is None:
            fps = _common.assume_default_fps(meta, notes, f"OpenPose files hold no frame rate; assumed "
                                             f"{_common.DEFAULT_FPS:g} fps (pass fps=... to set it)")
        return _common.finish(path, keypoints, confidence, skeleton, _common.checked_fps(path, fps), "openpose", meta, notes)


def write(people: KeypointSequence | Sequence[KeypointSequence], folder: str | Path, stem: str | None = None,
          digits: int = 3) -> Path:
    """Write one or several same-length `body25`/`openpose18` 2D sequences (one per person) as OpenPose files."""
    people = [people] if isinstance(people, KeypointSequence) else list(people)
    if not people:
        raise InputError("OpenPose writer: no sequence given")
    skeletons = {p.skeleton for p in people}
    if len(skeletons) != 1 or skeletons & set(SKELETON_BY_POINTS.values()) != skeletons or any(p.dims != 2 for p in people):
        raise InputError(f"OpenPose files hold 2D body25 or openpose18 keypoints; got {sorted(skeletons)}")
    n_frames = people[0].n_frames
    if any(p.n_frames != n_frames for p in people):
        raise InputError("OpenPose writer: all people must have the same number of frames")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = stem or people[0].id or "clip"
    for t in range(n_frames):
        entries = []
        for p in people:
            conf = p.confidence[t]
            if not (conf > 0).any():
                continue
            flat: list[float] = []
            for j in range(p.n_joints):
                if conf[j] > 0:
                    flat += [round(float(p.keypoints[t, j, 0]), digits), round(float(p.keypoints[t, j, 1]), digits),
                             round(float(conf[j]), 4)]
                else:
                    flat += [0, 0, 0]
            entries.append({"person_id": [-1], "pose_keypoints_2d": flat, "face_keypoints_2d": [],
                            "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [], "pose_keypoints_3d": [],
                            "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []})
        doc = {"version": 1.3, "people": entries}
        _common.atomic_write_text(folder / f"{stem}_{t:012d}_keypoints.json", json.dumps(doc, separators=(",", ":")) + "\n")
    return folder
