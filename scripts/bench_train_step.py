#!/usr/bin/env python3
"""PyTorch twin of examples/bench_train_step.rs: one fine-tuning step of
BertForSequenceClassification on the same batch (16 pairs padded to 64 tokens,
written by the Rust bench with --save-batch), dropout on, AdamW lr 2e-5 with
weight decay 0.01 on all but biases and LayerNorm weights (transformers'
Trainer groups), gradient clipping at 1.0. Forward (with the loss), backward and
the optimizer (clipping + step + zero_grad) are timed separately, in wall time
and in process CPU time; prints one JSON line with the medians of --steps
steps after --warmup steps.

Usage: bench_train_step.py --batch BATCH.json [--model DIR] [--steps 20] [--warmup 3] [--threads 2]
"""
import argparse
import json
import resource
import statistics
import time

import torch
import transformers
from transformers import AutoModelForSequenceClassification


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", required=True)
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    with open(args.batch) as f:
        b = json.load(f)
    labels = torch.tensor(b["labels"], dtype=torch.long)

    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=3)
    model.train()
    # MPNet has no token types: its forward takes no token_type_ids.
    keys = ("input_ids", "attention_mask") + (("token_type_ids",) if model.config.model_type == "bert" else ())
    batch = {k: torch.tensor(b[k], dtype=torch.long) for k in keys}
    # The Trainer's groups (get_decay_parameter_names): no decay for any name with "bias" or LayerNorm.
    decay = [p for n, p in model.named_parameters() if not ("bias" in n or "LayerNorm" in n)]
    no_decay = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm" in n]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=2e-5, betas=(0.9, 0.999), eps=1e-8,
    )

    fwd, bwd, step_opt, step, losses = [], [], [], [], []
    cpu = {"forward": [], "backward": [], "optimizer": [], "step": []}
    faults = []
    for i in range(args.warmup + args.steps):
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = model(**batch, labels=labels)
        loss = out.loss
        value = loss.item()
        t1 = time.perf_counter()
        c1 = time.process_time()
        loss.backward()
        t2 = time.perf_counter()
        c2 = time.process_time()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        c3 = time.process_time()
        if i >= args.warmup:
            fwd.append((t1 - t0) * 1e3)
            bwd.append((t2 - t1) * 1e3)
            step_opt.append((t3 - t2) * 1e3)
            step.append((t3 - t0) * 1e3)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
            for key, a, b in (("forward", c0, c1), ("backward", c1, c2), ("optimizer", c2, c3), ("step", c0, c3)):
                cpu[key].append((b - a) * 1e3)
        losses.append(value)

    print(json.dumps({
        "system": f"PyTorch {torch.__version__}, transformers {transformers.__version__}",
        "threads": torch.get_num_threads(),
        "steps": args.steps,
        "step_ms": statistics.median(step),
        "step_min_ms": min(step),
        "step_max_ms": max(step),
        "forward_ms": statistics.median(fwd),
        "backward_ms": statistics.median(bwd),
        "optimizer_ms": statistics.median(step_opt),
        **{f"cpu_{k}_ms": statistics.median(v) for k, v in cpu.items()},
        "page_faults_per_step": statistics.median(faults),
        "samples": {"step_ms": step, "forward_ms": fwd, "backward_ms": bwd, "optimizer_ms": step_opt},
        "first_loss": losses[0],
        "last_loss": losses[-1],
    }))


if __name__ == "__main__":
    main()
