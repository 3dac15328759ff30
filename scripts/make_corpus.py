#!/usr/bin/env python3
"""Writes a corpus for the Spark scripts: N JSONL records with unique ids,
spread over FILES files in OUT_DIR, from the repository's dataset texts.

    make_corpus.py OUT_DIR N FILES

Records are {"id": "c000123", "text": ...}. The texts cycle through the
distinct texts of datasets/*.jsonl; every other cycle cuts each to its first
words, so that lengths vary as in real news and length-sorting has work to do.
"""

import json
import sys
from pathlib import Path


def texts(root: Path) -> list[str]:
    seen = {}
    for path in sorted(root.glob("datasets/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.setdefault(json.loads(line)["text"], None)
    return list(seen)


def main() -> None:
    out, n, files = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    pool = texts(Path(__file__).resolve().parent.parent)
    out.mkdir(parents=True, exist_ok=True)
    per_file = -(-n // files)
    for f in range(files):
        with (out / f"part-{f:03d}.jsonl").open("w", encoding="utf-8") as w:
            for i in range(f * per_file, min(n, (f + 1) * per_file)):
                text = pool[i % len(pool)]
                if (i // len(pool)) % 2:
                    words = text.split()
                    text = " ".join(words[: 3 + i % max(1, len(words) - 2)])
                w.write(json.dumps({"id": f"c{i:06d}", "text": text}) + "\n")


if __name__ == "__main__":
    main()
