"""Training throughput per model and data-pipeline throughput, in sequences per second.

    python scripts/bench_training.py                        # CPU, fp32, batch 64, every model config
    python scripts/bench_training.py --device cuda --precision bf16 --batch 1024 --models tcn stgcn_paper
    python scripts/bench_training.py --json out.json

A training step is what `ValgusLitModule` runs: forward, the multi-task loss, backward, gradient clipping and
AdamW. The data pipeline is what `ValgusDataModule` does per batch: a tensor slice of the in-memory windows
plus `BatchAugment` on the training device. Inputs are random windows of the real shapes (96 frames × 20
canonical joints × (x, y, confidence) + frame measures).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _net(name: str):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    return instantiate(OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "model" / f"{name}.yaml")))


def _batch(n: int, window: int, device: str) -> dict[str, torch.Tensor]:
    from valgusml.preprocess import n_measures

    g = torch.Generator().manual_seed(0)
    joints = torch.rand(n, window, 20, 3, generator=g)
    joints[..., 2] = 1.0
    return {
        "joints": joints.to(device),
        "measures": torch.randn(n, window, n_measures(), generator=g).to(device),
        "mask": torch.ones(n, window).to(device),
        "valgus": torch.randint(0, 2, (n, 2), generator=g).float().to(device),
        "mechanism": torch.randint(0, 5, (n, 2), generator=g).to(device),
        "severity_deg": (torch.rand(n, 2, generator=g) * 20).to(device),
        "sequence_index": torch.arange(n).to(device),
    }


def bench_model(name: str, batch_size: int, steps: int, device: str, precision: str, window: int) -> dict:
    from valgusml.training.module import ValgusLitModule

    net = _net(name)
    module = ValgusLitModule(net=net, optimizer=lambda params: torch.optim.AdamW(params, lr=1e-3)).to(device)
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    batch = _batch(batch_size, window, device)
    autocast = torch.autocast(
        device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16"
    )

    def step() -> None:
        with autocast:
            out = module(batch["joints"], batch["measures"], batch["mask"])
        loss = module._losses(out, batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()

    for _ in range(2):  # warm-up (allocator, cuDNN autotune)
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in net.parameters())
    return {
        "model": name,
        "params_m": round(params / 1e6, 3),
        "batch": batch_size,
        "device": device,
        "precision": precision,
        "seq_per_s": round(batch_size * steps / seconds, 1),
        "step_ms": round(1000 * seconds / steps, 2),
    }


def bench_pipeline(batch_size: int, n_windows: int, steps: int, device: str, window: int, resident: bool) -> dict:
    """Batches as the data module makes them: sampler index → tensor slice (on the device when the split is
    device-resident, as `ValgusDataModule` keeps it on accelerators; else on the host, then copied) →
    BatchAugment on the device."""
    from valgusml.data.augment import BatchAugment
    from valgusml.data.datamodule import BatchIndexSampler, WindowTensors

    data = WindowTensors(_batch(n_windows, window, device if resident else "cpu"))
    sampler = BatchIndexSampler(n_windows, batch_size, shuffle=True, drop_last=True)
    augment = BatchAugment().to(device).train()
    done, start = 0, time.perf_counter()
    while done < steps:
        for index in sampler:
            batch = {k: v.to(device, non_blocking=True) for k, v in data[index].items()}
            augment(batch)
            done += 1
            if done == steps:
                break
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "pipeline_seq_per_s": round(batch_size * steps / seconds, 1),
        "batch": batch_size,
        "device": device,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tcn", "gru", "transformer", "stgcn", "stgcn_paper"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--window", type=int, default=96)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        steps = args.steps if "paper" not in name or args.device != "cpu" else max(2, args.steps // 5)
        rows.append(bench_model(name, args.batch, steps, args.device, args.precision, args.window))
        print(json.dumps(rows[-1]), flush=True)
    n_windows = max(4096, 4 * args.batch)
    pipeline = bench_pipeline(args.batch, n_windows, 4 * args.steps, args.device, args.window, resident=True)
    print(json.dumps(pipeline), flush=True)
    if args.device != "cpu":
        host = bench_pipeline(args.batch, n_windows, 4 * args.steps, args.device, args.window, resident=False)
        print(json.dumps(host), flush=True)
        pipeline["host_gather_seq_per_s"] = host["pipeline_seq_per_s"]
    default = next((r for r in rows if r["model"] == "tcn"), None)
    if default:
        ratio = pipeline["pipeline_seq_per_s"] / default["seq_per_s"]
        print(f"data pipeline / default model training throughput: {ratio:.1f}x", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"models": rows, "pipeline": pipeline}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
