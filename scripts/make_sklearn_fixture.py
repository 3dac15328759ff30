#!/usr/bin/env python3
"""Make the scikit-learn reference fixture for stancekit's evaluation.

Writes tests/fixtures/sklearn-eval.json (relative to the repository root) with
both the inputs and the numbers scikit-learn computes from them:

* ``metrics`` -- 40 (sentence, target) records over 3 targets (ids shared by the
  records of one sentence), each with a gold label, a probability vector and
  the predicted label (its argmax), drawn from a seeded numpy generator. For the
  pool of all records and for each target: ``precision_recall_fscore_support``
  (``zero_division=0``), macro F1, accuracy, ``confusion_matrix`` and
  F_avg = (F1[favor] + F1[against]) / 2; the mean over targets of F_avg and
  macro F1; and calibration: ``calibration_curve(correct, confidence,
  n_bins=10)`` with the bin counts, ECE, the multi-class Brier score and
  ``log_loss``.
* ``tfidf_lr`` -- a small labelled corpus, ``TfidfVectorizer(ngram_range=(1, 2),
  sublinear_tf=True)`` fitted on its training part (feature names, idf, the test
  matrix) and ``LogisticRegression(C=1.0)`` fitted on that (run to tol=1e-10 so
  the reference is the optimum, not an early stop): test probabilities,
  predictions and accuracy.

Labels are indices into ["favor", "against", "none"]. Deterministic; run with

    /root/refvenv/bin/python scripts/make_sklearn_fixture.py

Needs scikit-learn and numpy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.calibration import calibration_curve
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
)

LABELS = ["favor", "against", "none"]
FAVOR, AGAINST = 0, 1
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sklearn-eval.json"


def scores(gold: list[int], pred: list[int]) -> dict:
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=[0, 1, 2], zero_division=0)
    return {
        "precision": p.tolist(),
        "recall": r.tolist(),
        "f1": f.tolist(),
        "support": s.tolist(),
        "accuracy": accuracy_score(gold, pred),
        "macro_f1": f1_score(gold, pred, labels=[0, 1, 2], average="macro", zero_division=0),
        "f_avg": (f[FAVOR] + f[AGAINST]) / 2,
        "confusion": confusion_matrix(gold, pred, labels=[0, 1, 2]).tolist(),
    }


def calibration(gold: np.ndarray, probs: np.ndarray, n_bins: int) -> dict:
    pred = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    correct = (pred == gold).astype(int)
    prob_true, prob_pred = calibration_curve(correct, confidence, n_bins=n_bins)
    # calibration_curve's own binning, to weight each non-empty bin by its size.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], confidence), minlength=n_bins)
    nonempty = counts[counts > 0]
    ece = float(np.sum(nonempty / len(gold) * np.abs(prob_true - prob_pred)))
    onehot = np.eye(3)[gold]
    brier = float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    return {
        "log_loss": float(log_loss(gold, probs, labels=[0, 1, 2])),
        "n_bins": n_bins,
        "counts": counts.tolist(),
        "prob_true": prob_true.tolist(),
        "prob_pred": prob_pred.tolist(),
        "ece": ece,
        "brier": brier,
    }


def metrics_case() -> dict:
    rng = np.random.default_rng(2016)
    targets = ["nato", "land", "burden"]
    records = []
    for i in range(40):
        sentence = f"s{i // 2}"  # two targets per sentence
        target = targets[(i // 2 + i % 2) % 3]
        gold = int(rng.choice(3, p=[0.3, 0.45, 0.25]))
        concentration = np.ones(3)
        concentration[gold] += 3.0 if rng.random() < 0.7 else 0.0
        probs = rng.dirichlet(concentration)
        records.append({"id": sentence, "target": target, "gold": gold, "pred": int(probs.argmax()), "probs": probs.tolist()})
    gold = [r["gold"] for r in records]
    pred = [r["pred"] for r in records]
    per_target = {}
    for t in targets:
        rows = [r for r in records if r["target"] == t]
        per_target[t] = scores([r["gold"] for r in rows], [r["pred"] for r in rows])
    probs = np.array([r["probs"] for r in records])
    return {
        "records": records,
        "pooled": scores(gold, pred),
        "targets": per_target,
        "mean_over_targets": {
            "f_avg": float(np.mean([s["f_avg"] for s in per_target.values()])),
            "macro_f1": float(np.mean([s["macro_f1"] for s in per_target.values()])),
        },
        "calibration": calibration(np.array(gold), probs, 10),
    }


TRAIN = [
    ("Ukraine must join NATO now", 0),
    ("NATO membership is the only real guarantee for Ukraine", 0),
    ("The door to NATO must stay open for Ukraine", 0),
    ("Ukraine belongs in NATO, and soon", 0),
    ("Invite Ukraine to NATO at the summit", 0),
    ("Membership for Ukraine is the only guarantee of peace", 0),
    ("NATO membership for Ukraine is unrealistic", 1),
    ("Ukraine joining NATO is off the table", 1),
    ("Guarantees outside NATO, not membership", 1),
    ("Membership is premature and will not happen", 1),
    ("NATO will never admit Ukraine during a war", 1),
    ("Forget NATO membership, it is unrealistic", 1),
    ("The talks took place in Brussels on Monday", 2),
    ("Ministers met to discuss the weather and trade", 2),
    ("The meeting ended late in the evening", 2),
    ("Security talks will continue next week", 2),
    ("Reporters waited outside the hall on Monday", 2),
    ("A new round of talks is planned", 2),
]
TEST = [
    ("Ukraine must be invited to join NATO", 0),
    ("NATO membership is the only real guarantee", 0),
    ("Membership is unrealistic and off the table", 1),
    ("NATO will not admit Ukraine, forget it", 1),
    ("The ministers met in Brussels", 2),
    ("Talks will continue on Monday", 2),
    ("Words never seen before", 2),
]


def tfidf_lr_case() -> dict:
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectorizer.fit_transform([t for t, _ in TRAIN])
    x_test = vectorizer.transform([t for t, _ in TEST])
    y_train = [y for _, y in TRAIN]
    y_test = [y for _, y in TEST]
    model = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x_train, y_train)
    probs = model.predict_proba(x_test)
    pred = model.predict(x_test)
    return {
        "C": 1.0,
        "train": [{"text": t, "label": y} for t, y in TRAIN],
        "test": [{"text": t, "label": y} for t, y in TEST],
        "feature_names": vectorizer.get_feature_names_out().tolist(),
        "idf": vectorizer.idf_.tolist(),
        "test_tfidf": x_test.toarray().tolist(),
        "test_probs": probs.tolist(),
        "test_pred": pred.tolist(),
        "accuracy": accuracy_score(y_test, pred),
    }


def main() -> None:
    fixture = {
        "generator": "scripts/make_sklearn_fixture.py",
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "labels": LABELS,
        "metrics": metrics_case(),
        "tfidf_lr": tfidf_lr_case(),
    }
    OUT.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
