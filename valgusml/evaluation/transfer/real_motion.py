"""Real-motion suite: real 3D recordings given to a predictor as 3D and as 2D views all round, scored
against the presence rule applied to their own 3D joint centres.

Each 3D file (TRC motion capture or markerless 3D, read by `valgusml.io`; lateral knee/ankle markers become
joint centres in the TRC importer, shifted medially by half the joint width along the pelvis' left-right
axis) is:

(a) labelled by `valgusml.features.rule.apply_rule` on the 3D joint centres: the scored phase found from the
    motion (drop jump: initial contact to peak knee flexion), dynamic FPPA against the task threshold for
    both sexes (sex is unknown); push-off valgus is reported apart; rows say when that 3D is estimated
    (`rule_on_estimated_3d`: the legs' segments jitter past `MEASURED_3D_MAX_JITTER`, as markerless 3D's do), where
    the estimator's frame-by-frame error can move the label;
(b) predicted from the 3D keypoints (an exported predictor reads presence off the measured angle of steady
    joint centres, `valgusml.predictor.measured`, so for motion capture this row checks that path; estimated
    3D such as Pose2Sim's goes to the network; `measure_3d=False` scores the network for all);
(c) rendered (`render.render`) at every yaw of `yaws` and each noise seed, and predicted from those pixels.

`summarise` gives, per view family (3d, front, rear, side): agreement of the presence call with the rule,
the median spread of a limb's probability across the front and rear views within ±20° of straight on,
the median |p(3D) - p(front 2D)|, how often the inferred view matches the camera, and, for a scorer whose call
rests on a frontal-plane angle (an exported predictor reports it), how far that angle lies from the rule's:
the geometry scored apart from the call. Agreement near straight
on is also given over the limbs the rule calls clearly: a dynamic FPPA within the angle's measurement error
(`labels.FPPA_SEM_DEG`) of the threshold is a call the rule itself would not repeat between sessions, so a
disagreement there says less about the model than one on a clear limb.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from valgusml.errors import InputError
from valgusml.evaluation.bootstrap import Estimate
from valgusml.evaluation.transfer.render import athlete_frame, check_estimators, film, view_family
from valgusml.features.rule import (
    MEASURED_3D_MAX_JITTER,
    apply_rule,
    segment_length_jitter,
    task_from_file_name,
)
from valgusml.features.view import read_view
from valgusml.labels import LIMBS, VALGUS_THRESHOLD_DEG, beyond_measurement_error, task_family
from valgusml.sequence import KeypointSequence

DEFAULT_YAWS: tuple[float, ...] = (0.0, 20.0, -20.0, 40.0, -40.0, 180.0, 160.0, -160.0, 70.0, -70.0, 90.0, -90.0)
FAST_YAWS: tuple[float, ...] = (0.0, 20.0, -20.0, 180.0, 160.0, -160.0, 90.0)
SUFFIXES = (".trc", ".npz", ".json", ".csv")
log = logging.getLogger("valgusml.evaluate")


def task_from_name(path: Path) -> str | None:
    """The task a file name announces (`DJ1.trc` -> drop_vertical_jump), `""` to infer it, None to skip."""
    return task_from_file_name(path.stem)


@dataclass(frozen=True)
class RecordingFile:
    """One file (or missing path) the suite was pointed at: read, or skipped and why. The log says the same; the
    report lists them, so that a reader sees which recordings its real-motion figures rest on."""

    file: str  # `folder/file`, as the suite's rows name a recording (`display_name`); a missing path as given
    person: str  # `person_of(file)`; "" for a missing path
    task: str  # the task scored, or the one the file name announces ("" where none is known)
    status: str  # "read" or "skipped"
    reason: str = ""  # why it was skipped


def recording_files_table(files: Sequence[RecordingFile]) -> Any:
    """`files` as a DataFrame, one row each: `file`, `person`, `task`, `status`, `reason` (the report's list and
    `real_motion_files.csv`)."""
    import pandas as pd

    return pd.DataFrame([asdict(f) for f in files], columns=[f.name for f in fields(RecordingFile)])


def display_name(path: Path) -> str:
    """`folder/file`: how rows, the report and the bootstrap's people (`person_of`) name a recording."""
    return f"{path.parent.name}/{path.name}"


