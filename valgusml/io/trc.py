"""TRC marker files (OpenSim, Pose2Sim, OpenCap/AddBiomechanics, Vicon exports) → canonical 3D keypoints.

What the reader does, in order:
1. Parses the header (`DataRate`, `Units`, marker names on the `Frame#` line, the X/Y/Z sub-header) and the
   data; blank cells are gaps (NaN). The frame rate is the `fps` argument if given, else DataRate, else the
   Time column's step.
2. Converts to metres (`Units` mm, cm or m; guessed from the leg length when the header has none).
3. Maps markers to canonical joints with `MARKER_TABLE` (below; case-insensitive, exact names, first rule
   whose markers all exist wins; pass `marker_map={joint: [rules]}` to put your own rules first):
   - `"NAME"`: the marker is the joint centre (OpenCap `R_HJC`, Pose2Sim `RKnee`);
   - `"A+B"`: the mean of markers (lateral + medial epicondyles, radial + ulnar styloids);
   - `"lateral:NAME"`: a lateral marker (OpenCap `r_knee`, Vicon `RKNE`) moved medially, along the left-right
     axis given by the hips, by half the joint width (`knee_width_m`=0.10, `ankle_width_m`=0.07: typical
     adult femoral epicondyle and bimalleolar breadths);
   - `"harrington"`: hip joint centres regressed from ASIS/PSIS markers (Harrington et al. 2007), for
     marker sets without them.
   Hips, knees and ankles on both sides are required; other joints without markers are NaN (confidence 0).
4. Rotates so +z is up: the up axis is the file axis along which the head/shoulders sit above the feet
   (override with `up_axis="y"`, `"-z"`, ...), as a proper rotation so left and right never swap
   (OpenSim's X forward, Y up, Z right becomes x forward, y left, z up).
5. Puts the floor at z = 0: the lowest foot points (1st percentile over frames of each frame's lowest heel,
   toe or ankle) end at z = 0. Horizontal positions are kept as recorded.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.errors import FormatError, InputError
from valgusml.io import _common
from valgusml.sequence import UP_AXIS_ROTATIONS, KeypointSequence
from valgusml.skeleton import CANONICAL_JOINTS

# Left-side rules; the right side is derived by swapping a leading L/left_ for R/right_ in each marker name.
_LEFT_RULES: dict[str, tuple[str, ...]] = {
    "hip": ("L_HJC", "LHJC", "LHip", "left_hip", "L_Hip", "L_HJC_reg", "LHJC_reg", "harrington"),
    "knee": ("LKJC", "L_KJC", "LKnee", "left_knee", "L_Knee_JC", "L_knee+L_mknee", "LKNE+LKNM", "LKNE+LMKNE",
             "LLFC+LMFC", "L_lat_knee+L_med_knee", "lateral:L_knee", "lateral:LKNE", "lateral:L_lat_knee",
             "lateral:LLFC", "lateral:LKNEE"),
    "ankle": ("LAJC", "L_AJC", "LAnkle", "left_ankle", "L_Ankle_JC", "L_ankle+L_mankle", "LANK+LMED", "LANK+LMMA",
              "LLMAL+LMMAL", "L_lat_ankle+L_med_ankle", "lateral:L_ankle", "lateral:LANK", "lateral:L_lat_ankle",
              "lateral:LLMAL"),
    "heel": ("LHeel", "left_heel", "L_calc", "LHEE", "L_heel", "LCAL"),
    "big_toe": ("LBigToe", "left_big_toe", "L_toe", "LTOE", "L_big_toe", "LHLX", "LMT1"),
    "small_toe": ("LSmallToe", "left_small_toe", "L_5meta", "LMT5", "LVMH", "L_small_toe"),
    "shoulder": ("LShoulder", "left_shoulder", "L_Shoulder", "LSJC", "LSHO", "LACR"),
    "elbow": ("LElbow", "left_elbow", "LEJC", "L_elbow_lat+L_elbow_med", "LELB+LMEP", "LLEL+LMEL", "LELB"),
    "wrist": ("LWrist", "left_wrist", "LWJC", "L_wrist_radius+L_wrist_ulna", "LWRA+LWRB", "LRSP+LUSP"),
}


def _to_right(rule: str) -> str:
    def swap(name: str) -> str:
        if name.lower().startswith("left_"):
            return "right_" + name[5:]
        return "R" + name[1:] if name[:1] in ("L", "l") else name

    prefix, _, body = rule.rpartition(":")
    return (prefix + ":" if prefix else "") + "+".join(swap(n) for n in body.split("+"))


MARKER_TABLE: dict[str, tuple[str, ...]] = {
    "nose": ("Nose", "nose"),
    "neck": ("Neck", "neck", "CLAV+C7", "C7"),
    **{f"left_{part}": rules for part, rules in _LEFT_RULES.items()},
    **{f"right_{part}": tuple(r if r == "harrington" else _to_right(r) for r in rules) for part, rules in _LEFT_RULES.items()},
}
REQUIRED = tuple(f"{s}_{p}" for s in ("left", "right") for p in ("hip", "knee", "ankle"))
_ASIS = {"left": ("LASI", "L.ASIS", "L_ASIS", "LASIS"), "right": ("RASI", "R.ASIS", "R_ASIS", "RASIS")}
_PSIS = {"left": ("LPSI", "L.PSIS", "L_PSIS", "LPSIS"), "right": ("RPSI", "R.PSIS", "R_PSIS", "RPSIS")}
_UNITS = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metres": 1.0, "mm": 1e-3, "millimeters": 1e-3, "cm": 1e-2,
          "centimeters": 1e-2}
_HEAD_GROUP = ("nose", "neck", "left_shoulder", "right_shoulder")
_FOOT_GROUP = ("left_ankle", "right_ankle", "left_heel", "right_heel", "left_big_toe", "right_big_toe")
POSE2SIM_NAMES = {
    "nose": "Nose", "neck": "Neck",
    **{f"{s}_{p}": f"{s[0].upper()}{n}" for s in ("left", "right") for p, n in (
        ("shoulder", "Shoulder"), ("elbow", "Elbow"), ("wrist", "Wrist"), ("hip", "Hip"), ("knee", "Knee"),
        ("ankle", "Ankle"), ("heel", "Heel"), ("big_toe", "BigToe"), ("small_toe", "SmallToe"))},
}


def _normalise_axis(path: Path, up_axis: str) -> str:
    key = str(up_axis).strip().lower()
    key = key if key[:1] in "+-" else "+" + key
    if key not in UP_AXIS_ROTATIONS:
        raise InputError(f"{path}: up_axis must be one of x, y, z, -x, -y, -z; got {up_axis!r}")
    return key


# ------------------------------------------------------------------------------------------- parsing
def _cells(line: str) -> list[str]:
    return line.rstrip("\r\n").split("\t") if "\t" in line else line.split()


def parse(path: Path, text: str, notes: list[str] | None = None) -> tuple[dict[str, str], list[str], np.ndarray, np.ndarray]:
    """Header fields, marker names, times `(T,)` and marker data `(T, M, 3)` in file units. Rows whose width does
    not match the header's markers are read (short ones with gaps) and reported in `notes`; rows out of time order
    are refused."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    name_line = None
    for i, line in enumerate(lines[:10]):
        cells = [c.strip() for c in _cells(line)]
        if cells and cells[0].lower() == "datarate" and i + 1 < len(lines):
            header = dict(zip((c.lower() for c in cells), (c.strip() for c in _cells(lines[i + 1])), strict=False))
        if cells and cells[0].lower().startswith("frame"):
            name_line = i
            break
    if name_line is None:
        raise FormatError(f"{path}: not a TRC file: no 'Frame#  Time  marker...' header line in the first 10 lines")
    names = [c.strip() for c in _cells(lines[name_line])[2:] if c.strip()]
    if not names:
        raise FormatError(f"{path}: the Frame# header line names no markers")
    start = name_line + 1
    if start < len(lines) and not lines[start].strip()[:1].isdigit():
        start += 1  # the X1 Y1 Z1 sub-header (or a blank line)
    n_markers = len(names)
    rows, times, line_nos = [], [], []
    short: list[tuple[int, int]] = []  # (line, coordinates) of rows with fewer cells than the markers need
    long: list[int] = []  # lines holding numbers beyond the header's markers
    for line_no, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        cells = _cells(line)
        if len(cells) < 2:
            raise FormatError(f"{path}: line {line_no}: a data row needs Frame#, Time and coordinates")
        if len(cells) - 2 < 3 * n_markers:
            short.append((line_no, len(cells) - 2))
        elif any(c.strip() for c in cells[2 + 3 * n_markers :]):
            long.append(line_no)
        values = cells[2 : 2 + 3 * n_markers]
        values += [""] * (3 * n_markers - len(values))
        try:
            row = [float(v) if v.strip() else math.nan for v in values]
            time = float(cells[1]) if cells[1].strip() else math.nan
        except ValueError:
            bad = next((k for k, v in enumerate(values) if v.strip() and not _is_float(v)), None)
            if bad is None:
                raise FormatError(f"{path}: line {line_no}: Time {cells[1]!r:.30} is not a number") from None
            raise FormatError(
                f"{path}: line {line_no}: marker {names[bad // 3]!r} {'XYZ'[bad % 3]} is {values[bad]!r:.30}, "
                "not a number"
            ) from None
        rows.append(row)
        times.append(time)
        line_nos.append(line_no)
    if not rows:
        raise InputError(f"{path}: the TRC file has a header but no data rows")
    _common.check_time_order(path, times, lambda k: f"line {line_nos[k]}", "Time", "rows")
    if notes is not None:
        notes += _width_notes(n_markers, len(rows), line_nos[-1], short, long)
    data = np.asarray(rows, dtype=np.float64).reshape(len(rows), n_markers, 3)
    return header, names, np.asarray(times), data


