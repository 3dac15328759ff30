#!/usr/bin/env python3
"""Make the golden PyTorch reference fixture for a tiny random MPNet.

The MPNet counterpart of scripts/make_golden_tiny.py. Writes
tests/fixtures/tiny-mpnet/ (relative to the repository root):

* ``config.json`` and ``model.safetensors`` -- an ``MPNetForSequenceClassification``
  (vocab 64, hidden 16, 2 layers, 2 heads, intermediate 32, 40 positions,
  32 relative-attention buckets, LayerNorm eps 1e-5, pad 1 / bos 0 / eos 2,
  exact-erf GELU, 3 labels) saved with
  ``save_pretrained(..., safe_serialization=True)``; tensor names are
  ``mpnet.*`` (no pooler: the sequence-classification model builds
  ``MPNetModel(add_pooling_layer=False)``), ``classifier.dense.*`` and
  ``classifier.out_proj.*``. Every parameter is re-initialised from N(0, 0.5)
  (LayerNorm weights from 1 + N(0, 0.5)) under ``torch.manual_seed(0)`` so that
  no value is trivially 0 or 1 (the padding rows of the word and position
  embeddings included).
* ``expected.json`` -- float32 reference values computed in eval mode (no
  dropout) on a fixed batch of two sequences in MPNet's pair layout
  ``<s> A </s></s> B </s>`` (<s>=0, </s>=2), the first 24 tokens long, the
  second 15 tokens right-padded with <pad>=1 to 24 (so relative distances up
  to 23 occur and the log-spaced buckets 8..11 are used): the
  ``position_ids`` MPNet derives from the input ids (padding -> 1, tokens ->
  2, 3, ...), the [seq, seq] ``relative_position_bucket`` matrix (row i =
  query, column j = key), the encoder's ``last_hidden_state``, masked
  ``mean_pooled``, the classification head's ``logits`` (dense -> tanh ->
  out_proj on the first token), the mean cross-entropy ``loss`` for labels
  [0, 2], the gradients of that loss for a few parameters, and the parameter
  values after one ``torch.optim.AdamW`` step with the two parameter groups
  Hugging Face's Trainer builds (weight decay on everything except biases and
  LayerNorm weights; note that ``mpnet.encoder.relative_attention_bias.weight``
  contains "bias" and so is NOT decayed by the Trainer).

All numbers are float32 values written as JSON floats (exact: each parses back
to the same float32). Runs on CPU, single-threaded, deterministic:

    /root/refvenv/bin/python scripts/make_golden_tiny_mpnet.py

Needs torch, transformers and safetensors. What it shares with
scripts/make_golden_tiny.py (the config fields both tiny models
have, the seed and re-initialisation, the save-and-check of
model.safetensors, Trainer's decay groups and the AdamW step, the JSON
layout) is in scripts/fixture_common.py.

Upstream code mirrored by the Rust side (transformers 5.24.0,
transformers/models/mpnet/modeling_mpnet.py; the script prints the line
numbers of the installed copy):

* ``MPNetEmbeddings.forward`` (l. 70-94): position ids from
  ``create_position_ids_from_input_ids(input_ids, padding_idx=1)`` -- note
  ``padding_idx`` is hard-coded to 1, not read from the config; embeddings =
  LayerNorm(word + position), no token types.
* ``create_position_ids_from_input_ids`` (l. 849-857):
  ``mask = ids != 1; cumsum(mask) * mask + 1``.
* ``MPNetSelfAttention.forward`` (l. 134-173): scores = QK^T / sqrt(d) +
  position_bias + additive mask, softmax, times V, then ``o``.
* ``MPNetEncoder.forward`` (l. 271-309) / ``compute_position_bias``
  (l. 311-326): ONE bias [batch, heads, q, k] computed from ``arange(seq)``
  (not from position_ids, so padding does not shift it), shared by all
  layers, with ``num_buckets=32`` hard-coded (the config's
  relative_attention_num_buckets only sizes the embedding).
* ``MPNetEncoder.relative_position_bucket`` (l. 328-346, ``@staticmethod``
  on 328): n = i - j (query minus key); 16 buckets per sign (+16 when j > i); |n| < 8 exact, else
  ``8 + trunc(log(|n| / 8) / log(128 / 8) * 8)`` computed in float32, capped
  at 15.
* ``MPNetClassificationHead`` (l. 755-771): ``out_proj(tanh(dense(h[:, 0])))``.
"""