def find_recordings(paths: Iterable[str | Path], files: list[RecordingFile] | None = None) -> list[Path]:
    """Files under folders (recursively) and files named directly, sorted; `video/` folders are skipped. `~` is
    the home folder; a path that does not exist is logged (and added to `files`), not read. Paths are made
    absolute (`..` folded, links kept) so that a folder named twice, once inside another, is read once."""
    out: list[Path] = []
    for entry in paths:
        p = Path(os.path.abspath(Path(entry).expanduser()))
        if p.is_dir():
            out.extend(f for f in sorted(p.rglob("*")) if f.suffix.lower() in SUFFIXES and "video" not in f.parts)
        elif p.is_file():
            out.append(p)
        else:
            reason = "does not exist; nothing read from it"
            log.warning("real motion: %s %s", entry, reason)
            if files is not None:
                files.append(RecordingFile(str(entry), "", "", "skipped", reason))
    return sorted(set(out))


def skipped(path: Path, reason: str, level: int = logging.WARNING, files: list[RecordingFile] | None = None,
            task: str = "") -> None:
    """Say that a recording the suite was pointed at is not scored, and why (the log holds every such file), and
    add it to `files`: the one place a skip is worded, so the report says what the log says."""
    log.log(level, "real motion: %s skipped: %s", path, reason)
    if files is not None:
        name = display_name(path)
        files.append(RecordingFile(name, person_of(name), task, "skipped", reason))


def scored_nothing(rule: dict[str, Any]) -> bool:
    """Whether the rule found no phase to score on either limb: a static trial whose name does not say so
    reads as a squat with no squat in it, and its limbs would count as easy agreements with "no valgus"."""
    return not any(_finite(rule[limb]["dynamic_fppa_deg"]) for limb in LIMBS)


def recording_name(path: Path, seen: dict[str, Path]) -> str:
    """`folder/file`, the recording's name in rows and its person (`person_of`); two files of one name would
    merge their rows, so that is refused."""
    name = display_name(path)
    if name in seen:
        raise InputError(f"real motion: {seen[name]} and {path} would both be reported as {name}; rename one "
                         "folder (the folder is the person)")
    seen[name] = path
    return name


@dataclass(frozen=True)
class RenderedView:
    """One real recording as one scorer input: the 3D motion itself (`family="3d"`) or a rendered 2D view, with
    the presence rule's labels from the 3D joint centres."""

    file: str
    task: str
    family: str
    yaw_deg: float
    seed: int
    sequence: KeypointSequence
    rule: dict[str, Any]
    # The rule read estimated 3D (markerless): its frame-by-frame error can move the label (`convert` warns too).
    rule_on_estimated_3d: bool = False
    # How a 2D view was filmed: `generic` (`render.estimator_error`) or a pose-estimator family of the generator
    # (`render.render_through`); `none` for the 3D input.
    estimator: str = "generic"


def noise_seed(name: str, seed: int) -> int:
    """The noise stream of recording `name` (`folder/file`) at suite seed `seed`. Keyed by the name, not by the
    file's place in the listing, so a recording is filmed alike whichever other files are rendered beside it
    (one person's folder alone reads as it does in the whole suite)."""
    return zlib.crc32(f"{name}#{seed}".encode())


