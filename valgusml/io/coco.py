"""COCO-style keypoint results JSON, as RTMPose/MMPose, AlphaPose and Sports2D-style tools write them.

Accepted layouts:
- a list of detections `{"image_id", "category_id", "keypoints": [x, y, s] * K, "score", "idx"|"track_id"}`
  (COCO results, AlphaPose); also an object with such a list under `annotations`;
- MMPose inferencer predictions: a list of `{"frame_id", "instances": [{"keypoints": [[x, y]] * K,
  "keypoint_scores": [s] * K}]}` (or `predictions: [[instance, ...], ...]`).
K = 17 gives skeleton `coco17`, K = 26 `halpe26`; whole-body sets keep their body and feet as `halpe26`
(COCO-WholeBody K = 133, e.g. RTMW/DWPose: neck and mid-hip derived as midpoints, head missing; Halpe-136: its first 26 points). The frame index comes from `image_id`/`frame_id`: a number,
or the last number in a file name such as "000123.jpg"; when no id holds a number, frames follow the order of
first appearance. Points with score 0 at (0, 0) are missing (NaN). Several people per frame are linked into
tracks (by `idx`/`track_id` when present, else box overlap) and one is kept (see `valgusml.io.tracking`).
The file holds no frame rate: pass `fps` (default 30).
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

SKELETON_BY_POINTS = {17: "coco17", 26: "halpe26", 133: "halpe26", 136: "halpe26"}
LAYOUT_NAMES = {17: "coco17", 26: "halpe26", 133: "coco_wholebody133", 136: "halpe136"}
# COCO-WholeBody's six foot points (17-22) in halpe26's slots: big toe, small toe, heel for left then right.
_WHOLEBODY_FEET_TO_HALPE = [20, 22, 24, 21, 23, 25]


def to_layout(values: np.ndarray) -> np.ndarray:
    """(K, 3) points of any accepted layout as coco17 or halpe26 (whole-body sets keep body and feet only)."""
    if len(values) == 133:
        out = np.full((26, 3), np.nan)
        out[:17] = values[:17]
        out[_WHOLEBODY_FEET_TO_HALPE] = values[17:23]
        # neck and mid-hip as halpe26 has them: midpoints (of the shoulders, of the hips), lower confidence
        for target, (a, b) in ((18, (5, 6)), (19, (11, 12))):
            out[target, :2] = 0.5 * (values[a, :2] + values[b, :2])
            out[target, 2] = min(values[a, 2], values[b, 2])
        return out
    return values[:26] if len(values) == 136 else values


def _track_hint(record: dict[str, Any]) -> int | None:
    for key in ("track_id", "idx", "person_id", "instance_id"):
        value = record.get(key)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) < 2**31:
            return int(value)
    return None


def _records(path: Path, doc: Any) -> list[tuple[Any, dict[str, Any], np.ndarray]]:
    """(image id, record, (K, 3) array of x, y, score) for every detection in the file."""
    if isinstance(doc, dict):
        for key in ("annotations", "results", "instance_info", "predictions"):
            if isinstance(doc.get(key), list):
                doc = doc[key]
                break
        else:
            raise FormatError(f"{path}: a JSON object without a list of detections (annotations/predictions)")
    if not isinstance(doc, list):
        raise FormatError(f"{path}: expected a list of keypoint detections, got {type(doc).__name__}")
    out = []
    for r, rec in enumerate(doc):
        where = f"{path}: detection {r}"
        if isinstance(rec, list):  # predictions: [[instance, ...] per frame]
            rec = {"frame_id": r, "instances": rec}
        if not isinstance(rec, dict):
            raise FormatError(f"{where}: expected an object, got {type(rec).__name__}")
        if "instances" in rec:
            if not isinstance(rec["instances"], list):
                raise FormatError(f"{where}: 'instances' must be a list")
            image = rec.get("frame_id", rec.get("image_id", r))
            for k, inst in enumerate(rec["instances"]):
                if not isinstance(inst, dict) or "keypoints" not in inst:
                    raise FormatError(f"{where} instance {k}: no 'keypoints'")
                xy = np.array(inst["keypoints"], dtype=np.float64)
                if xy.ndim != 2 or xy.shape[1] not in (2, 3) or xy.shape[0] not in SKELETON_BY_POINTS:
                    raise FormatError(f"{where} instance {k}: keypoints must be [[x, y]] * 17, 26, 133 or 136, got shape {xy.shape}")
                scores = np.array(inst.get("keypoint_scores", np.ones(len(xy))), dtype=np.float64).reshape(-1)
                if scores.shape != (len(xy),):
                    raise FormatError(f"{where} instance {k}: keypoint_scores has {scores.size} values for {len(xy)} points")
                out.append((image, inst, np.column_stack([xy[:, :2], scores])))
            continue
        if "keypoints" not in rec:
            raise FormatError(f"{where}: no 'keypoints' (keys: {sorted(rec)[:8]})")
        flat = rec["keypoints"]
        if not isinstance(flat, list) or any(isinstance(v, (bool, list, dict, str)) for v in flat):
            raise FormatError(f"{where}: 'keypoints' must be a flat list [x, y, score] * K")
        values = np.array([np.nan if v is None else v for v in flat], dtype=np.float64)
        if len(values) % 3 or len(values) // 3 not in SKELETON_BY_POINTS:
            raise FormatError(
                f"{where}: {len(values)} keypoint numbers; expected 3 × 17 (coco17), 26 (halpe26), 133 (COCO-WholeBody) or 136"
            )
        image = rec.get("image_id", rec.get("frame_id", rec.get("image")))
        out.append((image, rec, values.reshape(-1, 3)))
    return out


def read(path: str | Path, fps: float | None = None, person: int | None = None, *,
         document: Any = None) -> KeypointSequence:
    """`document`: the file's parsed JSON when the caller already has it (`valgusml.io.read` after sniffing)."""
    path = Path(path)
    with _common.reading(path, "COCO keypoint results"):
        records = _records(path, _common.load_json(path) if document is None else document)
        if not records:
            raise InputError(f"{path}: zero people: the file holds no detections")
        sizes = {len(v) for _, _, v in records}
        if len(sizes) != 1:
            raise FormatError(f"{path}: detections mix keypoint counts {sorted(sizes)}")
        (n_points,) = sizes
        skeleton = SKELETON_BY_POINTS[n_points]
        numbers = [_common.frame_number(image) for image, _, _ in records]
        if any(n is None for n in numbers):
            order: dict[str, int] = {}
            numbers = [order.setdefault(json.dumps(image, sort_keys=True, default=str), len(order)) for image, _, _ in records]
        first = min(numbers)
        n_frames = max(numbers) - first + 1
        limits.current().check_span(n_frames, len(set(numbers)), f"{path}: ", "image ids")
        frames: list[list[Detection]] = [[] for _ in range(n_frames)]
        for num, (_, rec, values) in zip(numbers, records, strict=True):
            values = to_layout(values)
            conf = _common.as_confidence(values[:, 2])
            xy = values[:, :2].copy()
            xy[(conf <= 0) & (xy == 0).all(axis=1)] = np.nan  # COCO's "not labelled" point
            frames[num - first].append(Detection(xy, conf, _track_hint(rec)))
        keypoints, confidence, notes, meta = select_person(path, frames, SKELETONS[skeleton].n_joints, 2, person)
        if fps is None:
            fps = _common.assume_default_fps(meta, notes, f"keypoint results hold no frame rate; assumed "
                                             f"{_common.DEFAULT_FPS:g} fps (pass fps=... to set it)")
        meta = {"first_frame": first, "layout": LAYOUT_NAMES[n_points], **meta}
        return _common.finish(path, keypoints, confidence, skeleton, _common.checked_fps(path, fps), "coco", meta, notes)