from __future__ import annotations

import inspect

import torch
import transformers
from transformers import MPNetConfig, MPNetForSequenceClassification
from transformers.models.mpnet import modeling_mpnet

import fixture_common as fc
from fixture_common import LABELS, as_list

REPO_ROOT = fc.REPO_ROOT
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "tiny-mpnet"

BOS, PAD, EOS = 0, 1, 2
# <s> A </s></s> B </s>: 1 + 9 + 2 + 11 + 1 = 24 tokens, and 1 + 5 + 2 + 6 + 1 = 15.
SEQ_A = [[10, 11, 12, 13, 14, 15, 16, 17, 18], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]]
SEQ_B = [[40, 41, 42, 43, 44], [50, 51, 52, 53, 54, 55]]


def pair_ids(a: list[int], b: list[int]) -> list[int]:
    return [BOS, *a, EOS, EOS, *b, EOS]


_ROWS = [pair_ids(*SEQ_A), pair_ids(*SEQ_B)]
SEQ_LEN = max(len(r) for r in _ROWS)
INPUT_IDS = [r + [PAD] * (SEQ_LEN - len(r)) for r in _ROWS]
ATTENTION_MASK = [[1] * len(r) + [0] * (SEQ_LEN - len(r)) for r in _ROWS]

GRAD_NAMES = [
    "classifier.out_proj.weight",
    "classifier.dense.bias",
    "mpnet.encoder.relative_attention_bias.weight",
    "mpnet.encoder.layer.0.attention.attn.q.weight",
    "mpnet.encoder.layer.1.output.LayerNorm.bias",
    "mpnet.embeddings.LayerNorm.weight",
    "mpnet.embeddings.word_embeddings.weight",
    "mpnet.embeddings.position_embeddings.weight",
]
ADAMW_NAMES = [
    "classifier.out_proj.weight",
    "classifier.out_proj.bias",
    "mpnet.embeddings.LayerNorm.weight",
    "mpnet.encoder.relative_attention_bias.weight",
    "mpnet.encoder.layer.0.attention.attn.q.weight",
]

# Upstream pieces whose line numbers the script prints (see the docstring).
UPSTREAM = {
    "MPNetEmbeddings.forward": modeling_mpnet.MPNetEmbeddings.forward,
    "create_position_ids_from_input_ids": modeling_mpnet.create_position_ids_from_input_ids,
    "MPNetSelfAttention.forward": modeling_mpnet.MPNetSelfAttention.forward,
    "MPNetEncoder.forward": modeling_mpnet.MPNetEncoder.forward,
    "MPNetEncoder.compute_position_bias": modeling_mpnet.MPNetEncoder.compute_position_bias,
    "MPNetEncoder.relative_position_bucket": modeling_mpnet.MPNetEncoder.relative_position_bucket,
    "MPNetClassificationHead": modeling_mpnet.MPNetClassificationHead,
}


def upstream_lines() -> dict[str, str]:
    """"first-last" line numbers (decorators included) of each upstream piece."""
    out = {}
    for name, obj in UPSTREAM.items():
        src, first = inspect.getsourcelines(obj)
        out[name] = f"{first}-{first + len(src) - 1}"
    return out


def make_config() -> MPNetConfig:
    return MPNetConfig(
        **fc.TINY_CONFIG,
        max_position_embeddings=40,
        relative_attention_num_buckets=32,
        layer_norm_eps=1e-5,
        pad_token_id=PAD,
        bos_token_id=BOS,
        eos_token_id=EOS,
    )


