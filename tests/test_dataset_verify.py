"""Dataset folders are verified, not trusted (issue 13, defect 2): shard hashes on first read, the fingerprint
recomputed, `valgusml verify`, `valgusml generate` re-verifying and cleaning a killed writer's files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from valgusml import FormatError, KeypointSequence
from valgusml.cli import main as valgusml_main
from valgusml.data import format as fmt
from valgusml.data import open_dataset, write_dataset

LABELS = {"left": {"valgus": True, "mechanism": "hip_weakness", "severity_deg": 14.0},
          "right": {"valgus": False, "mechanism": "none", "severity_deg": 3.0}}


def _dataset(root):
    rng = np.random.default_rng(0)
    seqs = [
        KeypointSequence(rng.normal(size=(8, 20, 2)).astype(np.float32), "canonical", 30.0, id=f"s{i}",
                         athlete_id=f"a{i}", task="squat", labels=LABELS)
        for i in range(4)
    ]
    return write_dataset(root, seqs, shard_size=2)


def _flip_byte(path, offset_from_end=5):
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_is_caught_on_first_read(tmp_path):
    _dataset(tmp_path / "ds")
    _flip_byte(tmp_path / "ds" / "shards" / "00001.keypoints.npy")
    ds = open_dataset(tmp_path / "ds")
    assert ds[0].id == "s0"  # shard 0 is intact
    with pytest.raises(FormatError, match=r"shard 00001 is corrupt.*valgusml verify"):
        ds[2]
    assert open_dataset(tmp_path / "ds", verify="none")[2].id == "s2"  # opted out


def test_a_changed_label_is_caught(tmp_path):
    _dataset(tmp_path / "ds")
    manifest = tmp_path / "ds" / "shards" / "00000.manifest.jsonl"
    manifest.write_text(manifest.read_text().replace('"hip_weakness"', '"pronation"'))
    ds = open_dataset(tmp_path / "ds")
    with pytest.raises(FormatError, match="shard 00000 is corrupt"):
        ds.record(0)
    with pytest.raises(FormatError, match="shard 00000"):
        open_dataset(tmp_path / "ds", verify="full")


def test_overwritten_frames_are_caught_by_full_verify(tmp_path):
    _dataset(tmp_path / "ds")
    path = tmp_path / "ds" / "shards" / "00001.confidence.npy"
    arr = np.load(path)
    arr[:5] = 0.5
    np.save(path, arr)
    with pytest.raises(FormatError, match=r"shard 00001: files do not match"):
        open_dataset(tmp_path / "ds", verify="full")


def test_an_edited_fingerprint_is_recomputed_not_trusted(tmp_path):
    _dataset(tmp_path / "ds")
    header_path = tmp_path / "ds" / "dataset.json"
    header = json.loads(header_path.read_text())
    header["fingerprint"] = "0" * 64
    header_path.write_text(json.dumps(header))
    with pytest.raises(FormatError, match="fingerprint 000000000000… does not match"):
        open_dataset(tmp_path / "ds")


def test_verify_command(tmp_path, capsys):
    ds = _dataset(tmp_path / "ds")
    assert valgusml_main(["verify", str(tmp_path / "ds")]) == 0
    assert f"fingerprint {ds.fingerprint[:16]}" in capsys.readouterr().out
    _flip_byte(tmp_path / "ds" / "shards" / "00000.keypoints.npy")
    assert valgusml_main(["verify", str(tmp_path / "ds")]) == 1
    assert "shard 00000: files do not match its sha256" in capsys.readouterr().err


def test_stale_temporaries_of_dead_writers_are_cleaned(tmp_path, dead_pid):
    _dataset(tmp_path / "ds")
    stale = tmp_path / "ds" / "shards" / f".00002.keypoints.npy.tmp-{dead_pid}"
    stale.write_bytes(b"half a shard")
    live = tmp_path / "ds" / "shards" / f".00003.keypoints.npy.tmp-{1}"  # pid 1 is alive
    live.write_bytes(b"being written")
    assert fmt.clean_stale_temporaries(tmp_path / "ds") == [stale]
    assert not stale.exists() and live.exists()


def test_generate_rewrites_a_corrupt_shard_and_cleans_temporaries(tmp_path, dead_pid):
    from valgusml.synth import generate_dataset, load_preset

    cfg = load_preset("clean", n_athletes=2, seed=3)
    cfg_out = tmp_path / "gen"
    first = generate_dataset(cfg, cfg_out, workers=1, progress=False, shard_size=1)
    names = sorted(p.name for p in (cfg_out / "shards").iterdir())
    _flip_byte(cfg_out / "shards" / "00001.keypoints.npy")
    (cfg_out / "shards" / f".00001.manifest.jsonl.tmp-{dead_pid}").write_text("{")
    with pytest.warns(UserWarning, match="shard 00001 does not match its sha256; writing it again"):
        again = generate_dataset(cfg, cfg_out, workers=1, progress=False, shard_size=1)
    assert again.fingerprint == first.fingerprint
    assert sorted(p.name for p in (cfg_out / "shards").iterdir()) == names
    assert open_dataset(cfg_out, verify="full").verify() == []
