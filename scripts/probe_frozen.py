"""Frozen-encoder probe: which input and head layout should the default
"frozen encoder + logistic regression" recipe use?

The encoder is never trained. Its mean-pooled features feed a multinomial
logistic regression (sklearn LogisticRegression, lbfgs, max_iter 5000; with
three classes lbfgs fits the multinomial loss). Four layouts are compared:

  A    pair input: the tokenizer's pair encoding of (target description,
       sentence), as the model reads pairs (BERT: [CLS] a [SEP] b [SEP] with
       token types; MPNet: <s> a </s></s> b </s>), only the sentence truncated
       to 128 tokens (stancekit's pair default); masked mean over all tokens,
       no L2 normalisation; ONE joint LR over all targets.
  A+std  A with a StandardScaler (fitted on the training rows) before the LR.
  B    the same pair features, L2-normalised; one joint LR.
  C    the sentence alone, encoded with sentence-transformers (mean pooling and
       L2 normalisation as the model's modules.json says); one LR PER TARGET.
  D    the sentence alone, one joint LR that ignores the target (a floor).
  E    (extra) A's pair features with one LR per target, to tell the effect
       of the input (pair vs sentence) from that of the head (joint vs per target).

Each layout is fitted for C in {0.25, 1, 4, 16} x class_weight in {None,
"balanced"}. Scores: macro-F1 over favor/against/none pooled over all pairs;
F_avg = mean of F1(favor) and F1(against), pooled (the SemEval-2016 metric);
and the mean over targets of per-target macro-F1.

Protocols:
  project    fit on datasets/train.jsonl, score datasets/dev.jsonl; the
             setting is chosen on dev itself (there is no other split), so
             its "selected" score is optimistic.
  tweeteval  for every setting: fit on train, score val; refit on train+val,
             score test. The selected setting is the best on val.
             Texts lose the trailing "#SemST" marker, as stancekit's reader does.
  ukp        UKP Sentential Argument Mining corpus (Stab et al. 2018; 8 topics,
             Argument_for/Argument_against/NoArgument -> favor/against/none),
             its own train/val/test split (by default a seeded random sample of
             400/100/200 sentences per topic, see UKP_PER_TOPIC), same
             protocol as tweeteval.
The JSON keeps every setting's scores, so a setting can also be chosen by its
average over datasets and encoders (`summarize`).

Embeddings are cached as .npy under /work/scratch/probe-cache/ (keyed by
model, feature kind and a hash of the inputs); the wall seconds of each
embedding pass are stored next to them and reported again on cached reruns.

Usage (CPU only; HF_HUB_OFFLINE=1 recommended):
  python scripts/probe_frozen.py run DATASET MODEL_DIR OUT.json
      DATASET: project | tweeteval | ukp
  python scripts/probe_frozen.py summarize OUT.json... [--markdown FILE]
Environment: TWEETEVAL (default ../shared/datasets/tweeteval-stance),
UKP (default /work/scratch/stance3/ukp), PROBE_CACHE, PROBE_THREADS (2).
Never copy TweetEval or UKP into the repository.
"""

import argparse
import csv
import hashlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

THREADS = int(os.environ.get("PROBE_THREADS", "2"))
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, str(THREADS))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("PROBE_CACHE", "/work/scratch/probe-cache"))
LABELS = ["favor", "against", "none"]
CS = [0.25, 1.0, 4.0, 16.0]
WEIGHTS = [None, "balanced"]
PAIR_MAX_LENGTH = 128
BATCH = 32

# Descriptions written for this probe (the topic as UKP names it).
UKP_TARGETS = {
    "abortion": "Abortion",
    "cloning": "Cloning",
    "death_penalty": "The death penalty",
    "gun_control": "Gun control",
    "marijuana_legalization": "Marijuana legalization",
    "minimum_wage": "Minimum wage",
    "nuclear_energy": "Nuclear energy",
    "school_uniforms": "School uniforms",
}
# UKP has 25,487 sentences; on two shared CPU cores all-mpnet-base-v2 embeds about 8 a second, so
# by default each topic keeps a uniform random sample of 400 train, 100 val and 200 test sentences
# (UKP_PER_TOPIC="train,val,test" counts, or "all").
_ukp_n = os.environ.get("UKP_PER_TOPIC", "400,100,200")
UKP_PER_TOPIC = {} if _ukp_n == "all" else dict(zip(("train", "val", "test"), map(int, _ukp_n.split(","))))
UKP_SEED = 13
UKP_LABELS = {"Argument_for": "favor", "Argument_against": "against", "NoArgument": "none"}


# ---------------------------------------------------------------- data

def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def strip_semst(text):
    text = text.rstrip()
    if text.endswith("#SemST"):
        text = text[: -len("#SemST")].rstrip()
    return text


def load_project():
    targets = json.loads((REPO / "datasets/targets.json").read_text())["targets"]
    splits = {}
    for name in ("train", "dev"):
        recs = read_jsonl(REPO / f"datasets/{name}.jsonl")
        splits[name] = [(r["text"], r["target"], r["label"]) for r in recs]
    return {"targets": targets, "targets_file": "datasets/targets.json", "splits": splits,
            "select": ("train", "dev"), "final": None}


def load_tweeteval():
    root = Path(os.environ.get("TWEETEVAL", REPO.parent / "shared/datasets/tweeteval-stance"))
    mapping = {}
    for line in (root / "mapping.txt").read_text().splitlines():
        if line.strip():
            k, v = line.split("\t")
            mapping[k.strip()] = v.strip()
    assert mapping == {"0": "none", "1": "against", "2": "favor"}, mapping
    all_targets = json.loads((REPO / "datasets/targets.json").read_text())["targets"]
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    targets = {t: all_targets[t] for t in names}
    splits = {}
    for split in ("train", "val", "test"):
        rows = []
        for t in names:
            texts = (root / t / f"{split}_text.txt").read_text(encoding="utf-8").split("\n")
            labels = (root / t / f"{split}_labels.txt").read_text(encoding="utf-8").split("\n")
            texts, labels = [x for x in texts if x.strip()], [x for x in labels if x.strip()]
            assert len(texts) == len(labels), (t, split, len(texts), len(labels))
            rows += [(strip_semst(x), t, mapping[y.strip()]) for x, y in zip(texts, labels)]
        splits[split] = rows
    return {"targets": targets, "targets_file": "datasets/targets.json", "splits": splits,
            "select": ("train", "val"), "final": (("train", "val"), "test")}


