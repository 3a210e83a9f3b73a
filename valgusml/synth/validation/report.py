"""`write_report`: measure a generated dataset and write `validation.md` with its CSV tables and figures."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from valgusml.errors import InputError
from valgusml.sequence import KeypointSequence
from valgusml.synth.validation.plots import plot_fppa, plot_measures, plot_stick_figures
from valgusml.synth.validation.references import FRONTAL_YAW_DEG, NOMINAL_LEG_MM, REPORTED
from valgusml.synth.validation.statistics import (
    CLASSES,
    label_agreement,
    limb_rows,
    signature_checks,
    summary_table,
)
from valgusml.synth.validation.transfer import INDEPENDENCE_MAX_V, effect_sizes, fppa_error, independence


def _fmt(value: float, decimals: int) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{decimals}f}"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        path.write_text("")
        return
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _load(source: Any) -> tuple[list[KeypointSequence], dict[str, dict] | None]:
    """Sequences and, where there are some, their analysis rows (a dataset folder's `analysis/`, or the
    (sequence, row) pairs of `generate_with_analysis`)."""
    if isinstance(source, (str, Path)):
        from valgusml.data import open_dataset
        from valgusml.synth.analysis import read_analysis

        try:
            analysis = read_analysis(source)
        except InputError:
            analysis = None
        return list(open_dataset(source)), analysis
    items = list(source)
    if items and isinstance(items[0], tuple):
        return [s for s, _ in items], {row["id"]: row for _, row in items}
    return items, None


def write_report(dataset: Any, out_dir: str | Path, title: str = "Synthetic data validation") -> Path:
    """Measure a generated dataset (path, `Dataset`, sequences or (sequence, analysis row) pairs) and write
    the report; returns `validation.md`."""
    sequences, analysis = _load(dataset)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = limb_rows(sequences)
    # The studies film from the front; a yawed camera mixes sagittal motion into every frontal 2D measure.
    frontal = [r for r in rows if not r["yaw_abs_deg"] > FRONTAL_YAW_DEG]  # NaN yaw (3D, unknown) is kept
    primary = frontal if len(frontal) >= max(20, 0.15 * len(rows)) else rows
    subset_text = (
        f"cameras within {FRONTAL_YAW_DEG:.0f}° of frontal ({len(primary)} of {len(rows)} limbs), as in the studies"
        if primary is not rows and len(primary) < len(rows)
        else f"all {len(rows)} limbs"
    )
    table = summary_table(primary)
    checks = signature_checks(primary)
    agreement = label_agreement(rows)
    effects, errors, independent = effect_sizes(rows), fppa_error(rows), independence(rows, analysis)
    _write_csv(out / "effect_sizes.csv", effects)
    _write_csv(out / "fppa_error.csv", errors)
    _write_csv(out / "independence.csv", [{k: v for k, v in e.items() if k != "class_shares"} for e in independent])
    _write_csv(out / "limb_measures.csv", rows)
    _write_csv(out / "summary.csv", table)
    _write_csv(out / "signatures.csv", checks)
    plot_fppa(primary, out / "fppa_by_task.png")
    plot_measures(primary, out / "measures_by_class.png")
    sticks = plot_stick_figures(sequences, rows, out / "stick_figures.png")

    skeletons = sorted({r["skeleton"] for r in rows})
    dims = sorted({r["dims"] for r in rows})
    lines = [
        f"# {title}",
        "",
        f"{len(sequences)} sequences, {len({s.athlete_id for s in sequences})} athletes, {len(rows)} loaded limbs; "
        f"skeleton {', '.join(skeletons)}, {', '.join(f'{d}D' for d in dims)} keypoints as emitted "
        "(camera + pose-estimator error), measured with `valgusml.features`.",
        "",
        "Class = the limb's label (`none` or its dominant mechanism). Single-leg tasks: stance limb only. "
        f"Millimetres = leg-length fractions × 0.491 × athlete height (or {NOMINAL_LEG_MM:.0f} mm). "
        "Cells: mean ± SD [5th–95th percentile] (n). Flag: `OUT` = class mean outside the literature range, "
        "`out (indicative)` = outside a range from a neighbouring task or a 3D quantity our 2D proxy only "
        "approximates.",
        "",
        f"Tables, signatures and plots below use {subset_text}; the first table shows every camera.",
        "",
        "## Labels vs the FPPA measured on the emitted keypoints, by camera yaw",
        "",
        "Labels come from the clean 3D motion; this is what a 2D FPPA rule can recover after the camera and the "
        "pose-estimator error.",
        "",
        "| task | camera yaw | limbs | valgus share | AUROC of peak FPPA | r (measured vs label severity) | "
        "mean abs diff (°) |",
        "|---|---|---|---|---|---|---|",
    ]
    for a in agreement:
        lines.append(
            f"| {a['task']} | {a['yaw']} | {a['n_limbs']} | {a['valgus_share']:.2f} | {_fmt(a['auroc_peak_fppa'], 3)} | "
            f"{_fmt(a['r_measured_vs_label_severity'], 2)} | {_fmt(a['mean_abs_diff_deg'], 1)} |"
        )
    lines += [
        "",
        "## Signature effect sizes after camera and estimator, beside the literature",
        "",
        "Cohen's d (class vs `none`, same task; signed so the expected direction is positive) on front views "
        "(|yaw| ≤ 25°) and on every view. `weaker`: every-view d below the literature's.",
        "",
        "| mechanism | task | measure | expected | d front (n) | d all views (n) | literature d | flag |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in effects:
        lit = "–" if e["literature_d"] is None else f"{e['literature_d']:.1f} ({e['source']})"
        lines.append(f"| {e['mechanism']} | {e['task']} | {e['measure']} | {e['direction']} | {_fmt(e['d_front'], 2)} "
                     f"({e['n_front']}) | {_fmt(e['d_all'], 2)} ({e['n_all']}) | {lit} | {e['flag']} |")
    lines += [
        "",
        "## Peak FPPA error by estimator family and view (emitted 2D vs labelled clean 3D)",
        "",
        "| estimator | view | limbs | bias (°) | MAE (°) | r |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {e['estimator']} | {e['view']} | {e['n_limbs']} | {_fmt(e['bias_deg'], 1)} | {_fmt(e['mae_deg'], 1)} | "
              f"{_fmt(e['r'], 2)} |" for e in errors]
    lines += [
        "",
        "## Independence of hard negatives and acquisition variables from the class",
        "",
        f"Cramér's V (bias-corrected) between each variable and the limb's class; above {INDEPENDENCE_MAX_V} a model "
        "could read the class from it. Hard negatives come from the analysis rows"
        + ("." if analysis else " (none available for this source)."),
        "",
        "| variable | levels | Cramér's V | flag |",
        "|---|---|---|---|",
    ]
    lines += [f"| {e['variable']} | {e['levels']} | {e['cramers_v']:.3f} | {e['flag']} |" for e in independent]
    lines += [
        "",
        "## Mechanism signatures vs `none` (same task)",
        "",
        "| mechanism | task | measure | expected | mean (class) | mean (none) | Cohen's d | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in checks:
        lines.append(
            f"| {c['mechanism']} | {c['task']} | {c['measure']} | {c['expected']} ({c['why']}) | "
            f"{_fmt(c['mean_class'], 2)} (n={c['n_class']}) | {_fmt(c['mean_none'], 2)} (n={c['n_none']}) | "
            f"{_fmt(c['cohens_d'], 2)} | {c['verdict']} |"
        )
    decimals = {column: d for _, column, _, d in REPORTED}
    for family in dict.fromkeys(e["task"] for e in table):
        classes = [c for c in CLASSES if any(e["task"] == family and e["class"] == c for e in table)]
        lines += [
            "",
            f"## {family}",
            "",
            "| measure | " + " | ".join(classes) + " | literature |",
            "|---|" + "---|" * (len(classes) + 1),
        ]
        for label, column, unit, _ in REPORTED:
            cells, refs = [], []
            for cls in classes:
                e = next(
                    x for x in table if x["task"] == family and x["class"] == cls and x["column"] == column
                )
                d = decimals[column]
                if e["n"] == 0:
                    cells.append("–")
                    continue
                cell = f"{_fmt(e['mean'], d)} ± {_fmt(e['sd'], d)} [{_fmt(e['p5'], d)}–{_fmt(e['p95'], d)}] ({e['n']})"
                if e["flag"]:
                    cell += f" **{e['flag']}**" if e["flag"] != "ok" else " ok"
                    refs.append(f"{cls}: {e['reference']}")
                cells.append(cell)
            if all(c == "–" for c in cells):
                continue
            unit_text = f" ({unit})" if unit else ""
            lines.append(f"| {label}{unit_text} | " + " | ".join(cells) + f" | {'; '.join(refs)} |")
    lines += [
        "",
        "## Pictures",
        "",
        "- `fppa_by_task.png`: peak FPPA per task and class; shaded bands = literature ranges (grey none, red valgus).",
        "- `measures_by_class.png`: the mechanism measures per task and class.",
        "- `stick_figures.png`: one limb per task × class at peak load, front view (grey: first frame; red: the "
        "labelled limb; dashed: its hip–ankle line).",
        "",
        "Stick figures drawn: "
        + ", ".join(f"{s['class']}/{s['task']} = {s['id']} {s['limb']} frame {s['frame']}" for s in sticks),
        "",
    ]
    path = out / "validation.md"
    path.write_text("\n".join(lines))
    return path
