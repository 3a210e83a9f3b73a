"""The project's own single-sequence file: one `.npz` holding plain arrays and a JSON string, no pickle.

    keypoints   float32 (T, J, 2|3)
    confidence  float32 (T, J)
    metadata    0-d unicode string: JSON {"format": "valgusml-sequence", "version": 1, "skeleton", "fps", "id",
                "athlete_id", "task", "source", "labels", "meta"}

Read with `allow_pickle=False`, so a file cannot run code. (A dataset folder of many sequences is another
format: `valgusml.data.open_dataset`.)
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from valgusml import limits
from valgusml.canonical_json import dumps
from valgusml.errors import FormatError, InputError
from valgusml.io import _common
from valgusml.sequence import KeypointSequence

FORMAT_NAME = "valgusml-sequence"
FORMAT_VERSION = 1


def write(seq: KeypointSequence, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "skeleton": seq.skeleton,
        "fps": seq.fps,
        "id": seq.id,
        "athlete_id": seq.athlete_id,
        "task": seq.task,
        "source": seq.source,
        "labels": seq.labels,
        "meta": seq.meta,
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
    np.savez_compressed(
        tmp,
        keypoints=np.ascontiguousarray(seq.keypoints, dtype=np.float32),
        confidence=np.ascontiguousarray(seq.confidence, dtype=np.float32),
        metadata=np.array(dumps(metadata)),
    )
    tmp.replace(path)
    return path


def npy_header(stream: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from a `.npy` stream's header, read without reading the data (numpy's
    own parser: no pickle, no eval); the stream is left at the first data byte."""
    version = np.lib.format.read_magic(stream)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return read(stream)


def check_declared_sizes(path: Path) -> None:
    """Refuse, before anything is decompressed, a member whose decompressed size or whose `.npy` header's
    shape is beyond `valgusml.limits` (a zip bomb, a header claiming (1e9, 20, 3)) or beyond what it holds."""
    lim = limits.current()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            where = f"{path}: member {info.filename!r}"
            lim.check_bytes(info.file_size, f"{path}: ", f"member {info.filename!r} (decompressed)")
            if not info.filename.endswith(".npy"):
                continue
            with archive.open(info) as member:
                shape, _, dtype = npy_header(member)
                header_bytes = member.tell()
            n_bytes = math.prod(shape) * dtype.itemsize
            if n_bytes > info.file_size - header_bytes:
                raise FormatError(
                    f"{where} declares shape {shape} {dtype} ({n_bytes:,} bytes) but holds "
                    f"{info.file_size - header_bytes:,} bytes of data"
                )
            lim.check_bytes(n_bytes, f"{where}: ", f"array of shape {shape}")


def read(path: str | Path, fps: float | None = None, person: int | None = None) -> KeypointSequence:
    path = Path(path)
    if person not in (None, 0):
        raise InputError(f"{path}: a valgusml .npz holds one person; person={person!r} cannot be chosen")
    with _common.reading(path, "valgusml .npz"):
        if path.stat().st_size == 0:
            raise FormatError(f"{path}: file is empty")
        if not zipfile.is_zipfile(path):
            raise FormatError(f"{path}: not a .npz (zip) file")
        check_declared_sizes(path)
        try:
            with np.load(path, allow_pickle=False) as archive:
                missing = {"keypoints", "confidence", "metadata"} - set(archive.files)
                if missing:
                    raise FormatError(f"{path}: not a valgusml sequence file: missing arrays {sorted(missing)}")
                keypoints, confidence, raw = archive["keypoints"], archive["confidence"], archive["metadata"]
        except (OSError, zipfile.BadZipFile, EOFError) as exc:
            raise FormatError(f"{path}: corrupt .npz ({exc})") from None
        except ValueError as exc:  # object arrays need pickle, which is refused
            raise FormatError(f"{path}: unreadable array ({exc})") from None
        if raw.dtype.kind != "U" or raw.ndim != 0:
            raise FormatError(f"{path}: 'metadata' must be a JSON string, got {raw.dtype} {raw.shape}")
        try:
            metadata: Any = json.loads(str(raw))
        except json.JSONDecodeError as exc:
            raise FormatError(f"{path}: metadata is not valid JSON ({exc.msg})") from None
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
            raise FormatError(f"{path}: not a {FORMAT_NAME} file (metadata format {metadata.get('format') if isinstance(metadata, dict) else None!r})")
        if metadata.get("version") != FORMAT_VERSION:
            raise FormatError(f"{path}: {FORMAT_NAME} version {metadata.get('version')!r} is not {FORMAT_VERSION}")
        meta = metadata.get("meta") or {}
        if not isinstance(meta, dict):
            raise FormatError(f"{path}: metadata 'meta' must be an object")
        if fps is not None:  # the caller's rate replaces the one saved, an assumed one too: its flag goes
            meta = _common.without_assumed_fps(meta)
        for key in ("id", "athlete_id", "task", "source", "skeleton"):
            if not isinstance(metadata.get(key, ""), str):
                raise FormatError(f"{path}: metadata {key!r} must be a string")
        return KeypointSequence(
            keypoints=keypoints,
            confidence=confidence,
            skeleton=metadata.get("skeleton"),
            fps=metadata.get("fps") if fps is None else fps,
            id=metadata.get("id", "") or path.stem,
            athlete_id=metadata.get("athlete_id", ""),
            task=metadata.get("task", ""),
            source=metadata.get("source", ""),
            labels=metadata.get("labels"),
            meta=meta,
        )
