from __future__ import annotations

import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def samples_dir() -> Path:
    return REPO / "data" / "samples"


@pytest.fixture(autouse=True)
def _quiet_expected_warnings():
    # Readers warn on purpose (several people, assumed fps); tests that check a warning use pytest.warns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield
