"""Validation report of a generated dataset: do the emitted keypoints look like the literature says?

`valgusml.features` measures every sequence from its EMITTED keypoints (2D image points with camera and
pose-estimator error, exactly what a model sees), then the report puts, per task × class, the measures'
means and ranges beside the BIOMECH.md figures, flags cells outside them, checks that each mechanism's
signature differs from `none` in the documented direction, and draws stick figures at peak load.

    python -m valgusml.synth.validation --preset realistic --n-athletes 200 --out reports/synth_validation

writes `validation.md`, `limb_measures.csv` (one row per loaded limb), `summary.csv` (the table),
`signatures.csv`, `fppa_by_task.png`, `measures_by_class.png` and `stick_figures.png`.

A "class" is the limb's label (`none` or its dominant mechanism). Single-leg tasks contribute their stance limb
only; bilateral tasks, landings and gait contribute both limbs.

Modules: `references` (what is compared: reported measures, literature ranges, expected signatures),
`statistics` (limb rows, summary table, signature checks, label agreement), `plots`, `report`
(`write_report`), `cli` (`main`, the `python -m` entry).
"""

from valgusml.synth.validation.cli import main
from valgusml.synth.validation.references import REFERENCES, REPORTED, SIGNATURES, Reference
from valgusml.synth.validation.report import write_report
from valgusml.synth.validation.statistics import (
    auroc,
    label_agreement,
    limb_rows,
    signature_checks,
    summary_table,
)

__all__ = [
    "REFERENCES",
    "REPORTED",
    "SIGNATURES",
    "Reference",
    "auroc",
    "label_agreement",
    "limb_rows",
    "main",
    "signature_checks",
    "summary_table",
    "write_report",
]
