"""Matrix-product GFLOP per sentence of the predict benchmark's model (MiniLM,
6 layers, hidden 384, FFN 1536), full and with the `[CLS]`-shortened last
layer (keys and values for every position, the rest for the first only).

    python scripts/count_predict_flops.py MODEL_DIR INPUT.jsonl

MODEL_DIR and INPUT are what `scripts/bench-predict.sh WORK_DIR` leaves in
WORK_DIR (`model/`, `input.jsonl`). Needs transformers. docs/performance.md's
Speed section quotes its output.
"""

import json
import sys

from transformers import AutoTokenizer

from bench_predict import TARGET

HIDDEN, FFN, LAYERS = 384, 1536, 6


def layer_flops(queries: int, keys: int) -> int:
    """Q, output and FFN for `queries` rows; K and V for `keys` rows; both attention products."""
    h, f = HIDDEN, FFN
    return 2 * queries * (2 * h * h + 2 * h * f) + 2 * keys * 2 * h * h + 2 * 2 * queries * keys * h


def main() -> None:
    model_dir, input_path = sys.argv[1:3]
    tok = AutoTokenizer.from_pretrained(model_dir)
    texts = [json.loads(line)["text"] for line in open(input_path)]
    lengths = [len(tok(TARGET, t, truncation="only_second", max_length=128)["input_ids"]) for t in texts]
    full = sum(LAYERS * layer_flops(n, n) for n in lengths)
    first = sum((LAYERS - 1) * layer_flops(n, n) + layer_flops(1, n) for n in lengths)
    count = len(texts)
    print(f"{count} sentences, {sum(lengths) / count:.1f} tokens each with the target")
    print(f"GFLOP per sentence: full {full / count / 1e9:.3f}, [CLS]-shortened {first / count / 1e9:.3f}")


if __name__ == "__main__":
    main()
