"""Benchmark the exported predictor against the same model in PyTorch eager, on ONE CPU core, in one run.

    .venv/bin/python scripts/bench_predictor.py                       # plain TCN, untrained (configs/model/tcn.yaml)
    .venv/bin/python scripts/bench_predictor.py --model stgcn         # another configs/model/*.yaml
    .venv/bin/python scripts/bench_predictor.py --checkpoint run.ckpt # a trained checkpoint

Both paths share everything but the network call: `TorchPredictor` is a `Predictor` whose `run_windows` calls
the torch `ProbabilityWrapper`, so preprocessing (canonical mapping, resampling, windows, frame measures),
aggregation and the summary measures are the same code. Measured:
- latency of `predict` on one 3-s recording (halpe26 at 60 fps), p50 / p99 over `--repeats` calls, and p50 with
  the (lazily computed) summary measures read as well;
- the network call alone on that recording's window(s), p50;
- throughput of `predict_batch` on `--batch` such recordings (recordings / s);
- `import valgusml` + `Predictor.load` in a fresh interpreter (median of 5);
- the exported folder's size.
Targets (issue 6): p50 ≤ 2 ms including preprocessing, ≥ 2× faster than eager, import + load < 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def pin_one_core() -> str:
    """Run on one core: affinity to a single CPU, one torch thread, one ONNX Runtime thread."""
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    if hasattr(os, "sched_setaffinity"):
        core = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"cpu {core}"
    return "all cpus (no affinity on this OS)"


def build_source(args: argparse.Namespace):
    from valgusml.preprocess import PreprocessConfig

    if args.checkpoint:
        from valgusml.runs.checkpoint import load_for_export

        return load_for_export(args.checkpoint)
    import torch
    from hydra.utils import instantiate

    from valgusml.training.config import compose_config

    torch.manual_seed(0)
    # Composed as `valgusml train model=NAME` composes it: a model file may build on another (`defaults:`).
    net = instantiate(compose_config([f"model={args.model}"]).model).eval()
    return net, PreprocessConfig(), {"decision_threshold": 0.5, "mlflow_run_id": None}


def timings(fn, repeats: int, warmup: int = 20) -> dict[str, np.ndarray]:
    """Wall-clock and CPU time (this thread's, ms) of each call.

    On a shared machine the wall clock counts the time the scheduler gives to other processes; the thread's CPU
    time does not, and with one ONNX Runtime / torch thread all the work runs on the calling thread, so it is
    what the call costs on an idle core.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = np.empty(repeats), np.empty(repeats)
    for i in range(repeats):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn()
        cpu[i] = time.thread_time() - start_cpu
        wall[i] = time.perf_counter() - start
    return {"wall": wall * 1e3, "cpu": cpu * 1e3}


def summary(t: dict[str, np.ndarray]) -> dict[str, float]:
    return {
        "wall_p50_ms": float(np.percentile(t["wall"], 50)),
        "wall_p99_ms": float(np.percentile(t["wall"], 99)),
        "cpu_p50_ms": float(np.percentile(t["cpu"], 50)),
        "cpu_p99_ms": float(np.percentile(t["cpu"], 99)),
    }


def import_and_load_s(folder: Path, runs: int = 5) -> float:
    code = (
        "import time; t = time.perf_counter(); import valgusml; "
        f"valgusml.Predictor.load({str(folder)!r}); print(time.perf_counter() - t)"
    )
    values = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
        )
        values.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tcn", help="configs/model/NAME.yaml (untrained; speed only)")
    parser.add_argument("--checkpoint", help="a trained .ckpt instead of --model")
    parser.add_argument("--out", help="keep the exported folder here (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--batch", type=int, default=64, help="recordings per predict_batch call")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    where = pin_one_core()
    import torch

    from valgusml.export import export_predictor
    from valgusml.export.example import example_keypoints
    from valgusml.models import ProbabilityWrapper
    from valgusml.predictor import Predictor
    from valgusml.preprocess import prepare_many
    from valgusml.sequence import KeypointSequence

    net, cfg, info = build_source(args)
    tmp = tempfile.TemporaryDirectory(prefix="valgusml-bench-")
    folder = Path(args.out) if args.out else Path(tmp.name) / "predictor"
    recording = example_keypoints("halpe26", seconds=3.0, fps=60.0, valgus=0.8)
    parity = [KeypointSequence(recording, "halpe26", 60.0)]
    t0 = time.perf_counter()
    export_predictor((net, cfg, info), folder, parity)
    export_s = time.perf_counter() - t0

    predictor = Predictor.load(folder, threads=1)
    wrapper = ProbabilityWrapper(net).eval()

    class TorchPredictor(Predictor):
        """Same pipeline, network call in PyTorch eager."""

        def run_windows(self, joints, measures, mask):
            with torch.inference_mode():
                out = wrapper(torch.from_numpy(joints), torch.from_numpy(measures), torch.from_numpy(mask))
            return tuple(o.numpy() for o in out)

    eager = TorchPredictor(predictor._session, predictor.metadata, folder)
    a, b = predictor.predict(recording), eager.predict(recording)
    assert abs(a.valgus_probability - b.valgus_probability) < 1e-4, "ONNX and eager disagree"

    mi = prepare_many(parity, predictor.preprocess)
    windows = (mi.joints, mi.measures, mi.mask)
    torch_windows = tuple(torch.from_numpy(w) for w in windows)
    batch = [
        example_keypoints("halpe26", seconds=3.0, fps=60.0, valgus=(i % 5) / 4, seed=i)
        for i in range(args.batch)
    ]

    batch_mi = prepare_many([KeypointSequence(b, "halpe26", 60.0) for b in batch], predictor.preprocess)
    batch_windows = (batch_mi.joints, batch_mi.measures, batch_mi.mask)
    torch_batch = tuple(torch.from_numpy(w) for w in batch_windows)

    def eager_net(windows=torch_windows):
        with torch.inference_mode():
            wrapper(*windows)

    rows = {}
    n_batches = max(3, 600 // args.batch)
    for name, p, net_call, net_batch in (
        ("onnxruntime (Predictor)", predictor, lambda: predictor.run_windows(*windows),
         lambda: predictor.run_windows(*batch_windows)),
        ("pytorch eager", eager, eager_net, lambda: eager_net(torch_batch)),
    ):
        batch_t = timings(lambda p=p: p.predict_batch(batch, skeleton="halpe26", fps=60.0), n_batches, warmup=1)
        net_batch_t = timings(net_batch, n_batches, warmup=1)
        rows[name] = {
            "predict": summary(timings(lambda p=p: p.predict(recording, skeleton="halpe26", fps=60.0), args.repeats)),
            "predict_and_measures": summary(
                timings(lambda p=p: p.predict(recording, skeleton="halpe26", fps=60.0).measures, args.repeats)
            ),
            "network": summary(timings(net_call, args.repeats)),
            "batch_recordings_per_s_wall": float(args.batch / (np.median(batch_t["wall"]) / 1e3)),
            "batch_recordings_per_s_cpu": float(args.batch / (np.median(batch_t["cpu"]) / 1e3)),
            "network_batch_windows_per_s_cpu": float(len(batch_windows[0]) / (np.median(net_batch_t["cpu"]) / 1e3)),
        }
    from valgusml.features import measures as summary_measures

    prepare_t = summary(timings(lambda: prepare_many(parity, predictor.preprocess), args.repeats))
    measures_t = summary(timings(lambda: summary_measures(parity[0]), args.repeats))
    load_s = import_and_load_s(folder)
    size = sum(f.stat().st_size for f in folder.iterdir())
    ort, eag = rows["onnxruntime (Predictor)"], rows["pytorch eager"]
    figures = {
        "where": where,
        "model": args.checkpoint or args.model,
        "parameters": int(sum(p.numel() for p in net.parameters())),
        "windows_per_recording": int(len(mi.joints)),
        "rows": rows,
        "speedup_predict_cpu_p50": eag["predict"]["cpu_p50_ms"] / ort["predict"]["cpu_p50_ms"],
        "speedup_predict_wall_p50": eag["predict"]["wall_p50_ms"] / ort["predict"]["wall_p50_ms"],
        "speedup_network_cpu_p50": eag["network"]["cpu_p50_ms"] / ort["network"]["cpu_p50_ms"],
        "speedup_batch_cpu": ort["batch_recordings_per_s_cpu"] / eag["batch_recordings_per_s_cpu"],
        "speedup_network_batch_cpu": ort["network_batch_windows_per_s_cpu"] / eag["network_batch_windows_per_s_cpu"],
        "prepare": prepare_t,
        "summary_measures": measures_t,
        "import_and_load_s": load_s,
        "export_s": export_s,
        "folder_bytes": size,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }

    print(
        f"\nvalgusml predictor benchmark — {figures['model']} ({figures['parameters']:,} parameters), {where}, "
        f"one 3-s halpe26 recording at 60 fps → {figures['windows_per_recording']} window(s) of {cfg.window}; "
        f"load average {figures['load_average']}\n"
    )
    print("| path | predict p50 / p99, CPU (ms) | predict p50 / p99, wall (ms) | + .measures p50, CPU (ms) | "
          "network p50, CPU (ms) | predict_batch, CPU (rec/s) | network batched, CPU (windows/s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        pr, pm, nw = r["predict"], r["predict_and_measures"], r["network"]
        print(
            f"| {name} | {pr['cpu_p50_ms']:.2f} / {pr['cpu_p99_ms']:.2f} | {pr['wall_p50_ms']:.2f} / {pr['wall_p99_ms']:.2f} | "
            f"{pm['cpu_p50_ms']:.2f} | {nw['cpu_p50_ms']:.2f} | {r['batch_recordings_per_s_cpu']:.0f} | "
            f"{r['network_batch_windows_per_s_cpu']:.0f} |"
        )
    print(
        f"\nspeed-up vs eager (CPU): predict p50 ×{figures['speedup_predict_cpu_p50']:.2f}, "
        f"network p50 ×{figures['speedup_network_cpu_p50']:.2f}, predict_batch ×{figures['speedup_batch_cpu']:.2f}, "
        f"network batched ×{figures['speedup_network_batch_cpu']:.2f}; predict p50 wall ×"
        f"{figures['speedup_predict_wall_p50']:.2f}"
    )
    print(
        f"shared steps (CPU p50): prepare {prepare_t['cpu_p50_ms']:.2f} ms, "
        f"summary measures {measures_t['cpu_p50_ms']:.2f} ms"
    )
    print(f"import valgusml + Predictor.load (fresh interpreter, median of 5): {load_s * 1e3:.0f} ms")
    print(
        f"exported folder: {size / 1024:.0f} KiB ({', '.join(sorted(f.name for f in folder.iterdir()))}); "
        f"export took {export_s:.1f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
