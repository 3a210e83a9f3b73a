"""A generated dataset on disk: shards of whole athletes written in parallel, resumably, by spawned workers;
`generator.json` records the config so a rerun with another config is refused.

Shard k always holds the same athletes (fixed by the config and `shard_size`) in the same batches, so a dataset
is the same bytes and fingerprint whatever the number of workers, and a killed run resumes by writing only the
shards without a `.done.json` marker. Workers are spawned processes (safe with threads, same on every platform).
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from valgusml.data.format import (
    SHARD_DIR,
    clean_stale_temporaries,
    completed_shards,
    dumps,
    finalize_dataset,
    open_dataset,
    shard_files_digest,
    write_shard,
)
from valgusml.data.frame_targets import write_frame_targets
from valgusml.errors import ConfigError, FormatError
from valgusml.synth.analysis import write_analysis
from valgusml.synth.config import GeneratorConfig, validate
from valgusml.synth.generator import GENERATOR_VERSION, sequences_with_targets

GENERATOR_FILE = "generator.json"


def shard_plan(cfg: GeneratorConfig, shard_size: int) -> list[range]:
    """Athletes of each shard: fixed by the config and `shard_size` (sequences per shard, whole athletes)."""
    per_shard = max(1, shard_size // cfg.tasks.trials_per_athlete)
    return [range(s, min(s + per_shard, cfg.n_athletes)) for s in range(0, cfg.n_athletes, per_shard)]


def _shard_job(cfg: GeneratorConfig, out: str, shard: int, athletes: tuple[int, int]) -> tuple[int, int]:
    triples = list(sequences_with_targets(cfg, range(*athletes)))
    # Both before the shard: its marker says "done".
    write_analysis(out, shard, [row for _, row, _ in triples])
    write_frame_targets(out, shard, {seq.id: targets for seq, _, targets in triples})
    seqs = [seq for seq, _, _ in triples]
    write_shard(out, shard, seqs)
    return shard, len(seqs)


def _exit_with_parent(parent_pid: int, poll_s: float = 0.5) -> None:
    """Worker initializer: end this worker when the generating process is gone. A SIGKILLed parent cannot stop
    its pool, and its workers would otherwise wait for work for ever, holding its stdout and stderr open. Its
    death shows as a new parent process id (POSIX re-parents orphans); elsewhere nothing is watched."""
    if os.name != "posix":
        return
    if os.getppid() != parent_pid:  # died before this worker got here
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        os._exit(1)  # a shard cut short leaves only temporary files, which the next run deletes

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _generator_record(cfg: GeneratorConfig, shard_size: int) -> dict:
    return {"generator_version": GENERATOR_VERSION, "shard_size": shard_size, "config": cfg.to_dict()}


def _diff(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)
            if found:
                return found
        return None
    return None if a == b else path or "(root)"


def _claim_folder(out: Path, record: dict) -> None:
    marker = out / GENERATOR_FILE
    if marker.is_file():
        existing = generator_record_of(out)
        if existing is None:
            raise ConfigError(f"{marker} cannot be read as the generator's record; use another `out` folder or "
                              "delete this one")
        if dumps(existing) != dumps(json.loads(dumps(record))):
            key = _diff(existing, json.loads(dumps(record)))
            raise ConfigError(
                f"{out} holds a dataset generated with a different config (first difference: {key!r}); "
                "use another `out` folder or delete this one"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not a generator output folder ({GENERATOR_FILE} missing); "
                          "use an empty or new `out` folder")
    out.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(json.loads(dumps(record)), indent=1))


def _verified_shards(out: Path) -> set[str]:
    """Names of the finished shards whose files still hash to their marker's sha256. A killed writer's
    temporary files are deleted; a corrupt shard loses its marker, so this run writes it again."""
    clean_stale_temporaries(out)
    done = set()
    for name, entry in completed_shards(out).items():
        try:
            intact = shard_files_digest(out, name) == entry["sha256"]
        except FormatError:  # a file of the shard is missing
            intact = False
        if intact:
            done.add(name)
        else:
            warnings.warn(f"{out}: shard {name} does not match its sha256; writing it again", stacklevel=3)
            (out / SHARD_DIR / f"{name}.done.json").unlink()
    return done


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def generate_dataset(
    cfg: GeneratorConfig,
    out: str | Path,
    workers: int | None = None,
    progress: bool = True,
    shard_size: int = 512,
):
    """Write the dataset of `cfg` to `out` in shards, in parallel, resumably; returns the opened `Dataset`."""
    validate(cfg)
    if shard_size < 1:
        raise ConfigError(f"config key 'shard_size' must be >= 1, got {shard_size}")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ConfigError(f"config key 'workers' must be >= 1, got {workers}")
    out = Path(out)
    record = _generator_record(cfg, shard_size)
    _claim_folder(out, record)
    plan = shard_plan(cfg, shard_size)
    done = _verified_shards(out)
    todo = [(k, (r.start, r.stop)) for k, r in enumerate(plan) if f"{k:05d}" not in done]
    total = cfg.n_athletes * cfg.tasks.trials_per_athlete
    already = sum(len(plan[int(name)]) for name in done if int(name) < len(plan)) * cfg.tasks.trials_per_athlete

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TextColumn("sequences"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("generate", total=total, completed=already)
        if workers == 1 or len(todo) <= 1:
            for shard, athletes in todo:
                _, count = _shard_job(cfg, str(out), shard, athletes)
                bar.advance(task, count)
        else:
            import multiprocessing
            from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

            # spawn: safe with threads and identical on every platform; at most 2 shards queued per worker
            # keeps memory flat however many shards there are.
            with ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn"),
                                     initializer=_exit_with_parent, initargs=(os.getpid(),)) as pool:
                pending = set()
                queue = iter(todo)
                for shard, athletes in queue:
                    pending.add(pool.submit(_shard_job, cfg, str(out), shard, athletes))
                    if len(pending) >= 2 * workers:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for f in finished:
                            bar.advance(task, f.result()[1])
                for f in pending:
                    bar.advance(task, f.result()[1])
    meta = {"generator": record, "n_athletes": cfg.n_athletes, "preset": cfg.preset}
    finalize_dataset(out, meta)
    return open_dataset(out)


def generator_record_of(dataset_dir: str | Path) -> dict[str, Any] | None:
    """A generated dataset's `generator.json` (`generator_version`, `shard_size`, `config`); None for a folder the
    generator did not write, or a record that cannot be read."""
    marker = Path(dataset_dir) / GENERATOR_FILE
    if not marker.is_file():
        return None
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def generator_seed_of(dataset_dir: str | Path) -> int | None:
    """The seed a generated dataset's athletes were drawn with, None for a folder the generator did not write.
    Athlete `index` of a seed is drawn from its own spawn key, so datasets of one seed share their first
    athletes whatever their sizes: the seed is what says two datasets hold the same people."""
    try:
        seed = (generator_record_of(dataset_dir) or {})["config"]["seed"]
    except (KeyError, TypeError):
        return None
    return int(seed) if isinstance(seed, int) else None


def expected_sequences(cfg: GeneratorConfig) -> int:
    return cfg.n_athletes * cfg.tasks.trials_per_athlete
