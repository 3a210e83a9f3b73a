"""Importers check what a file claims (frame rate, frame span, array shapes, decompressed size) before they
allocate, and say so when a file is cut short or names what they do not know (issue 13)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import valgusml.io
from valgusml import limits
from valgusml.errors import FormatError, InputError


def _trc_lines(samples_dir: Path) -> list[str]:
    return (samples_dir / "squat.trc").read_text().splitlines()


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _with_header_value(lines: list[str], column: str, value: str) -> list[str]:
    names = lines[1].split("\t")
    cells = lines[2].split("\t")
    cells[names.index(column)] = value
    return [*lines[:2], "\t".join(cells), *lines[3:]]


# -- frame rates -------------------------------------------------------------------------------------------
def test_trc_tiny_datarate_is_refused(samples_dir, tmp_path):
    path = _write(tmp_path, "slow.trc", _with_header_value(_trc_lines(samples_dir), "DataRate", "1e-9"))
    with pytest.raises(InputError, match=r"slow\.trc.*fps 1e-09 is outside"):
        valgusml.io.read(path)


def test_trc_invalid_datarate_is_reported_not_replaced(samples_dir, tmp_path):
    path = _write(tmp_path, "bad_rate.trc", _with_header_value(_trc_lines(samples_dir), "DataRate", "abc"))
    with pytest.warns(UserWarning, match=r"DataRate 'abc' is not a valid frame rate; used (60|59\.99\d) fps from the Time"):
        seq = valgusml.io.read(path)
    assert seq.fps == pytest.approx(60.0, rel=1e-3)
    assert any("DataRate 'abc'" in w for w in seq.meta["warnings"])


def test_trc_unknown_units_are_named(samples_dir, tmp_path):
    path = _write(tmp_path, "far.trc", _with_header_value(_trc_lines(samples_dir), "Units", "furlongs"))
    with pytest.warns(UserWarning, match=r"unknown Units 'furlongs'"):
        seq = valgusml.io.read(path)
    assert not any("no Units" in w for w in seq.meta["warnings"])


def test_trc_cut_mid_file_warns_declared_vs_read(samples_dir, tmp_path):
    lines = _trc_lines(samples_dir)
    data_start = next(i for i, line in enumerate(lines) if line.startswith("1\t"))
    cut = lines[: data_start + 22]
    cut.append(lines[data_start + 22][: len(lines[data_start + 22]) // 2])  # the 23rd row cut mid-line
    path = _write(tmp_path, "cut.trc", cut)
    with pytest.warns(UserWarning, match=r"declares 45 frames but holds 23.*truncated"):
        seq = valgusml.io.read(path)
    assert seq.n_frames == 23


def test_mediapipe_json_tiny_fps_is_refused(samples_dir, tmp_path):
    doc = json.loads((samples_dir / "squat_mediapipe.json").read_text())
    doc["fps"] = 1e-7
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"slow\.json.*fps 1e-07 is outside"):
        valgusml.io.read(path)


def test_csv_cut_mid_row_warns(samples_dir, tmp_path):
    lines = (samples_dir / "squat_mediapipe.csv").read_text().splitlines()
    cut = [*lines[:23], lines[23][: len(lines[23]) // 2]]
    path = _write(tmp_path, "cut.csv", cut)
    with pytest.warns(UserWarning, match=r"last row .*truncated"):
        seq = valgusml.io.read(path)
    assert seq.n_frames == 23


def test_explicit_fps_argument_is_bounded(samples_dir):
    with pytest.raises(InputError, match=r"fps 1e-06 is outside"):
        valgusml.io.read(samples_dir / "squat_coco17.json", fps=1e-6)


# -- frame spans -------------------------------------------------------------------------------------------
def test_coco_sparse_image_id_span_is_refused(samples_dir, tmp_path):
    records = json.loads((samples_dir / "squat_coco17.json").read_text())
    records[-1]["image_id"] = 999_999
    path = tmp_path / "sparse.json"
    path.write_text(json.dumps(records))
    with pytest.raises(InputError, match=r"sparse\.json.*image ids span 1000000 frames but only 45 hold detections"):
        valgusml.io.read(path)


def test_coco_span_over_max_frames_is_refused(samples_dir, tmp_path):
    records = json.loads((samples_dir / "squat_coco17.json").read_text())
    path = tmp_path / "long.json"
    path.write_text(json.dumps(records))
    with limits.override(max_frames=40), pytest.raises(InputError, match=r"45 frames spanned .* limit of 40"):
        valgusml.io.read(path)


# -- npz: declared shapes and decompressed sizes -------------------------------------------------------------
def _npz_with_member(path: Path, name: str, payload: bytes, others: dict[str, np.ndarray]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in others.items():
            buf = io.BytesIO()
            np.save(buf, value)
            zf.writestr(f"{key}.npy", buf.getvalue())
        zf.writestr(f"{name}.npy", payload)
    return path


def _npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_npz_header_claiming_a_huge_shape_is_refused_unread(tmp_path):
    path = _npz_with_member(
        tmp_path / "claims.npz", "keypoints", _npy_header((10**9, 20, 3)) + b"\0" * 64,
        {"confidence": np.ones((2, 20), np.float32), "metadata": np.array("{}")},
    )
    with pytest.raises(FormatError, match=r"claims\.npz.*keypoints.*declares shape \(1000000000, 20, 3\)"):
        valgusml.io.read(path)


def test_npz_zip_bomb_is_refused_before_decompressing(tmp_path):
    bomb = _npy_header((15_000_000,), "<f4") + b"\0" * 60_000_000
    path = _npz_with_member(tmp_path / "bomb.npz", "keypoints", bomb, {"metadata": np.array("{}")})
    assert path.stat().st_size < 1_000_000
    with limits.override(max_array_bytes=50_000_000), pytest.raises(InputError, match=r"bomb\.npz.*keypoints"):
        valgusml.io.read(path)


def test_npz_round_trip_still_reads(samples_dir):
    seq = valgusml.io.read(samples_dir / "squat.npz")
    assert seq.n_frames > 10
