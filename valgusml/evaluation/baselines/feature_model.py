"""Biomechanical summary features + scikit-learn: the tabular opponent of the deep models.

One row per limb in the limb's own view (see `_features`), so one model serves both limbs and every
recording contributes two training rows. Three estimators: valgus presence (binary classifier), mechanism
(5-class classifier over MECHANISMS) and severity (regressor). `estimator="hgb"` uses HistGradientBoosting
(handles missing measures natively); `estimator="logreg"` uses median imputation + scaling + logistic
regression (and ridge regression for severity).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from valgusml.errors import ConfigError, InputError
from valgusml.evaluation.baselines._features import (
    limb_targets,
    summary_matrix,
    task_encoding,
    task_side,
)
from valgusml.labels import MECHANISMS
from valgusml.scoring.arrays import ScoreArrays
from valgusml.sequence import KeypointSequence

ESTIMATORS = ("hgb", "logreg")


class _Constant:
    """Stands in for a classifier when train has a single class (predicts it with probability 1)."""

    def __init__(self, label: int):
        self.classes_ = np.array([label])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.ones((len(x), 1))


def full_probabilities(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """`predict_proba` spread onto all `n_classes` columns (classes unseen in training get 0)."""
    out = np.zeros((len(x), n_classes))
    out[:, np.asarray(model.classes_, dtype=np.int64)] = model.predict_proba(x)
    return out


class FeatureModel:
    """Summary features → HistGradientBoosting or logistic regression, one model for both limbs."""

    def __init__(self, estimator: str = "hgb", max_iter: int = 200, learning_rate: float = 0.1, C: float = 1.0,
                 seed: int = 0, n_threads: int | None = 1):
        if estimator not in ESTIMATORS:
            raise ConfigError(f"FeatureModel estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self.estimator = estimator
        self.max_iter = int(max_iter)
        self.learning_rate = float(learning_rate)
        self.C = float(C)
        self.seed = int(seed)
        # OpenMP threads for HistGradientBoosting: on a few thousand rows a thread pool mostly spins (badly so
        # on a busy machine); None = scikit-learn's default (all cores).
        self.n_threads = n_threads
        self.name = f"features_{estimator}"

    def _classifier(self):
        if self.estimator == "hgb":
            return HistGradientBoostingClassifier(
                max_iter=self.max_iter, learning_rate=self.learning_rate, random_state=self.seed
            )
        return make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=2000),
        )

    def _regressor(self):
        if self.estimator == "hgb":
            return HistGradientBoostingRegressor(
                max_iter=self.max_iter, learning_rate=self.learning_rate, random_state=self.seed
            )
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(), Ridge())

    def _design(self, sequences: Sequence[KeypointSequence]) -> np.ndarray:
        features, context = summary_matrix(sequences)
        return np.concatenate([features, task_encoding(context, self.tasks_)], axis=1)

    def _fit_classifier(self, x: np.ndarray, y: np.ndarray):
        if len(np.unique(y)) < 2:
            return _Constant(int(y[0]))
        return self._classifier().fit(x, y)

    def _threads(self):
        from threadpoolctl import threadpool_limits

        return threadpool_limits(self.n_threads) if self.n_threads else nullcontext()

    def fit(self, sequences: Sequence[KeypointSequence]) -> FeatureModel:
        with self._threads():
            return self._fit(sequences)

    def predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays:
        with self._threads():
            return self._predict(sequences)

    def _fit(self, sequences: Sequence[KeypointSequence]) -> FeatureModel:
        if not sequences:
            raise InputError(f"{self.name}.fit got no sequences")
        self.tasks_ = sorted({task_side(seq.task, "left")[0] for seq in sequences})
        x = self._design(sequences)
        # Columns never measured in training (e.g. foot measures of a feet-less skeleton) carry nothing, and
        # scikit-learn's HistGradientBoosting binning fails on an all-NaN column.
        self.columns_ = np.flatnonzero(np.isfinite(x).any(axis=0))
        x = x[:, self.columns_]
        valgus, mechanism, severity = limb_targets(sequences)
        self.valgus_model_ = self._fit_classifier(x, valgus)
        known = mechanism >= 0  # rule-labelled limbs: presence only
        self.mechanism_model_ = self._fit_classifier(x[known], mechanism[known])
        ok = np.isfinite(severity)
        self.severity_model_ = self._regressor().fit(x[ok], severity[ok]) if ok.sum() >= 2 else None
        return self

    def _predict(self, sequences: Sequence[KeypointSequence]) -> ScoreArrays:
        x = self._design(sequences)[:, self.columns_]
        n = len(sequences)
        prob = full_probabilities(self.valgus_model_, x, 2)[:, 1]
        mech = full_probabilities(self.mechanism_model_, x, len(MECHANISMS))
        severity = self.severity_model_.predict(x) if self.severity_model_ is not None else np.full(len(x), np.nan)
        return ScoreArrays(prob.reshape(n, 2), mech.reshape(n, 2, len(MECHANISMS)), severity.reshape(n, 2))
