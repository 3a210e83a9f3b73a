"""No answers in the data: the sampled deficit profile never reaches what a loader hands a model."""

from __future__ import annotations

import json

from valgusml.labels import DEFICITS
from valgusml.synth import generate_dataset, load_preset
from valgusml.synth.analysis import leaked_keys, read_analysis


def test_no_model_input_can_see_the_deficit_profile(tmp_path):
    cfg = load_preset("realistic", n_athletes=6, **{"tasks.trials_per_athlete": 3,
                                                    "mechanisms.probabilities": {"none": 0.2, "pronation": 0.8}})
    ds = generate_dataset(cfg, tmp_path / "ds", workers=1, progress=False, shard_size=6)
    analysis = read_analysis(tmp_path / "ds")
    assert set(analysis) == {r["id"] for r in ds.manifest}
    profiles = [row["athlete"] for row in analysis.values()]
    assert any(p["dominant_mechanism"] == "pronation" for p in profiles)  # the answers exist, apart
    for k in range(len(ds)):
        seq, row = ds[k], ds.manifest[k]
        for where, meta in (("sequence", seq.meta), ("manifest", row.get("meta") or {})):
            assert leaked_keys(meta) == [], (where, seq.id)
            text = json.dumps(meta)
            # no mechanism name anywhere in what a loader passes on (the labels carry the label, not the profile)
            assert not any(name in text for name in DEFICITS), (where, seq.id, text)
            assert "severity" not in text
        assert set(seq.meta["athlete"]) == {"sex", "height_m", "mass_kg"}
    # the analysis files live outside the shards a loader reads
    assert not any("analysis" in p.name for p in (tmp_path / "ds" / "shards").iterdir())


def test_leaked_keys_finds_nested_profile_keys():
    assert leaked_keys({"a": {"b": [{"shares": {}}]}, "severity": 1}) == ["meta.a.b[0].shares", "meta.severity"]
    assert leaked_keys({"camera": {"yaw_deg": 0.0}}) == []
