"""`ValgusLitModule`: multi-task training of a `ValgusNet` (per-limb valgus, mechanism, severity).

Losses: BCE for per-limb valgus presence, CE for per-limb mechanism (over MECHANISMS, "none" included), smooth
L1 on severity in units of `severity_scale_deg` (auxiliary; limbs without a finite severity label are
skipped); for a network with a lifter (`model.lifter`), smooth L1 on each frame's lifted 3D dynamic FPPA and
BCE on its loaded flag, where the data carry per-frame targets (`valgusml.data.frame_targets`), and for a
`GuidedLifter` BCE on its gate (was the 2D reading right?). Validation and
test metrics are computed once per epoch over the whole split, after combining the windows of each recording
by the predictor's own rule (`per_sequence`), so the numbers, the validation threshold and the checkpoint
they choose are the exported predictor's.

Hyper-parameters are plain dicts so a checkpoint rebuilds everything: `net` (Hydra config of the network,
`_target_` included) and `preprocess` (PreprocessConfig dict). `on_save_checkpoint` adds a `valgusml` entry:
{decision_threshold, mechanism_offsets (chosen with it on validation: `valgusml.scoring.mechanism_offsets`),
dataset_fingerprint, dataset_dir, mlflow_run_id, split, generator_seed, val_metrics, test_metrics}.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from lightning import LightningModule
from torch import nn

from valgusml.data.frame_targets import LIFTED_MEASURE_START, VIEW_COLUMN
from valgusml.errors import ValgusMLError
from valgusml.labels import LIMBS, MECHANISM_UNKNOWN, MECHANISMS
from valgusml.predictor.format import other_training_data, seeds_learnt_from
from valgusml.predictor.results import offsets_array
from valgusml.scoring.arrays import LabelArrays, ScoreArrays
from valgusml.scoring.mechanism_offsets import choose_mechanism_offsets, offsets_dict
from valgusml.scoring.thresholds import choose_threshold
from valgusml.training.metrics import split_metrics

log = logging.getLogger(__name__)

SCHEDULERS = ("cosine", "onecycle", "none")


# The lifter's per-frame losses count only for a model with a lifter (`model.lifter`) on data with targets.
DEFAULT_LOSS_WEIGHTS = {"valgus": 1.0, "mechanism": 1.0, "severity": 0.1, "frame_fppa": 3.0, "frame_loaded": 0.3,
                        "frame_gate": 0.3, "frame_measures": 1.0, "frame_view": 1.0, "distill_valgus": 0.0,
                        "distill_mechanism": 0.0}


class ValgusLitModule(LightningModule):
    def __init__(
        self,
        net: dict[str, Any],
        optimizer: dict[str, Any] | Callable[..., torch.optim.Optimizer],
        scheduler: dict[str, Any] | None = None,
        preprocess: dict[str, Any] | None = None,
        loss_weights: dict[str, float] | None = None,
        valgus_pos_weight: float | None = None,
        mechanism_class_weights: list[float] | None = None,
        severity_scale_deg: float = 10.0,
        frame_fppa_scale_deg: float | None = None,
        threshold_rule: str = "f1",
        compile: bool = False,
    ) -> None:
        super().__init__()
        # A partial optimizer cannot be saved as a plain hyper-parameter: keep its config dict form instead.
        ignore = [name for name, value in (("optimizer", optimizer), ("net", net)) if not isinstance(value, dict)]
        self.save_hyperparameters(logger=False, ignore=ignore or None)
        self._optimizer = optimizer
        self.net = instantiate(net) if isinstance(net, dict) else net
        if compile:
            self.net = torch.compile(self.net)
        weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
        unknown = set(weights) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"loss_weights: unknown keys {sorted(unknown)} ({', '.join(DEFAULT_LOSS_WEIGHTS)})")
        self.loss_weights = weights
        self.register_buffer(
            "valgus_pos_weight", torch.tensor(float(valgus_pos_weight if valgus_pos_weight else 1.0)), persistent=False
        )
        cw = mechanism_class_weights or [1.0] * len(MECHANISMS)
        if len(cw) != len(MECHANISMS):
            raise ValueError(f"mechanism_class_weights needs {len(MECHANISMS)} values, got {len(cw)}")
        self.register_buffer("mechanism_class_weights", torch.tensor(cw, dtype=torch.float32), persistent=False)
        self.decision_threshold = 0.5
        self.mechanism_offsets: np.ndarray | None = None  # (4,), chosen with the threshold on validation
        # The presence map fitted on validation (`valgusml.training.calibration`) with how it fitted; None: none
        self.presence_calibration: dict[str, float] | None = None
        # dataset_fingerprint, dataset_dir, mlflow_run_id, split, generator_seed (None unless generated): set by
        # the training app
        self.run_info: dict[str, Any] = {}
        self.val_metrics: dict[str, float] = {}
        self.test_metrics: dict[str, float] = {}
        self._outputs: dict[str, list[dict[str, torch.Tensor]]] = {"val": [], "test": []}
        self.val_windows: dict[str, torch.Tensor] = {}  # the last validation pass's window outputs
        self._lifter_errors: dict[str, list[torch.Tensor]] = {"val": [], "test": []}

    @property
    def bare_net(self) -> nn.Module:
        """The network itself, without the wrapper `torch.compile` puts around it (`compile=true`)."""
        return getattr(self.net, "_orig_mod", self.net)

    def calibrate_presence(self, calibration: dict[str, float] | None) -> None:
        """Answer through the presence map `calibration` (`valgusml.training.calibration`; None: none), and keep
        it, with how it fitted, for the checkpoint."""
        self.bare_net.set_presence_calibration(calibration)
        self.presence_calibration = None if calibration is None else dict(calibration)

    def on_train_start(self) -> None:
        """Training fits the head's own logit: a fit continued from a calibrated checkpoint
        (`ckpt_path=<best>-calibrated.ckpt`) drops the map that checkpoint brought, which was fitted to its weights
        as they were; kept, the loss would train through it and every checkpoint would carry it as if fitted to
        theirs (`calibrate_presence` fits a new one once training ends)."""
        if self.presence_calibration is not None:
            log.info("presence calibration of the checkpoint dropped for training (fitted again at the end when "
                     "calibrate_presence is on)")
            self.calibrate_presence(None)

    # -- forward and loss ----------------------------------------------------------------------------------
    def forward(self, joints: torch.Tensor, measures: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.net(joints, measures, mask)

    def _losses(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        valgus = F.binary_cross_entropy_with_logits(
            out["valgus_logit"].float(), batch["valgus"].float(), pos_weight=self.valgus_pos_weight
        )
        mechanism = F.cross_entropy(
            out["mechanism_logits"].float().reshape(-1, len(MECHANISMS)),
            batch["mechanism"].reshape(-1),
            weight=self.mechanism_class_weights,
            ignore_index=MECHANISM_UNKNOWN,  # rule-labelled real motion: presence known, mechanism not
        )
        target = batch["severity_deg"]
        known = torch.isfinite(target)
        scale = self.hparams.severity_scale_deg
        if known.any():
            severity = F.smooth_l1_loss(out["severity_deg"].float()[known] / scale, target[known] / scale)
        else:
            severity = out["severity_deg"].sum() * 0.0  # keeps the graph (DDP) without moving the weights
        w = self.loss_weights
        total = w["valgus"] * valgus + w["mechanism"] * mechanism + w["severity"] * severity
        losses = {"loss": total, "loss_valgus": valgus, "loss_mechanism": mechanism, "loss_severity": severity}
        extra: dict[str, torch.Tensor] = {}
        if "frame_fppa_deg" in out and "frame_targets" in batch:
            extra.update(self._frame_losses(out, batch))
        if "teacher_valgus" in batch:  # training windows of a run with data.teacher
            extra.update(self._distill_losses(out, batch))
        for name, value in extra.items():
            losses["loss"] = losses["loss"] + w[name] * value
            losses[f"loss_{name}"] = value
        return losses

    @staticmethod
    def _distill_losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Cross-entropy of the network's presence and mechanism against the teacher's probabilities (soft
        targets, `valgusml.training.teacher`)."""
        mechanism_log_p = F.log_softmax(out["mechanism_logits"].float(), dim=-1)
        return {
            "distill_valgus": F.binary_cross_entropy_with_logits(out["valgus_logit"].float(),
                                                                 batch["teacher_valgus"].float()),
            "distill_mechanism": -(batch["teacher_mechanism"].float() * mechanism_log_p).sum(-1).mean(),
        }

    def _frame_losses(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The lifter's losses on the real frames that have a 3D target, by loss-weight name: smooth L1 on the
        dynamic FPPA (in units of `frame_fppa_scale_deg`, by default the severity's), BCE on the loaded flag,
        smooth L1 on the lifted 3D mechanism measures and on the view's sine of yaw where the lifter gives them
        and, for a `GuidedLifter`, BCE of its gate against whether the measured 2D reading was within its
        tolerance of the 3D answer."""
        target = batch["frame_targets"].float()
        real = (batch["mask"] > 0)[..., None] & torch.isfinite(target)
        fppa_known, loaded_known = real[..., :2], real[..., 2:LIFTED_MEASURE_START]
        fppa, loaded = out["frame_fppa_deg"].float(), out["frame_loaded_logit"].float()
        scale = self.hparams.severity_scale_deg
        fppa_scale = self.hparams.get("frame_fppa_scale_deg") or scale
        zero = fppa.sum() * 0.0  # keeps the graph (DDP) without moving the weights

        def smooth_l1(predicted: torch.Tensor, wanted: torch.Tensor, known: torch.Tensor, unit: float) -> torch.Tensor:
            return F.smooth_l1_loss(predicted[known] / unit, wanted[known] / unit) if known.any() else zero

        losses = {
            "frame_fppa": smooth_l1(fppa, target[..., :2], fppa_known, fppa_scale),
            "frame_loaded": (F.binary_cross_entropy_with_logits(
                loaded[loaded_known], target[..., 2:LIFTED_MEASURE_START][loaded_known]) if loaded_known.any() else zero),
        }
        if "frame_measures_3d" in out:
            columns = [LIFTED_MEASURE_START + k for k in self.net.lifter.measure_columns]
            losses["frame_measures"] = smooth_l1(out["frame_measures_3d"].float(), target[..., columns],
                                                 real[..., columns], scale)
        if "frame_view_sin_yaw" in out:
            losses["frame_view"] = smooth_l1(out["frame_view_sin_yaw"].float(), target[..., VIEW_COLUMN],
                                             real[..., VIEW_COLUMN], 1.0)
        if "frame_fppa_gate_logit" in out:
            logit = out["frame_fppa_gate_logit"].float()
            right = ((out["frame_measured_fppa_deg"].float() - target[..., :2]).abs()
                     <= self.net.lifter.tolerance_deg).float()
            losses["frame_gate"] = (F.binary_cross_entropy_with_logits(logit[fppa_known], right[fppa_known])
                                    if fppa_known.any() else logit.sum() * 0.0)
        return losses

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self._losses(self(batch["joints"], batch["measures"], batch["mask"]), batch)
        # Epoch-level logging only: one MLflow point per epoch, so a resumed run never repeats a step.
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()},
            on_step=False,
            on_epoch=True,
            batch_size=batch["joints"].shape[0],
            sync_dist=True,
        )
        return losses["loss"]

    # -- evaluation --------------------------------------------------------------------------------------
    def _eval_step(self, stage: str, batch: dict[str, torch.Tensor]) -> None:
        out = self(batch["joints"], batch["measures"], batch["mask"])
        losses = self._losses(out, batch)
        self.log(f"{stage}/loss", losses["loss"], on_epoch=True, batch_size=batch["joints"].shape[0], sync_dist=True)
        if "frame_fppa_deg" in out and "frame_targets" in batch:
            self._lifter_errors[stage].append(loaded_frame_errors(out["frame_fppa_deg"], batch))
        self._outputs[stage].append(
            {
                "valgus_logit": out["valgus_logit"].float().detach().cpu(),
                "valgus_probability": torch.sigmoid(out["valgus_logit"].float()).detach().cpu(),
                "mechanism_probabilities": torch.softmax(out["mechanism_logits"].float(), -1).detach().cpu(),
                "severity_deg": out["severity_deg"].float().detach().cpu(),
                "valgus": batch["valgus"].cpu(),
                "mechanism": batch["mechanism"].cpu(),
                "severity_target": batch["severity_deg"].cpu(),
                "sequence_index": batch["sequence_index"].cpu(),
                "mask": batch["mask"].cpu(),
                **({"window_start_s": batch["window_start_s"].cpu()} if "window_start_s" in batch else {}),
            }
        )

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("val", batch)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step("test", batch)

    @property
    def undecided(self) -> float:
        """What the network answers where its presence head is undecided (`undecided_probability`)."""
        from valgusml.features.view import undecided_probability

        return undecided_probability(self.presence_calibration)

    def per_recording(self, windows: dict[str, torch.Tensor], neutral: float | None = None) -> dict[str, torch.Tensor]:
        """A split's windows combined into one row per recording by the predictor's rule (side views admitted
        towards `neutral`, by default the network's undecided answer: the answers a threshold is chosen on), with
        the recordings' views, loaded limbs and scored segments where the data module knows them."""
        neutral = self.undecided if neutral is None else neutral
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if "window_start_s" not in windows or not hasattr(datamodule, "recordings"):
            return per_sequence(windows)
        from valgusml.preprocess import PreprocessConfig

        fps = PreprocessConfig.from_dict(self.hparams.get("preprocess") or {}).fps
        return per_sequence(windows, datamodule.recordings, fps, neutral)

    def _epoch_metrics(self, stage: str) -> dict[str, float] | None:
        from valgusml.features.view import admission_neutral

        if not self._outputs[stage]:
            return None
        outputs, self._outputs[stage] = self._outputs[stage], []
        windows = {k: torch.cat([o[k] for o in outputs]) for k in outputs[0]}
        if not (torch.isfinite(windows["valgus_probability"]).all()
                and torch.isfinite(windows["mechanism_probabilities"]).all()):
            lr = (self._optimizer.get("lr") if isinstance(self._optimizer, dict)
                  else getattr(self._optimizer, "keywords", {}).get("lr"))
            raise ValgusMLError(
                f"training diverged: the network's {stage} probabilities are NaN or infinite at epoch "
                f"{self.current_epoch}; lower module.optimizer.lr (now {lr}) or check the training data")
        rows = self.per_recording(windows)
        if stage == "val":
            self.val_windows = windows  # what `valgusml.training.calibration` fits the presence map on
        if stage == "val" and not self.trainer.sanity_checking:
            # Chosen on validation athletes only; test metrics use the threshold of the selected checkpoint.
            # Chosen on answers whose side views are admitted towards the undecided answer, as the export
            # chooses it again.
            self.decision_threshold = choose_threshold(
                rows["valgus_probability"].numpy(), rows["valgus"].numpy(), self.hparams.threshold_rule
            )
        neutral = admission_neutral(self.decision_threshold, self.undecided)
        if neutral != self.undecided:  # a threshold under the undecided answer: scored as the export answers at it
            rows = self.per_recording(windows, neutral)
        if stage == "val" and not self.trainer.sanity_checking:
            self.mechanism_offsets = self._mechanism_offsets(rows)
        metrics = split_metrics(
            rows["valgus_probability"],
            rows["mechanism_probabilities"],
            rows["severity_deg"],
            rows["valgus"],
            rows["mechanism"],
            rows["severity_target"],
            threshold=self.decision_threshold,
            mechanism_offsets=self.mechanism_offsets,
        )
        metrics["decision_threshold"] = float(self.decision_threshold)
        errors = torch.cat(self._lifter_errors[stage]) if self._lifter_errors[stage] else torch.zeros(0)
        self._lifter_errors[stage] = []
        if errors.numel():  # how well the lifter reads the 3D frontal plane where the label reads it
            metrics["frame_fppa_mae_deg"] = float(errors.mean())
        # Every rank evaluates the whole split (see the data module), so these numbers agree across ranks.
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=True)
        return metrics

    def _mechanism_offsets(self, rows: dict[str, torch.Tensor]) -> np.ndarray | None:
        """The mechanism call's offsets on validation's recordings at the chosen threshold, as the export
        chooses them again on the folder's answers (`valgusml.scoring.mechanism_offsets`): the same athletes
        resampled where the data module names them, else each recording its own."""
        index = rows["sequence_index"].numpy()
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        athletes = datamodule.athletes_of(index) if hasattr(datamodule, "athletes_of") else index.astype(str)
        n = len(index)
        scores = ScoreArrays(rows["valgus_probability"].double().numpy(), rows["mechanism_probabilities"].double().numpy(),
                             rows["severity_deg"].double().numpy())
        labels = LabelArrays(rows["valgus"].numpy(), rows["mechanism"].numpy(), rows["severity_target"].numpy(),
                             np.asarray(athletes), np.full(n, ""), index.astype(str))
        return choose_mechanism_offsets(scores, labels, self.decision_threshold)

    def on_validation_epoch_end(self) -> None:
        metrics = self._epoch_metrics("val")
        if metrics is not None and not self.trainer.sanity_checking:
            self.val_metrics = metrics

    def on_test_epoch_end(self) -> None:
        metrics = self._epoch_metrics("test")
        if metrics is not None:
            self.test_metrics = metrics

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        out = self(batch["joints"], batch["measures"], batch["mask"])
        return {
            "valgus_probability": torch.sigmoid(out["valgus_logit"].float()),
            "mechanism_probabilities": torch.softmax(out["mechanism_logits"].float(), -1),
            "severity_deg": out["severity_deg"].float(),
            "sequence_index": batch["sequence_index"],
        }

    # -- optimisation ------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        factory = self._optimizer
        if isinstance(factory, dict):
            factory = instantiate({**factory, "_partial_": True})
        optimizer = factory(params=self.parameters())
        spec = dict(self.hparams.scheduler or {"name": "none"})
        name = spec.pop("name", "none")
        if name not in SCHEDULERS:
            raise ValueError(f"scheduler.name must be one of {SCHEDULERS}, got {name!r}")
        if name == "none":
            return optimizer
        total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        if name == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer,
                max_lr=[g["lr"] for g in optimizer.param_groups],
                total_steps=total_steps,
                pct_start=float(spec.get("warmup_fraction", 0.3)),
            )
        else:
            warmup = int(round(float(spec.get("warmup_fraction", 0.05)) * total_steps))
            min_factor = float(spec.get("min_lr_factor", 0.01))

            def cosine(step: int) -> float:
                if step < warmup:
                    return (step + 1) / warmup
                progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
                return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))

            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- checkpoint --------------------------------------------------------------------------------------
    def checkpoint_info(self) -> dict[str, Any]:
        return {
            "decision_threshold": float(self.decision_threshold),
            "mechanism_offsets": None if self.mechanism_offsets is None else offsets_dict(self.mechanism_offsets),
            "presence_calibration": self.presence_calibration,
            "dataset_fingerprint": self.run_info.get("dataset_fingerprint"),
            "dataset_dir": self.run_info.get("dataset_dir"),
            "mlflow_run_id": self.run_info.get("mlflow_run_id"),
            "split": self.run_info.get("split"),
            "generator_seed": self.run_info.get("generator_seed"),
            "generator_seeds": self.seeds_learnt_from(),
            # beside its own (a start trained on this very dataset is warned of by training, not listed here)
            "other_training_data": [entry for entry in other_training_data(self.run_info, self.run_info.get("init_from"))
                                    if entry["dataset_fingerprint"] != self.run_info.get("dataset_fingerprint")],
            "val_metrics": dict(self.val_metrics),
            "test_metrics": dict(self.test_metrics),
            **({"init_from": self.run_info["init_from"]} if self.run_info.get("init_from") else {}),
        }

    def seeds_learnt_from(self) -> list[int] | None:
        """The generator seeds whose athletes these weights learnt from: the run's own data and whatever its
        `init_from` weights learnt from (None where neither is known)."""
        seeds = set(seeds_learnt_from(self.run_info.get("init_from") or {}))
        seeds.update(seeds_learnt_from({"generator_seed": self.run_info.get("generator_seed")}))
        return sorted(seeds) if seeds else None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["valgusml"] = self.checkpoint_info()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get("valgusml") or {}
        self.decision_threshold = float(info.get("decision_threshold", 0.5))
        offsets = info.get("mechanism_offsets")
        self.mechanism_offsets = None if offsets is None else offsets_array(offsets)
        self.calibrate_presence(info.get("presence_calibration"))
        self.val_metrics = dict(info.get("val_metrics") or {})
        for key in ("dataset_fingerprint", "dataset_dir", "mlflow_run_id", "split", "generator_seed",
                    "other_training_data"):
            if info.get(key) is not None and key not in self.run_info:
                self.run_info[key] = info[key]


