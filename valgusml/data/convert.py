"""`valgusml convert`: pose files (or folders of them) plus a labels CSV → a dataset folder.

    valgusml convert data/samples --labels data/samples/labels.csv --out data/samples_ds
    valgusml convert clips/*.json trial.trc --labels labels.csv --out data/mine --fps 60

Each input is read with `valgusml.io.read` (format detected unless `--format`), mapped to the canonical
skeleton (`--skeleton-out canonical`, the default), given the athlete, task and per-limb labels of its row in
the labels CSV, and written with `valgusml.data.format.write_shards`/`finalize_dataset`. Everything is written
into a hidden temporary folder beside `--out` and renamed at the end, so a failed conversion leaves nothing.

Labels CSV columns (header names case-insensitive; data/README.md has an example):
    file | id            which input the row describes: its path (relative to the CSV's folder, or as given on
                         the command line), its file/folder name, or its sequence id
    athlete_id           required: splits are made by athlete
    task                 a known task, e.g. bilateral_squat, single_leg_squat_left (valgusml.labels.is_known_task;
                         may be blank); preprocessing finds the scored phase by it, so a misspelt one is refused
    left_valgus, left_mechanism, left_severity_deg, right_valgus, right_mechanism, right_severity_deg
                         valgus: true/false (also 1/0, yes/no); mechanism: one of valgusml.MECHANISMS
                         ("none" iff no valgus; may be blank when valgus is false) or "unknown" for a valgus
                         limb whose mechanism nobody knows (its mechanism loss and metrics skip it); severity:
                         peak FPPA in degrees (may be blank). Leave all six blank for an unlabelled recording.
    fps                  optional: the recording's frame rate, whatever the file says (else the file's own;
                         for files that hold none, --fps or 30)
    sex                  optional: female or male, recorded as meta["sex"] (the predictor's 3D rule reads it) and
                         the threshold --label-by-rule uses for that file (instead of --sex)
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from valgusml.data.format import refuse_existing, write_dataset_whole
from valgusml.data.splits import MIN_ATHLETES
from valgusml.errors import InputError, ValgusMLError
from valgusml.features.rule import SEXES
from valgusml.io import DEFAULT_FPS, FORMATS, POSE_SUFFIXES, fps_assumed, openpose, read, without_assumed_fps
from valgusml.labels import LIMBS, MECHANISMS, check_task
from valgusml.limits import current as current_limits
from valgusml.preprocess import PreprocessConfig
from valgusml.sequence import KeypointSequence
from valgusml.skeleton import SKELETONS

LABEL_COLUMNS = tuple(f"{limb}_{field}" for limb in LIMBS for field in ("valgus", "mechanism", "severity_deg"))
_TRUE = {"true", "1", "yes", "y", "t", "valgus"}
_FALSE = {"false", "0", "no", "n", "f"}
UNKNOWN_MECHANISM = "unknown"  # a labels CSV's word for a valgus limb whose mechanism nobody knows (None in labels)
_SEX = {"female": "female", "f": "female", "male": "male", "m": "male"}


@dataclass(frozen=True)
class Item:
    path: Path
    id: str  # relative path of the input, unique within one conversion

    def folder(self) -> str:
        """The input's folder, as `id` names it (relative to the conversion's common folder), or that folder's
        own name when the input lies in it: one motion-capture session or subject per folder is the usual
        layout (OpenCap, AddBiomechanics, Pose2Sim)."""
        parent = Path(self.id).parent.as_posix()
        return parent if parent != "." else self.path.resolve().parent.name


@dataclass
class Row:
    line: int
    key: str
    athlete_id: str
    task: str
    labels: dict[str, Any] | None
    fps: float | None = None
    sex: str | None = None


# --------------------------------------------------------------------------------------------- inputs
def _is_labels_csv(path: Path) -> bool:
    """A labels table lying among the pose files (its header names athlete_id): not a pose file."""
    if path.suffix.lower() != ".csv":
        return False
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return "athlete_id" in fh.readline().lower()
    except OSError:
        return False


def expand_inputs(inputs: list[Path], exclude: set[Path]) -> list[Path]:
    """Files and OpenPose folders to read, in a stable order; folders are scanned recursively (skipping
    hidden files and labels CSVs)."""
    found: list[Path] = []
    for given in inputs:
        if not given.exists():
            raise InputError(f"{given}: no such file or folder")
        if given.is_file():
            found.append(given)
            continue
        if (given / "dataset.json").is_file():
            raise InputError(f"{given} is already a valgusml dataset, not a folder of pose files")
        if openpose.frame_files(given):
            found.append(given)
            continue
        before = len(found)
        for root, dirs, files in os.walk(given):
            # a dataset written into the folder (a previous convert's --out) holds no pose files of the user's
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(root) / d / "dataset.json").is_file())
            here = Path(root)
            if here != given and openpose.frame_files(here):
                found.append(here)
                dirs[:] = []
                continue
            for name in sorted(files):
                path = here / name
                if (not name.startswith(".") and path.suffix.lower() in POSE_SUFFIXES
                        and path.resolve() not in exclude and not _is_labels_csv(path)):
                    found.append(path)
        if len(found) == before:
            raise InputError(f"{given}: no pose files in this folder (looked for {', '.join(POSE_SUFFIXES)})")
    unique = list(dict.fromkeys(found))
    return unique


def refuse_out_holding_inputs(out: Path, items: list[Item]) -> None:
    """--out is replaced whole: were it an input's folder, --overwrite would delete the user's recordings."""
    target = out.resolve()
    held = [item.id for item in items if item.path.resolve() == target or target in item.path.resolve().parents]
    if held:
        raise InputError(f"{out} holds the input(s) {', '.join(held[:3])}{' ...' if len(held) > 3 else ''}; writing "
                         "the dataset there would replace them: choose an --out outside the inputs' folders")


def name_items(paths: list[Path]) -> list[Item]:
    """Ids from the paths relative to their common folder (keeps the extension so clip.json ≠ clip.csv)."""
    absolute = [p.resolve() for p in paths]
    common = Path(os.path.commonpath([str(p.parent) for p in absolute])) if absolute else Path(".")
    return [Item(p, a.relative_to(common).as_posix()) for p, a in zip(paths, absolute, strict=True)]


# --------------------------------------------------------------------------------------------- labels
def _bool(value: str, where: str) -> bool | None:
    v = value.strip().lower()
    if not v:
        return None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise InputError(f"{where}: valgus must be true or false, got {value!r}")


def _limb(row: dict[str, str], limb: str, where: str) -> dict[str, Any] | None:
    valgus = _bool(row.get(f"{limb}_valgus", ""), f"{where} {limb}_valgus")
    mechanism = row.get(f"{limb}_mechanism", "").strip().lower()
    severity_text = row.get(f"{limb}_severity_deg", "").strip()
    if valgus is None and not mechanism and not severity_text:
        return None
    if mechanism and mechanism not in (*MECHANISMS, UNKNOWN_MECHANISM):
        raise InputError(f"{where} {limb}_mechanism: {mechanism!r} is not one of {', '.join(MECHANISMS)} "
                         f"(or {UNKNOWN_MECHANISM!r} for a valgus limb)")
    if valgus is None:
        if not mechanism:
            raise InputError(f"{where}: {limb}_severity_deg is given but {limb}_valgus and {limb}_mechanism are blank")
        valgus = mechanism != "none"
    if not mechanism:
        if valgus:
            raise InputError(f"{where}: {limb}_valgus is true but {limb}_mechanism is blank; name the mechanism "
                             f"(or write {UNKNOWN_MECHANISM!r})")
        mechanism = "none"
    if mechanism == UNKNOWN_MECHANISM:
        if not valgus:
            raise InputError(f"{where}: {limb}_mechanism is {UNKNOWN_MECHANISM!r} but {limb}_valgus is false; a limb "
                             "without valgus has mechanism 'none'")
        mechanism = None  # valgusml.labels: presence known, mechanism unknown (MECHANISM_UNKNOWN in arrays)
    try:
        severity = _number(severity_text) if severity_text else math.nan
    except ValueError:
        raise InputError(f"{where} {limb}_severity_deg: {severity_text!r} is not a number") from None
    return {"valgus": valgus, "mechanism": mechanism, "severity_deg": severity}


def _row_fps(row: dict[str, str], where: str) -> float | None:
    text = row.get("fps", "").strip()
    if not text:
        return None
    try:
        return current_limits().check_fps(_number(text), f"{where} ")
    except ValueError:
        raise InputError(f"{where} fps: {text!r} is not a number") from None


def _row_sex(row: dict[str, str], where: str) -> str | None:
    text = row.get("sex", "").strip().lower()
    if text and text not in _SEX:
        raise InputError(f"{where} sex: {text!r} is not female or male (leave it blank when unknown)")
    return _SEX.get(text)


def _number(text: str) -> float:
    """A cell's number; a decimal comma (31,6: spreadsheets of ';'-separated CSV write them) read as a point."""
    return float(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)


