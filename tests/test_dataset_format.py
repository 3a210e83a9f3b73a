from __future__ import annotations

import json
import os

import numpy as np
import pytest

from valgusml import FormatError, InputError, KeypointSequence
from valgusml.data import format as fmt
from valgusml.data import open_dataset, write_dataset, write_shard

LABELS = {"left": {"valgus": True, "mechanism": "hip_weakness", "severity_deg": 14.0},
          "right": {"valgus": False, "mechanism": "none", "severity_deg": 3.0}}


def _seqs(n=5, seed=0, dims=2):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kp = rng.normal(size=(6 + i, 20, dims)).astype(np.float32)
        kp[0, 2] = np.nan
        out.append(KeypointSequence(kp, "canonical", 30.0 + i, id=f"s{i}", athlete_id=f"a{i % 3}", task="squat",
                                    source="test", labels=LABELS if i % 2 else None, meta={"k": i}))
    return out


def test_write_and_read_back(tmp_path):
    seqs = _seqs()
    ds = write_dataset(tmp_path / "ds", seqs, shard_size=2, meta={"why": "test"})
    assert len(ds) == 5 and ds.skeleton == "canonical" and ds.dims == 2 and ds.meta == {"why": "test"}
    assert ds.athletes == ["a0", "a1", "a2"] and ds.indices_of(["a1"]).tolist() == [1, 4]
    assert [seq.id for seq in ds.sequences_of(["a2", "a1"])] == [seqs[i].id for i in (1, 2, 4)]  # dataset order
    for orig, back in zip(seqs, ds, strict=True):
        np.testing.assert_array_equal(back.keypoints, orig.keypoints)
        np.testing.assert_array_equal(back.confidence, orig.confidence)
        assert (back.id, back.fps, back.labels, back.meta) == (orig.id, orig.fps, orig.labels, orig.meta)
    kp, conf = ds.arrays(3)
    assert isinstance(kp, np.memmap) and not kp.flags.writeable and kp.shape == (9, 20, 2)
    assert [r["id"] for r in ds.manifest] == [s.id for s in seqs]
    assert ds.record(-1) == ds.manifest[4] and ds.record(2)["meta"] == {"k": 2} and ds.record(1)["offset"] == 6
    # plain .npy, readable without pickle
    np.load(tmp_path / "ds" / "shards" / "00000.keypoints.npy", allow_pickle=False)
    assert sorted(p.name for p in (tmp_path / "ds" / "shards").iterdir() if p.name.startswith(".")) == []


def test_fingerprint_is_content_only(tmp_path):
    a = write_dataset(tmp_path / "a", _seqs(), shard_size=2)
    b = write_dataset(tmp_path / "elsewhere" / "b", _seqs(), shard_size=2, meta={"other": "meta"})
    assert a.fingerprint == b.fingerprint  # same content, same shard size, any folder/time/meta
    changed = _seqs()
    changed[3] = changed[3].replace(keypoints=changed[3].keypoints + 1e-3)
    assert write_dataset(tmp_path / "c", changed, shard_size=2).fingerprint != a.fingerprint
    relabelled = _seqs()
    relabelled[0] = relabelled[0].replace(labels=LABELS)
    assert write_dataset(tmp_path / "d", relabelled, shard_size=2).fingerprint != a.fingerprint


def test_fingerprint_ignores_shard_layout(tmp_path):
    seqs = _seqs()
    prints = {write_dataset(tmp_path / f"s{n}", seqs, shard_size=n).fingerprint for n in (1, 2, 3, len(seqs))}
    assert len(prints) == 1
    reordered = write_dataset(tmp_path / "r", list(reversed(seqs)), shard_size=2).fingerprint
    assert reordered not in prints  # order is content: sequence i is part of what a split refers to


def test_resume_keeps_completed_shards(tmp_path):
    root = tmp_path / "ds"
    seqs = _seqs(6)
    write_shard(root, 0, seqs[0:2])
    write_shard(root, 1, seqs[2:4])
    # an interrupted shard 2: arrays written, no .done.json marker
    (root / "shards" / "00002.keypoints.npy").write_bytes(b"partial")
    assert sorted(fmt.completed_shards(root)) == ["00000", "00001"]
    stamp = os.stat(root / "shards" / "00000.keypoints.npy").st_mtime_ns
    for index in range(3):
        if fmt.shard_name(index) not in fmt.completed_shards(root):
            write_shard(root, index, seqs[2 * index : 2 * index + 2])
    header = fmt.finalize_dataset(root)
    assert os.stat(root / "shards" / "00000.keypoints.npy").st_mtime_ns == stamp
    assert header["n_sequences"] == 6
    assert header["fingerprint"] == write_dataset(tmp_path / "clean", seqs, shard_size=2).fingerprint


