#!/usr/bin/env python3
"""Load a stancekit run folder with transformers and compare its
probabilities with those of `stancekit predict` on the same pairs.

Usage: python3 scripts/check_transformers_load.py RUN_DIR PREDICTIONS.jsonl
(PREDICTIONS.jsonl from `stancekit predict --model RUN_DIR ...`; needs torch,
transformers and safetensors.)

A `--pooling cls` run is transformers' own BertForSequenceClassification (or
MPNetForSequenceClassification). A `--pooling mean` run (the fine-tuning
default) reads the masked mean of the last hidden state instead of the first
token through one linear layer (`classifier.weight`, `classifier.bias`), which
transformers has no class for (BertForSequenceClassification runs a pooler
first, MPNetForSequenceClassification two layers on `<s>`): the folder says
`BertModel` or `MPNetModel`, loads as the encoder, and `logits()` below
shows the three lines that pool it, with the layer read from the weights
file (a folder written before stancekit said so, with a BERT class, loads
the same way here). A frozen-recipe run
(`"head": "per_target"`) loads as the encoder; its `classifier.weight` holds
one [labels, hidden] block per target (in the order of the `targets` section),
read over the normalised mean of the sentence alone; with `feature_layers` N
in the section (`--feature-layers N`), over the last N layers' normalised
means, concatenated, the last layer first ([labels, N × hidden] blocks)."""
import json, sys
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
folder = sys.argv[1]
cfg = json.load(open(f"{folder}/config.json"))
spec = cfg["stancekit"]
targets = spec["targets"]
labels = spec["labels"]
per_target = spec.get("head") == "per_target"
# Only a `cls` head is a transformers class; the others load as the encoder (as their
# `architectures` says, and as folders written before it said so are read too).
encoder_only = per_target or spec.get("pooling", "cls") == "mean"
tok = AutoTokenizer.from_pretrained(folder)
if encoder_only:
    model = AutoModel.from_pretrained(folder).eval()
    head = load_file(f"{folder}/model.safetensors")
    weight, bias = head["classifier.weight"], head["classifier.bias"]
else:
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
pooling = spec.get("pooling", "cls")


def mean(hidden, enc):
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def logits(target, text):
    if per_target:
        enc = tok(text, truncation=True, max_length=spec["max_length"], return_tensors="pt")
        hidden = model(**enc, output_hidden_states=True).hidden_states
        x = torch.cat([torch.nn.functional.normalize(mean(hidden[-1 - k], enc), dim=-1)
                       for k in range(spec.get("feature_layers", 1))], -1)
        block = list(targets).index(target) * len(labels)
        return x @ weight[block:block + len(labels)].T + bias[block:block + len(labels)]
    enc = tok(targets[target], text, truncation="only_second", max_length=spec["max_length"], return_tensors="pt")
    if pooling == "cls":
        return model(**enc).logits
    if encoder_only:
        return mean(model(**enc).last_hidden_state, enc) @ weight.T + bias
    return model.classifier(mean(model.base_model(**enc).last_hidden_state, enc))


worst = 0.0
for line in open(sys.argv[2]):
    row = json.loads(line)
    with torch.no_grad():
        p = torch.softmax(logits(row["target"], row["text"]), -1)[0]
    ours = [row["probs"][label] for label in labels]
    worst = max(worst, max(abs(a - b) for a, b in zip(p.tolist(), ours)))
print("pooling", pooling, "head", spec.get("head", "joint"), "labels", labels,
      "rows", sum(1 for _ in open(sys.argv[2])), "max abs prob diff", worst)
