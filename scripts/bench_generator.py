"""Benchmark the synthetic generator: sequences/s on 1 and 2 workers, streamed to disk, and peak memory.

    .venv/bin/python scripts/bench_generator.py                  # 5,000 realistic sequences (halpe26, 2D)
    .venv/bin/python scripts/bench_generator.py --n 100000 --workers 2
    .venv/bin/python scripts/bench_generator.py --compare /tmp/old   # ratio against another checkout

Target (issue 3): >= 1,000 realistic sequences/s per core; 100,000 sequences on 2 cores with peak RSS < 4 GiB.
Target (issue 11, generator v3): clips now last 2-20 s, so the rate is also given per second of generated motion
(>= 1,500 sequences of 3 s per core, i.e. >= 4,500 s of motion per CPU-second).
Peak RSS is `resource.getrusage` of this process and of its largest worker (children); the total a run can
hold at once is at most self + workers x children.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from valgusml.synth import generate_dataset, generate_sequences, load_preset


def cpu_seconds() -> float:
    """CPU time of this process and of its finished workers (user + system)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_rss_mib() -> tuple[float, float]:
    self_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kib / 1024.0, children_kib / 1024.0


_IN_MEMORY = """
import sys, time
sys.path.insert(0, sys.argv[1])
from valgusml.synth import generate_sequences, load_preset
cfg = load_preset(sys.argv[2], n_athletes=1000)
list(generate_sequences(cfg, range(2)))
probe = max(1, 1000 // cfg.tasks.trials_per_athlete)
start = time.process_time()
seconds = sum(s.duration_s for s in generate_sequences(cfg, range(probe)))
print(seconds / (time.process_time() - start))
"""


def compare(other: str, preset: str, repeats: int) -> int:
    """In-memory rate of `other` and of this checkout in alternating processes: this machine's speed drifts
    between runs, so only a ratio taken this way means much."""
    import subprocess

    here = str(Path(__file__).resolve().parents[1])
    rates: dict[str, list[float]] = {other: [], here: []}
    for _ in range(repeats):
        for root in rates:
            out = subprocess.run([sys.executable, "-c", _IN_MEMORY, root, preset], capture_output=True, text=True, check=True)
            rates[root].append(float(out.stdout.split()[-1]))
    for root, values in rates.items():
        print(f"{root}: median {statistics.median(values):.0f} s of motion/s per core, runs {[round(v) for v in values]}")
    print(f"ratio this/other: {statistics.median(rates[here]) / statistics.median(rates[other]):.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="sequences per run")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--preset", default="realistic")
    parser.add_argument("--shard-size", type=int, default=512)
    parser.add_argument("--out", default=None, help="folder for the datasets (default: a temporary one)")
    parser.add_argument("--repeats", type=int, default=5, help="in-memory runs over the same 1,000 sequences")
    parser.add_argument("--compare", default=None, metavar="CHECKOUT",
                        help="another checkout (e.g. `git worktree add /tmp/old REV`): measure both in memory in "
                             "alternating processes and print the ratio, then stop")
    args = parser.parse_args(argv)

    if args.compare:
        return compare(args.compare, args.preset, args.repeats)
    cfg = load_preset(args.preset)
    n_athletes = max(1, args.n // cfg.tasks.trials_per_athlete)
    cfg = load_preset(args.preset, n_athletes=n_athletes)
    n = n_athletes * cfg.tasks.trials_per_athlete
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="valgusml-bench-"))
    print(
        f"preset={args.preset} skeleton={cfg.observation.skeleton} dims={cfg.observation.dims} "
        f"sequences={n} ({n_athletes} athletes) out={root}"
    )

    list(generate_sequences(cfg, range(2)))  # warm imports and caches
    probe = min(n_athletes, max(1, 1000 // cfg.tasks.trials_per_athlete))
    count = probe * cfg.tasks.trials_per_athlete
    rates = []
    for _ in range(args.repeats):  # the same sequences each time: the spread is the machine's, not the data's
        cpu0, wall0 = time.process_time(), time.perf_counter()
        seqs = list(generate_sequences(cfg, range(probe)))
        cpu = time.process_time() - cpu0
        frames, seconds = sum(s.n_frames for s in seqs), sum(s.duration_s for s in seqs)
        rates.append((count / cpu, seconds / cpu))
        del seqs
    cpu_rates = sorted(r[0] for r in rates)
    motion_rates = sorted(r[1] for r in rates)
    print(
        f"in memory, 1 core: {statistics.median(cpu_rates):8.0f} sequences/s of CPU time (median of {len(rates)}, "
        f"range {cpu_rates[0]:.0f}-{cpu_rates[-1]:.0f}; {count} sequences of {frames / count:.0f} frames, "
        f"{seconds / count:.1f} s)\n"
        f"in memory, 1 core: {statistics.median(motion_rates):8.0f} s of generated motion per CPU-second "
        f"(= {statistics.median(motion_rates) / 3.0:.0f} sequences of 3 s/s; range {motion_rates[0]:.0f}-{motion_rates[-1]:.0f})"
    )

    for workers in (int(w) for w in args.workers.split(",")):
        out = root / f"w{workers}"
        shutil.rmtree(out, ignore_errors=True)
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        ds = generate_dataset(cfg, out, workers=workers, progress=False, shard_size=args.shard_size)
        cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
        self_mib, child_mib = peak_rss_mib()
        print(
            f"to disk, {workers} worker(s): {len(ds) / wall:8.0f} sequences/s wall "
            f"({len(ds) / wall / workers:.0f}/s per worker; {len(ds) / cpu:.0f} per CPU-second, writing included), "
            f"{size:.0f} MiB written, peak RSS self {self_mib:.0f} MiB, largest worker {child_mib:.0f} MiB, "
            f"fingerprint {ds.fingerprint[:12]}"
        )
    if not args.out:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