def render_views(
    paths: Iterable[str | Path],
    yaws: Sequence[float] = DEFAULT_YAWS,
    seeds: Sequence[int] = (0, 1),
    jitter_m: float = 0.004,
    estimators: Sequence[str] = ("generic",),
    files: list[RecordingFile] | None = None,
) -> list[RenderedView]:
    """Every 3D recording under `paths` as 3D and as 2D views at `yaws` x noise `seeds` x `estimators`
    (deterministic): `generic` is a joint-centre offset and `jitter_m` of AR(1) jitter; a family name of
    `valgusml.synth.estimators.FAMILIES` (mediapipe, rtmpose, openpose, mocap) films it through that family's
    error model, as the generator films its own athletes. Static trials (by name, or with no phase the rule
    scores) and 2D files are skipped, each named in the log (`skipped`); a file that cannot be read is refused.
    `files`, when given, gets one `RecordingFile` per file read or skipped (and per missing path), in order."""
    import valgusml

    check_estimators(estimators)
    out: list[RenderedView] = []
    names: dict[str, Path] = {}
    for path in find_recordings(paths, files):
        task = task_from_name(path)
        if task is None:
            # expected (a motion-capture session records one): said, not warned of
            skipped(path, "a static trial (its name says so): no movement to score", logging.INFO, files)
            continue
        seq = valgusml.io.read(path).to_canonical()
        if seq.dims != 3:
            skipped(path, f"{seq.dims}D keypoints; the suite films 3D recordings", files=files, task=task)
            continue
        kp = seq.seen_keypoints().astype(np.float64)
        rule = apply_rule(kp, seq.fps, task)
        if scored_nothing(rule):
            skipped(path, f"the rule finds no {rule['task']} phase to score on either limb (a static trial?)",
                    files=files, task=rule["task"])
            continue
        estimated = bool(segment_length_jitter(seq) > MEASURED_3D_MAX_JITTER)
        name = recording_name(path, names)
        if files is not None:
            files.append(RecordingFile(name, person_of(name), rule["task"], "read"))
        world = athlete_frame(kp)
        as_3d = KeypointSequence(world.astype(np.float32), "canonical", seq.fps, id=name, task=task or None)
        out.append(RenderedView(name, rule["task"], "3d", 0.0, -1, as_3d, rule, estimated, "none"))
        for estimator in estimators:
            for seed in seeds:
                filmed = film(world, seq.fps, yaws, estimator, noise_seed(name, seed), jitter_m)
                for yaw, (pixels, confidence, _) in zip(yaws, filmed, strict=True):
                    suffix = "" if estimator == "generic" else f"/{estimator}"
                    view_seq = KeypointSequence(pixels, "canonical", seq.fps, id=f"{name}@{yaw:g}{suffix}",
                                                task=task or None, confidence=confidence)
                    out.append(RenderedView(name, rule["task"], view_family(yaw), float(yaw), int(seed), view_seq,
                                            rule, estimated, estimator))
    return out


def score_views(views: Sequence[RenderedView], scorer: Any, threshold: float) -> list[dict[str, Any]]:
    """One row per (view, limb): the rule's labels, the scorer's probability and call at `threshold` (chosen
    on validation athletes), and the view inferred from the keypoints. `scorer.predict(sequences)` returns
    `ScoreArrays` (every evaluation scorer does; `valgusml.evaluation.scorers`)."""
    if not views:
        return []
    scores = scorer.predict([v.sequence for v in views])
    probability = np.asarray(scores.valgus_probability, dtype=np.float64)
    angle = scores.frontal_fppa_deg
    rows: list[dict[str, Any]] = []
    for i, v in enumerate(views):
        inferred = read_view(v.sequence.keypoints) if v.family != "3d" else None
        for k, limb in enumerate(LIMBS):
            rows.append({
                "file": v.file,
                "task": v.task,
                "family": v.family,
                "yaw_deg": v.yaw_deg,
                "seed": v.seed,
                "estimator": v.estimator,
                "limb": limb,
                "probability": float(probability[i, k]),
                "call": bool(probability[i, k] >= threshold),
                "rule_female": bool(v.rule[limb]["valgus"]["female"]),
                "rule_male": bool(v.rule[limb]["valgus"]["male"]),
                "dynamic_fppa_deg": v.rule[limb]["dynamic_fppa_deg"],
                "push_off_dynamic_fppa_deg": v.rule[limb].get("push_off_dynamic_fppa_deg"),
                # the angle the scorer's call rests on (lifted from 2D, measured on 3D); None where it reads none
                "frontal_fppa_deg": None if angle is None or not np.isfinite(angle[i, k]) else float(angle[i, k]),
                "rule_on_estimated_3d": v.rule_on_estimated_3d,
                "inferred_facing": inferred.facing if inferred else "front",
                "inferred_yaw_deg": inferred.yaw_deg if inferred else 0.0,
            })
    return rows


