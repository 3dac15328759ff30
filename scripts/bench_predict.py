"""PyTorch side of scripts/bench-predict.sh, and its helpers.

    make-model BASE OUT       a stancekit classifier folder: BASE's encoder + a seeded random head
    data SENTENCES N OUT      SENTENCES repeated to N lines of JSONL ({"id", "text"})
    torch MODEL INPUT OUTPUT [--mode f32|bf16|int8]
                              transformers' predictions, as `stancekit predict` writes them:
                              f32; bf16 under torch.autocast("cpu") (oneDNN, AMX where the CPU
                              has it); int8 by torch.ao.quantization.quantize_dynamic on every
                              nn.Linear (fbgemm/x86 engine, the PyTorch docs' recipe for BERT)
    compare A B               max |difference| of the probabilities of two prediction files
    linear [--rows R] [--threads T] [--reps N]
                              torch.nn.functional.linear in f32 on the encoders' layer shapes
                              (scripts/bench-f32-ceiling.sh): a line "INPUTS OUTPUTS GMAC/s"
                              each, the fastest of N runs

The PyTorch run gets its best honest settings: torch.inference_mode(), pairs
sorted by token length and padded per batch (as stancekit does), the fast
tokenizer on whole batches, one untimed warm-up batch.
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

TARGET_ID = "nato"
TARGET = "Ukraine joining NATO"
LABELS = ["favor", "against", "none"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"]


def make_model(base: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    # BertForSequenceClassification or MPNetForSequenceClassification, by the base's model_type.
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    model.save_pretrained(out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config["stancekit"] = {"labels": LABELS, "targets": {TARGET_ID: TARGET}, "pooling": "cls", "max_length": 128}
    config_path.write_text(json.dumps(config, indent=2))
    for name in TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copy(base / name, out / name)


def make_data(sentences: Path, n: int, out: Path) -> None:
    lines = [line.strip() for line in sentences.read_text().splitlines() if line.strip()]
    with out.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": str(i), "text": lines[i % len(lines)]}) + "\n")


def run_torch(model_dir: Path, input_path: Path, output: Path, batch_size: int, threads: int, mode: str) -> None:
    import contextlib
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    if mode == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if mode == "bf16" else contextlib.nullcontext
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    # MPNet reads no token types: its tokenizer gives none and its forward takes none.
    keys = ("input_ids", "attention_mask") + (("token_type_ids",) if model.config.model_type == "bert" else ())

    def forward(batch):
        """Pads a batch of encodings to its longest member and runs the model."""
        width = max(len(e["input_ids"]) for e in batch)
        pad = lambda key, value: torch.tensor([e[key] + [value] * (width - len(e[key])) for e in batch])
        with torch.inference_mode(), autocast():
            padding = {"input_ids": tokenizer.pad_token_id, "token_type_ids": 0, "attention_mask": 0}
            logits = model(**{key: pad(key, padding[key]) for key in keys}).logits
            return torch.softmax(logits.float(), dim=-1).tolist()

    def encode(texts):
        enc = tokenizer([TARGET] * len(texts), texts, truncation="only_second", max_length=128)
        return [{key: enc[key][i] for key in keys} for i in range(len(texts))]

    records = [json.loads(line) for line in input_path.open()]
    forward(encode([r["text"] for r in records[:batch_size]]))  # warm-up, untimed

    start = time.perf_counter()
    encoded = encode([r["text"] for r in records])
    order = sorted(range(len(records)), key=lambda i: len(encoded[i]["input_ids"]))
    probabilities = [None] * len(records)
    for b in range(0, len(order), batch_size):
        chunk = order[b:b + batch_size]
        for i, p in zip(chunk, forward([encoded[i] for i in chunk])):
            probabilities[i] = p
    with output.open("w") as f:
        for r, p in zip(records, probabilities):
            row = {"id": r["id"], "text": r["text"], "target": TARGET_ID,
                   "label": labels[max(range(len(p)), key=p.__getitem__)],
                   "probs": dict(zip(labels, p))}
            f.write(json.dumps(row) + "\n")
    seconds = time.perf_counter() - start
    print(json.dumps({"sentences": len(records), "seconds": seconds, "sentences_per_s": len(records) / seconds}))


def compare(a: Path, b: Path) -> None:
    worst = 0.0
    rows = 0
    for la, lb in zip(a.open(), b.open()):
        ra, rb = json.loads(la), json.loads(lb)
        assert (ra["id"], ra["target"]) == (rb["id"], rb["target"]), (ra["id"], rb["id"])
        pa, pb = ra["probs"], rb["probs"]
        assert pa.keys() == pb.keys(), (pa.keys(), pb.keys())
        for label, p in pa.items():
            worst = max(worst, abs(p - pb[label]))
        rows += 1
    print(json.dumps({"rows": rows, "max_abs_diff": worst}))


# (inputs, outputs) of the encoders' linear layers, as examples/bench_int8_gemm.rs times them.
SHAPES = [(384, 384), (384, 1536), (1536, 384), (768, 768), (768, 3072), (3072, 768)]


def time_linear(rows: int, threads: int, reps: int) -> None:
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    for inputs, outputs in SHAPES:
        x = torch.randn(rows, inputs, generator=gen)
        w, b = torch.randn(outputs, inputs, generator=gen) * 0.05, torch.randn(outputs, generator=gen)
        with torch.inference_mode():
            torch.nn.functional.linear(x, w, b)
            best = float("inf")
            for _ in range(reps):
                start = time.perf_counter()
                torch.nn.functional.linear(x, w, b)
                best = min(best, time.perf_counter() - start)
        print(inputs, outputs, round(rows * inputs * outputs / best / 1e9, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("make-model")
    p.add_argument("base", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("data")
    p.add_argument("sentences", type=Path)
    p.add_argument("n", type=int)
    p.add_argument("out", type=Path)
    p = sub.add_parser("torch")
    p.add_argument("model", type=Path)
    p.add_argument("input", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", choices=["f32", "bf16", "int8"], default="f32")
    p = sub.add_parser("compare")
    p.add_argument("a", type=Path)
    p.add_argument("b", type=Path)
    p = sub.add_parser("linear")
    p.add_argument("--rows", type=int, default=800)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    if args.command == "make-model":
        make_model(args.base, args.out)
    elif args.command == "data":
        make_data(args.sentences, args.n, args.out)
    elif args.command == "torch":
        run_torch(args.model, args.input, args.output, args.batch_size, args.threads, args.mode)
    elif args.command == "linear":
        time_linear(args.rows, args.threads, args.reps)
    else:
        compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