def loaded_frame_errors(frame_fppa: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """|lifted − 3D| dynamic FPPA on the real frames the label reads (loaded, scored), flat, on the CPU."""
    target = batch["frame_targets"].float()
    loaded = ((batch["mask"] > 0)[..., None] & (target[..., 2:LIFTED_MEASURE_START] > 0.5)
              & torch.isfinite(target[..., :2]))
    return (frame_fppa.float().detach() - target[..., :2])[loaded].abs().cpu()


def per_sequence(rows: dict[str, torch.Tensor], recordings: Callable[[np.ndarray], dict] | None = None,
                 fps: float | None = None, neutral: float = 0.5) -> dict[str, torch.Tensor]:
    """Combine window rows of the same recording into one.

    With `recordings` (dataset sequence indices -> their `segments`, `views`, `scored_limbs`, `leg_seen`, as
    `ValgusDataModule.recordings` gives) and the windows' `window_start_s`, by the predictor's own rule
    (`valgusml.preprocess.aggregate_recordings`: worst scored segment, side views admitted towards `neutral`,
    a loaded leg hardly seen at `neutral`, a free leg 0), so the metrics, the validation threshold and the
    checkpoint chosen by them are the exported predictor's; `scored` `(n, 2)` then says which limbs the task
    loads.
    Without, by `aggregate_windows` alone. Labels are per recording: the first window's stands for all.
    """
    index = rows["sequence_index"].numpy()
    unique, first, dense = np.unique(index, return_index=True, return_inverse=True)
    predicted = ("valgus_probability", "mechanism_probabilities", "severity_deg")
    per_window = {k: rows[k].numpy() for k in predicted}
    if recordings is not None:
        from valgusml.preprocess import aggregate_recordings

        found = recordings(unique)
        combined, _ = aggregate_recordings(per_window, dense, rows["mask"].numpy(), rows["window_start_s"].numpy(),
                                           float(fps), len(unique), found["segments"], found["views"],
                                           found["scored_limbs"], neutral, found["leg_seen"])
    elif len(unique) == len(index):
        return rows
    else:
        from valgusml.preprocess import aggregate_windows

        combined = aggregate_windows(per_window, dense, rows["mask"].numpy(), n_sequences=len(unique))
    out = {k: torch.as_tensor(np.asarray(combined[k], dtype=np.float32)) for k in predicted}
    for k in ("valgus", "mechanism", "severity_target", "sequence_index"):
        out[k] = rows[k][torch.as_tensor(first)]
    if recordings is not None:  # `(n, 2)` bool: the limbs the task loads (a free leg is answered 0, not read)
        out["scored"] = torch.as_tensor(
            np.array([[limb in scored for limb in LIMBS] for scored in found["scored_limbs"]], dtype=bool).reshape(-1, 2))
    return out
