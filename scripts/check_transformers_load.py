#!/usr/bin/env python3
"""Load a stancekit run folder with transformers and compare its
probabilities with those of `stancekit predict` on the same pairs.

Usage: python3 scripts/check_transformers_load.py RUN_DIR PREDICTIONS.jsonl
(PREDICTIONS.jsonl from `stancekit predict --model RUN_DIR ...`; needs torch and transformers.)

A `--pooling cls` run is transformers' own BertForSequenceClassification. A
`--pooling mean` run (the default) loads the same way, but its head reads the
masked mean of the last hidden state instead of the pooler, which
transformers has no option for: `logits()` below shows the three lines that
do it."""
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
folder = sys.argv[1]
cfg = json.load(open(f"{folder}/config.json"))
targets = cfg["stancekit"]["targets"]
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
pooling = cfg["stancekit"].get("pooling", "cls")


def logits(enc):
    if pooling == "cls":
        return model(**enc).logits
    hidden = model.bert(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return model.classifier((hidden * mask).sum(1) / mask.sum(1))


worst = 0.0
for line in open(sys.argv[2]):
    row = json.loads(line)
    enc = tok(targets[row["target"]], row["text"], truncation="only_second", max_length=cfg["stancekit"]["max_length"], return_tensors="pt")
    with torch.no_grad():
        p = torch.softmax(logits(enc), -1)[0]
    ours = [row["probs"][model.config.id2label[i]] for i in range(len(p))]
    worst = max(worst, max(abs(a - b) for a, b in zip(p.tolist(), ours)))
print("pooling", pooling, "labels", model.config.id2label, "rows", sum(1 for _ in open(sys.argv[2])), "max abs prob diff", worst)