def load_ukp():
    root = Path(os.environ.get("UKP", "/work/scratch/stance3/ukp"))
    splits = {"train": [], "val": [], "test": []}
    for t in UKP_TARGETS:
        per_split = {"train": [], "val": [], "test": []}
        with open(root / f"{t}.tsv", encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                per_split[r["set"]].append((r["sentence"], t, UKP_LABELS[r["annotation"]]))
        for split, rows in per_split.items():
            n = UKP_PER_TOPIC.get(split)
            if n is not None and n < len(rows):  # a uniform random sample per topic and split, order kept
                keep = np.sort(np.random.default_rng(UKP_SEED).choice(len(rows), n, replace=False))
                rows = [rows[i] for i in keep]
            splits[split] += rows
    return {"targets": dict(UKP_TARGETS), "targets_file": "(written in probe_frozen.py)", "splits": splits,
            "select": ("train", "val"), "final": (("train", "val"), "test")}


LOADERS = {"project": load_project, "tweeteval": load_tweeteval, "ukp": load_ukp}


# ---------------------------------------------------------------- embeddings

class Encoder:
    def __init__(self, model_dir):
        self.model_dir = Path(model_dir)
        self.name = self.model_dir.name
        self._hf = None
        self._st = None

    def hf(self):
        if self._hf is None:
            from transformers import AutoModel, AutoTokenizer
            tok = AutoTokenizer.from_pretrained(self.model_dir)
            model = AutoModel.from_pretrained(self.model_dir).eval()
            self._hf = (tok, model)
        return self._hf

    def st(self):
        if self._st is None:
            from sentence_transformers import SentenceTransformer
            self._st = SentenceTransformer(str(self.model_dir), device="cpu")
        return self._st

    def pair_features(self, pairs):
        """Unnormalised masked mean over all tokens of the (description, sentence) pair."""
        import torch
        tok, model = self.hf()
        lengths = [len(tok(a, b, truncation="only_second", max_length=PAIR_MAX_LENGTH)["input_ids"])
                   for a, b in pairs]
        order = np.argsort(lengths, kind="stable")
        out = np.zeros((len(pairs), model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(pairs), BATCH):
                idx = order[start:start + BATCH]
                enc = tok([pairs[i][0] for i in idx], [pairs[i][1] for i in idx], truncation="only_second",
                          max_length=PAIR_MAX_LENGTH, padding=True, return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[idx] = mean.float().numpy()
        return out

    def sentence_features(self, texts):
        return self.st().encode(list(texts), batch_size=BATCH, convert_to_numpy=True,
                                show_progress_bar=False).astype(np.float32)

    def describe_pair_input(self, a, b):
        tok, _ = self.hf()
        enc = tok(a, b, truncation="only_second", max_length=PAIR_MAX_LENGTH)
        return {"tokens": tok.convert_ids_to_tokens(enc["input_ids"]),
                "token_type_ids": enc.get("token_type_ids")}


def cached(encoder, kind, items, tag):
    """Features of `items` (kind: pair|sentence), from the cache or computed; returns (X, seconds, hit)."""
    h = hashlib.sha1(json.dumps([encoder.name, kind, PAIR_MAX_LENGTH if kind == "pair" else None, items],
                                ensure_ascii=False).encode()).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    npy = CACHE / f"{encoder.name}.{tag}.{kind}.{h}.npy"
    meta = npy.with_suffix(".json")
    if npy.exists() and meta.exists():
        return np.load(npy), json.loads(meta.read_text())["seconds"], True
    t0 = time.perf_counter()
    if kind == "pair":
        X = encoder.pair_features(items)
    else:
        X = encoder.sentence_features(items)
    seconds = time.perf_counter() - t0
    np.save(npy, X)
    meta.write_text(json.dumps({"seconds": seconds, "n": len(items), "model": encoder.name, "kind": kind,
                                "threads": THREADS, "batch": BATCH}))
    return X, seconds, False


def featurize(encoder, dataset_name, data):
    """Per split: pair features for every row, sentence features for every row (unique texts encoded once)."""
    feats, timings = {}, []
    targets = data["targets"]
    for split, rows in data["splits"].items():
        pairs = sorted({(targets[t], x) for x, t, _ in rows})
        texts = sorted({x for x, _, _ in rows})
        Xp, sp, hp = cached(encoder, "pair", [list(p) for p in pairs], f"{dataset_name}-{split}")
        Xs, ss, hs = cached(encoder, "sentence", texts, f"{dataset_name}-{split}")
        pi = {p: i for i, p in enumerate(pairs)}
        si = {x: i for i, x in enumerate(texts)}
        feats[split] = {
            "pair": Xp[[pi[(targets[t], x)] for x, t, _ in rows]],
            "sentence": Xs[[si[x] for x, _, _ in rows]],
            "target": np.array([t for _, t, _ in rows]),
            "y": np.array([y for _, _, y in rows]),
        }
        timings += [
            {"split": split, "kind": "pair", "n": len(pairs), "seconds": round(sp, 2), "cached": hp},
            {"split": split, "kind": "sentence", "n": len(texts), "seconds": round(ss, 2), "cached": hs},
        ]
        print(f"  {split}: {len(pairs)} pairs {sp:.1f}s{' (cached)' if hp else ''}, "
              f"{len(texts)} sentences {ss:.1f}s{' (cached)' if hs else ''}", file=sys.stderr, flush=True)
    return feats, timings


# ---------------------------------------------------------------- heads and scores

def l2(X):
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def make_lr(c, weight, scale):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    lr = LogisticRegression(C=c, class_weight=weight, solver="lbfgs", max_iter=5000)
    return make_pipeline(StandardScaler(), lr) if scale else lr


LAYOUTS = {
    # name: (feature kind, transform, per-target head?, scaler?)
    "A": ("pair", None, False, False),
    "A+std": ("pair", None, False, True),
    "B": ("pair", l2, False, False),
    "C": ("sentence", None, True, False),
    "D": ("sentence", None, False, False),
    "E": ("pair", None, True, False),  # extra: pair features, one LR per target (separates input from head)
}


def stack(feats, splits, key):
    return np.concatenate([feats[s][key] for s in splits])


def fit_predict(layout, c, weight, feats, fit_splits, eval_split):
    kind, transform, per_target, scale = LAYOUTS[layout]
    Xtr, ytr, ttr = stack(feats, fit_splits, kind), stack(feats, fit_splits, "y"), stack(feats, fit_splits, "target")
    Xev, tev = feats[eval_split][kind], feats[eval_split]["target"]
    if transform is not None:
        Xtr, Xev = transform(Xtr), transform(Xev)
    pred = np.empty(len(Xev), dtype=object)
    t0 = time.perf_counter()
    n_iter, warned = [], False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        groups = sorted(set(ttr)) if per_target else [None]
        for g in groups:
            tr = ttr == g if g is not None else np.ones(len(Xtr), bool)
            ev = tev == g if g is not None else np.ones(len(Xev), bool)
            model = make_lr(c, weight, scale).fit(Xtr[tr], ytr[tr])
            lr = model[-1] if scale else model
            n_iter.append(int(np.max(lr.n_iter_)))
            if ev.any():
                pred[ev] = model.predict(Xev[ev])
        warned = any("converge" in str(w.message).lower() for w in caught)
    return pred, time.perf_counter() - t0, max(n_iter), warned


def scores(y, pred, targets):
    from sklearn.metrics import f1_score
    f1 = f1_score(y, pred, labels=LABELS, average=None, zero_division=0)
    per_target = {}
    for t in sorted(set(targets)):
        m = targets == t
        ft = f1_score(y[m], pred[m], labels=LABELS, average=None, zero_division=0)
        per_target[t] = {"macro_f1": float(np.mean(ft)), "f_avg": float((ft[0] + ft[1]) / 2)}
    return {
        "macro_f1": float(np.mean(f1)),
        "f_avg": float((f1[0] + f1[1]) / 2),
        "f1": dict(zip(LABELS, map(float, f1))),
        "mean_target_macro_f1": float(np.mean([v["macro_f1"] for v in per_target.values()])),
        "per_target": per_target,
    }


def run(args):
    import torch
    torch.set_num_threads(THREADS)
    data = LOADERS[args.dataset]()
    encoder = Encoder(args.model)
    print(f"{args.dataset} / {encoder.name}: "
          + ", ".join(f"{k} {len(v)}" for k, v in data["splits"].items()), file=sys.stderr, flush=True)
    t_all = time.perf_counter()
    feats, timings = featurize(encoder, args.dataset, data)
    first = next(iter(data["targets"].values()))
    example = encoder.describe_pair_input(first, "An example sentence.")
    sel_fit, sel_eval = data["select"]
    results = []
    for layout in LAYOUTS:
        for c in CS:
            for weight in WEIGHTS:
                row = {"layout": layout, "C": c, "class_weight": weight}
                pred, sec, it, warn = fit_predict(layout, c, weight, feats, [sel_fit], sel_eval)
                row["select"] = {"fit": [sel_fit], "eval": sel_eval, "fit_seconds": round(sec, 3), "n_iter": it,
                                 "convergence_warning": warn,
                                 **scores(feats[sel_eval]["y"], pred, feats[sel_eval]["target"])}
                if data["final"] is not None:
                    fit_splits, test = data["final"]
                    pred, sec, it, warn = fit_predict(layout, c, weight, feats, list(fit_splits), test)
                    row["test"] = {"fit": list(fit_splits), "eval": test, "fit_seconds": round(sec, 3),
                                   "n_iter": it, "convergence_warning": warn,
                                   **scores(feats[test]["y"], pred, feats[test]["target"])}
                results.append(row)
                s = row["select"]
                msg = (f"  {layout:5s} C={c:<5} cw={str(weight):8s} {sel_eval}: mF1 {s['macro_f1']:.4f} "
                       f"F_avg {s['f_avg']:.4f} ({s['fit_seconds']:.1f}s)")
                if "test" in row:
                    msg += (f" | test: mF1 {row['test']['macro_f1']:.4f} F_avg {row['test']['f_avg']:.4f} "
                            f"({row['test']['fit_seconds']:.1f}s)")
                print(msg, file=sys.stderr, flush=True)
    selected = {}
    for layout in LAYOUTS:
        rows = [r for r in results if r["layout"] == layout]
        for metric in ("macro_f1", "f_avg"):
            best = max(rows, key=lambda r: r["select"][metric])  # ties: the first (smaller C, None)
            selected.setdefault(layout, {})[f"by_{metric}"] = {
                "C": best["C"], "class_weight": best["class_weight"],
                "select": {k: best["select"][k] for k in ("macro_f1", "f_avg", "mean_target_macro_f1")},
                "score": {k: best.get("test", best["select"])[k] for k in ("macro_f1", "f_avg", "mean_target_macro_f1")},
            }
    out = {
        "dataset": args.dataset,
        "model": encoder.name,
        "model_dir": str(args.model),
        "targets_file": data["targets_file"],
        "targets": data["targets"],
        "sizes": {k: len(v) for k, v in data["splits"].items()},
        "ukp_per_topic": (UKP_PER_TOPIC or "all") if args.dataset == "ukp" else None,
        "protocol": {"select": {"fit": [sel_fit], "eval": sel_eval},
                     "final": None if data["final"] is None else {"fit": list(data["final"][0]), "eval": data["final"][1]}},
        "pair_max_length": PAIR_MAX_LENGTH,
        "pair_input_example": example,
        "threads": THREADS,
        "embedding_timings": timings,
        "results": results,
        "selected": selected,
        "wall_seconds": round(time.perf_counter() - t_all, 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out} ({out['wall_seconds']}s)", file=sys.stderr)


# ---------------------------------------------------------------- summary

def summarize(args):
    runs = [json.loads(Path(p).read_text()) for p in args.files]
    lines = []
    p = lines.append
    p("## Selected setting per dataset x encoder x layout (chosen on the selection split by macro-F1)\n")
    p("| dataset | encoder | layout | C | class_weight | sel mF1 | sel F_avg | score mF1 | score F_avg | "
      "score mean-target mF1 |")
    p("|---|---|---|---:|---|---:|---:|---:|---:|---:|")
    for r in runs:
        for layout, sel in r["selected"].items():
            s = sel["by_macro_f1"]
            p(f"| {r['dataset']} | {r['model']} | {layout} | {s['C']} | {s['class_weight']} | "
              f"{100 * s['select']['macro_f1']:.1f} | {100 * s['select']['f_avg']:.1f} | "
              f"{100 * s['score']['macro_f1']:.1f} | {100 * s['score']['f_avg']:.1f} | "
              f"{100 * s['score']['mean_target_macro_f1']:.1f} |")
    p("\n(score = dev for project, i.e. the same split the setting was chosen on; test for tweeteval and ukp, "
      "after refitting on train+val)\n")
    p("## Embedding wall seconds\n")
    p("| dataset | encoder | pair: n / s | sentence: n / s |")
    p("|---|---|---|---|")
    for r in runs:
        tp = [t for t in r["embedding_timings"] if t["kind"] == "pair"]
        ts = [t for t in r["embedding_timings"] if t["kind"] == "sentence"]
        p(f"| {r['dataset']} | {r['model']} | {sum(t['n'] for t in tp)} / {sum(t['seconds'] for t in tp):.0f} | "
          f"{sum(t['n'] for t in ts)} / {sum(t['seconds'] for t in ts):.0f} |")
    p("\n## Fixed settings averaged over all dataset x encoder runs\n")
    p("For each layout and setting: mean over runs of the selection-split score and of the final score "
      "(dev for project, test otherwise). ★ = best by mean selection-split macro-F1.\n")
    p("| layout | C | class_weight | mean sel mF1 | mean sel F_avg | mean score mF1 | mean score F_avg | "
      "max fit s |")
    p("|---|---:|---|---:|---:|---:|---:|---:|")
    best_overall = None
    for layout in LAYOUTS:
        rows = []
        for c in CS:
            for w in WEIGHTS:
                sel, fin, fit = [], [], []
                for r in runs:
                    (row,) = [x for x in r["results"] if x["layout"] == layout and x["C"] == c and x["class_weight"] == w]
                    sel.append(row["select"])
                    fin.append(row.get("test", row["select"]))
                    fit.append(max(row["select"]["fit_seconds"], row.get("test", {}).get("fit_seconds", 0)))
                rows.append((c, w, np.mean([s["macro_f1"] for s in sel]), np.mean([s["f_avg"] for s in sel]),
                             np.mean([s["macro_f1"] for s in fin]), np.mean([s["f_avg"] for s in fin]), max(fit)))
        best = max(rows, key=lambda x: x[2])
        if best_overall is None or best[2] > best_overall[1][2]:
            best_overall = (layout, best)
        for x in rows:
            star = " ★" if x is best else ""
            p(f"| {layout} | {x[0]} | {x[1]}{star} | {100 * x[2]:.1f} | {100 * x[3]:.1f} | {100 * x[4]:.1f} | "
              f"{100 * x[5]:.1f} | {x[6]:.1f} |")
    p(f"\nBest fixed (layout, C, class_weight) by mean selection-split macro-F1: "
      f"{best_overall[0]}, C={best_overall[1][0]}, class_weight={best_overall[1][1]}")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="embed one dataset with one encoder and fit every layout and setting")
    r.add_argument("dataset", choices=sorted(LOADERS))
    r.add_argument("model", help="a sentence-transformers model folder, e.g. models/all-MiniLM-L6-v2")
    r.add_argument("out", help="output JSON path")
    s = sub.add_parser("summarize", help="tables over several `run` outputs")
    s.add_argument("files", nargs="+")
    s.add_argument("--markdown")
    args = ap.parse_args()
    {"run": run, "summarize": summarize}[args.cmd](args)


if __name__ == "__main__":
    main()
