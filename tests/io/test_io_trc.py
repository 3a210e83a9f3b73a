from __future__ import annotations

import numpy as np
import pytest

import valgusml.io as vio
from valgusml.errors import FormatError, InputError
from valgusml.io import samples, trc
from valgusml.skeleton import CANONICAL_JOINTS, canonical_index


def test_reads_sample_mm_y_up(samples_dir):
    seq = vio.read(samples_dir / "squat.trc")
    expected = samples.squat_3d(fps=60.0)
    assert seq.skeleton == "canonical" and seq.dims == 3 and seq.fps == 60.0
    assert seq.meta["units_in_file"] == "mm" and seq.meta["up_axis_in_file"] == "+y"
    np.testing.assert_allclose(seq.keypoints, expected.keypoints, atol=1e-4)
    assert abs(np.nanmin(seq.keypoints[..., 2])) < 1e-4  # floor at z = 0


@pytest.mark.parametrize("up,units", [("z", "m"), ("-y", "cm"), ("x", "mm"), ("-x", "m"), ("-z", "mm")])
def test_round_trip_any_up_axis_and_units(tmp_path, up, units):
    seq = samples.squat_3d(n_frames=10)
    back = vio.read(trc.write(seq, tmp_path / "a.trc", units=units, up_axis=up, names="canonical"))
    assert back.meta["up_axis_in_file"] == (up if up.startswith("-") else "+" + up)
    np.testing.assert_allclose(back.keypoints, seq.keypoints, atol=1e-4)
    forced = vio.read(tmp_path / "a.trc", up_axis=up)
    np.testing.assert_allclose(forced.keypoints, seq.keypoints, atol=1e-4)


def _opencap_like(tmp_path, with_medial=False):
    """A squat written with OpenCap names: lateral knee/ankle markers 5 / 3.5 cm lateral of the centres."""
    seq = samples.squat_3d(n_frames=8)
    kp = seq.keypoints.copy()
    names = {"left_hip": "L_HJC", "right_hip": "R_HJC", "left_heel": "L_calc", "right_heel": "r_calc",
             "left_big_toe": "L_toe", "right_big_toe": "r_toe", "left_small_toe": "L_5meta",
             "right_small_toe": "r_5meta", "left_shoulder": "L_Shoulder", "right_shoulder": "R_Shoulder",
             "neck": "C7"}
    extra = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for joint, half, lateral_name, medial_name in (("knee", 0.05, "knee", "mknee"), ("ankle", 0.035, "ankle", "mankle")):
            centre = kp[:, canonical_index(f"{side}_{joint}")]
            prefix = "L_" if side == "left" else "r_"
            extra[prefix + lateral_name] = centre + [sign * half, 0, 0]  # the subject's left is +x here
            if with_medial:
                extra[prefix + medial_name] = centre - [sign * half, 0, 0]
    keep = [canonical_index(j) for j in names]
    markers = np.concatenate([kp[:, keep], np.stack(list(extra.values()), axis=1)], axis=1)
    table = dict(zip([f"m{k}" for k in range(markers.shape[1])], list(names.values()) + list(extra), strict=True))
    lines = ["PathFileType\t4\t(X/Y/Z)\tx.trc", "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits",
             f"100\t100\t8\t{markers.shape[1]}\tm", "Frame#\tTime\t" + "\t\t\t".join(table.values()),
             "\t\t" + "\t".join(f"{a}{k + 1}" for k in range(markers.shape[1]) for a in "XYZ"), ""]
    for t in range(8):
        lines.append(f"{t + 1}\t{t / 100}\t" + "\t".join(f"{v:.6f}" for v in markers[t].reshape(-1)))
    path = tmp_path / "opencap.trc"
    path.write_text("\n".join(lines) + "\n")
    return path, seq


@pytest.mark.parametrize("with_medial", [False, True])
def test_lateral_markers_move_to_joint_centres(tmp_path, with_medial):
    path, seq = _opencap_like(tmp_path, with_medial)
    back = vio.read(path)
    for joint in ("left_knee", "right_knee", "left_ankle", "right_ankle"):
        k = canonical_index(joint)
        np.testing.assert_allclose(back.keypoints[:, k], seq.keypoints[:, k], atol=1e-4)
    assert back.meta["joint_sources"]["left_knee"] == ("L_knee+L_mknee" if with_medial else "lateral:L_knee")
    assert bool(back.meta["medial_shift_m"]) is not with_medial
    assert np.isnan(back.joint("nose")).all() and (back.confidence[:, canonical_index("nose")] == 0).all()