class PredictorScorer:
    """An exported `valgusml.Predictor` as a scorer (`predict(sequences) -> ScoreArrays`)."""

    def __init__(self, predictor: Any):
        self.predictor = predictor

    def predict(self, sequences: Sequence[KeypointSequence]) -> Any:
        from valgusml.predictor.results import limb_arrays
        from valgusml.scoring.arrays import ScoreArrays

        return ScoreArrays(*limb_arrays(self.predictor.predict_batch(list(sequences))))


def run_suite(
    predictor: Any,
    paths: Iterable[str | Path],
    yaws: Sequence[float] = DEFAULT_YAWS,
    seeds: Sequence[int] = (0, 1),
    jitter_m: float = 0.004,
) -> list[dict[str, Any]]:
    """The suite for one exported predictor, at its own decision threshold."""
    views = render_views(paths, yaws, seeds, jitter_m)
    return score_views(views, PredictorScorer(predictor), float(predictor.decision_threshold))


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def clear_of_threshold(row: dict[str, Any], sex: str = "female") -> bool:
    """Whether the rule's call on this limb stands beyond the angle's measurement error: its dynamic FPPA is at
    least `FPPA_SEM_DEG` from the task's threshold for `sex` (a limb with no scored phase is clearly none)."""
    fppa = row["dynamic_fppa_deg"]
    if fppa is None or not np.isfinite(fppa):
        return True
    return bool(beyond_measurement_error(float(fppa) - VALGUS_THRESHOLD_DEG[task_family(row["task"])][sex]))


