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

Needs torch, transformers and safetensors.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch
import transformers
from safetensors import safe_open
from transformers import BertConfig, BertForSequenceClassification

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "tiny-bert"

SEED = 0
INIT_STD = 0.5

INPUT_IDS = [[2, 10, 11, 12, 3, 20, 3], [2, 30, 31, 3, 40, 3, 0]]
TOKEN_TYPE_IDS = [[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 1, 1, 0]]
ATTENTION_MASK = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0]]
LABELS = [0, 2]

GRAD_NAMES = [
    "classifier.weight",
    "bert.pooler.dense.bias",
    "bert.encoder.layer.0.attention.self.query.weight",
    "bert.embeddings.LayerNorm.weight",
    "bert.encoder.layer.1.output.LayerNorm.bias",
    "bert.embeddings.word_embeddings.weight",
]
ADAMW = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}
ADAMW_NAMES = [
    "classifier.weight",
    "classifier.bias",
    "bert.embeddings.LayerNorm.weight",
    "bert.encoder.layer.0.attention.self.query.weight",
]


def make_config() -> BertConfig:
    return BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        num_labels=3,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


def layer_norm_param_names(model: torch.nn.Module) -> set[str]:
    names = set()
    for mod_name, mod in model.named_modules():
        if isinstance(mod, torch.nn.LayerNorm):
            for p_name, _ in mod.named_parameters(recurse=False):
                names.add(f"{mod_name}.{p_name}" if mod_name else p_name)
    return names


def build_model() -> BertForSequenceClassification:
    torch.manual_seed(SEED)
    model = BertForSequenceClassification(make_config())
    ln_names = layer_norm_param_names(model)
    with torch.no_grad():
        # Draw in named_parameters() order, right after construction, with the
        # same seeded generator: deterministic.
        for name, p in model.named_parameters():
            p.normal_(0.0, INIT_STD)
            if name in ln_names and name.endswith(".weight"):
                p.add_(1.0)
    return model


def decay_groups(model: torch.nn.Module) -> tuple[list[str], list[str]]:
    """Split parameter names as transformers.Trainer does for weight decay.

    Trainer decays every parameter except those of LayerNorm modules and those
    whose name contains "bias".
    """
    ln_names = layer_norm_param_names(model)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name in ln_names or "bias" in name:
            no_decay.append(name)
        else:
            decay.append(name)
    return decay, no_decay


def check_decay_groups_against_transformers(model, decay: list[str]) -> None:
    """Cross-check the split with transformers.Trainer's own helper."""
    try:
        from transformers import Trainer

        hf_decay = Trainer.get_decay_parameter_names(None, model)  # does not use self
    except (ImportError, AttributeError, TypeError):
        from transformers.trainer_pt_utils import get_parameter_names

        names = get_parameter_names(model, [torch.nn.LayerNorm])
        hf_decay = [n for n in names if "bias" not in n]
    assert sorted(hf_decay) == sorted(decay), (sorted(hf_decay), sorted(decay))


def as_list(t: torch.Tensor):
    assert t.dtype == torch.float32, t.dtype
    return t.detach().cpu().tolist()


def dump_json(obj: dict, path: Path) -> None:
    """JSON with one top-level (and one second-level) key per line, arrays compact."""

    def fmt(value, indent: int) -> str:
        if isinstance(value, dict) and indent < 2:
            pad = "  " * (indent + 1)
            items = [f"{pad}{json.dumps(k)}: {fmt(v, indent + 1)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
        return json.dumps(value, ensure_ascii=False, allow_nan=False)

    path.write_text(fmt(obj, 0) + "\n", encoding="utf-8")


def main() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)

    model = build_model()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(OUT_DIR, safe_serialization=True)
    # Eager attention: the plain softmax(QK^T/sqrt(d) + mask) V formulation
    # (set after saving so that config.json stays the plain BertConfig).
    model.config._attn_implementation = "eager"

    st_path = OUT_DIR / "model.safetensors"
    with safe_open(str(st_path), framework="pt") as f:
        saved = set(f.keys())
    expected_names = {n for n, _ in model.named_parameters()}
    assert saved == expected_names, saved ^ expected_names
    assert all(n.startswith(("bert.", "classifier.")) for n in saved)
    size_kib = st_path.stat().st_size / 1024
    assert size_kib < 64, f"model.safetensors unexpectedly large: {size_kib:.1f} KiB"

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
    mask = attention_mask.unsqueeze(-1).to(last_hidden.dtype)
    mean_pooled = (last_hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
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
    params = dict(model.named_parameters())
    grads = {name: as_list(params[name].grad) for name in GRAD_NAMES}

    decay, no_decay = decay_groups(model)
    check_decay_groups_against_transformers(model, decay)
    optimizer = torch.optim.AdamW(
        [
            {"params": [params[n] for n in decay], "weight_decay": ADAMW["weight_decay"]},
            {"params": [params[n] for n in no_decay], "weight_decay": 0.0},
        ],
        lr=ADAMW["lr"],
        betas=tuple(ADAMW["betas"]),
        eps=ADAMW["eps"],
        amsgrad=False,
        foreach=False,
    )
    optimizer.step()
    after = {name: as_list(params[name]) for name in ADAMW_NAMES}

    expected = {
        "description": (
            "Reference values for tests/fixtures/tiny-bert (BertForSequenceClassification, "
            "random N(0,0.5) init, seed 0), eval mode, float32; made by scripts/make_golden_tiny.py"
        ),
        "generator": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "python": platform.python_version(),
            "seed": SEED,
            "init_std": INIT_STD,
            "attn_implementation": "eager",
        },
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
        "adamw": {
            "lr": ADAMW["lr"],
            "betas": ADAMW["betas"],
            "eps": ADAMW["eps"],
            "weight_decay": ADAMW["weight_decay"],
            "decay_params": decay,
            "no_decay_params": no_decay,
        },
        "after_adamw_step": after,
    }
    dump_json(expected, OUT_DIR / "expected.json")

    for p in sorted(OUT_DIR.iterdir()):
        print(f"{p.relative_to(REPO_ROOT)}: {p.stat().st_size} bytes")
    print(f"loss = {float(loss.detach()):.6f}; logits = {as_list(logits)}")


if __name__ == "__main__":
    main()
