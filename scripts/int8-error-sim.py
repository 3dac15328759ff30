#!/usr/bin/env python3
"""Where int8's error comes from, simulated in PyTorch.

Replays `--precision int8`'s arithmetic (src/kernels/int8/mod.rs) on a model's
encoder linear layers in f32 ("fake quantization"): weights symmetric per
output channel to [-127, 127], the FFN output layers with their second,
residual i8 channel; each input row asymmetric to u8 with its own scale and a
zero point (the range always holds 0). Then it measures the sentence
embeddings (mean-pooled, normalised, as `stancekit embed`) against f32, as
mean 1 - cosine, with:

- everything quantized (`--int8-f32-columns none`);
- the weights alone quantized, or the activations alone;
- the K input columns with the largest values kept out of the activations'
  u8 range and multiplied in f32 (as LLM.int8() does), on the layers that
  read a layer norm's output (query, key, value, FFN in). The columns are
  chosen from one set of texts (calibration) and scored on another;
- those columns, with the FFN output layers' residual channel dropped, and
  then with those layers' output channels at the same K columns computed in
  f32 instead (an alternative to the residual that was measured and dropped:
  docs/performance.md, "int8");
- those columns, with the residual channel over only a share of the FFN
  output layers' input columns: those of most energy (Σ x² over the
  calibration texts' tokens), as a second product over the gathered columns,
  whose rows are quantized on their own. The residual is most of MPNet's
  int8 cost above a plain int8 layer; this asks how much of its gain a
  quarter of it keeps.

It also prints, per layer, how far the largest input column stands above the
median column, and those columns, and the K columns most often among them
as a `--int8-f32-columns` flag. Usage (the PyTorch environment of the
benchmarks):

    python scripts/int8-error-sim.py MODEL_DIR TWEETEVAL_DIR [K]

MODEL_DIR is a sentence-transformers folder (models/all-mpnet-base-v2);
TWEETEVAL_DIR holds one folder per target with train_text.txt and
test_text.txt: 40 training tweets per target calibrate, 60 test tweets per
target are scored.
"""

import collections
import pathlib
import sys

import torch
from transformers import AutoModel, AutoTokenizer


def texts(root, split, per_target):
    out = []
    for target in sorted(p for p in pathlib.Path(root).iterdir() if p.is_dir()):
        out += (target / f"{split}_text.txt").read_text().splitlines()[:per_target]
    return out


def quantize_weight(w):
    """Per output channel, symmetric, [-127, 127]: the weights as rounded, in f32."""
    scale = w.abs().amax(1, keepdim=True) / 127
    scale[scale == 0] = 1
    return (w / scale).round().clamp(-127, 127) * scale


def quantize_weight_with_residual(w):
    """`QuantizedWeights::with_residual`: the rounding's remainder rounded again on its own scale."""
    first = quantize_weight(w)
    return first + quantize_weight(w - first)


def quantize_rows(x):
    """`quantize_row`: asymmetric u8 per row, the range holding 0."""
    lo = x.amin(-1, keepdim=True).clamp(max=0)
    hi = x.amax(-1, keepdim=True).clamp(min=0)
    scale = (hi - lo) / 255
    scale[scale == 0] = 1
    zero = (-lo / scale).round().clamp(0, 255)
    return (((x / scale).round() + zero).clamp(0, 255) - zero) * scale


def is_ffn_out(name):
    return name.endswith("output.dense") and "attention" not in name


def reads_layer_norm(name):
    """Query, key, value (BERT `attention.self.*`, MPNet `attention.attn.{q,k,v}`) and FFN in."""
    last = name.split(".")[-1]
    return last in ("query", "key", "value", "q", "k", "v") or name.endswith("intermediate.dense")


