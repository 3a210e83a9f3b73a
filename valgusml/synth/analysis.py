"""The generator's answers, kept apart from the data: one analysis row per generated sequence.

A row holds what was *sampled* for the sequence (the athlete's deficit profile: dominant mechanism, shares,
severity, side, hard negatives, hidden traits; the trial's own draws: time-profile family, acquisition
variables) and is what the validation report and studies of the generator read. It is written beside the
shards in `<dataset>/analysis/NNNNN.jsonl` and never into `seq.meta` or the dataset manifest, which loaders
pass on: a model that could read it would learn the generator's answers instead of the motion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from valgusml.data.format import dumps
from valgusml.errors import InputError

ANALYSIS_DIR = "analysis"
# Keys that describe the sampled deficit profile: none may appear anywhere in a sequence's meta.
PROFILE_KEYS = ("dominant_mechanism", "shares", "severity", "side", "hard_negatives", "activation",
                "structural_valgus_deg", "dorsiflexion_rom_deg", "healthy_swivel_scale", "profile")


def analysis_path(root: str | Path, shard: int) -> Path:
    return Path(root) / ANALYSIS_DIR / f"{shard:05d}.jsonl"


def write_analysis(root: str | Path, shard: int, rows: Iterable[dict[str, Any]]) -> Path:
    """Write shard `shard`'s analysis rows atomically (temporary name, then rename)."""
    path = analysis_path(root, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)
    return path


def read_analysis(root: str | Path) -> dict[str, dict[str, Any]]:
    """Every analysis row of a generated dataset, by sequence id."""
    folder = Path(root) / ANALYSIS_DIR
    if not folder.is_dir():
        raise InputError(f"{root}: no {ANALYSIS_DIR}/ folder (not written by valgusml.synth v3 or later)")
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{line_no}: not JSON ({exc.msg})") from None
                out[row["id"]] = row
    return out


def leaked_keys(meta: Any, path: str = "meta") -> list[str]:
    """Paths inside `meta` whose key names part of the deficit profile (empty when the meta is clean)."""
    found: list[str] = []
    if isinstance(meta, dict):
        for key, value in meta.items():
            where = f"{path}.{key}"
            if key in PROFILE_KEYS:
                found.append(where)
            found += leaked_keys(value, where)
    elif isinstance(meta, (list, tuple)):
        for k, value in enumerate(meta):
            found += leaked_keys(value, f"{path}[{k}]")
    return found
