"""Frozen-encoder probe: does the frozen recipe gain from more than the last
layer? (A lead for the recipe, not what `stancekit train --freeze-encoder` does.)

The frozen recipe (`src/training/head_fit.rs`) fits one logistic regression per
target, C = 1, balanced class weights, on the L2-normalised mean pool of the
encoder's last layer over the sentence alone. This script compares that
feature with features from the last K layers, in the layouts of the BERT
paper's feature-based study (Devlin et al. 2019, Table 7, whose best was the
last four layers concatenated):

  last    the recipe's feature (it reproduces stancekit's dev and TweetEval scores)
  mean2   the mean of the last 2 layers' pools, L2-normalised (mean4: 4 layers)
  cat2    the last 2 layers' pools, each L2-normalised, concatenated (cat4: 4)
  cat2-2  the last and the third-last, so concatenated

Protocols: the project (fit on datasets/train.jsonl, score dev.jsonl);
TweetEval (fit on train + val, score test; `--val`: fit on train, score val);
P-Stance (fit on train, score test; `--val`: score val). With `--against L`,
each layout's F_avg difference from L gets a 95 % bootstrap interval over the
scored pairs (1,000 resamples) and the share of labels that change.

  python scripts/probe_layers.py encode MODEL_DIR OUT     # OUT.npy + OUT.json; ~24 min for MPNet on 2 cores
  python scripts/probe_layers.py score OUT [--c 1,4] [--val] [--against last]

Needs torch, transformers, scikit-learn; TWEETEVAL (default
../shared/datasets/tweeteval-stance) and PSTANCE (a folder with P-Stance's
raw_{train,val,test}_{trump,biden,bernie}.csv).
"""
import argparse, csv, json, os, sys, warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import probe_frozen as pf  # noqa: E402  (the project's and TweetEval's loaders)

LAYERS = 4
LAYOUTS = {
    "last": lambda f: l2(f[0]),
    "mean2": lambda f: l2(f[:2].mean(0)),
    "mean4": lambda f: l2(f[:4].mean(0)),
    "cat2": lambda f: np.concatenate([l2(f[k]) for k in range(2)], 1),
    "cat4": lambda f: np.concatenate([l2(f[k]) for k in range(4)], 1),
    "cat2-2": lambda f: np.concatenate([l2(f[0]), l2(f[2])], 1),
}


def l2(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def load_pstance():
    root = Path(os.environ["PSTANCE"])
    splits = {}
    for split in ("train", "val", "test"):
        rows = []
        for t in ("trump", "biden", "bernie"):
            with open(root / f"raw_{split}_{t}.csv", encoding="utf-8") as f:
                rows += [(r["Tweet"], t, r["Stance"].lower()) for r in csv.DictReader(f)]
        splits[split] = rows
    return splits


def encode(model_dir, out):
    import torch
    from transformers import AutoModel, AutoTokenizer
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
    data = {"project": pf.load_project()["splits"], "tweeteval": pf.load_tweeteval()["splits"],
            "pstance": load_pstance()}
    texts = sorted({x for d in data.values() for rows in d.values() for x, _, _ in rows})
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
    feats = np.zeros((LAYERS, len(texts), model.config.hidden_size), np.float32)
    with torch.inference_mode():
        for s in range(0, len(order), 32):
            idx = order[s:s + 32]
            enc = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = model(**enc, output_hidden_states=True).hidden_states
            mask = enc["attention_mask"].unsqueeze(-1).float()
            for k in range(LAYERS):
                feats[k, idx] = ((hidden[-1 - k] * mask).sum(1) / mask.sum(1)).numpy()
    np.save(f"{out}.npy", feats)
    Path(f"{out}.json").write_text(json.dumps({"texts": texts, "data": data}))


def fit_predict(feats, index, rows, erows, layout, c):
    from sklearn.linear_model import LogisticRegression
    x = LAYOUTS[layout](feats[:, [index[r[0]] for r in rows]])
    xe = LAYOUTS[layout](feats[:, [index[r[0]] for r in erows]])
    y, t = np.array([r[2] for r in rows]), np.array([r[1] for r in rows])
    te = np.array([r[1] for r in erows])
    pred = np.empty(len(erows), dtype=object)
    for g in sorted(set(t)):
        lr = LogisticRegression(C=c, class_weight="balanced", max_iter=5000).fit(x[t == g], y[t == g])
        pred[te == g] = lr.predict(xe[te == g])
    return pred


def f_avg(y, pred):
    from sklearn.metrics import f1_score
    return 100 * f1_score(y, pred, labels=["favor", "against"], average=None, zero_division=0).mean()


def score(out, cs, val, against):
    feats, meta = np.load(f"{out}.npy"), json.loads(Path(f"{out}.json").read_text())
    index = {x: i for i, x in enumerate(meta["texts"])}
    protocols = {"project": (["train"], "dev"), "tweeteval": (["train"] if val else ["train", "val"], "val" if val else "test"),
                 "pstance": (["train"], "val" if val else "test")}
    rng = np.random.default_rng(0)
    sets = {ds: ([r for s in fit for r in meta["data"][ds][s]], meta["data"][ds][ev])
            for ds, (fit, ev) in protocols.items()}
    for c in cs:
        # The layout compared against, fitted once per set and C.
        bases = {ds: fit_predict(feats, index, rows, erows, against, c)
                 for ds, (rows, erows) in sets.items()} if against else {}
        for layout in LAYOUTS:
            cells = []
            for ds, (rows, erows) in sets.items():
                y = np.array([r[2] for r in erows])
                pred = fit_predict(feats, index, rows, erows, layout, c)
                cell = f"{ds} {f_avg(y, pred):5.1f}"
                if against and layout != against:
                    base = bases[ds]
                    boot = [f_avg(y[i], pred[i]) - f_avg(y[i], base[i])
                            for i in (rng.integers(0, len(y), len(y)) for _ in range(1000))]
                    lo, hi = np.percentile(boot, [2.5, 97.5])
                    cell += f" ({f_avg(y, pred) - f_avg(y, base):+.1f} [{lo:+.1f}, {hi:+.1f}], {np.mean(pred != base):.1%} changed)"
                cells.append(cell)
            print(f"C={c:<5} {layout:7} " + "  ".join(cells), flush=True)


def main():
    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode"); e.add_argument("model_dir"); e.add_argument("out")
    s = sub.add_parser("score"); s.add_argument("out"); s.add_argument("--c", default="1")
    s.add_argument("--val", action="store_true"); s.add_argument("--against")
    a = ap.parse_args()
    if a.cmd == "encode":
        encode(a.model_dir, a.out)
    else:
        score(a.out, [float(c) for c in a.c.split(",")], a.val, a.against)


if __name__ == "__main__":
    main()
