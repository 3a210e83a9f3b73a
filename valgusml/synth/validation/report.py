"""`write_report`: measure a generated dataset and write `validation.md` with its CSV tables and figures."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from valgusml.labels import MECHANISMS
from valgusml.sequence import KeypointSequence
from valgusml.synth.validation.plots import plot_fppa, plot_measures, plot_stick_figures
from valgusml.synth.validation.references import FRONTAL_YAW_DEG, NOMINAL_LEG_MM, REPORTED
from valgusml.synth.validation.statistics import label_agreement, limb_rows, signature_checks, summary_table


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


def _load(source: Any) -> list[KeypointSequence]:
    if isinstance(source, (str, Path)):
        from valgusml.data import open_dataset

        return list(open_dataset(source))
    return list(source)


def write_report(dataset: Any, out_dir: str | Path, title: str = "Synthetic data validation") -> Path:
    """Measure a generated dataset (path, `Dataset` or sequences) and write the report; returns `validation.md`."""
    sequences = _load(dataset)
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
        classes = [c for c in MECHANISMS if any(e["task"] == family and e["class"] == c for e in table)]
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
