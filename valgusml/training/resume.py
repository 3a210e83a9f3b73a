"""Which checkpoint a run resumes from: `ckpt_path=...`, or for `resume=true` the task's newest `last.ckpt`."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from valgusml.errors import InputError

LAST = "last.ckpt"


def find_resume_checkpoint(cfg: DictConfig) -> Path | None:
    """`ckpt_path=...` as given, or for `resume=true` the newest `last.ckpt` among this task's runs."""
    if cfg.get("ckpt_path"):
        return Path(cfg.ckpt_path).resolve()
    if not cfg.get("resume"):
        return None
    base = Path(cfg.paths.log_dir) / cfg.task_name
    candidates = [p for p in base.glob(f"*/*/checkpoints/{LAST}") if p.is_file()]
    candidates += [p for p in base.glob(f"*/*/*/checkpoints/{LAST}") if p.is_file()]
    if not candidates:
        raise InputError(f"resume=true but no {LAST} under {base}; start a run first or pass ckpt_path=...")
    return max(candidates, key=lambda p: p.stat().st_mtime).resolve()