def _width_notes(n_markers: int, n_rows: int, last_line: int, short: Sequence[tuple[int, int]],
                 long: Sequence[int]) -> list[str]:
    """Rows narrower or wider than the header's markers: a cut-off file, or a marker's columns removed (or its
    name dropped from the Frame# line), after which every marker is read from the wrong columns."""
    notes = []
    need = 3 * n_markers
    if len(short) == 1 and short[0][0] == last_line:
        notes.append(f"the last data row (line {last_line}) holds {short[0][1]} of {need} coordinates: the file "
                     "looks truncated")
    elif short:
        notes.append(
            f"{len(short)} of {n_rows} data rows hold fewer than the {need} coordinates of the header's {n_markers} "
            f"markers (line {short[0][0]}: {short[0][1]}); their missing cells are read as gaps, but if a marker's "
            "columns were removed, the markers after it are read from the wrong columns"
        )
    if long:
        notes.append(
            f"{len(long)} of {n_rows} data rows (first: line {long[0]}) hold numbers beyond the {need} coordinates of "
            f"the header's {n_markers} markers: if a marker name is missing from the Frame# line, the markers after "
            "it are read from the wrong columns; the extra numbers are ignored"
        )
    return notes


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------- mapping
def _harrington(markers: Mapping[str, np.ndarray], side: str) -> np.ndarray | None:
    """Hip joint centre from ASIS/PSIS (Harrington et al. 2007, in metres), or None without those markers."""
    def find(options: Sequence[str]) -> np.ndarray | None:
        return next((markers[o.lower()] for o in options if o.lower() in markers), None)

    lasi, rasi = find(_ASIS["left"]), find(_ASIS["right"])
    lpsi, rpsi = find(_PSIS["left"]), find(_PSIS["right"])
    sacrum = find(("SACR", "SACRUM"))
    if lasi is None or rasi is None:
        return None
    mid_psis = 0.5 * (lpsi + rpsi) if lpsi is not None and rpsi is not None else sacrum
    if mid_psis is None:
        return None
    mid_asis = 0.5 * (lasi + rasi)
    pelvis_width = np.linalg.norm(rasi - lasi, axis=1, keepdims=True)
    pelvis_depth = np.linalg.norm(mid_asis - mid_psis, axis=1, keepdims=True)
    z = (rasi - lasi) / pelvis_width  # to the right
    y = np.cross(z, mid_asis - mid_psis)
    y /= np.linalg.norm(y, axis=1, keepdims=True)  # up
    x = np.cross(y, z)  # forward
    lateral = (0.33 * pelvis_width + 0.0073) * (1.0 if side == "right" else -1.0)
    return mid_asis + (-0.24 * pelvis_depth - 0.0099) * x + (-0.30 * pelvis_width - 0.0109) * y + lateral * z


