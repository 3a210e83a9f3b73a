"""`valgusml predict clip.mp4 --overlay out.mp4`: the video with the skeleton, each knee's FPPA, the segment
(window, rep or loaded phase) under way with each limb's probability, and the recording's per-limb call drawn
on every frame. The output has the input's frame count and (upright) frame size; it is written to a temporary
file and renamed, so a failure leaves nothing behind.

Drawing needs OpenCV: in-process where `cv2` imports, otherwise in the video environment (`make video`) as
`python -m valgusml.viz.overlay VIDEO OUT SPEC.npz`, where SPEC holds the annotations computed here (numpy only).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.errors import InputError
from valgusml.labels import LIMBS
from valgusml.skeleton import SKELETONS
from valgusml.viz.annotate import MIN_CONFIDENCE, knee_fppa, limb_call, segment_at

# BGR colours.
SIDE_COLOURS = {"left": (230, 140, 30), "right": (30, 140, 255), "centre": (225, 225, 225)}
RED, GREEN, WHITE = (40, 40, 230), (60, 190, 60), (255, 255, 255)
FPPA_REFERENCE_DEG = 10.0


def overlay_spec(seq: Any, prediction: Any) -> dict[str, Any]:
    """Everything drawn, as arrays and JSON-able values (the seam between this process and the video one)."""
    skeleton = SKELETONS[seq.skeleton]
    if seq.dims != 2:
        raise InputError(f"{seq.id}: an overlay needs 2D image keypoints, got {seq.dims}D")
    index = {name: j for j, name in enumerate(skeleton.joints)}
    sides = [("left" if j.startswith("left_") else "right" if j.startswith("right_") else "centre")
             for j in skeleton.joints]
    _, fppa = knee_fppa(seq)
    return {
        "keypoints": seq.keypoints.astype(np.float32),
        "confidence": seq.confidence.astype(np.float32),
        "fppa": fppa.astype(np.float32),
        "bones": np.array([(index[a], index[b]) for a, b in skeleton.bones], dtype=np.int32).reshape(-1, 2),
        "info": json.dumps({
            "fps": seq.fps,
            "sides": sides,
            "knees": [index[f"{limb}_knee"] for limb in LIMBS],
            "timeline": prediction.timeline,
            "threshold": prediction.decision_threshold,
            "calls": {limb: limb_call(prediction, limb) for limb in LIMBS},
            "valgus": {limb: bool(prediction.limbs[limb]["valgus"]) for limb in LIMBS},
        }),
    }


def write_overlay(video: str | Path, out: str | Path, seq: Any, prediction: Any) -> Path:
    """Draw `prediction` of `seq` (read from `video`) on the video's frames, into `out` (.mp4)."""
    video, out = Path(video), Path(out)
    if out.suffix.lower() not in (".mp4", ".avi", ".mov", ".m4v"):
        raise InputError(f"{out}: the overlay is a video: name it .mp4")
    spec = overlay_spec(seq, prediction)
    if importlib.util.find_spec("cv2") is not None:
        return render(video, out, spec)
    from valgusml.io.video import run_in_video_env

    with tempfile.TemporaryDirectory(prefix="valgusml-overlay-") as work:
        spec_path = Path(work) / "spec.npz"
        np.savez(spec_path, **spec)
        run_in_video_env("valgusml.viz.overlay", [str(video), str(out), str(spec_path)], video, "the overlay")
    return out


