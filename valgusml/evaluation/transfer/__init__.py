"""Transfer: how a model does on data its generator did not write (real motion, other data, other views, shifts)."""

from valgusml.evaluation.transfer.other_data import open_other_data, other_data_rows
from valgusml.evaluation.transfer.real_motion import (
    DEFAULT_YAWS,
    FAST_YAWS,
    PredictorScorer,
    RenderedView,
    render_views,
    run_suite,
    score_views,
    summarise,
)
from valgusml.evaluation.transfer.render import ViewSpec, athlete_frame, render, view_family
from valgusml.evaluation.transfer.table import real_motion_rows, transfer_table

__all__ = [
    "DEFAULT_YAWS",
    "FAST_YAWS",
    "PredictorScorer",
    "RenderedView",
    "ViewSpec",
    "athlete_frame",
    "open_other_data",
    "other_data_rows",
    "real_motion_rows",
    "render",
    "render_views",
    "run_suite",
    "score_views",
    "summarise",
    "transfer_table",
    "view_family",
]