def map_markers(
    markers: Mapping[str, np.ndarray], marker_map: Mapping[str, Any] | None = None
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """Joint positions (before any lateral shift), the rule used for each, and joints awaiting a medial shift."""
    table = {j: tuple(rules) for j, rules in MARKER_TABLE.items()}
    for joint, rules in (marker_map or {}).items():
        if joint not in CANONICAL_JOINTS:
            raise InputError(f"marker_map names unknown joint {joint!r}; canonical joints are {CANONICAL_JOINTS}")
        rules = (rules,) if isinstance(rules, str) or not isinstance(rules, Iterable) else tuple(rules)
        if not all(isinstance(rule, str) for rule in rules):
            raise InputError(f"marker_map[{joint!r}] must be marker rules (strings such as 'LKNE' or 'lateral:LKNE'), "
                             f"got {rules!r:.80}")
        table[joint] = rules + table.get(joint, ())
    joints: dict[str, np.ndarray] = {}
    used: dict[str, str] = {}
    lateral: dict[str, str] = {}
    for joint in CANONICAL_JOINTS:
        for rule in table.get(joint, ()):
            if rule == "harrington":
                value = _harrington(markers, joint.split("_")[0])
                if value is not None:
                    joints[joint], used[joint] = value, rule
                    break
                continue
            kind, _, body = rule.rpartition(":")
            names = [n.strip().lower() for n in body.split("+")]
            if all(n in markers for n in names):
                joints[joint] = np.mean([markers[n] for n in names], axis=0)
                used[joint] = rule
                if kind == "lateral":
                    lateral[joint] = rule
                break
    return joints, used, lateral


def _names_looked_for(joint: str, shown: int = 12) -> str:
    """What a file must name for `joint` (from the command line, where no marker_map can be given, renaming a
    marker in the header is the way)."""
    names = [rule.rpartition(":")[2] for rule in MARKER_TABLE[joint] if rule != "harrington"]
    return (f"{joint} is read from a marker named {', '.join(names[:shown])}{', ...' if len(names) > shown else ''} "
            "(case-insensitive; A+B: the mean of two markers); rename yours in the header to one")


def _detect_up(joints: Mapping[str, np.ndarray]) -> str | None:
    head = [joints[j] for j in _HEAD_GROUP if j in joints] or [joints[j] for j in ("left_hip", "right_hip") if j in joints]
    feet = [joints[j] for j in _FOOT_GROUP if j in joints]
    if not head or not feet:
        return None
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames
        diff = np.nanmedian(np.nanmean(head, axis=0) - np.nanmean(feet, axis=0), axis=0)
    if not np.isfinite(diff).all() or not np.abs(diff).max() > 0:
        return None
    axis = int(np.argmax(np.abs(diff)))
    return ("+" if diff[axis] > 0 else "-") + "xyz"[axis]


def _file_fps(header: Mapping[str, str], times: np.ndarray, notes: list[str], meta: dict[str, Any]) -> float:
    """DataRate when it is a positive number (range-checked by the caller), else the Time column's step,
    else the default (recorded as assumed in `meta`); a DataRate that is present but unusable is reported,
    never silently replaced."""
    declared = header.get("datarate", "").strip()
    try:
        rate = float(declared) if declared else math.nan
    except ValueError:
        rate = math.nan
    if math.isfinite(rate) and rate > 0:
        return rate
    from_times = _common.fps_from_times(times)
    if from_times is not None:
        if declared:
            notes.append(f"DataRate {declared!r:.30} is not a valid frame rate; used {from_times:g} fps from the "
                         "Time column")
        return from_times
    if declared:  # an unusable DataRate is no rate: the default stands in as for a file without one
        note = f"DataRate {declared!r:.30} is not a valid frame rate; used {_common.DEFAULT_FPS:g} fps"
    else:
        times_said = "a Time column that gives no frame rate" if np.isfinite(times).any() else "no Time column"
        note = f"no DataRate and {times_said}; assumed {_common.DEFAULT_FPS:g} fps"
    return _common.assume_default_fps(meta, notes, note)


def _truncation_notes(header: Mapping[str, str], n_read: int) -> list[str]:
    """A file holding fewer rows than its NumFrames says was cut short (an interrupted copy or export)."""
    try:
        declared = int(float(header.get("numframes", "")))
    except ValueError:
        return []
    if declared > n_read:
        return [f"the header declares {declared} frames but holds {n_read}: the file looks truncated"]
    return []


# ---------------------------------------------------------------------------------------------- read
def read(
    path: str | Path,
    fps: float | None = None,
    person: int | None = None,
    up_axis: str | None = None,
    marker_map: Mapping[str, Any] | None = None,
    knee_width_m: float = 0.10,
    ankle_width_m: float = 0.07,
) -> KeypointSequence:
    """Read a TRC file as a `canonical` 3D sequence in metres, +z up, floor at z = 0 (see module doc)."""
    path = Path(path)
    if person not in (None, 0):
        raise InputError(f"{path}: a TRC file holds one subject; person={person!r} cannot be chosen")
    forced_axis = None if up_axis is None else _normalise_axis(path, up_axis)
    for name, width in (("knee_width_m", knee_width_m), ("ankle_width_m", ankle_width_m)):
        if isinstance(width, bool) or not isinstance(width, numbers.Real) or not 0 <= width < 1:
            raise InputError(f"{path}: {name} must be a joint width in metres (>= 0 and < 1), got {width!r:.30}")
    with _common.reading(path, "TRC"):
        notes: list[str] = []
        header, names, times, data = parse(path, _common.read_text(path), notes)
        markers: dict[str, np.ndarray] = {}
        for k, name in enumerate(names):
            markers.setdefault(name.lower(), data[:, k])
        joints, used, lateral = map_markers(markers, marker_map)
        missing = [j for j in REQUIRED if j not in joints]
        if missing:
            raise FormatError(
                f"{path}: missing markers: no marker for {', '.join(missing)} (markers present: "
                f"{', '.join(names[:25])}{', ...' if len(names) > 25 else ''}); {_names_looked_for(missing[0])}, "
                "or add rules with marker_map= (valgusml.io.read)"
            )
        notes += _truncation_notes(header, len(times))
        declared_units = header.get("units", "").strip()
        unit_name = declared_units.lower()
        if unit_name in _UNITS:
            scale = _UNITS[unit_name]
        else:
            with np.errstate(all="ignore"):
                leg = np.nanmedian(np.linalg.norm(joints["left_hip"] - joints["left_ankle"], axis=1))
            scale = 1e-3 if leg > 20 else 1e-2 if leg > 3 else 1.0
            unit_name = {1e-3: "mm", 1e-2: "cm", 1.0: "m"}[scale]
            said = f"unknown Units {declared_units!r:.30}" if declared_units else "no Units in the header"
            notes.append(f"{said}; guessed {unit_name} from the leg length")
        joints = {j: v * scale for j, v in joints.items()}
        if up_axis is None:
            axis = _detect_up(joints)
            if axis is None:
                raise FormatError(f"{path}: cannot tell the up axis: no head/shoulder and foot markers at distinct "
                                  "positions (missing, blank/NaN or all at one point); pass up_axis=")
        else:
            axis = forced_axis
        rotation = UP_AXIS_ROTATIONS[axis].astype(np.float64)
        n_frames = data.shape[0]
        keypoints = np.full((n_frames, len(CANONICAL_JOINTS), 3), np.nan)
        for k, joint in enumerate(CANONICAL_JOINTS):
            if joint in joints:
                keypoints[:, k] = joints[joint] @ rotation.T
        shifts = {}
        if lateral:
            left_dir = keypoints[:, CANONICAL_JOINTS.index("left_hip")] - keypoints[:, CANONICAL_JOINTS.index("right_hip")]
            left_dir[:, 2] = 0.0
            with np.errstate(invalid="ignore", divide="ignore"):
                left_dir /= np.linalg.norm(left_dir, axis=1, keepdims=True)
            for joint in lateral:
                half = 0.5 * (knee_width_m if joint.endswith("knee") else ankle_width_m)
                medial = -1.0 if joint.startswith("left") else 1.0  # the left joint's medial side is towards -left
                keypoints[:, CANONICAL_JOINTS.index(joint)] += medial * half * left_dir
                shifts[joint] = half
        feet = [CANONICAL_JOINTS.index(j) for j in _FOOT_GROUP]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # frames without any foot marker
            lowest = np.nanmin(keypoints[:, feet, 2], axis=1)
        lowest = lowest[np.isfinite(lowest)]
        if not len(lowest):
            raise InputError(f"{path}: no frame has finite foot markers; cannot place the floor")
        floor = float(np.percentile(lowest, 1))
        keypoints[..., 2] -= floor
        with np.errstate(all="ignore"):
            leg = float(np.nanmedian(np.linalg.norm(keypoints[:, CANONICAL_JOINTS.index("left_hip")] - keypoints[:, CANONICAL_JOINTS.index("left_ankle")], axis=1)))
        if not 0.4 <= leg <= 1.4:
            notes.append(f"hip-to-ankle distance is {leg:.3f} m after unit conversion ({unit_name}); check the units")
        confidence = np.isfinite(keypoints).all(axis=-1).astype(np.float64)
        meta: dict[str, Any] = {
            "units_in_file": unit_name,
            "up_axis_in_file": axis,
            "floor_offset_m": round(floor, 6),
            "joint_sources": used,
            "medial_shift_m": shifts,
            "missing_joints": [j for j in CANONICAL_JOINTS if j not in joints],
            "n_markers": len(names),
        }
        file_fps = fps if fps is not None else _file_fps(header, times, notes, meta)
        return _common.finish(path, keypoints, confidence, "canonical", _common.checked_fps(path, file_fps), "trc", meta, notes)


# --------------------------------------------------------------------------------------------- write
def write(
    seq: KeypointSequence,
    path: str | Path,
    units: str = "mm",
    up_axis: str = "y",
    names: str | Mapping[str, str] = "pose2sim",
    digits: int = 6,
) -> Path:
    """Write a `canonical` 3D sequence (metres, +z up) as a TRC file in `units` with `up_axis` up.

    `names`: "pose2sim" (RHip, LKnee, ...), "canonical" (joint names), or a mapping joint → marker name.
    Joints that are missing throughout are left out; gaps are blank cells.
    """
    if seq.skeleton != "canonical" or seq.dims != 3:
        raise InputError(f"TRC files hold 3D canonical keypoints; got {seq.skeleton} {seq.dims}D (use to_canonical())")
    path = Path(path)
    if units not in ("m", "mm", "cm"):
        raise InputError(f"TRC writer: units must be m, mm or cm, got {units!r}")
    table = POSE2SIM_NAMES if names == "pose2sim" else {j: j for j in CANONICAL_JOINTS} if names == "canonical" else dict(names)
    rotation = UP_AXIS_ROTATIONS[_normalise_axis(path, up_axis)].astype(np.float64)
    present = [k for k, j in enumerate(CANONICAL_JOINTS) if j in table and np.isfinite(seq.keypoints[:, k]).all(axis=-1).any()]
    labels = [table[CANONICAL_JOINTS[k]] for k in present]
    data = seq.keypoints[:, present].astype(np.float64) @ rotation / _UNITS[units]  # inverse rotation = transpose
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{seq.fps:g}\t{seq.fps:g}\t{seq.n_frames}\t{len(labels)}\t{units}\t{seq.fps:g}\t1\t{seq.n_frames}",
        "Frame#\tTime\t" + "\t\t\t".join(labels) + "\t\t",
        "\t\t" + "\t".join(f"{a}{k + 1}" for k in range(len(labels)) for a in "XYZ"),
        "",
    ]
    for t in range(seq.n_frames):
        cells = ["" if not math.isfinite(v) else f"{v:.{digits}g}" for v in data[t].reshape(-1)]
        lines.append(f"{t + 1}\t{t / seq.fps:.6g}\t" + "\t".join(cells))
    _common.atomic_write_text(path, "\n".join(lines) + "\n")
    return path
