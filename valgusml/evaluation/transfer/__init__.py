"""Transfer: how a model does on data its generator did not write (real motion, other views)."""

from valgusml.evaluation.transfer.real_motion import DEFAULT_YAWS, FAST_YAWS, run_suite, summarise
from valgusml.evaluation.transfer.render import ViewSpec, athlete_frame, render, view_family

__all__ = ["DEFAULT_YAWS", "FAST_YAWS", "ViewSpec", "athlete_frame", "render", "run_suite", "summarise", "view_family"]