def test_configurable_name_table_and_harrington_hips(tmp_path):
    seq = samples.squat_3d(n_frames=6)
    kp = seq.keypoints
    hips = 0.5 * (kp[:, canonical_index("left_hip")] + kp[:, canonical_index("right_hip")])
    forward = np.array([0.0, -1.0, 0.0])  # the sample faces -y
    pelvis = {"LASI": hips + [0.12, 0, 0.08] + 0.06 * forward, "RASI": hips + [-0.12, 0, 0.08] + 0.06 * forward,
              "LPSI": hips + [0.05, 0, 0.10] - 0.10 * forward, "RPSI": hips + [-0.05, 0, 0.10] - 0.10 * forward}
    names = {"KNEE_L": canonical_index("left_knee"), "KNEE_R": canonical_index("right_knee"),
             "LANK": canonical_index("left_ankle"), "RANK": canonical_index("right_ankle"),
             "LSHO": canonical_index("left_shoulder"), "RSHO": canonical_index("right_shoulder"),
             "LHEE": canonical_index("left_heel"), "RHEE": canonical_index("right_heel")}
    markers = np.stack([kp[:, k] for k in names.values()] + list(pelvis.values()), axis=1) * 1000
    labels = list(names) + list(pelvis)
    lines = ["PathFileType\t4\t(X/Y/Z)\tv.trc", "DataRate\tUnits", "200\tmm", "Frame#\tTime\t" + "\t\t\t".join(labels)]
    lines += [f"{t + 1}\t{t / 200}\t" + "\t".join(f"{v:.3f}" for v in markers[t].reshape(-1)) for t in range(6)]
    (tmp_path / "v.trc").write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=r"v\.trc: missing markers: no marker for left_knee, right_knee"):
        vio.read(tmp_path / "v.trc")
    back = vio.read(tmp_path / "v.trc", marker_map={"left_knee": "KNEE_L", "right_knee": ["KNEE_R"]})
    assert back.fps == 200.0 and back.meta["joint_sources"]["left_hip"] == "harrington"
    left, right = back.joint("left_hip"), back.joint("right_hip")
    width = np.linalg.norm(left - right, axis=1)
    assert ((width > 0.1) & (width < 0.3)).all()
    assert (left[:, 0] > right[:, 0]).all()  # still on the subject's left (+x)
    # Harrington puts the hip centres below the ASIS and behind them
    asis_z = (pelvis["LASI"][:, 2] - back.meta["floor_offset_m"])
    assert (left[:, 2] < asis_z).all()


def test_gaps_units_guess_and_bad_files(tmp_path):
    path = trc.write(samples.squat_3d(n_frames=6), tmp_path / "g.trc", units="mm", up_axis="z")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace("\tmm\t", "\t\t")  # no Units: guessed from the leg length
    cells = lines[8].split("\t")
    cells[2:5] = ["", "", ""]  # first marker missing in frame 3
    lines[8] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n")
    back = vio.read(path)
    assert back.meta["units_in_file"] == "mm" and "guessed mm" in back.meta["warnings"][0]
    assert np.isnan(back.keypoints[2, CANONICAL_JOINTS.index("nose")]).all()
    cells = lines[7].split("\t")
    cells[5] = "abc"
    lines[7] = "\t".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=r"g\.trc: line 8: marker .* not a number"):
        vio.read(path)
    (tmp_path / "h.trc").write_text("PathFileType\t4\nnothing here\n")
    with pytest.raises(FormatError, match="not a TRC file"):
        vio.read(tmp_path / "h.trc")
    with pytest.raises(InputError, match="up_axis"):
        vio.read(tmp_path / "g.trc", up_axis="w")


def _trc_lines(tmp_path, name="r.trc", n_frames=8):
    """A written TRC's lines and the index of its first data row."""
    path = trc.write(samples.squat_3d(n_frames=n_frames), tmp_path / name, units="mm", up_axis="z")
    lines = path.read_text().splitlines()
    return path, lines, next(i for i, line in enumerate(lines) if line[:1].isdigit() and i > 3)


def test_rows_out_of_time_order_are_refused_naming_the_line(tmp_path):
    """Rows sorted by something else read as another motion (a reversed drop jump reads as valgus)."""
    path, lines, first = _trc_lines(tmp_path)
    lines[first:] = lines[first:][::-1]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=rf"r\.trc: line {first + 2}: Time .* comes after .*out of time order"):
        vio.read(path)


def test_rows_narrower_or_wider_than_the_header_are_reported(tmp_path):
    """A marker's columns removed from the data (header intact) shifts every marker after it: reported, as is a
    cut-off last row and numbers beyond the header's markers (a marker name missing from the Frame# line)."""
    path, lines, first = _trc_lines(tmp_path)
    need = len(lines[first].split("\t")) - 2  # 3 coordinates per marker
    shifted = ["\t".join(r.split("\t")[:2] + r.split("\t")[5:]) for r in lines[first:]]
    path.write_text("\n".join(lines[:first] + shifted) + "\n")
    with pytest.warns(UserWarning, match=rf"8 of 8 data rows hold fewer than the {need} coordinates .*wrong columns"):
        vio.read(path)
    cut = lines[:-1] + ["\t".join(lines[-1].split("\t")[:10])]
    path.write_text("\n".join(cut) + "\n")
    with pytest.warns(UserWarning, match=rf"last data row \(line {len(lines)}\) holds 8 of {need} coordinates: the file looks truncated"):
        vio.read(path)
    wide = lines[:first] + [r + "\t1\t2\t3" for r in lines[first:]]
    path.write_text("\n".join(wide) + "\n")
    with pytest.warns(UserWarning, match=r"numbers beyond .* marker name is missing"):
        vio.read(path)
    path.write_text("\n".join(lines) + "\n")
    assert not vio.read(path).meta.get("warnings")  # a whole file: nothing to report


def test_bad_reader_options_are_refused_not_read_as_a_bad_file(tmp_path):
    path, _, _ = _trc_lines(tmp_path)
    with pytest.raises(InputError, match=r"marker_map\['left_knee'\] must be marker rules"):
        vio.read(path, marker_map={"left_knee": [5]})
    with pytest.raises(InputError, match="knee_width_m must be a joint width in metres"):
        vio.read(path, knee_width_m=float("nan"))