def main() -> None:
    fc.set_deterministic()

    model = fc.build_random_model(MPNetForSequenceClassification, make_config())
    saved = fc.save_model(model, OUT_DIR, ("mpnet.", "classifier.dense.", "classifier.out_proj."))
    assert not any(n.startswith("mpnet.pooler.") for n in saved)
    # Eager attention: MPNet's own softmax(QK^T/sqrt(d) + bias + mask) V code
    # with a float additive mask (set after saving so that config.json stays
    # the plain MPNetConfig).
    model.config._attn_implementation = "eager"

    model.eval()
    input_ids = torch.tensor(INPUT_IDS, dtype=torch.long)
    attention_mask = torch.tensor(ATTENTION_MASK, dtype=torch.long)
    labels = torch.tensor(LABELS, dtype=torch.long)

    # The two pieces the Rust side can test alone.
    position_ids = modeling_mpnet.create_position_ids_from_input_ids(
        input_ids, model.mpnet.embeddings.padding_idx
    )
    assert model.mpnet.embeddings.padding_idx == PAD
    assert int(position_ids.max()) < model.config.max_position_embeddings
    rel = torch.arange(SEQ_LEN)[None, :] - torch.arange(SEQ_LEN)[:, None]  # key - query
    buckets = modeling_mpnet.MPNetEncoder.relative_position_bucket(
        rel, num_buckets=model.config.relative_attention_num_buckets
    )
    with torch.no_grad():
        # The bias the encoder really adds uses these buckets.
        bias = model.mpnet.encoder.compute_position_bias(torch.zeros(1, SEQ_LEN, 16))
        assert torch.equal(
            bias[0], model.mpnet.encoder.relative_attention_bias.weight[buckets].permute(2, 0, 1)
        )
    assert int(buckets.max()) >= 16 + 11 and int(buckets[SEQ_LEN - 1, 0]) >= 11, buckets

    model.zero_grad(set_to_none=True)
    enc = model.mpnet(input_ids=input_ids, attention_mask=attention_mask)
    last_hidden = enc.last_hidden_state  # (2, 24, 16)
    mean_pooled = fc.masked_mean(last_hidden, attention_mask)
    logits = model.classifier(last_hidden)  # dropout is identity in eval
    loss = torch.nn.functional.cross_entropy(logits, labels)  # mean reduction

    # Same numbers through the public forward with labels.
    with torch.no_grad():
        ref = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        # The head by hand: dense -> tanh -> out_proj on the first token.
        head = model.classifier
        by_hand = head.out_proj(torch.tanh(head.dense(last_hidden[:, 0])))
    assert torch.equal(ref.logits, logits.detach()), (ref.logits, logits)
    assert torch.allclose(ref.loss, loss.detach(), rtol=0, atol=1e-7)
    assert torch.allclose(by_hand, logits.detach(), rtol=0, atol=1e-6)

    loss.backward()
    grads, decay, no_decay, after = fc.grads_and_adamw_step(model, GRAD_NAMES, ADAMW_NAMES)
    assert "mpnet.encoder.relative_attention_bias.weight" in no_decay

    lines = upstream_lines()
    expected = {
        "description": (
            "Reference values for tests/fixtures/tiny-mpnet (MPNetForSequenceClassification, "
            "random N(0,0.5) init, seed 0), eval mode, float32; made by "
            "scripts/make_golden_tiny_mpnet.py"
        ),
        "generator": {**fc.golden_generator(), "modeling_mpnet_lines": lines},
        "input_ids": INPUT_IDS,
        "attention_mask": ATTENTION_MASK,
        "labels": LABELS,
        "position_ids": position_ids.tolist(),
        "relative_position_bucket": buckets.tolist(),
        "last_hidden_state": as_list(last_hidden),
        "mean_pooled": as_list(mean_pooled),
        "logits": as_list(logits),
        "loss": float(loss.detach()),
        "grads": grads,
        "adamw": fc.adamw_record(decay, no_decay),
        "after_adamw_step": after,
    }
    fc.dump_json(expected, OUT_DIR / "expected.json", depth=2)

    print(f"transformers {transformers.__version__}: {modeling_mpnet.__file__}")
    for name, span in lines.items():
        print(f"  {name}: lines {span}")
    print(f"position_ids = {position_ids.tolist()}")
    print(f"bucket row 0 (query 0, keys 0..{SEQ_LEN - 1}) = {buckets[0].tolist()}")
    print(f"bucket col 0 (queries 0..{SEQ_LEN - 1}, key 0) = {buckets[:, 0].tolist()}")
    total = fc.print_files(OUT_DIR)
    assert total < 200 * 1024, f"fixture too large: {total} bytes"
    print(f"loss = {float(loss.detach()):.6f}; logits = {as_list(logits)}")


if __name__ == "__main__":
    main()