def test_writer_refusals(tmp_path):
    with pytest.raises(InputError, match="no sequences"):
        write_shard(tmp_path / "x", 0, [])
    mixed = [_seqs(1)[0], _seqs(1, dims=3)[0]]
    with pytest.raises(InputError, match="to_canonical"):
        write_shard(tmp_path / "x", 0, mixed)
    with pytest.raises(InputError, match="no complete shard"):
        fmt.finalize_dataset(tmp_path / "empty")


def test_reader_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(FormatError, match="dataset.json is missing"):
        open_dataset(tmp_path / "plain")
    write_dataset(tmp_path / "ds", _seqs(2))
    header = tmp_path / "ds" / "dataset.json"
    content = json.loads(header.read_text())
    header.write_text(json.dumps({**content, "version": 99}))
    with pytest.raises(FormatError, match="version 99"):
        open_dataset(tmp_path / "ds")
    header.write_text(json.dumps(content)[:30])
    with pytest.raises(FormatError, match="not valid JSON"):
        open_dataset(tmp_path / "ds")
    header.write_text(json.dumps(content))
    (tmp_path / "ds" / "shards" / "00000.manifest.jsonl").unlink()
    with pytest.raises(FormatError, match="manifest is missing"):
        open_dataset(tmp_path / "ds")


def test_open_dataset_keeps_no_rows_in_memory(tmp_path):
    """Rows are read back from the manifests: the open dataset sees a manifest edited after opening (so it
    cannot be holding the parsed rows, ~9 KiB each for generated data)."""
    ds = write_dataset(tmp_path / "ds", _seqs(), shard_size=2)
    path = tmp_path / "ds" / "shards" / "00000.manifest.jsonl"
    path.write_text(path.read_text().replace('"source":"test"', '"source":"edit"'))
    assert ds.record(0)["source"] == "edit" and ds[1].source == "edit" and ds[2].source == "test"


def test_a_killed_whole_write_is_cleared_by_the_next(tmp_path, dead_pid):
    """`write_dataset_whole` killed mid-write leaves `.OUT.partial-PID`; the next write removes it (and
    `remove_stale_siblings` any such file or folder of a process gone), a live writer's is left alone."""
    out = tmp_path / "ds"
    stale, live = tmp_path / f".ds.partial-{dead_pid}", tmp_path / f".ds.partial-{os.getppid()}"
    for folder in (stale, live):
        (folder / "shards").mkdir(parents=True)
    stale_file = tmp_path / f".ds.partial-{dead_pid}.npz"
    stale_file.write_bytes(b"half")
    fmt.write_dataset_whole(out, _seqs(3), shard_size=2)
    assert sorted(tmp_path.iterdir()) == sorted([out, live])
    assert fmt.remove_stale_siblings(out, ".partial-") == []


def test_a_whole_write_killed_while_replacing_is_cleared_by_the_next(tmp_path, dead_pid):
    """Killed while `--overwrite` deletes the set it replaced (renamed `.OUT.old-PID`: as large as the set), a
    writer leaves that folder; the next write of OUT removes it."""
    out = tmp_path / "ds"
    fmt.write_dataset_whole(out, _seqs(2), shard_size=2)
    old = tmp_path / f".ds.old-{dead_pid}"
    out.rename(old)
    fmt.write_dataset_whole(out, _seqs(3), shard_size=2)
    assert sorted(tmp_path.iterdir()) == [out] and len(open_dataset(out)) == 3


def test_stale_siblings_of_every_name(tmp_path, dead_pid):
    """Outputs named anew by each run (timestamped reports) are swept with `every_name`; a live writer's stay."""
    stale, live = tmp_path / f".run-1.partial-{dead_pid}", tmp_path / f".run-2.partial-{os.getppid()}"
    other = tmp_path / f".run-3.old-{dead_pid}"
    for folder in (stale, live, other):
        folder.mkdir()
    assert fmt.remove_stale_siblings(tmp_path / "run-4", ".partial-") == []
    assert fmt.remove_stale_siblings(tmp_path / "run-4", ".partial-", every_name=True) == [stale]
    assert sorted(tmp_path.iterdir()) == sorted([live, other])