class Sim:
    def __init__(self, model_dir):
        self.tok = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).eval()
        self.linears = {
            n: m for n, m in self.model.named_modules() if isinstance(m, torch.nn.Linear) and "encoder.layer" in n
        }
        self.forwards = {n: m.forward for n, m in self.linears.items()}
        self.setting = None

    def embed(self, batch):
        with torch.no_grad():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    def batch(self, sentences):
        return self.tok(sentences, padding=True, truncation=True, max_length=128, return_tensors="pt")

    def column_max(self, batch, energy=False):
        """Per linear layer, the largest |value| of each input column over the
        real tokens (with `energy`, the sum of its squares)."""
        seen = {}
        mask = batch["attention_mask"].reshape(-1, 1)

        def hook(name):
            def record(_module, inputs, _output):
                x = inputs[0].reshape(-1, inputs[0].shape[-1]).abs() * mask
                seen[name] = (x * x).sum(0) if energy else x.amax(0)

            return record

        handles = [m.register_forward_hook(hook(n)) for n, m in self.linears.items()]
        self.embed(batch)
        for h in handles:
            h.remove()
        return seen

    def quantized(self, weights=True, activations=True, f32_columns=None, residual=True, f32_outputs=None,
                  residual_columns=None):
        """Replaces every encoder linear layer's forward with the int8 arithmetic
        (`residual`: the FFN output layers keep their residual channel;
        `f32_outputs`: those layers' output channels computed in f32;
        `residual_columns`: per FFN output layer, the input columns its
        residual channel covers, as a product of its own)."""
        for name, module in self.linears.items():
            w = module.weight.detach()
            cover = (residual_columns or {}).get(name)
            left = None
            if weights:
                whole = is_ffn_out(name) and residual and cover is None
                w = quantize_weight_with_residual(w) if whole else quantize_weight(w)
                if cover is not None:
                    left = quantize_weight((module.weight.detach() - w)[:, cover])
            keep = (f32_columns or {}).get(name)
            exact_rows = f32_outputs if is_ffn_out(name) else None

            def forward(x, w=w, b=module.bias, keep=keep, exact=module.weight, exact_rows=exact_rows, cover=cover,
                        left=left):
                main = x
                if keep is not None:
                    main = x.clone()
                    main[..., keep] = 0
                y = (quantize_rows(main) if activations else main) @ w.T + b
                if keep is not None:
                    y = y + x[..., keep] @ exact[:, keep].T
                if exact_rows is not None:
                    y[..., exact_rows] = x @ exact[exact_rows].T + b[exact_rows]
                if left is not None:
                    y = y + (quantize_rows(x[..., cover]) if activations else x[..., cover]) @ left.T
                return y

            module.forward = forward

    def restore(self):
        for name, module in self.linears.items():
            module.forward = self.forwards[name]


def main():
    model_dir, data = sys.argv[1], sys.argv[2]
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    torch.manual_seed(0)
    sim = Sim(model_dir)
    calibration, scored = sim.batch(texts(data, "train", 40)), sim.batch(texts(data, "test", 60))
    print(f"model {model_dir}; {calibration['input_ids'].shape[0]} calibration texts, "
          f"{scored['input_ids'].shape[0]} scored")

    maxima = sim.column_max(calibration)
    print("\n| layer | input | largest column / median | its 4 largest columns |\n|---|---|---:|---|")
    common = collections.Counter()
    for name, m in maxima.items():
        top = m.topk(4).indices.tolist()
        if reads_layer_norm(name):
            common.update(top)
        if name.split(".")[-1] in ("query", "q") or name.endswith("intermediate.dense"):
            print(f"| {name} | {m.numel()} | {(m.max() / m.median()).item():.1f} | {sorted(top)} |")
    print(f"\nColumns most often among the 4 largest on the layers that read a layer norm: {common.most_common(6)}")
    common_k = sorted(c for c, _ in common.most_common(k))
    print(f"For stancekit: --precision int8 --int8-f32-columns {','.join(map(str, common_k))}")

    reference = sim.embed(scored)
    f32_columns = {n: m.topk(k).indices for n, m in maxima.items() if reads_layer_norm(n)}
    rows = [
        ("all int8 (`--int8-f32-columns none`)", dict()),
        ("weights alone", dict(activations=False)),
        ("activations alone", dict(weights=False)),
        (f"all int8, {k} largest columns of query/key/value/FFN-in inputs in f32", dict(f32_columns=f32_columns)),
        ("the same, FFN out without its residual channel", dict(f32_columns=f32_columns, residual=False)),
        (f"the same, FFN out's output channels {common_k} in f32", dict(
            f32_columns=f32_columns, residual=False, f32_outputs=common_k)),
    ]
    energy = {n: e for n, e in sim.column_max(calibration, energy=True).items() if is_ffn_out(n)}
    for share in (0.1, 0.25, 0.5):
        cover = {n: e.topk(int(share * e.numel())).indices for n, e in energy.items()}
        held = [(e[cover[n]].sum() / e.sum()).item() for n, e in energy.items()]
        rows.append((f"{k} columns in f32, FFN out's residual over its {share:.0%} input columns of most energy "
                     f"({min(held):.0%}–{max(held):.0%} of a layer's)",
                     dict(f32_columns=f32_columns, residual_columns=cover)))
    print("\n| quantized | mean 1 - cos | max 1 - cos |\n|---|---:|---:|")
    for label, setting in rows:
        sim.quantized(**setting)
        e = sim.embed(scored)
        sim.restore()
        d = 1 - (e * reference).sum(-1)
        print(f"| {label} | {d.mean().item():.2e} | {d.max().item():.2e} |")


if __name__ == "__main__":
    main()