def near_square_on(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of front and rear views within ±20° of straight on (the suite's headline views)."""
    return [r for r in rows if r["family"] in ("front", "rear")
            and min(abs(r["yaw_deg"]), abs(abs(r["yaw_deg"]) - 180.0)) <= 20.0]


def _estimator(row: dict[str, Any]) -> str:
    """How a row's view was filmed; rows written before the suite filmed through estimator families are generic."""
    return row.get("estimator", "generic")


def worst_estimator(summary: dict[str, dict[str, float]]) -> str | None:
    """"0.924 (openpose)": the estimator whose views agree least with the rule, from `summarise`'s
    `by_estimator`; None when the views were filmed by one estimator only."""
    if "by_estimator" not in summary:
        return None
    estimator, agreement = min(summary["by_estimator"].items(), key=lambda item: item[1])
    return f"{agreement:.3f} ({estimator})"


def person_of(file: str) -> str:
    """Whose recording `file` (`folder/file`) is: its folder, one person's in ../shared/realdata (a user's folder
    holding several people's files reads as one person, which widens the interval, never narrows it)."""
    return file.rsplit("/", 1)[0] if "/" in file else file


def recording_weights(files: Sequence[str], n_boot: int, seed: int) -> np.ndarray:
    """`(n_boot, N)` weights of a two-stage bootstrap: people drawn with replacement, then, for each draw of a
    person, their recordings drawn with replacement; each row gets its recording's count."""
    recordings, recording_index = np.unique(np.asarray(files), return_inverse=True)
    people, person_index = np.unique([person_of(f) for f in recordings], return_inverse=True)
    rng = np.random.default_rng(seed)
    person_draws = rng.multinomial(len(people), np.full(len(people), 1.0 / len(people)), size=n_boot)
    counts = np.zeros((n_boot, len(recordings)))
    for person in range(len(people)):
        own = np.flatnonzero(person_index == person)
        # c draws of a person, each drawing its k recordings again, are one multinomial of c * k draws
        counts[:, own] = rng.multinomial(person_draws[:, person] * len(own), np.full(len(own), 1.0 / len(own)))
    return counts[:, recording_index]


def agreement_estimate(
    rows: list[dict[str, Any]], baseline: list[dict[str, Any]] | None = None, clear_only: bool = False,
    n_boot: int = 2000, seed: int = 0,
) -> Estimate:
    """Agreement of the front and rear views within ±20° with the female rule (over the limbs the rule calls
    clearly with `clear_only`), or, given `baseline` (another scorer's rows of the same views), the difference
    from its agreement; with a 95% percentile CI that resamples people, then each drawn person's recordings
    (`recording_weights`). The views of one recording share its motion and one person's recordings share their
    way of moving, so resampling limb-views, or recordings as if each were another person, would be too narrow."""
    def agree(part: list[dict[str, Any]]) -> dict[tuple, float]:
        part = [r for r in near_square_on(part) if not clear_only or clear_of_threshold(r)]
        return {(r["file"], r["yaw_deg"], r["seed"], _estimator(r), r["limb"]):
                float(r["call"] == r["rule_female"]) for r in part}

    mine = agree(rows)
    keys = sorted(mine)
    if baseline is not None:
        theirs = agree(baseline)
        keys = [k for k in keys if k in theirs]
    if not keys:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    values = np.array([mine[k] - (theirs[k] if baseline is not None else 0.0) for k in keys])
    weights = recording_weights([k[0] for k in keys], n_boot, seed)
    totals = weights.sum(axis=1)
    kept = totals > 0
    replicates = (weights[kept] @ values) / totals[kept]
    lo, hi = np.percentile(replicates, [2.5, 97.5])
    return Estimate(float(values.mean()), float(lo), float(hi), int(kept.sum()))


def _finite(value: Any) -> bool:
    return value is not None and bool(np.isfinite(value))


def angle_agreement(rows: list[dict[str, Any]]) -> dict[str, float]:
    """How closely the angle a scorer's call rests on (`frontal_fppa_deg`: lifted from 2D, measured on 3D)
    follows the rule's dynamic FPPA on the 3D joint centres, over the limb-views where both exist:
    `angle_error_median_deg` (median absolute difference), `angle_bias_median_deg` (median signed difference:
    below zero, the scorer reads less valgus than the rule), `angle_rank_correlation` (Spearman: does the angle
    order the limbs as the rule's does; near 0 where the view hides the frontal plane) and `angle_n`. Empty
    when the scorer reads no angle."""
    from scipy.stats import spearmanr

    pairs = np.array([(r["frontal_fppa_deg"], r["dynamic_fppa_deg"]) for r in rows
                      if _finite(r.get("frontal_fppa_deg")) and _finite(r["dynamic_fppa_deg"])], dtype=np.float64)
    if not len(pairs):
        return {}
    difference = pairs[:, 0] - pairs[:, 1]
    varied = len(pairs) >= 3 and np.ptp(pairs[:, 0]) > 0 and np.ptp(pairs[:, 1]) > 0
    return {
        "angle_error_median_deg": float(np.median(np.abs(difference))),
        "angle_bias_median_deg": float(np.median(difference)),
        "angle_rank_correlation": float(spearmanr(pairs[:, 0], pairs[:, 1]).statistic) if varied else float("nan"),
        "angle_n": float(len(pairs)),
    }


def probability_scores(part: Sequence[dict[str, Any]]) -> dict[str, float]:
    """How the probabilities of limb-views read as probabilities of the female rule's call: `brier_female`
    (mean squared error) and `ece_female` (the report's 10-bin ECE), beside `rule_rate_female`, the share the
    rule calls valgus (real motion holds few: a probability near that share everywhere scores well too)."""
    from valgusml.evaluation.metrics import presence_metrics

    if not part:
        return dict.fromkeys(("brier_female", "ece_female", "rule_rate_female"), float("nan"))
    scores = presence_metrics(np.array([r["rule_female"] for r in part]), np.array([r["probability"] for r in part]),
                              threshold=0.5)  # the threshold moves none of the three figures read here
    return {"brier_female": scores["brier"], "ece_female": scores["ece"], "rule_rate_female": scores["prevalence"]}


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per view family: `agreement_female`, `agreement_male` (share of limb-views whose call equals the rule),
    `n` (limb-views), `facing_correct` (2D only), `probability_scores`, and for a scorer that reports the angle
    its call rests on, `angle_agreement`'s figures; and `all` with `probability_scores` of every 2D limb-view
    (`..._2d`), `view_spread_median` (max - min probability of
    a limb over the front and rear views within ±20° of straight on, per seed), `p3d_vs_front_median`
    (|p(3D) - p(yaw 0)| per limb and seed), the agreement of those front and rear views with the female rule,
    over all of them (with its 95% CI over people and their recordings, `..._lo` / `..._hi`: `agreement_estimate`) and over the
    limbs `clear_of_threshold` (`..._clear`, with their share); where the views were filmed through more than one
    estimator, `by_estimator`: that agreement for each."""
    out: dict[str, dict[str, float]] = {}
    for family in ("3d", "front", "rear", "side"):
        part = [r for r in rows if r["family"] == family]
        if not part:
            continue
        entry = {
            "n": float(len(part)),
            "agreement_female": float(np.mean([r["call"] == r["rule_female"] for r in part])),
            "agreement_male": float(np.mean([r["call"] == r["rule_male"] for r in part])),
            "mean_probability": float(np.mean([r["probability"] for r in part])),
            **probability_scores(part),
        }
        if family != "3d":
            entry["facing_correct"] = float(np.mean([r["inferred_facing"] == family for r in part]))
        entry.update(angle_agreement(part))
        out[family] = entry
    near = near_square_on(rows)
    by_limb: dict[tuple, list[float]] = {}
    for r in near:
        by_limb.setdefault((r["file"], r["limb"], r["seed"], _estimator(r)), []).append(r["probability"])
    spreads = [max(v) - min(v) for v in by_limb.values() if len(v) > 1]
    p3d = {(r["file"], r["limb"]): r["probability"] for r in rows if r["family"] == "3d"}
    gaps = [abs(r["probability"] - p3d[(r["file"], r["limb"])]) for r in rows
            if r["family"] == "front" and r["yaw_deg"] == 0.0 and (r["file"], r["limb"]) in p3d]
    clear = [r for r in near if clear_of_threshold(r)]
    clear_agree = [r["call"] == r["rule_female"] for r in clear]
    agreement = agreement_estimate(rows)
    out["all"] = {
        "view_spread_median": _median(spreads),
        "p3d_vs_front_median": _median(gaps),
        "agreement_front_rear_20_female": agreement.value,
        "agreement_front_rear_20_female_lo": agreement.lo,
        "agreement_front_rear_20_female_hi": agreement.hi,
        "agreement_front_rear_20_clear": float(np.mean(clear_agree)) if clear_agree else float("nan"),
        "clear_share_front_rear_20": len(clear) / len(near) if near else float("nan"),
        "n_files": float(len({r["file"] for r in rows})),
        **{f"{key}_2d": value for key, value in probability_scores([r for r in rows if r["family"] != "3d"]).items()},
    }
    estimators = sorted({_estimator(r) for r in near})
    if len(estimators) > 1:
        out["by_estimator"] = {e: agreement_estimate([r for r in rows if _estimator(r) == e]).value
                               for e in estimators}
    return out
