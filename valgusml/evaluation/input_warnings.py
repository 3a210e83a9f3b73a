"""What the predictor said about the recordings it scored: its warnings counted by kind.

An evaluation's figures are only as telling as the inputs behind them: a test set whose cameras are rolled,
whose upper bodies are out of the picture or whose legs are hidden is read with corrections, or read less well,
and the predictor says so per recording (`Prediction.warnings`). Counted by kind over a scored set, those
warnings say in the report how much of it was read so.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def warning_kind(warning: str) -> str:
    """A warning without its particulars: the text before its first colon, numbers as `#` ("resampled from 60
    fps to 30 fps" and "... from 25 fps ..." are one kind; "missing joints: nose, neck" is "missing joints")."""
    head = warning.split(":", 1)[0]
    return _NUMBER.sub("#", head).strip()


def count_warnings(per_recording: Iterable[Sequence[str]]) -> dict[str, int]:
    """`{kind: recordings}`: how many recordings had each kind of warning (once each), most frequent first."""
    counts = Counter(kind for warnings in per_recording for kind in {warning_kind(w) for w in warnings})
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


__all__ = ["count_warnings", "warning_kind"]
