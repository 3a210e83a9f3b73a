"""Is the synthetic task learnable from biomechanics, and not trivially so?

Summary measures (`valgusml.features.measures`) of each sequence, arranged per limb (this limb's measures,
the other limb's, the bilateral ones, task family, whether the limb is loaded), then scikit-learn logistic
regression with athlete-grouped K-fold cross-validation:

- presence: valgus yes/no per limb, AUROC reported separately for left and right limbs;
- mechanism: 5 classes (none + 4 mechanisms) per limb, macro-F1; and the 4 mechanisms on valgus limbs only.

Mean ± SD over folds. Expect well above chance (AUROC 0.5, 5-class macro-F1 ~0.2) and below perfect.

    .venv/bin/python scripts/learnability_check.py --preset realistic --n-athletes 250
    .venv/bin/python scripts/learnability_check.py --dataset data/NAME
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable

import numpy as np

from valgusml.features import BILATERAL_MEASURES, LIMB_MEASURES, measures
from valgusml.labels import DEFICITS, LIMBS, MECHANISM_INDEX, MECHANISMS, TASK_FAMILIES, task_family
from valgusml.sequence import KeypointSequence


def feature_names() -> list[str]:
    return (
        [f"this_{m}" for m in LIMB_MEASURES]
        + [f"other_{m}" for m in LIMB_MEASURES]
        + list(BILATERAL_MEASURES)
        + [f"task_{f}" for f in TASK_FAMILIES]
        + ["loaded", "other_loaded"]
    )


def limb_table(sequences: Iterable[KeypointSequence]):
    """Per-limb feature rows `X`, valgus `y`, mechanism index `z`, athlete groups, limb index."""
    X, y, z, groups, limb_index = [], [], [], [], []
    for seq in sequences:
        if seq.labels is None:
            continue
        m = measures(seq)
        family = task_family(seq.task)
        bilateral = [m["bilateral"][k] for k in BILATERAL_MEASURES]
        onehot = [float(family == f) for f in TASK_FAMILIES]
        for k, limb in enumerate(LIMBS):
            other = LIMBS[1 - k]
            row = (
                [m[limb][n] for n in LIMB_MEASURES]
                + [m[other][n] for n in LIMB_MEASURES]
                + bilateral
                + onehot
                + [float(limb in m["stance"]), float(other in m["stance"])]
            )
            X.append([np.nan if v is None else float(v) for v in row])
            y.append(bool(seq.labels[limb]["valgus"]))
            z.append(MECHANISM_INDEX[seq.labels[limb]["mechanism"]])
            groups.append(seq.athlete_id)
            limb_index.append(k)
    return np.array(X), np.array(y), np.array(z), np.array(groups), np.array(limb_index)


def _model(class_weight: str | None = None):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=3000, C=0.5, class_weight=class_weight),
    )


def cross_validate(X, y, z, groups, limb_index, folds: int = 5) -> dict[str, list[float]]:
    from sklearn.metrics import f1_score, roc_auc_score
    from sklearn.model_selection import GroupKFold

    scores: dict[str, list[float]] = {
        "auroc_left": [],
        "auroc_right": [],
        "auroc_all": [],
        "macro_f1_5": [],
        "macro_f1_mech_on_valgus": [],
        "accuracy_5": [],
    }
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups):
        presence = _model().fit(X[train], y[train])
        p = presence.predict_proba(X[test])[:, 1]
        for k, name in enumerate(LIMBS):
            sel = limb_index[test] == k
            scores[f"auroc_{name}"].append(roc_auc_score(y[test][sel], p[sel]))
        scores["auroc_all"].append(roc_auc_score(y[test], p))
        # (unweighted: balanced class weights were tried and gave a lower 5-class macro-F1, 0.32 vs 0.34)
        mechanism = _model().fit(X[train], z[train])
        pred = mechanism.predict(X[test])
        scores["macro_f1_5"].append(
            f1_score(z[test], pred, average="macro", labels=list(range(len(MECHANISMS))))
        )
        scores["accuracy_5"].append(float((pred == z[test]).mean()))
        # mechanism given valgus: train and test on valgus limbs only, 4 classes
        tr, te = train[y[train]], test[y[test]]
        if len(np.unique(z[tr])) > 1 and te.size:
            mech4 = _model().fit(X[tr], z[tr]).predict(X[te])
            labels = [MECHANISM_INDEX[m] for m in DEFICITS]
            scores["macro_f1_mech_on_valgus"].append(f1_score(z[te], mech4, average="macro", labels=labels))
    return scores


def main(argv: list[str] | None = None) -> dict[str, list[float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="realistic")
    parser.add_argument("--n-athletes", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--dataset", help="an existing generated dataset folder (instead of generating)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    if args.dataset:
        from valgusml.data import open_dataset

        sequences: Iterable[KeypointSequence] = open_dataset(args.dataset)
        source = args.dataset
    else:
        from valgusml.synth import generate_sequences, load_preset

        cfg = load_preset(args.preset, n_athletes=args.n_athletes, seed=args.seed)
        sequences = generate_sequences(cfg, range(args.n_athletes))
        source = f"preset {args.preset}, {args.n_athletes} athletes, seed {args.seed}"
    X, y, z, groups, limb_index = limb_table(sequences)
    built = time.perf_counter() - start
    counts = np.bincount(z, minlength=len(MECHANISMS))
    print(
        f"data: {source}: {len(np.unique(groups))} athletes, {len(X) // 2} sequences, {len(X)} limbs "
        f"({built:.1f} s to generate + measure)"
    )
    print(
        "limb classes: "
        + ", ".join(f"{m} {c}" for m, c in zip(MECHANISMS, counts, strict=False))
        + f"; valgus share {y.mean():.2f}"
    )
    scores = cross_validate(X, y, z, groups, limb_index, args.folds)
    print(
        f"logistic regression on {X.shape[1]} summary features, GroupKFold({args.folds}) by athlete (mean ± SD over folds):"
    )
    rows = [
        ("presence AUROC, left limbs", "auroc_left", 0.5),
        ("presence AUROC, right limbs", "auroc_right", 0.5),
        ("presence AUROC, all limbs", "auroc_all", 0.5),
        ("mechanism macro-F1 (5 classes, all limbs)", "macro_f1_5", 0.2),
        ("mechanism accuracy (5 classes)", "accuracy_5", float(counts.max() / counts.sum())),
        ("mechanism macro-F1 (4 deficits, valgus limbs)", "macro_f1_mech_on_valgus", 0.25),
    ]
    for label, key, chance in rows:
        values = np.array(scores[key])
        print(
            f"  {label:<48} {values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"
            f"   (chance ~{chance:.2f}; folds {', '.join(f'{v:.3f}' for v in values)})"
        )
    return scores


if __name__ == "__main__":
    main()