def _delimiter(header: str) -> str:
    """The header's separator: spreadsheets save CSV with ';' where ',' is the decimal mark, or tabs."""
    return max(",;\t", key=header.count) if header.count(",") == 0 else ","


def read_labels(path: Path) -> list[Row]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the labels CSV ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the labels CSV is not UTF-8 text") from None
    lines = text.splitlines()
    reader = csv.DictReader(lines, delimiter=_delimiter(lines[0] if lines else ""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if not header:
        raise InputError(f"{path}: the labels CSV is empty")
    key_column = "file" if "file" in header else "id" if "id" in header else None
    missing = ([] if key_column else ["file (or id)"]) + [c for c in ("athlete_id",) if c not in header]
    present_labels = [c for c in LABEL_COLUMNS if c in header]
    if present_labels and len(present_labels) != len(LABEL_COLUMNS):
        missing += [c for c in LABEL_COLUMNS if c not in header]
    if missing:
        raise InputError(f"{path}: wrong columns: missing {', '.join(missing)} (header: {', '.join(header)})")
    rows = []
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip().lower(): (v or "") if isinstance(v, str) else "" for k, v in raw.items()}
        where = f"{path}: row {line}"
        key = row[key_column].strip()
        if not key:
            if not any(v.strip() for v in row.values()):
                continue
            raise InputError(f"{where}: the {key_column!r} cell is blank")
        athlete = row["athlete_id"].strip()
        if not athlete:
            raise InputError(f"{where}: athlete_id is blank (splits are made by athlete)")
        limbs = {limb: _limb(row, limb, where) for limb in LIMBS}
        if (limbs["left"] is None) != (limbs["right"] is None):
            given = "left" if limbs["left"] is not None else "right"
            raise InputError(f"{where}: only the {given} limb is labelled; label both limbs or neither")
        task = check_task(row.get("task", "").strip(), f"{where}: ")
        rows.append(Row(line, key, athlete, task, None if limbs["left"] is None else limbs,
                        _row_fps(row, where), _row_sex(row, where)))
    if not rows:
        raise InputError(f"{path}: the labels CSV has a header but no rows")
    refuse_near_duplicate_athletes(rows, path)
    return rows


def refuse_near_duplicate_athletes(rows: list[Row], path: Path) -> None:
    """Athlete ids that differ only in case or spaces (P01, p01, "P 01") are a typo, not two people: split as
    two athletes, one person's recordings could land in training and in test."""
    spellings: dict[str, dict[str, int]] = {}
    for row in rows:
        spellings.setdefault("".join(row.athlete_id.split()).casefold(), {}).setdefault(row.athlete_id, row.line)
    for found in spellings.values():
        if len(found) > 1:
            named = " and ".join(f"{athlete!r} (row {line})" for athlete, line in list(found.items())[:3])
            raise InputError(f"{path}: athlete ids {named} differ only in case or spaces; splits would take them for "
                             "different people: spell each person's id one way")


def match_rows(items: list[Item], rows: list[Row], labels_path: Path | None) -> dict[Item, Row]:
    """Pair every input with its labels row; every input needs one and no row may go unused."""
    keys_of: dict[Item, set[str]] = {}
    base = labels_path.resolve().parent if labels_path else None
    for item in items:
        absolute = item.path.resolve()
        keys = {item.id, item.path.as_posix(), absolute.name, absolute.as_posix()}
        stem = absolute.name[: -len(absolute.suffix)] if absolute.is_file() and absolute.suffix else absolute.name
        keys.add(stem)
        if base is not None:
            try:
                keys.add(absolute.relative_to(base).as_posix())
            except ValueError:
                pass
        keys_of[item] = keys
    matched: dict[Item, Row] = {}
    used: set[int] = set()
    for item in items:
        hits = [r for r in rows if r.key.replace("\\", "/").rstrip("/") in keys_of[item]]
        if len(hits) > 1:
            raise InputError(f"{item.path}: several labels rows match it (lines {', '.join(str(r.line) for r in hits)})")
        if hits:
            matched[item] = hits[0]
            used.add(hits[0].line)
    _refuse_shared_rows(matched, labels_path)
    unmatched = [item.path.as_posix() for item in items if item not in matched]
    if unmatched:
        raise InputError(
            f"{labels_path}: no labels row for {len(unmatched)} input(s): {', '.join(unmatched[:5])}"
            f"{' ...' if len(unmatched) > 5 else ''} (add a row; leave the label cells blank if unlabelled)"
        )
    unused = [r for r in rows if r.line not in used]
    if unused:
        raise InputError(
            f"{labels_path}: row(s) {', '.join(f'{r.line} ({r.key})' for r in unused[:5])} match no input file"
        )
    return matched


def _refuse_shared_rows(matched: dict[Item, Row], labels_path: Path | None) -> None:
    """A row describes one input: keyed by a bare file name, it would also match same-named files in other folders
    (P01/squat.json, P02/squat.json) and give them all its athlete and labels."""
    inputs_of: dict[int, list[Item]] = {}
    for item, row in matched.items():
        inputs_of.setdefault(row.line, []).append(item)
    for line, shared in inputs_of.items():
        if len(shared) > 1:
            named = ", ".join(item.id for item in shared[:5]) + (" ..." if len(shared) > 5 else "")
            raise InputError(f"{labels_path}: row {line} ({matched[shared[0]].key}) matches {len(shared)} inputs ({named}); "
                             "give each input its own row, named by its path relative to the labels CSV's folder or as listed here")


# ------------------------------------------------------------------------------------------ converting
def frontal_2d(seq: KeypointSequence) -> KeypointSequence:
    """A 3D canonical sequence as its front view (x = subject's left, y down, metres): what 2D models see."""
    from valgusml.features.geometry import as_frontal_2d

    keypoints = as_frontal_2d(seq.keypoints).astype("float32")
    return seq.replace(keypoints=keypoints, meta={**seq.meta, "projected": "frontal_2d from 3D"})


def label_by_rule(seq: KeypointSequence, path: Path, sex: str | None) -> KeypointSequence:
    """Labels from the presence rule on the sequence's own 3D joint centres (mechanism unknown); the rule's
    measures go to `meta["rule"]`. The task comes from the labels CSV, else the file name, else the motion."""
    from valgusml.features.rule import (
        MEASURED_3D_MAX_JITTER,
        apply_rule,
        rule_limb_labels,
        segment_length_jitter,
        task_from_file_name,
    )

    if seq.dims != 3:
        raise InputError(f"{path}: --label-by-rule needs 3D joint centres (the label is defined on the 3D frontal "
                         "plane); this file holds 2D keypoints")
    canon = seq.to_canonical()
    seen = canon.confidence > 0
    # A leg never seen, or seen too briefly for a loaded phase, would be labelled "no valgus": a guess, not a
    # measurement. The predictor's own minimum (`PreprocessConfig`: 10 frames at 30 fps) is the least it reads.
    least = PreprocessConfig()
    least_s = least.min_valid_frames / least.fps
    for limb in LIMBS:
        leg = [canon.joints.index(f"{limb}_{joint}") for joint in ("hip", "knee", "ankle")]
        n_seen = int(seen[:, leg].all(axis=1).sum())
        if not n_seen:
            never = [canon.joints[j] for j in leg if not seen[:, j].any()]
            shown = ", ".join(never) if never else f"the {limb} hip, knee and ankle together"
            raise InputError(f"{path}: --label-by-rule cannot measure the {limb} knee: no frame shows {shown}; "
                             "label this file in the labels CSV instead")
        if n_seen / canon.fps < least_s:
            raise InputError(f"{path}: --label-by-rule cannot measure the {limb} knee: only {n_seen} frame(s) "
                             f"({n_seen / canon.fps:.2f} s) show its hip, knee and ankle, fewer than the "
                             f"{least_s:.2f} s a loaded phase needs; label this file in the labels CSV instead")
    task = check_task(seq.task or task_from_file_name(path.stem) or "", f"{path}: ")
    rule = apply_rule(canon.seen_keypoints(), canon.fps, task)
    jitter = segment_length_jitter(canon)
    rule["segment_length_jitter"] = None if math.isnan(jitter) else round(jitter, 5)
    meta = {**seq.meta, "rule": rule, "labelled_by": "presence rule", **({"sex": sex} if sex else {})}
    if jitter > MEASURED_3D_MAX_JITTER:
        # On the generator's estimated 3D the rule's call matched the clean-3D label for only 37-68% of limbs.
        # named as the data set names its input (`meta["input"]`): a path as typed would make the fingerprint
        # depend on where the command ran
        note = (f"{seq.meta.get('input') or path.name}: labelled by the presence rule on 3D joint centres whose "
                f"thighs and shanks change length by {jitter:.1%} from one frame to the next (estimated 3D, not marker-based; steady below "
                f"{MEASURED_3D_MAX_JITTER:.1%}): the rule's peak over frames picks up that error, so these labels "
                "can call a collapse that did not happen; check them, or label from motion capture")
        meta["warnings"] = [*seq.meta.get("warnings", []), note]
    return seq.replace(task=seq.task or rule["task"], labels=rule_limb_labels(rule, sex), meta=meta)


SWAPPED = "are left and right swapped in the labels CSV"
# The meta flag beside that note: the summary counts these sequences by it, not by the note's wording.
SIDES_SWAPPED = "sides_swapped_suspected"


def swapped_sides_note(seq: KeypointSequence, path: Path) -> str | None:
    """A note when a labels row calls valgus on one knee of 3D joint centres and the presence rule measures it
    on the other, under both sexes' thresholds: most likely left and right swapped in the CSV (the subject's own
    sides, not the camera's). Only a note: the row's labels are kept; a recording the rule cannot read gets none."""
    from valgusml.features.rule import apply_rule, task_from_file_name

    said = [seq.labels[limb]["valgus"] for limb in LIMBS] if seq.labels and seq.dims == 3 else None
    if said is None or said[0] == said[1]:
        return None
    canon = seq.to_canonical()
    try:
        rule = apply_rule(canon.seen_keypoints(), canon.fps, seq.task or task_from_file_name(path.stem) or "")
    except InputError:
        return None
    if [set(rule[limb]["valgus"].values()) for limb in LIMBS] != [{said[1]}, {said[0]}]:
        return None
    labelled, measured = ("left", "right") if said[0] else ("right", "left")
    dynamic = {limb: rule[limb]["dynamic_fppa_deg"] for limb in LIMBS}  # None where the limb bore no load
    peaks = ", ".join(f"{limb} {math.nan if deg is None else deg:.1f}" for limb, deg in dynamic.items())
    return (f"{seq.meta.get('input') or path.name}: the labels call valgus on the {labelled} knee, but the presence "
            f"rule on the 3D joint centres measures it on the {measured} (dynamic FPPA {peaks} deg); {SWAPPED}? "
            "(sides are the subject's own)")


ATHLETE_FROM = ("file", "folder")


def athlete_of(item: Item, row: Row | None, athlete_from: str) -> str:
    """A labels row's athlete; without one the input itself (`file`) or its folder (`folder`)."""
    if row is not None:
        return row.athlete_id
    return item.folder() if athlete_from == "folder" else item.id


def shared_folders(items: list[Item], rows: dict[Item, Row] | None) -> dict[str, int]:
    """Folders holding several inputs that have no labels row: with `--athlete-from file` each is an athlete of
    its own, so a split by athlete can put one person's recordings on both sides."""
    counts = Counter(item.folder() for item in items if not (rows and item in rows))
    return {folder: n for folder, n in counts.items() if n > 1}


def at_fps(seq: KeypointSequence, fps: float, path: Path) -> KeypointSequence:
    """A sequence read at the assumed default rate, at `fps` instead, as the reader would have given it with
    `fps=` (for a file with no rate, the rate is all the reader takes from it), without reading the file again."""
    return seq.replace(fps=current_limits().check_fps(fps, f"{path}: "), meta=without_assumed_fps(seq.meta))


def read_input(item: Item, row: Row | None, fmt: str | None, options: dict[str, Any]) -> KeypointSequence:
    """One input read at its frame rate: its labels row's `fps` if given (whatever the file says), else the
    file's own; `options["fps"]` (`--fps`) only for a file that holds none, so that a folder mixing 60-Hz COCO
    files with 100-Hz TRC files keeps each at its rate."""
    default_fps = options.get("fps")
    given = {k: v for k, v in options.items() if k != "fps"}
    fps = row.fps if row is not None else None
    # only a rate someone gave: a video's reader takes none (its container holds the rate) and refuses fps=None
    row_rate = {"fps": fps} if fps is not None else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recorded in seq.meta["warnings"] and counted in the summary
        seq = read(item.path, format=fmt, **row_rate, **given)
    assumed = fps is None and default_fps is not None and fps_assumed(seq.meta)
    return at_fps(seq, default_fps, item.path) if assumed else seq


def sequences(items: list[Item], rows: dict[Item, Row] | None, fmt: str | None, skeleton_out: str,
              options: dict[str, Any], dims: int | None = None, rule: bool = False,
              sex: str | None = None, athlete_from: str = "file") -> Iterator[KeypointSequence]:
    for item in items:
        row = rows.get(item) if rows else None
        seq = read_input(item, row, fmt, options)
        sex_of = row.sex if row is not None and row.sex else sex
        try:
            seq = seq.replace(
                id=item.id,
                athlete_id=athlete_of(item, row, athlete_from),
                task=row.task if row else "",
                labels=row.labels if row else None,
                meta={**seq.meta, "input": item.id, **({"sex": sex_of} if sex_of else {})},
            )
        except InputError as exc:
            raise InputError(f"{item.path}: labels row {row.line if row else '?'}: {exc}") from None
        if rule and seq.labels is None:
            seq = label_by_rule(seq, item.path, sex_of)
        elif note := swapped_sides_note(seq, item.path):
            seq = seq.replace(meta={**seq.meta, "warnings": [*seq.meta.get("warnings", []), note], SIDES_SWAPPED: True})
        if skeleton_out == "canonical":
            seq = seq.to_canonical()
        if dims == 2 and seq.dims == 3:
            seq = frontal_2d(seq.to_canonical()) if seq.skeleton == "canonical" else seq
        elif dims == 3 and seq.dims == 2:
            raise InputError(f"{item.path}: 2D keypoints cannot be made 3D (--dims 3)")
        elif seq.skeleton != skeleton_out:
            raise InputError(
                f"{item.path}: skeleton {seq.skeleton!r} cannot be written as {skeleton_out!r}; only mapping to "
                "'canonical' is supported (the default --skeleton-out)"
            )
        yield seq


def convert(inputs: list[Path], out: Path, labels: Path | None = None, fmt: str | None = None,
            skeleton_out: str = "canonical", shard_size: int = 256, overwrite: bool = False,
            options: dict[str, Any] | None = None, dims: int | None = None, label_by_rule: bool = False,
            sex: str | None = None, athlete_from: str = "file") -> dict[str, Any]:
    """Library form of the command; returns the written `dataset.json` content. `label_by_rule`: inputs without
    a labels row are labelled by the presence rule on their 3D joint centres (mechanism unknown), with the
    threshold of `sex` (None: the higher of the two). `athlete_from`: the athlete of an input without a labels
    row, `file` (each its own) or `folder` (one per folder: `Item.folder`). The header's `shared_folders` lists
    folders whose several inputs became several athletes."""
    if athlete_from not in ATHLETE_FROM:
        raise InputError(f"athlete_from must be one of {ATHLETE_FROM}, got {athlete_from!r}")
    out = Path(out)
    refuse_existing(out, overwrite)  # told before any input is read
    if shard_size < 1:
        raise InputError(f"--shard-size must be >= 1, got {shard_size}")
    exclude = {labels.resolve()} if labels else set()
    items = name_items(expand_inputs([Path(p) for p in inputs], exclude))
    if not items:
        raise InputError("no input files given")
    refuse_out_holding_inputs(out, items)
    rows = match_rows(items, read_labels(labels), labels) if labels else None
    summary = {"n_labelled": 0, "n_warnings": 0, "athletes": set(), "kind": None, "assumed_fps": [],
               "swapped": [], "warning_kinds": Counter()}
    def counted(stream: Iterable[KeypointSequence]) -> Iterator[KeypointSequence]:
        for seq in stream:
            kind = (seq.skeleton, seq.dims)
            if summary["kind"] is None:
                summary["kind"] = kind
            elif kind != summary["kind"]:
                raise InputError(
                    f"{seq.meta.get('input', seq.id)}: {seq.dims}D {seq.skeleton} keypoints, but earlier inputs are "
                    f"{summary['kind'][1]}D {summary['kind'][0]}; a dataset holds one kind (pass --dims 2 to store "
                    "3D recordings as their front view, or convert 2D and 3D files into separate datasets)"
                )
            summary["n_labelled"] += seq.labels is not None
            summary["n_warnings"] += len(seq.meta.get("warnings", []))
            named = f"{seq.meta.get('input')}: "  # the rule's note names its input: counted as one kind
            summary["warning_kinds"].update(w.removeprefix(named) for w in seq.meta.get("warnings", []))
            if fps_assumed(seq.meta):
                summary["assumed_fps"].append(seq.meta.get("input", seq.id))
            if seq.meta.get(SIDES_SWAPPED):
                summary["swapped"].append(seq.meta.get("input", seq.id))
            summary["athletes"].add(seq.athlete_id)
            yield seq

    static = static_trials(items, rows) if label_by_rule else []
    written = [item for item in items if item not in static]
    header = write_dataset_whole(
        out, counted(sequences(written, rows, fmt, skeleton_out, options or {}, dims, label_by_rule, sex, athlete_from)),
        shard_size, {"created_by": "valgusml convert", "labels_csv": labels.name if labels else None,
                     "n_inputs": len(items)}, overwrite)
    header = dict(header)
    header.update(n_labelled=summary["n_labelled"], n_warnings=summary["n_warnings"],
                  n_athletes=len(summary["athletes"]), assumed_fps=summary["assumed_fps"], swapped=summary["swapped"],
                  common_warnings=summary["warning_kinds"].most_common(3),
                  shared_folders=shared_folders(items, rows) if athlete_from == "file" else {},
                  static_trials=[item.id for item in static])
    return header


def static_trials(items: list[Item], rows: dict[Item, Row] | None) -> list[Item]:
    """Inputs without a labels row whose file name says they are static trials (`static1.trc`, as OpenCap and
    Pose2Sim record one per session): the rule has no movement to label, and read from the motion their task
    would be a squat without a squat, a "no valgus" example of nothing. `--label-by-rule` leaves them out."""
    from valgusml.features.rule import task_from_file_name

    return [item for item in items if not (rows and item in rows) and task_from_file_name(item.path.stem) is None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="valgusml convert", description="Turn pose files plus a labels CSV into a valgusml dataset folder.",
        epilog="Labels CSV columns: file (or id), athlete_id, task, left_valgus, left_mechanism, left_severity_deg, "
               "right_valgus, right_mechanism, right_severity_deg (label cells may be blank; mechanism 'unknown' for "
               "a valgus limb), optional fps and sex. See data/README.md.")
    parser.add_argument("inputs", nargs="+", type=Path, help="pose files, OpenPose folders, or folders to scan")
    parser.add_argument("--out", required=True, type=Path, help="dataset folder to create (e.g. data/NAME)")
    parser.add_argument("--labels", type=Path,
                        help="labels CSV; without it every input is unlabelled and an athlete as --athlete-from says")
    parser.add_argument("--athlete-from", choices=ATHLETE_FROM, default="file",
                        help="athlete of an input without a labels row: the file itself (default) or its folder "
                             "(one subject or session per folder), so that splits keep a person's recordings together")
    parser.add_argument("--format", choices=FORMATS, help="reader to use instead of detecting each file's format")
    parser.add_argument("--skeleton-out", default="canonical", choices=sorted(SKELETONS),
                        help="skeleton of the dataset (default canonical; others only when every input already is)")
    parser.add_argument("--dims", type=int, choices=(2, 3),
                        help="2: store 3D recordings as their frontal 2D view, so 2D and 3D inputs share a dataset")
    parser.add_argument("--fps", type=float, help="frame rate for files that hold none (OpenPose, COCO; default 30); "
                                                  "files with their own keep it, a labels CSV's fps column overrides both")
    parser.add_argument("--person", type=int, help="tracked person to keep in multi-person files (0 = largest)")
    parser.add_argument("--shard-size", type=int, default=256, help="sequences per shard (default 256)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument("--label-by-rule", action="store_true",
                        help="label 3D recordings without a labels row by the presence rule on their joint centres "
                             "(dynamic FPPA over the scored phase vs the task threshold; mechanism unknown)")
    parser.add_argument("--sex", choices=SEXES,
                        help="the athletes' sex, recorded as meta['sex'], and whose threshold --label-by-rule uses "
                             "(default: the higher of the two); a labels CSV's sex column sets it per file")
    args = parser.parse_args(argv)
    options: dict[str, Any] = {}
    if args.fps is not None:
        options["fps"] = args.fps
    if args.person is not None:
        options["person"] = args.person
    try:
        header = convert(args.inputs, args.out, args.labels, args.format, args.skeleton_out, args.shard_size,
                         args.overwrite, options, args.dims, args.label_by_rule, args.sex, args.athlete_from)
    except ValgusMLError as exc:
        print(f"valgusml convert: error: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.out}: {header['n_sequences']} sequences ({header['n_labelled']} labelled) from "
        f"{header['n_athletes']} athlete(s), {header['n_frames']} frames, {header['skeleton']} {header['dims']}D, "
        f"fingerprint {header['fingerprint'][:12]}"
    )
    if shared := header["shared_folders"]:
        named = ", ".join(f"{folder or '.'} ({n})" for folder, n in sorted(shared.items())[:3])
        print(f"each input is its own athlete, and {sum(shared.values())} share a folder with others: {named}"
              f"{', ...' if len(shared) > 3 else ''}. If a folder is one person, convert again with "
              "--athlete-from folder (or give a labels CSV) so that no split puts that person on both sides")
    if header["n_athletes"] < MIN_ATHLETES:
        print(f"only {header['n_athletes']} athlete(s): too few to split by athlete into train, validation and test "
              f"({MIN_ATHLETES} at least); train on it beside synthetic data (data.extra_train_dirs=[{args.out}]) or "
              f"score it whole (valgusml evaluate ... data_dir={args.out} split=all)")
    if static := header["static_trials"]:
        print(f"{len(static)} static trial(s) left out (no movement for the presence rule to label): "
              f"{', '.join(static[:3])}{', ...' if len(static) > 3 else ''}")
    if assumed := header["assumed_fps"]:
        print(f"{len(assumed)} input(s) hold no frame rate and were read at {DEFAULT_FPS:g} fps: "
              f"{', '.join(assumed[:3])}{', ...' if len(assumed) > 3 else ''}. Pass --fps, or give each its rate in "
              "an fps column of the labels CSV, or their timing is wrong")
    if swapped := header["swapped"]:
        print(f"{len(swapped)} labelled 3D input(s) call valgus on the knee the presence rule measures none on, and "
              f"none on the one it measures: {', '.join(swapped[:3])}{', ...' if len(swapped) > 3 else ''}; "
              f"{SWAPPED}? (their notes are in meta['warnings'])")
    if header["n_warnings"]:
        common = "; ".join(f"{n}x {note[:100] + ('...' if len(note) > 100 else '')!r}"
                           for note, n in header["common_warnings"])
        print(f"{header['n_warnings']} warning(s) recorded in the sequences' meta['warnings'] (e.g. several people, "
              f"assumed fps, estimated 3D labelled by the rule), most often: {common}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
