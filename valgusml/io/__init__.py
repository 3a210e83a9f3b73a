"""Importers: any supported pose file → `KeypointSequence`, the format detected from the file.

    seq = valgusml.io.read("clip.json")                     # MediaPipe / COCO / OpenPose frame JSON, sniffed
    seq = valgusml.io.read("openpose_out/", fps=60)         # folder of OpenPose *_keypoints.json
    seq = valgusml.io.read("trial.trc", up_axis="y")        # format options go to the reader
    seq = valgusml.io.read("alphapose.json", person=1)      # the second-ranked tracked person
    seq = valgusml.io.read("clip.mp4")                      # video: MediaPipe Pose (`video` extra / make video)

Formats (`FORMATS`): `mediapipe` (.json, .csv), `openpose` (folder or one `*_keypoints.json`), `coco`
(.json keypoint results: coco17, halpe26), `trc` (.trc), `npz` (the project's own .npz), `video` (.mp4, .mov,
... through `read_video`; see valgusml/io/video.py and docs/video.md). See each module's
docstring and data/README.md for the details.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from valgusml.errors import FormatError, InputError
from valgusml.io import _common, coco, mediapipe, npz, openpose, trc, video
from valgusml.io._common import DEFAULT_FPS, FPS_ASSUMED, fps_assumed, without_assumed_fps
from valgusml.io.video import read_video
from valgusml.sequence import KeypointSequence

READERS = {
    "mediapipe": mediapipe.read,
    "openpose": openpose.read,
    "coco": coco.read,
    "trc": trc.read,
    "npz": npz.read,
    "video": read_video,
}
FORMATS: tuple[str, ...] = tuple(READERS)
# Extensions a folder scan treats as pose files.
POSE_SUFFIXES = (".json", ".csv", ".trc", ".npz")


def _sniff_json(path: Path, doc: Any) -> str:
    """The format of a parsed JSON pose file."""
    if isinstance(doc, dict):
        if isinstance(doc.get("people"), list):
            return "openpose"
        if any(isinstance(doc.get(k), list) for k in ("annotations", "instance_info")):
            return "coco"
        return "mediapipe"
    if isinstance(doc, list) and doc:
        first = next((item for item in doc if item), None)
        if isinstance(first, dict) and ("instances" in first or ("keypoints" in first and (
                "image_id" in first or "category_id" in first or isinstance(first.get("keypoints"), list)
                and first["keypoints"] and not isinstance(first["keypoints"][0], (dict, list))))):
            return "coco"
        return "mediapipe"
    raise FormatError(f"{path}: JSON holds no pose data (expected a list of frames or detections)")


def _as_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)) or isinstance(os.fspath(path), bytes):
        raise InputError(f"a pose file or folder path (str or Path) is needed, got {type(path).__name__} {path!r:.60}")
    return Path(path)


def detect_format(path: str | Path) -> str:
    """The format of a file or folder, from its extension and, for JSON, its content."""
    return _detect(_as_path(path))[0]


def _detect(path: Path) -> tuple[str, Any]:
    """`(format, document)`: for a JSON file the document parsed to sniff it, which `read` hands to the
    reader so the file is parsed once; None for every other kind of input."""
    if path.is_dir():
        if (path / "dataset.json").is_file():
            raise InputError(f"{path} is a valgusml dataset folder; open it with valgusml.data.open_dataset")
        if openpose.frame_files(path):
            return "openpose", None
        raise InputError(f"{path}: empty OpenPose folder: no {openpose.PATTERN} files in it")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".trc":
        return "trc", None
    if suffix == ".npz":
        return "npz", None
    if suffix in video.VIDEO_SUFFIXES:
        return "video", None
    if suffix in (".csv", ".tsv"):
        return "mediapipe", None
    if suffix == ".json":
        with _common.reading(path, "JSON"):
            doc = _common.load_json(path)
            return _sniff_json(path, doc), doc
    raise FormatError(
        f"{path}: unknown pose file type {suffix or '(no extension)'!r}; supported: .json (MediaPipe, COCO/Halpe, "
        "OpenPose), .csv (MediaPipe), .trc, .npz, a video (.mp4, .mov, ...), or a folder of OpenPose *_keypoints.json (or name format=)"
    )


def read(path: str | Path, format: str | None = None, person: int | None = None, **options: Any) -> KeypointSequence:
    """Read one pose file (or OpenPose folder) as a `KeypointSequence`.

    `format` names the reader (one of `FORMATS`) instead of detecting it; `person` picks a tracked person in
    multi-person files (0 = largest, most persistent; the default keeps that one and warns); `options` go to
    the reader (`fps` for formats without a frame rate, `up_axis`/`marker_map`/... for TRC).
    """
    path = _as_path(path)
    if format is None:
        format, document = _detect(path)
        if document is not None:
            options["document"] = document
    elif format not in READERS:
        raise InputError(f"unknown format {format!r}; supported: {', '.join(FORMATS)}")
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    try:
        return READERS[format](path, person=person, **options)
    except TypeError as exc:  # an option the reader does not take
        raise InputError(f"{path}: reader {format!r} does not accept {exc}") from None


def write(seq: KeypointSequence | list[KeypointSequence], path: str | Path, format: str, **options: Any) -> Path:
    """Write with the project's own writers: mediapipe (.json/.csv), openpose (folder), coco, trc, npz."""
    writers = {"mediapipe": mediapipe.write, "openpose": openpose.write, "coco": coco.write, "trc": trc.write,
               "npz": npz.write}
    if format not in writers:
        raise InputError(f"unknown format {format!r}; writable: {', '.join(writers)}")
    return writers[format](seq, path, **options)


__all__ = ["DEFAULT_FPS", "FORMATS", "FPS_ASSUMED", "detect_format", "fps_assumed", "read", "read_video",
           "without_assumed_fps", "write", "coco", "mediapipe", "npz", "openpose", "trc", "video"]
