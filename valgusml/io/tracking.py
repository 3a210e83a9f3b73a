"""Keep one person from multi-person detections: link detections frame to frame, rank tracks, pick one.

Linking: when the file carries track ids (AlphaPose `idx`, `track_id`, OpenPose `person_id` >= 0) they are
used as given. Otherwise each frame's detections are matched to the live tracks by the Hungarian algorithm on
a cost of (1 - box IoU) + centre distance / track box diagonal; a pair costing more than `MAX_COST` starts a new
track, and a track unseen for more than `max_gap` frames ends.
Ranking: tracks are ordered by size × persistence (the sum over frames of the keypoint box diagonal), so the
person who is largest and present longest comes first; `person=k` picks the k-th of that order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from valgusml.errors import InputError

MAX_COST = 1.5


@dataclass
class Detection:
    keypoints: np.ndarray  # (J, 2|3)
    confidence: np.ndarray  # (J,)
    track_hint: int | None = None


@dataclass
class Track:
    detections: dict[int, Detection] = field(default_factory=dict)
    score: float = 0.0

    @property
    def n_frames(self) -> int:
        return len(self.detections)


def box(det: Detection) -> np.ndarray | None:
    """(x0, y0, x1, y1) around the detection's valid 2D points, or None when it has none."""
    valid = (det.confidence > 0) & np.isfinite(det.keypoints).all(axis=-1)
    if not valid.any():
        return None
    pts = det.keypoints[valid, :2]
    return np.concatenate([pts.min(axis=0), pts.max(axis=0)]).astype(np.float64)


def _diag(b: np.ndarray) -> float:
    return float(np.hypot(b[2] - b[0], b[3] - b[1]))


def box_cost(a: np.ndarray, b: np.ndarray) -> float:
    """How unlikely box b follows box a: (1 - IoU) + centre distance / diagonal of a."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    iou = inter / union if union > 0 else 0.0
    centre_a, centre_b = (a[:2] + a[2:]) / 2, (b[:2] + b[2:]) / 2
    scale = max(_diag(a), 1e-9)
    return (1.0 - iou) + float(np.linalg.norm(centre_a - centre_b)) / scale


def link(frames: list[list[Detection]], max_gap: int = 30) -> list[Track]:
    """Group detections into tracks, ranked (best first) by size × persistence."""
    from scipy.optimize import linear_sum_assignment

    usable = [[d for d in dets if box(d) is not None] for dets in frames]
    hints = [d.track_hint for dets in usable for d in dets]
    tracks: list[Track] = []
    if hints and all(h is not None for h in hints) and all(
        len({d.track_hint for d in dets}) == len(dets) for dets in usable
    ):
        by_id: dict[int, Track] = {}
        for t, dets in enumerate(usable):
            for d in dets:
                by_id.setdefault(int(d.track_hint), Track()).detections[t] = d
        tracks = [by_id[k] for k in sorted(by_id)]
    elif max((len(dets) for dets in usable), default=0) <= 1:
        single = Track({t: dets[0] for t, dets in enumerate(usable) if dets})
        tracks = [single] if single.detections else []
    else:
        last_box: list[np.ndarray] = []
        last_seen: list[int] = []
        for t, dets in enumerate(usable):
            boxes = [box(d) for d in dets]
            live = [k for k in range(len(tracks)) if t - last_seen[k] <= max_gap]
            matched: set[int] = set()
            if live and dets:
                cost = np.array([[box_cost(last_box[k], b) for b in boxes] for k in live])
                cost = np.nan_to_num(cost, nan=1e9, posinf=1e9, neginf=1e9)  # absurd boxes never match
                rows, cols = linear_sum_assignment(cost)
                for r, c in zip(rows, cols, strict=True):
                    if cost[r, c] <= MAX_COST:
                        k = live[r]
                        tracks[k].detections[t] = dets[c]
                        last_box[k], last_seen[k] = boxes[c], t
                        matched.add(c)
            for c, d in enumerate(dets):
                if c not in matched:
                    tracks.append(Track({t: d}))
                    last_box.append(boxes[c])
                    last_seen.append(t)
    for track in tracks:
        track.score = sum(_diag(box(d)) for d in track.detections.values())
    # Stable sort: equal scores keep first-appearance order, so the choice is deterministic.
    return sorted(tracks, key=lambda tr: -tr.score)


def select_person(
    path: Path,
    frames: list[list[Detection]],
    n_joints: int,
    dims: int,
    person: int | None = None,
    max_gap: int = 30,
) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """`(T, J, dims)` keypoints and `(T, J)` confidence of one person, plus warnings and tracking metadata."""
    tracks = link(frames, max_gap=max_gap)
    n_frames = len(frames)
    if not tracks:
        raise InputError(f"{path}: no person detected in any of its {n_frames} frame(s)")
    if person is not None:
        if isinstance(person, bool) or not isinstance(person, (int, np.integer)) or person < 0:
            raise InputError(f"{path}: person must be a track index >= 0, got {person!r}")
        if person >= len(tracks):
            raise InputError(
                f"{path}: person={person} asked for but only {len(tracks)} tracked person(s) found "
                f"(0 = largest, most persistent)"
            )
    chosen = int(person) if person is not None else 0
    track = tracks[chosen]
    keypoints = np.full((n_frames, n_joints, dims), np.nan)
    confidence = np.zeros((n_frames, n_joints))
    for t, det in track.detections.items():
        keypoints[t] = det.keypoints
        confidence[t] = det.confidence
    notes = []
    summary = [{"frames": tr.n_frames, "score": round(tr.score, 3)} for tr in tracks]
    if len(tracks) > 1:
        how = "chosen with person=" if person is not None else "the largest and most persistent"
        notes.append(
            f"{len(tracks)} people tracked; kept person {chosen} ({how}; present in {track.n_frames}/{n_frames} "
            f"frames). Pass person=K (CLI --person K) to choose another, 0 = largest/most persistent"
        )
    meta = {"n_people": len(tracks), "person": chosen, "tracks": summary[:10]}
    return keypoints, confidence, notes, meta