def render(video: Path, out: Path, spec: dict[str, Any]) -> Path:
    import cv2

    from valgusml.io.video_worker import VideoReadError, frames, open_video

    info = json.loads(str(spec["info"]))
    try:
        capture, container = open_video(video)
    except VideoReadError as exc:
        raise InputError(str(exc)) from None
    fps = container["fps"] or info["fps"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp{out.suffix}")
    writer = None
    try:
        for t, (_, frame) in enumerate(frames(capture)):
            if writer is None:
                height, width = frame.shape[:2]
                writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
                if not writer.isOpened():
                    raise InputError(f"{out}: OpenCV cannot write an MPEG-4 video here")
            draw(frame, t, spec, info)
            writer.write(frame)
        if writer is None:
            raise InputError(f"{video}: frame 0 cannot be decoded: no overlay written")
        writer.release()
        writer = None
        tmp.replace(out)
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        tmp.unlink(missing_ok=True)
    return out


def draw(frame: np.ndarray, t: int, spec: dict[str, Any], info: dict[str, Any]) -> None:
    """Draw frame t's annotations in place."""
    import cv2

    height, width = frame.shape[:2]
    scale = max(height, width) / 1000.0
    thick = max(2, round(3 * scale))
    font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale
    keypoints, confidence = spec["keypoints"], spec["confidence"]
    sides = info["sides"]
    if t < len(keypoints):
        seen = (confidence[t] >= MIN_CONFIDENCE) & np.isfinite(keypoints[t]).all(axis=-1)
        points = np.nan_to_num(keypoints[t]).round().astype(int)
        for a, b in spec["bones"]:
            if seen[a] and seen[b]:
                side = sides[a] if sides[a] == sides[b] else "centre"
                cv2.line(frame, tuple(points[a]), tuple(points[b]), SIDE_COLOURS[side], thick, cv2.LINE_AA)
        for j in np.flatnonzero(seen):
            cv2.circle(frame, tuple(points[j]), thick + 1, SIDE_COLOURS[sides[j]], -1, cv2.LINE_AA)
        for i, (limb, knee) in enumerate(zip(LIMBS, info["knees"], strict=True)):
            angle = float(spec["fppa"][t, i])
            if seen[knee] and np.isfinite(angle):
                colour = RED if angle > FPPA_REFERENCE_DEG else SIDE_COLOURS[limb]
                _text(frame, f"{limb[0].upper()} {angle:+.0f} deg", (points[knee][0] + 3 * thick, points[knee][1]),
                      font, font_scale, colour, thick)
    seconds = t / info["fps"]
    lines = [(f"t {seconds:5.2f} s", WHITE)]
    k = segment_at(info["timeline"], seconds)
    if k is not None:
        seg = info["timeline"][k]
        lines[0] = (f"t {seconds:5.2f} s   segment {k + 1}/{len(info['timeline'])} "
                    f"({seg['start_s']:.1f}-{seg['end_s']:.1f} s)", WHITE)
        for limb in LIMBS:
            p = seg["valgus_probability"][limb]
            if p is None:  # the limb was not seen in this segment
                lines.append((f"{limb:<5} not seen", WHITE))
            else:
                lines.append((f"{limb:<5} p {p:.2f} {seg['mechanism'][limb]}", RED if p >= info["threshold"] else GREEN))
    for limb in LIMBS:
        lines.append((f"recording {limb}: {info['calls'][limb]}", RED if info["valgus"][limb] else GREEN))
    line_height = round(28 * scale)
    box_h = line_height * len(lines) + line_height // 2
    shade = frame[:box_h, : min(width, round(560 * scale))]
    shade[:] = (shade * 0.45).astype(frame.dtype)
    for n, (text, colour) in enumerate(lines):
        _text(frame, text, (round(8 * scale), line_height * (n + 1)), font, font_scale, colour, thick)
    _timeline_strip(frame, seconds, info, scale)


def _timeline_strip(frame: np.ndarray, seconds: float, info: dict[str, Any], scale: float) -> None:
    """Two thin bars at the bottom (left limb above right), one block per segment coloured by probability."""
    import cv2

    timeline = info["timeline"]
    if not timeline:
        return
    height, width = frame.shape[:2]
    end = max(float(s["end_s"]) for s in timeline)
    bar = max(4, round(10 * scale))
    for row, limb in enumerate(LIMBS):
        y0 = height - (2 - row) * bar - 2
        for seg in timeline:
            p = seg["valgus_probability"][limb]
            colour = WHITE if p is None else tuple(int(g + (r - g) * p) for g, r in zip(GREEN, RED, strict=True))
            x0, x1 = round(seg["start_s"] / end * (width - 1)), round(seg["end_s"] / end * (width - 1))
            cv2.rectangle(frame, (x0, y0), (x1, y0 + bar - 1), colour, -1)
    x = round(min(seconds / end, 1.0) * (width - 1))
    cv2.line(frame, (x, height - 2 * bar - 4), (x, height - 1), WHITE, max(1, round(2 * scale)))


def _text(frame: np.ndarray, text: str, origin: Any, font: int, scale: float, colour: tuple, thick: int) -> None:
    import cv2

    origin = (int(origin[0]), int(origin[1]))
    cv2.putText(frame, text, origin, font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(frame, text, origin, font, scale, colour, max(1, thick - 1), cv2.LINE_AA)


def main(argv: list[str] | None = None) -> int:
    video, out, spec_path = (argv if argv is not None else sys.argv[1:])[:3]
    with np.load(spec_path) as data:
        spec = {key: data[key] for key in data.files}
    try:
        render(Path(video), Path(out), spec)
    except InputError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
