"""Training throughput per model and data-pipeline throughput, in sequences per second.

    .venv/bin/python scripts/bench_models.py                       # CPU, 2 threads, fp32, batch 64, all models
    .venv/bin/python scripts/bench_models.py --models tcn stgcn --seconds 3
    .venv/bin/python scripts/bench_models.py --device cuda --bf16 --batch 1024 --models tcn stgcn_paper

Models are built from `configs/model/<name>.yaml` (so the numbers are those of the shipped configs), trained on
random windows shaped like `valgusml.preprocess` output (forward + multi-task loss + backward + AdamW). The
data pipeline is measured in its two parts: `prepare` (numpy, once per dataset, cached) and the per-epoch
work: gathering a batch from the cached arrays, moving it to the device and running `BatchAugment`. The
per-epoch part must be well ahead (≥ 5×) of the default model's training step so it never is the bottleneck.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ("tcn", "gru", "transformer", "stgcn", "stgcn_paper")


def _set(cfg: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for key in parents:
        cfg = cfg[key]
    cfg[leaf] = value


def _instantiate_plain(node):
    """`_target_` / `_partial_` instantiation for machines without hydra-core (e.g. a bare GPU box)."""
    import functools
    import importlib

    if isinstance(node, list):
        return [_instantiate_plain(v) for v in node]
    if not isinstance(node, dict):
        return node
    kwargs = {k: _instantiate_plain(v) for k, v in node.items() if k not in ("_target_", "_partial_")}
    if "_target_" not in node:
        return kwargs
    module, _, attr = node["_target_"].rpartition(".")
    target = getattr(importlib.import_module(module), attr)
    return functools.partial(target, **kwargs) if node.get("_partial_") else target(**kwargs)


def build_model(name: str, overrides: list[str] = ()):
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "model" / f"{name}.yaml").read_text())
    for item in overrides:
        key, _, value = item.partition("=")
        _set(cfg, key, yaml.safe_load(value))
    try:
        from hydra.utils import instantiate
        from omegaconf import OmegaConf
    except ImportError:
        return _instantiate_plain(cfg)
    return instantiate(OmegaConf.create(cfg))


def random_batch(batch: int, frames: int, n_measures: int, device, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    joints = torch.randn(batch, frames, 20, 3, generator=g)
    joints[..., 2] = torch.rand(batch, frames, 20, generator=g)
    mask = torch.ones(batch, frames)
    mask[: batch // 4, frames * 3 // 4 :] = 0  # some padded windows, as from short recordings
    return {
        "joints": joints.to(device),
        "measures": torch.randn(batch, frames, n_measures, generator=g).to(device),
        "mask": mask.to(device),
        "valgus": torch.randint(0, 2, (batch, 2), generator=g).float().to(device),
        "mechanism": torch.randint(0, 5, (batch, 2), generator=g).to(device),
        "severity_deg": (10 * torch.rand(batch, 2, generator=g)).to(device),
    }


def multitask_loss(out: dict, batch: dict):
    import torch.nn.functional as F

    return (
        F.binary_cross_entropy_with_logits(out["valgus_logit"].float(), batch["valgus"])
        + F.cross_entropy(out["mechanism_logits"].float().reshape(-1, 5), batch["mechanism"].reshape(-1))
        + 0.01 * F.mse_loss(out["severity_deg"].float(), batch["severity_deg"])
    )


def timed(step, seconds: float, sync=lambda: None, warmup: int = 2) -> float:
    """Seconds per call: median of repeated calls after warm-up, for at least `seconds` in total."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def bench_training(name: str, args, device) -> dict:
    import torch

    net = build_model(name, args.override).to(device).train()
    n_params = sum(p.numel() for p in net.parameters())
    batch = random_batch(args.batch, args.frames, net.n_measures, device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16)

    forward = torch.compile(net) if args.compile else net

    def step():
        with autocast:
            out = forward(batch["joints"], batch["measures"], batch["mask"])
        loss = multitask_loss(out, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    seconds = timed(step, args.seconds, sync)
    return {"model": name, "params": n_params, "seq_per_s": args.batch / seconds, "step_ms": 1e3 * seconds}


def synthetic_sequences(n: int, seed: int = 0):
    """Plausible halpe26 recordings (a standing pose squatting, 60 fps, 3 s) for the pipeline benchmark."""
    from valgusml.sequence import KeypointSequence
    from valgusml.skeleton import SKELETONS

    skel = SKELETONS["halpe26"]
    rng = np.random.default_rng(seed)
    height = {
        "nose": 0.93,
        "left_eye": 0.95,
        "right_eye": 0.95,
        "left_ear": 0.94,
        "right_ear": 0.94,
        "head": 1.0,
        "neck": 0.82,
        "left_shoulder": 0.8,
        "right_shoulder": 0.8,
        "left_elbow": 0.62,
        "right_elbow": 0.62,
        "left_wrist": 0.48,
        "right_wrist": 0.48,
        "left_hip": 0.52,
        "right_hip": 0.52,
        "mid_hip": 0.52,
        "left_knee": 0.28,
        "right_knee": 0.28,
        "left_ankle": 0.05,
        "right_ankle": 0.05,
    }
    base = np.zeros((skel.n_joints, 2))
    for k, joint in enumerate(skel.joints):
        side = 1.0 if joint.startswith("left") else -1.0 if joint.startswith("right") else 0.0
        base[k, 0] = side * (0.18 if "shoulder" in joint or "elbow" in joint else 0.1)
        base[k, 1] = -height.get(joint, 0.02)
    frames = 180
    t = np.arange(frames) / 60.0
    out = []
    for i in range(n):
        depth = 0.1 + 0.1 * rng.random()
        kp = np.repeat(base[None], frames, 0) * 600 + np.array([640, 650])
        kp[..., 1] += (depth * 600 * (1 - np.cos(2 * np.pi * t / 3.0)) / 2)[:, None] * (
            base[None, :, 1] < -0.3
        )
        kp += rng.normal(0, 2.0, kp.shape)
        conf = rng.uniform(0.6, 1.0, kp.shape[:2])
        out.append(KeypointSequence(kp.astype(np.float32), "halpe26", 60.0, confidence=conf, id=f"bench{i}"))
    return out


def bench_pipeline(args, device) -> list[dict]:
    import torch

    from valgusml.preprocess import PreprocessConfig, prepare_many
    from valgusml.training.augment import BatchAugment

    seqs = synthetic_sequences(args.pipeline_sequences)
    cfg = PreprocessConfig()
    t0 = time.perf_counter()
    cached = prepare_many(seqs, cfg)
    prep_s = time.perf_counter() - t0
    arrays = {
        "joints": torch.from_numpy(cached.joints),
        "measures": torch.from_numpy(cached.measures),
        "mask": torch.from_numpy(cached.mask),
        "valgus": torch.zeros(len(cached), 2),
        "mechanism": torch.zeros(len(cached), 2, dtype=torch.long),
        "severity_deg": torch.zeros(len(cached), 2),
    }
    augment = BatchAugment().to(device).train()
    if args.compile:  # fuses the elementwise work; on GPUs the eager pipeline is bound by kernel launches
        augment = torch.compile(augment)
    rng = np.random.default_rng(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    resident = {k: v.to(device) for k, v in arrays.items()}  # the cache held on the training device

    def gather_from(source):
        def gather():
            idx = torch.from_numpy(rng.integers(0, len(cached), args.batch)).to(device)
            return {
                k: v.index_select(0, idx.to(v.device)).to(device, non_blocking=True)
                for k, v in source.items()
            }

        return gather

    def gather_and_augment(gather):
        return lambda: augment(gather())

    rows = [{"stage": "prepare (numpy, once per dataset, cached)", "seq_per_s": len(seqs) / prep_s}]
    sources = [("host cache", gather_from(arrays))]
    if device.type != "cpu":
        sources.append(("device-resident cache", gather_from(resident)))
    for label, gather in sources:
        rows.append(
            {
                "stage": f"batch gather, {label}",
                "seq_per_s": args.batch / timed(gather, args.seconds / 2, sync),
            }
        )
        rows.append(
            {
                "stage": f"per-epoch pipeline: gather ({label}) + BatchAugment",
                "seq_per_s": args.batch / timed(gather_and_augment(gather), args.seconds, sync),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS[:4]), choices=MODELS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--frames", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=4.0, help="timing budget per measurement")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the network and the augmentation"
    )
    parser.add_argument("--no-pipeline", dest="pipeline", action="store_false")
    parser.add_argument("--pipeline-sequences", type=int, default=256)
    parser.add_argument(
        "--override",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides for every model, e.g. backbone.channels=48",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    where = f"{device.type}" + (
        f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else f", {args.threads} threads"
    )
    precision = "bf16" if args.bf16 else "fp32"
    extra = f", overrides {' '.join(args.override)}" if args.override else ""
    print(
        f"# training throughput: {where}, {precision}, batch {args.batch}, {args.frames} frames x 20 joints{extra}"
    )
    print("| model | params | seq/s | ms/step |\n|---|---:|---:|---:|")
    results = []
    for name in args.models:
        r = bench_training(name, args, device)
        results.append(r)
        print(f"| {r['model']} | {r['params']:,} | {r['seq_per_s']:,.0f} | {r['step_ms']:.1f} |", flush=True)
    pipeline = []
    if args.pipeline:
        pipeline = bench_pipeline(args, device)
        print(f"\n# data pipeline: {where}, batch {args.batch}")
        print("| stage | seq/s |\n|---|---:|")
        for r in pipeline:
            print(f"| {r['stage']} | {r['seq_per_s']:,.0f} |")
        default = next((r for r in results if r["model"] == "tcn"), results[0] if results else None)
        if default is not None:
            ratio = (
                max(r["seq_per_s"] for r in pipeline if r["stage"].startswith("per-epoch"))
                / default["seq_per_s"]
            )
            print(f"\nper-epoch pipeline / {default['model']} training step: {ratio:.1f}x (target >= 5x)")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "device": where,
                    "precision": precision,
                    "batch": args.batch,
                    "training": results,
                    "pipeline": pipeline,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
