"""On-disk dataset format: a folder of shards, each a JSONL manifest plus memory-mappable .npy arrays.

    data/NAME/
      dataset.json                 format, version, skeleton, dims, shard list with hashes, fingerprint, meta
      shards/00000.keypoints.npy   float32 (frames of all sequences in the shard, J, C), concatenated in time
      shards/00000.confidence.npy  float32 (frames, J)
      shards/00000.manifest.jsonl  one JSON object per sequence: id, athlete_id, task, fps, n_frames, offset,
                                   skeleton, source, labels, meta
      shards/00000.done.json       written last: the shard's sha256; a shard without it does not exist

Verification (`open_dataset(root, verify=...)`): the fingerprint is always recomputed from the shard entries
(never trusted as written) and the manifests' bytes are hashed at open, which reads them anyway. With the
default `verify="lazy"` each shard's files are hashed against its sha256 the first time anything of that shard
is read (arrays or manifest rows): one extra read of a shard per process, the price of never serving a
flipped byte, changed label or overwritten frames under the original fingerprint. `verify="full"` hashes
every shard at open and recomputes every sequence's digest and the fingerprint from the data itself (what
`valgusml verify DATA` runs); `verify="none"` skips the shard hashes (the fingerprint is still recomputed).
Mismatches raise `FormatError` naming the shard and what to do.

No pickle anywhere: arrays are plain .npy (loaded with allow_pickle=False), metadata is JSON. A shard is
written to temporary names and renamed, the `.done.json` marker last, so an interrupted writer leaves either
a complete shard or nothing that counts; a rerun redoes only the missing shards.
The fingerprint hashes content only: each sequence's arrays and metadata (not its position inside a shard),
in dataset order, so the same sequences written again give the same fingerprint whatever the time, folder,
shard size or number of workers.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.canonical_json import dumps, json_default
from valgusml.errors import FormatError, InputError
from valgusml.leftovers import remove_left_by_dead
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import get_skeleton

FORMAT_NAME = "valgusml-dataset"
FORMAT_VERSION = 1
SHARD_DIR = "shards"


SHARD_BLOBS = ("keypoints.npy", "confidence.npy", "manifest.jsonl")  # in the order the shard sha256 takes them
VERIFY_MODES = ("lazy", "full", "none")
_TMP_MARK = ".tmp-"


def _atomic_write_bytes(path: Path, *chunks: Any) -> None:
    """Write the concatenation of `chunks` (bytes or C-contiguous arrays) to `path` atomically."""
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")
    with open(tmp, "wb") as fh:
        for chunk in chunks:
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _npy_chunks(arrays: Sequence[np.ndarray]) -> list[Any]:
    """The bytes of `np.save(np.concatenate(arrays))` (float32, C order) as a header and the arrays
    themselves: written and hashed chunk by chunk, without the two copies concatenating would cost."""
    import io

    arrays = [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]
    shape = (sum(len(a) for a in arrays),) + arrays[0].shape[1:]
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                                  "fortran_order": False, "shape": shape})
    return [header.getvalue(), *arrays]


def shard_name(index: int) -> str:
    return f"{index:05d}"


def _sequence_digest(keypoints: np.ndarray, confidence: np.ndarray, row: dict[str, Any]) -> str:
    digest = hashlib.sha256(dumps({k: v for k, v in row.items() if k != "offset"}).encode())
    digest.update(np.ascontiguousarray(keypoints, dtype=np.float32))
    digest.update(np.ascontiguousarray(confidence, dtype=np.float32))
    return digest.hexdigest()


def _shard_digest(blob_digests: Sequence[bytes]) -> str:
    """A shard's sha256: over each of its `SHARD_BLOBS` names and the sha256 of that file's bytes."""
    digest = hashlib.sha256()
    for suffix, blob_digest in zip(SHARD_BLOBS, blob_digests, strict=True):
        digest.update(suffix.encode() + b"\0" + blob_digest)
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").digest()
    except FileNotFoundError:
        raise FormatError(f"{path} is missing") from None


def shard_files_digest(root: str | Path, name: str) -> str:
    """The sha256 of shard `name` as its files are now (compare with its entry's `sha256`)."""
    base = Path(root) / SHARD_DIR
    return _shard_digest([_file_digest(base / f"{name}.{suffix}") for suffix in SHARD_BLOBS])


def clean_stale_temporaries(root: str | Path) -> list[Path]:
    """Delete the `.NAME.tmp-PID` files a killed writer left in `root` and its shards (its PID no longer
    runs); returns them. A live writer's temporary files are left alone."""
    folders = [f for f in (Path(root), Path(root) / SHARD_DIR) if f.is_dir()]
    return remove_left_by_dead((path for folder in folders for path in folder.glob(f".*{_TMP_MARK}*")),
                               lambda name: name.rpartition(_TMP_MARK)[2].split(".")[0])


def remove_stale_siblings(path: str | Path, mark: str, every_name: bool = False) -> list[Path]:
    """Delete what killed writers left beside `path`: the files or folders `.NAME{mark}PID...` (NAME is `path`'s,
    or with `every_name` any, for outputs named anew by each run such as timestamped reports) whose PID no longer
    runs; returns them. A live writer's stay."""
    path = Path(path)
    prefix = f".{'*' if every_name else glob.escape(path.name)}{glob.escape(mark)}"
    return remove_left_by_dead(path.parent.glob(f"{prefix}*"), lambda name: name.rpartition(mark)[2].split(".")[0])


STAGING_MARK = ".partial-"


def staging_dir(out: str | Path, every_name: bool = False) -> Path:
    """A new, empty `.NAME.partial-PID` beside `out` to build it in, before `swap_in` puts it in place, so that a
    failed or interrupted write leaves no half-written `out`. Named by this process, so that what a killed writer
    left (its staging folder, or the `.NAME.old-PID` it was replacing) is known stale once that process is gone,
    and swept here (with `every_name`, the staging folders of any name: outputs named anew by each run)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_siblings(out, STAGING_MARK, every_name)
    remove_stale_siblings(out, ".old-")
    staging = out.parent / f".{out.name}{STAGING_MARK}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


@contextmanager
def staging(out: str | Path, every_name: bool = False) -> Iterator[Path]:
    """`staging_dir(out, every_name)` for the block to build `out` in (and `swap_in` at its end); removed if the
    block fails or is interrupted, so that nothing half-written is left beside `out`."""
    folder = staging_dir(out, every_name)
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def swap_in(staging: Path, out: Path) -> None:
    """Rename the finished `staging` to `out`; an existing `out` is moved aside first (`.NAME.old-PID`) and removed
    only after the swap."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_shard(root: str | Path, index: int, sequences: Sequence[KeypointSequence]) -> dict[str, Any]:
    """Write one shard atomically and return its entry (name, counts, sha256).

    All sequences must share the dataset's skeleton and dims; an empty shard is refused.
    """
    root = Path(root)
    if not sequences:
        raise InputError(f"shard {index} of {root}: no sequences to write")
    skeleton, dims = sequences[0].skeleton, sequences[0].dims
    rows, offset = [], 0
    for seq in sequences:
        if seq.skeleton != skeleton or seq.dims != dims:
            raise InputError(
                f"shard {index} of {root}: sequence {seq.id!r} is {seq.skeleton}/{seq.dims}D but the shard is "
                f"{skeleton}/{dims}D; map to one skeleton (seq.to_canonical()) before writing"
            )
        rows.append(
            {
                "id": seq.id,
                "athlete_id": seq.athlete_id,
                "task": seq.task,
                "fps": seq.fps,
                "n_frames": seq.n_frames,
                "offset": offset,
                "skeleton": seq.skeleton,
                "source": seq.source,
                "labels": seq.labels,
                "meta": seq.meta,
            }
        )
        offset += seq.n_frames
    sequence_digests = [
        _sequence_digest(seq.keypoints, seq.confidence, row) for seq, row in zip(sequences, rows, strict=True)
    ]
    blobs = {
        "keypoints.npy": _npy_chunks([s.keypoints for s in sequences]),
        "confidence.npy": _npy_chunks([s.confidence for s in sequences]),
        "manifest.jsonl": ["".join(dumps(r) + "\n" for r in rows).encode()],
    }
    shard_dir = root / SHARD_DIR
    shard_dir.mkdir(parents=True, exist_ok=True)
    name = shard_name(index)
    blob_digests = []
    for suffix in SHARD_BLOBS:
        blob_digest = hashlib.sha256()
        for chunk in blobs[suffix]:
            blob_digest.update(chunk)
        blob_digests.append(blob_digest.digest())
        _atomic_write_bytes(shard_dir / f"{name}.{suffix}", *blobs[suffix])
    entry = {
        "name": name,
        "n_sequences": len(sequences),
        "n_frames": int(offset),
        "skeleton": skeleton,
        "dims": dims,
        "sha256": _shard_digest(blob_digests),
        "sequence_sha256": sequence_digests,
    }
    _atomic_write_bytes(shard_dir / f"{name}.done.json", dumps(entry).encode())
    return entry


def completed_shards(root: str | Path) -> dict[str, dict[str, Any]]:
    """Shards whose `.done.json` marker exists (the ones a resumed writer must not redo)."""
    shard_dir = Path(root) / SHARD_DIR
    done = {}
    if shard_dir.is_dir():
        for marker in sorted(shard_dir.glob("*.done.json")):
            try:
                entry = json.loads(marker.read_text())
                done[entry["name"]] = entry
            except (ValueError, KeyError, TypeError) as exc:
                raise FormatError(f"{marker}: corrupt shard marker ({exc}); delete it to rewrite the shard") from None
    return done


def fingerprint_of(skeleton: str, dims: int, shard_entries: Iterable[dict[str, Any]]) -> str:
    digest = hashlib.sha256(f"{FORMAT_NAME}/{FORMAT_VERSION}/{skeleton}/{dims}".encode())
    for entry in sorted(shard_entries, key=lambda e: e["name"]):
        for sequence_sha256 in entry["sequence_sha256"]:
            digest.update(sequence_sha256.encode())
    return digest.hexdigest()


def finalize_dataset(root: str | Path, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write `dataset.json` over the completed shards; returns its content."""
    root = Path(root)
    shards = list(completed_shards(root).values())
    if not shards:
        raise InputError(f"{root}: no complete shard to finalise")
    kinds = {(s["skeleton"], s["dims"]) for s in shards}
    if len(kinds) != 1:
        raise InputError(f"{root}: shards mix skeletons/dims {sorted(kinds)}")
    (skeleton, dims), = kinds
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "skeleton": skeleton,
        "dims": dims,
        "n_sequences": sum(s["n_sequences"] for s in shards),
        "n_frames": sum(s["n_frames"] for s in shards),
        "shards": sorted(shards, key=lambda s: s["name"]),
        "fingerprint": fingerprint_of(skeleton, dims, shards),
        "meta": meta or {},
    }
    _atomic_write_bytes(root / "dataset.json", json.dumps(header, indent=1, default=json_default).encode())
    return header


def write_dataset(
    root: str | Path,
    sequences: Iterable[KeypointSequence],
    shard_size: int = 512,
    meta: dict[str, Any] | None = None,
) -> Dataset:
    """Write sequences as a dataset (shards of `shard_size`) and open it."""
    write_shards(root, sequences, shard_size)
    finalize_dataset(root, meta)
    return open_dataset(root)


def refuse_existing(out: Path, overwrite: bool) -> None:
    """`InputError` when the output folder `out` exists and `overwrite` is off: said before any work starts."""
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists; choose another output folder, or overwrite it (--overwrite)")


def write_dataset_whole(
    out: str | Path,
    sequences: Iterable[KeypointSequence],
    shard_size: int = 512,
    meta: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write sequences as the dataset `out`, all or nothing: into a hidden sibling folder, swapped in once
    finalised, so a failed or interrupted write leaves no folder (and an overwritten `out` as it was; what a killed
    writer left is removed by the next). An existing
    `out` is an `InputError` unless `overwrite` (writing over a dataset's shards in place would keep the old ones
    past the new last). Returns the header (`dataset.json`)."""
    out = Path(out)
    refuse_existing(out, overwrite)
    with staging(out) as tmp:
        write_shards(tmp, sequences, shard_size)
        header = finalize_dataset(tmp, meta)
        swap_in(tmp, out)
    return header


def write_shards(root: str | Path, sequences: Iterable[KeypointSequence], shard_size: int = 512) -> int:
    """Stream sequences into consecutive shards of `shard_size`, holding one shard in memory; returns the
    number of shards written."""
    batch: list[KeypointSequence] = []
    index = 0
    for seq in sequences:
        batch.append(seq)
        if len(batch) == shard_size:
            write_shard(root, index, batch)
            batch, index = [], index + 1
    if batch:
        write_shard(root, index, batch)
        index += 1
    return index


@dataclass(frozen=True)
class _Row:
    """Where a sequence lives: its frames in the shard arrays and its manifest line (bytes `line` of the
    shard's manifest file), read again on access. Parsed rows with their labels and meta take ~9 KiB each;
    a 1,000,000-sequence dataset would not fit in memory."""

    shard: int
    offset: int
    n_frames: int
    athlete_id: str
    line: slice


class Dataset:
    """Read side of the format: `len(ds)`, `ds[i]` → `KeypointSequence`, `ds.record(i)` (its manifest row),
    `ds.fingerprint`, `ds.athletes`. Memory stays ~100 bytes per sequence: rows are read back on access."""

    def __init__(self, root: str | Path, verify: str = "lazy"):
        if verify not in VERIFY_MODES:
            raise InputError(f"open_dataset: verify must be one of {VERIFY_MODES}, got {verify!r}")
        self.verify_mode = verify
        self.root = Path(root)
        header_path = self.root / "dataset.json"
        if not self.root.is_dir():
            raise InputError(f"dataset folder {self.root} does not exist")
        if not header_path.is_file():
            raise FormatError(f"{self.root} is not a valgusml dataset: dataset.json is missing")
        try:
            self.header: dict[str, Any] = json.loads(header_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FormatError(f"{header_path}: not valid JSON ({exc})") from None
        if not isinstance(self.header, dict):
            raise FormatError(f"{header_path}: expected a JSON object")
        if self.header.get("format") != FORMAT_NAME or self.header.get("version") != FORMAT_VERSION:
            raise FormatError(
                f"{header_path}: format {self.header.get('format')!r} version {self.header.get('version')!r} "
                f"is not {FORMAT_NAME!r} version {FORMAT_VERSION}"
            )
        try:
            self.skeleton: str = self.header["skeleton"]
            self.dims: int = int(self.header["dims"])
            self.fingerprint: str = str(self.header["fingerprint"])
            self.meta: dict[str, Any] = dict(self.header.get("meta") or {})
            self._shard_names = [str(s["name"]) for s in self.header["shards"]]
            self._shard_sha256 = [str(s["sha256"]) for s in self.header["shards"]]
            recomputed = fingerprint_of(self.skeleton, self.dims, self.header["shards"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{header_path}: malformed header ({type(exc).__name__}: {exc})") from None
        if recomputed != self.fingerprint:
            raise FormatError(
                f"{header_path}: fingerprint {self.fingerprint[:12]}… does not match its shards' "
                f"({recomputed[:12]}…); the header was edited or is corrupt"
            )
        get_skeleton(self.skeleton)
        self._rows: list[_Row] = []
        self._manifest_digests: list[bytes] = []
        self._verified: set[int] = set()
        for k, name in enumerate(self._shard_names):
            path = self._manifest_path(k)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise FormatError(f"{self.root}: shard {name} manifest is missing ({path})") from None
            self._manifest_digests.append(hashlib.sha256(data).digest())
            lines = data.splitlines(keepends=True)
            start = 0
            for line_no, line in enumerate(lines, 1):
                try:  # every row is parsed (and checked) once here, then only its place is kept
                    record = json.loads(line)
                    row = _Row(k, int(record["offset"]), int(record["n_frames"]), str(record["athlete_id"]),
                               slice(start, start + len(line)))
                except (ValueError, KeyError, TypeError) as exc:
                    raise FormatError(f"{path}:{line_no}: bad manifest row ({type(exc).__name__}: {exc})") from None
                self._rows.append(row)
                start += len(line)
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if verify == "full":
            problems = self.verify()
            if problems:
                raise FormatError(f"{self.root}: " + "; ".join(problems))

    # -- verification ------------------------------------------------------------------------------------
    def _check_shard(self, k: int) -> None:
        """Hash shard k's files against its sha256, once per process (the lazy default; see module doc)."""
        if k in self._verified or self.verify_mode == "none":
            return
        base = self.root / SHARD_DIR / self._shard_names[k]
        digests = [_file_digest(Path(f"{base}.{suffix}")) for suffix in SHARD_BLOBS[:2]]
        if _shard_digest([*digests, self._manifest_digests[k]]) != self._shard_sha256[k]:
            raise FormatError(
                f"{self.root}: shard {self._shard_names[k]} is corrupt: its files do not hash to the sha256 in "
                f"dataset.json; run `valgusml verify {self.root}`, then delete shards/{self._shard_names[k]}.* and "
                "regenerate (a rerun of `valgusml generate` rewrites it)"
            )
        self._verified.add(k)

    def verify(self) -> list[str]:
        """Full check: every shard's files against its sha256, every sequence's digest recomputed from its
        arrays and manifest row, and the fingerprint from those digests. Returns the problems found (none: [])."""
        problems: list[str] = []
        recomputed: list[dict[str, Any]] = []
        for k, (name, entry) in enumerate(zip(self._shard_names, self.header["shards"], strict=True)):
            try:
                if shard_files_digest(self.root, name) != self._shard_sha256[k]:
                    problems.append(f"shard {name}: files do not match its sha256")
                self._verified.add(k)  # checked by hand here; reading its rows must not raise
                kp, conf = self._load_shard_arrays(k)
                rows = [(i, r) for i, r in enumerate(self._rows) if r.shard == k]
                digests = [
                    _sequence_digest(kp[r.offset : r.offset + r.n_frames], conf[r.offset : r.offset + r.n_frames], record)
                    for (_, r), record in zip(rows, self._records(r for _, r in rows), strict=True)
                ]
            except (FormatError, ValueError, OSError) as exc:
                problems.append(f"shard {name}: {exc}")
                continue
            bad = [i for (i, _), d, want in zip(rows, digests, entry["sequence_sha256"], strict=False) if d != want]
            if bad or len(digests) != len(entry["sequence_sha256"]):
                problems.append(f"shard {name}: {len(bad)} sequence(s) differ from their digests (first: index {bad[:1]})")
            recomputed.append({"name": name, "sequence_sha256": digests})
        if not problems and fingerprint_of(self.skeleton, self.dims, recomputed) != self.fingerprint:
            problems.append("the fingerprint recomputed from the data differs from dataset.json's")
        if problems:
            self._verified.clear()
        return problems

    def _manifest_path(self, k: int) -> Path:
        return self.root / SHARD_DIR / f"{self._shard_names[k]}.manifest.jsonl"

    def _records(self, rows: Iterable[_Row]) -> Iterator[dict[str, Any]]:
        """Manifest rows, read back from their files (one open per shard run)."""
        handle, shard = None, None
        try:
            for row in rows:
                if row.shard != shard:
                    self._check_shard(row.shard)
                    if handle is not None:
                        handle.close()
                    handle, shard = open(self._manifest_path(row.shard), "rb"), row.shard
                handle.seek(row.line.start)
                yield json.loads(handle.read(row.line.stop - row.line.start))
        finally:
            if handle is not None:
                handle.close()

    def record(self, i: int) -> dict[str, Any]:
        """The manifest row of sequence `i` (no arrays)."""
        [row] = self._records([self._rows[i]])
        return row

    def _shard_arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._arrays:
            self._check_shard(k)
            self._arrays[k] = self._load_shard_arrays(k)
        return self._arrays[k]

    def _load_shard_arrays(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        base = self.root / SHARD_DIR / self._shard_names[k]
        try:
            kp = np.load(f"{base}.keypoints.npy", mmap_mode="r", allow_pickle=False)
            conf = np.load(f"{base}.confidence.npy", mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise FormatError(f"{self.root}: shard {self._shard_names[k]} arrays unreadable ({exc})") from None
        return kp, conf

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[KeypointSequence]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, i: int) -> KeypointSequence:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for dataset of {len(self)} sequences")
        row = self._rows[i]
        kp, conf = self._shard_arrays(row.shard)
        sl = slice(row.offset, row.offset + row.n_frames)
        r = self.record(i)
        return KeypointSequence(
            keypoints=np.array(kp[sl]),
            confidence=np.array(conf[sl]),
            skeleton=r["skeleton"],
            fps=r["fps"],
            id=r["id"],
            athlete_id=r["athlete_id"],
            task=r["task"],
            source=r["source"],
            labels=r["labels"],
            meta=r.get("meta") or {},
        )

    def arrays(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Read-only memory-mapped views `(keypoints, confidence)` of sequence `i`, without validation."""
        row = self._rows[i]
        kp, conf = self._shard_arrays(row.shard)
        sl = slice(row.offset, row.offset + row.n_frames)
        return kp[sl], conf[sl]

    @property
    def manifest(self) -> list[dict[str, Any]]:
        """One dict per sequence (no arrays), in dataset order, read from the shards' manifests on each call."""
        return list(self._records(self._rows))

    @cached_property
    def athlete_ids(self) -> np.ndarray:
        """Athlete id of each sequence, in dataset order."""
        return np.asarray([row.athlete_id for row in self._rows])

    @cached_property
    def athletes(self) -> list[str]:
        return sorted(set(self.athlete_ids.tolist()))

    def indices_of(self, athletes: Iterable[str]) -> np.ndarray:
        wanted = set(athletes)
        return np.flatnonzero([a in wanted for a in self.athlete_ids])

    def sequences_of(self, athletes: Iterable[str]) -> list[KeypointSequence]:
        """Every sequence of `athletes`, in dataset order."""
        return [self[int(i)] for i in self.indices_of(athletes)]

    def __repr__(self) -> str:
        return (
            f"Dataset({str(self.root)!r}, sequences={len(self)}, athletes={len(self.athletes)}, "
            f"skeleton={self.skeleton!r}, dims={self.dims}, fingerprint={self.fingerprint[:12]})"
        )


def open_dataset(root: str | Path, verify: str = "lazy") -> Dataset:
    """Open a dataset folder; `verify` is "lazy" (default: each shard hashed on first read), "full" or "none"
    (see the module docstring)."""
    return Dataset(root, verify=verify)