def write(people: KeypointSequence | Sequence[KeypointSequence], path: str | Path, image_names: bool = True,
          track_ids: bool = True, digits: int = 2) -> Path:
    """Write one or several same-length `coco17`/`halpe26` 2D sequences (one per person) as a results list.

    `image_names` writes image ids as "000012.jpg" (else integers); `track_ids` adds AlphaPose's `idx`.
    """
    people = [people] if isinstance(people, KeypointSequence) else list(people)
    if not people:
        raise InputError("COCO writer: no sequence given")
    skeletons = {p.skeleton for p in people}
    if len(skeletons) != 1 or not skeletons <= {"coco17", "halpe26"} or any(p.dims != 2 for p in people):
        raise InputError(f"COCO keypoint results hold 2D coco17 or halpe26 keypoints; got {sorted(skeletons)}")
    n_frames = people[0].n_frames
    if any(p.n_frames != n_frames for p in people):
        raise InputError("COCO writer: all people must have the same number of frames")
    records = []
    for t in range(n_frames):
        for k, p in enumerate(people):
            conf = p.confidence[t]
            if not (conf > 0).any():
                continue
            flat: list[float] = []
            for j in range(p.n_joints):
                ok = conf[j] > 0
                flat += [round(float(p.keypoints[t, j, 0]), digits) if ok else 0.0,
                         round(float(p.keypoints[t, j, 1]), digits) if ok else 0.0, round(float(conf[j]), 4)]
            rec: dict[str, Any] = {"image_id": f"{t:06d}.jpg" if image_names else t, "category_id": 1,
                                   "keypoints": flat, "score": round(float(conf[conf > 0].mean()), 4)}
            if track_ids:
                rec["idx"] = k
            records.append(rec)
    path = Path(path)
    _common.atomic_write_text(path, json.dumps(records, separators=(",", ":")) + "\n")
    return path
