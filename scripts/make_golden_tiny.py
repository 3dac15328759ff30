#!/usr/bin/env python3
"""Make the golden PyTorch reference fixture for a tiny random BERT.

Writes tests/fixtures/tiny-bert/ (relative to the repository root):

* ``config.json`` and ``model.safetensors`` -- a ``BertForSequenceClassification``
  (vocab 64, hidden 16, 2 layers, 2 heads, intermediate 32, 32 positions,
  2 token types, exact-erf GELU, 3 labels) saved with
  ``save_pretrained(..., safe_serialization=True)``; tensor names are
  ``bert.*`` and ``classifier.*``. Every parameter is re-initialised from
  N(0, 0.5) (LayerNorm weights from 1 + N(0, 0.5)) under ``torch.manual_seed(0)``
  so that no value is trivially 0 or 1.
* ``expected.json`` -- float32 reference values computed in eval mode (no
  dropout) on a fixed batch of two length-7 sequences (the second one padded):
  the encoder's ``last_hidden_state``, ``pooler_output``, masked
  ``mean_pooled``, the classifier ``logits``, the mean cross-entropy ``loss``
  for labels [0, 2], the gradients of that loss for a few parameters, and the
  parameter values after one ``torch.optim.AdamW`` step with the two parameter
  groups Hugging Face's Trainer builds (weight decay on everything except
  biases and LayerNorm weights).

All numbers are float32 values written as JSON floats (exact: each parses back
to the same float32). Runs on CPU, single-threaded, deterministic:

    /root/refvenv/bin/python scripts/make_golden_tiny.py

Needs torch, transformers and safetensors. What it shares with
scripts/make_golden_tiny_mpnet.py (the config fields both tiny models
have, the seed and re-initialisation, the save-and-check of
model.safetensors, Trainer's decay groups and the AdamW step, the JSON
layout) is in scripts/fixture_common.py.
"""

from __future__ import annotations

import torch
from transformers import BertConfig, BertForSequenceClassification

import fixture_common as fc
from fixture_common import LABELS, as_list

REPO_ROOT = fc.REPO_ROOT
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "tiny-bert"

INPUT_IDS = [[2, 10, 11, 12, 3, 20, 3], [2, 30, 31, 3, 40, 3, 0]]
TOKEN_TYPE_IDS = [[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1, 0]]
ATTENTION_MASK = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0]]

GRAD_NAMES = [
    "classifier.weight",
    "bert.pooler.dense.bias",
    "bert.encoder.layer.0.attention.self.query.weight",
    "bert.embeddings.LayerNorm.weight",
    "bert.encoder.layer.1.output.LayerNorm.bias",
    "bert.embeddings.word_embeddings.weight",
]
ADAMW_NAMES = [
    "classifier.weight",
    "classifier.bias",
    "bert.embeddings.LayerNorm.weight",
    "bert.encoder.layer.0.attention.self.query.weight",
]


def make_config() -> BertConfig:
    return BertConfig(
        **fc.TINY_CONFIG,
        max_position_embeddings=32,
        type_vocab_size=2,
        layer_norm_eps=1e-12,
    )


def main() -> None:
    fc.set_deterministic()

    model = fc.build_random_model(BertForSequenceClassification, make_config())
    fc.save_model(model, OUT_DIR, ("bert.", "classifier."))
    # Eager attention: the plain softmax(QK^T/sqrt(d) + mask) V formulation
    # (set after saving so that config.json stays the plain BertConfig).
    model.config._attn_implementation = "eager"

    model.eval()
    input_ids = torch.tensor(INPUT_IDS, dtype=torch.long)
    token_type_ids = torch.tensor(TOKEN_TYPE_IDS, dtype=torch.long)
    attention_mask = torch.tensor(ATTENTION_MASK, dtype=torch.long)
    labels = torch.tensor(LABELS, dtype=torch.long)

    model.zero_grad(set_to_none=True)
    enc = model.bert(
        input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
    )
    last_hidden = enc.last_hidden_state  # (2, 7, 16)
    pooled = enc.pooler_output  # (2, 16)
    mean_pooled = fc.masked_mean(last_hidden, attention_mask)
    logits = model.classifier(model.dropout(pooled))  # dropout is identity in eval
    loss = torch.nn.functional.cross_entropy(logits, labels)  # mean reduction

    # Same numbers through the public forward with labels.
    with torch.no_grad():
        ref = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            labels=labels,
        )
    assert torch.equal(ref.logits, logits.detach()), (ref.logits, logits)
    assert torch.allclose(ref.loss, loss.detach(), rtol=0, atol=1e-7)

    loss.backward()
    grads, decay, no_decay, after = fc.grads_and_adamw_step(model, GRAD_NAMES, ADAMW_NAMES)

    expected = {
        "description": (
            "Reference values for tests/fixtures/tiny-bert (BertForSequenceClassification, "
            "random N(0,0.5) init, seed 0), eval mode, float32; made by scripts/make_golden_tiny.py"
        ),
        "generator": fc.golden_generator(),
        "input_ids": INPUT_IDS,
        "token_type_ids": TOKEN_TYPE_IDS,
        "attention_mask": ATTENTION_MASK,
        "labels": LABELS,
        "last_hidden_state": as_list(last_hidden),
        "pooler_output": as_list(pooled),
        "mean_pooled": as_list(mean_pooled),
        "logits": as_list(logits),
        "loss": float(loss.detach()),
        "grads": grads,
        "adamw": fc.adamw_record(decay, no_decay),
        "after_adamw_step": after,
    }
    fc.dump_json(expected, OUT_DIR / "expected.json", depth=2)

    fc.print_files(OUT_DIR)
    print(f"loss = {float(loss.detach()):.6f}; logits = {as_list(logits)}")


if __name__ == "__main__":
    main()
