#!/usr/bin/env python3
"""Make the PyTorch parity fixture for the real all-mpnet-base-v2 encoder.

The MPNet counterpart of scripts/make_parity_minilm.py. Reads the model
folder models/all-mpnet-base-v2/ (fetch it first with
``scripts/fetch-model.sh all-mpnet-base-v2``) and writes, relative to the
repository root:

* ``tests/fixtures/mpnet-parity.json`` with
  - ``sentences``: the same 8 fixed English news-style sentences as the
    MiniLM fixture (apostrophes, quotes, non-ASCII punctuation and letters,
    one longer than 128 tokens but below the model's max_seq_length of 384);
  - ``token_ids``: the input_ids sentence-transformers feeds the model for each
    sentence (<s> ... </s>, truncated at max_seq_length, no padding);
  - ``embeddings``: ``SentenceTransformer(folder).encode(sentences)`` exactly
    (mean pooling over tokens, then L2 normalisation, as modules.json says);
  - a pair-classification reference for 3 (target, sentence) pairs tokenised
    with the Hugging Face tokenizer as a pair (``truncation='only_second'``,
    ``max_length=128``; MPNet's layout ``<s> A </s></s> B </s>``, and no
    token_type_ids): ``pair_input_ids``, and the logits of two fixed random
    heads on transformers' ``MPNetModel`` ``last_hidden_state``:
    ``logits_cls`` from an ``MPNetClassificationHead`` (dense 768 -> 768,
    tanh, out_proj 768 -> 3 on the first token, <s>) and ``logits_mean``
    from a linear head (768 -> 3) on the masked mean of ``last_hidden_state``
    without normalisation. (The checkpoint's own ``pooler.*`` weights are not
    used: MPNetForSequenceClassification has no pooler.)
* ``tests/fixtures/mpnet-head.safetensors``: those heads, made by
  ``torch.manual_seed(0); MPNetClassificationHead(config)`` (i.e.
  ``nn.Linear(768, 768)`` then ``nn.Linear(768, 3)`` with PyTorch's default
  init) followed by ``torch.nn.Linear(768, 3)``, saved as
  ``classifier.dense.weight`` (768x768), ``classifier.dense.bias`` (768),
  ``classifier.out_proj.weight`` (3x768), ``classifier.out_proj.bias`` (3),
  ``classifier.weight`` (3x768) and ``classifier.bias`` (3).

Everything runs on CPU in eval mode in float32; the pairs are run one at a
time without padding. Numbers are float32 values written as JSON floats (exact).

    /root/refvenv/bin/python scripts/make_parity_mpnet.py

Needs torch, transformers, sentence-transformers and safetensors; never
touches the network (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import sentence_transformers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from transformers import AutoTokenizer, MPNetModel  # noqa: E402
from transformers.models.mpnet.modeling_mpnet import MPNetClassificationHead  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO_ROOT / "models" / "all-mpnet-base-v2"
OUT_JSON = REPO_ROOT / "tests" / "fixtures" / "mpnet-parity.json"
OUT_HEAD = REPO_ROOT / "tests" / "fixtures" / "mpnet-head.safetensors"

# The same sentences as scripts/make_parity_minilm.py.
SENTENCES = [
    "Ukraine has formally applied to join NATO, President Volodymyr Zelenskyy said on Friday.",
    "Gas prices fell sharply.",
    "NATO leaders agreed to strengthen the alliance's eastern flank with four new battlegroups.",
    '"We will not be intimidated," the secretary-general told reporters, adding that '
    "Moscow's latest threats \"change nothing\" for the alliance.",
    "Kyiv \u2014 \u201cno\u201d to any deal that trades land for peace, Zelenskyy\u2019s office "
    "said after talks in Z\u00fcrich.",
    "Critics argue that expanding NATO further east would provoke Russia and make a "
    "negotiated settlement in Ukraine harder to reach.",
    "Analysts expect electricity bills to stay high through the winter of 2023\u201324, "
    "even as storage sites fill up.",
    "Energy ministers from across the European Union met in Brussels on Tuesday to debate an "
    "emergency package of measures aimed at shielding households and small businesses from "
    "soaring electricity and gas prices, which have climbed to record levels since Russia "
    "sharply reduced pipeline deliveries to the continent. The proposals under discussion "
    "include a temporary cap on the revenues of low-cost power generators such as wind, solar "
    "and nuclear plants, a mandatory cut in peak-hour electricity demand of at least five "
    "percent, and a so-called solidarity contribution from oil and gas companies that have "
    "reported windfall profits this year. Several governments, led by Poland and the Baltic "
    "states, argued that the bloc should also impose a ceiling on the price of all imported "
    "gas, while Germany and the Netherlands warned that such a step could drive liquefied "
    "natural gas cargoes toward Asian buyers and leave Europe short of supply during the "
    "coldest months of the winter. Diplomats said a final agreement was unlikely before the "
    "leaders' summit later this month, but officials expressed cautious optimism that a "
    "compromise on the revenue cap could be reached within days.",
]
LONG_INDEX = 7

# (target description, index into SENTENCES). The second pair is longer than
# 128 tokens and so exercises truncation='only_second'.
PAIRS = [
    ("Ukraine joining NATO", 0),
    ("a cap on European energy prices", LONG_INDEX),
    ("sanctions against Russia", 4),
]
PAIR_MAX_LENGTH = 128
HEAD_SEED = 0
HIDDEN = 768
NUM_LABELS = 3
BOS, PAD, EOS = 0, 1, 2


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def as_list(t: torch.Tensor):
    assert t.dtype == torch.float32, t.dtype
    return t.detach().cpu().tolist()


def dump_json(obj: dict, path: Path) -> None:
    """JSON with one top-level key per line (nested lists compact)."""
    items = [
        f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, allow_nan=False)}"
        for k, v in obj.items()
    ]
    path.write_text("{\n" + ",\n".join(items) + "\n}\n", encoding="utf-8")


def main() -> None:
    if not (MODEL_DIR / "model.safetensors").is_file():
        raise SystemExit(
            f"{MODEL_DIR} not found: run scripts/fetch-model.sh all-mpnet-base-v2 first"
        )
    torch.set_num_threads(1)
    torch.manual_seed(0)

    st_cfg = json.loads((MODEL_DIR / "sentence_bert_config.json").read_text())
    modules = json.loads((MODEL_DIR / "modules.json").read_text())
    pooling_cfg = json.loads((MODEL_DIR / "1_Pooling" / "config.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert pooling_cfg["pooling_mode_mean_tokens"] and not pooling_cfg["pooling_mode_cls_token"]

    # --- sentence-transformers reference ---------------------------------------
    st_model = SentenceTransformer(str(MODEL_DIR), device="cpu")
    st_model.eval()
    max_seq_length = st_model.max_seq_length
    assert max_seq_length == st_cfg["max_seq_length"] == 384, (max_seq_length, st_cfg)

    embeddings = st_model.encode(SENTENCES, convert_to_tensor=True, show_progress_bar=False)
    assert tuple(embeddings.shape) == (len(SENTENCES), HIDDEN)

    tokenizer = st_model.tokenizer
    token_ids = [
        tokenizer(s, truncation=True, max_length=max_seq_length)["input_ids"] for s in SENTENCES
    ]
    # Same ids as sentence-transformers' own batched tokenisation (minus padding).
    st_tokenize = getattr(st_model, "preprocess", None) or st_model.tokenize  # ST >= 6 / older
    batch = st_tokenize(SENTENCES)
    assert "token_type_ids" not in batch, list(batch)
    for i, ids in enumerate(token_ids):
        keep = batch["attention_mask"][i].bool()
        row = batch["input_ids"][i][keep].tolist()
        assert row == ids, (i, row, ids)
        assert set(batch["input_ids"][i][~keep].tolist()) <= {PAD}  # padded with <pad> = 1
        assert ids[0] == BOS and ids[-1] == EOS, ids
    long_len = len(token_ids[LONG_INDEX])
    assert 128 < long_len < max_seq_length, long_len

    # --- transformers MPNetModel + random heads on sentence pairs ---------------
    mpnet, info = MPNetModel.from_pretrained(
        str(MODEL_DIR), output_loading_info=True, attn_implementation="eager"
    )
    mpnet.eval()
    missing = list(info.get("missing_keys", []))
    assert not missing, f"checkpoint lacks {missing}"
    with torch.no_grad():
        # Cross-check: the same mean-pool + normalise by hand, one sentence at a time.
        manual = []
        for ids in token_ids:
            out = mpnet(input_ids=torch.tensor([ids]))
            v = out.last_hidden_state[0].mean(dim=0)
            manual.append(v / v.norm().clamp(min=1e-12))
        st_vs_manual = (torch.stack(manual) - embeddings).abs().max().item()
    assert st_vs_manual < 1e-4, st_vs_manual

    hf_tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))

    torch.manual_seed(HEAD_SEED)
    head_config = transformers.MPNetConfig.from_pretrained(str(MODEL_DIR), num_labels=NUM_LABELS)
    cls_head = MPNetClassificationHead(head_config)  # dense (768x768), then out_proj (3x768)
    mean_head = torch.nn.Linear(HIDDEN, NUM_LABELS)
    cls_head.eval()
    mean_head.eval()
    OUT_HEAD.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "classifier.dense.weight": cls_head.dense.weight.detach().contiguous(),
            "classifier.dense.bias": cls_head.dense.bias.detach().contiguous(),
            "classifier.out_proj.weight": cls_head.out_proj.weight.detach().contiguous(),
            "classifier.out_proj.bias": cls_head.out_proj.bias.detach().contiguous(),
            "classifier.weight": mean_head.weight.detach().contiguous(),
            "classifier.bias": mean_head.bias.detach().contiguous(),
        },
        str(OUT_HEAD),
    )

    pair_input_ids, logits_cls, logits_mean = [], [], []
    with torch.no_grad():
        for target, idx in PAIRS:
            enc = hf_tokenizer(
                target,
                SENTENCES[idx],
                truncation="only_second",
                max_length=PAIR_MAX_LENGTH,
                return_tensors="pt",
            )
            assert "token_type_ids" not in enc, list(enc)
            assert int(enc["attention_mask"].sum()) == enc["input_ids"].shape[1]  # no padding
            ids = enc["input_ids"][0].tolist()
            # <s> A </s></s> B </s>, A being the target on its own.
            target_ids = hf_tokenizer(target, add_special_tokens=False)["input_ids"]
            n = len(target_ids)
            assert ids[: n + 3] == [BOS, *target_ids, EOS, EOS] and ids[-1] == EOS, ids
            out = mpnet(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            hidden = out.last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(torch.float32)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1)
            cls = cls_head(hidden)
            by_hand = cls_head.out_proj(torch.tanh(cls_head.dense(hidden[:, 0])))
            assert torch.allclose(cls, by_hand, rtol=0, atol=1e-6)
            pair_input_ids.append(ids)
            logits_cls.append(as_list(cls[0]))
            logits_mean.append(as_list(mean_head(mean)[0]))
    assert len(pair_input_ids[1]) == PAIR_MAX_LENGTH

    fixture = {
        "description": (
            "Parity reference for all-mpnet-base-v2 (sentence-transformers embeddings, token ids, "
            "and fixed random heads on MPNetModel outputs for sentence pairs); float32, eval "
            "mode, CPU; made by scripts/make_parity_mpnet.py"
        ),
        "generator": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "python": platform.python_version(),
        },
        "model_dir": "models/all-mpnet-base-v2",
        "model_safetensors_sha256": sha256_file(MODEL_DIR / "model.safetensors"),
        "max_seq_length": max_seq_length,
        "normalize": True,
        "pooling": "mean",
        "sentences": SENTENCES,
        "token_ids": token_ids,
        "embeddings": as_list(embeddings),
        "pair_targets": [t for t, _ in PAIRS],
        "pair_sentence_index": [i for _, i in PAIRS],
        "pair_max_length": PAIR_MAX_LENGTH,
        "pair_truncation": "only_second",
        "pair_input_ids": pair_input_ids,
        "head_file": "tests/fixtures/mpnet-head.safetensors",
        "head_seed": HEAD_SEED,
        "head_cls": "MPNetClassificationHead: out_proj(tanh(dense(last_hidden_state[:, 0])))",
        "head_mean": "classifier: Linear(768, 3) on the masked mean of last_hidden_state",
        "logits_cls": logits_cls,
        "logits_mean": logits_mean,
    }
    dump_json(fixture, OUT_JSON)

    print(f"max_seq_length = {max_seq_length}")
    print(f"token counts = {[len(t) for t in token_ids]}")
    print(f"pair lengths = {[len(t) for t in pair_input_ids]}")
    print(f"pair 0 ids = {pair_input_ids[0]}")
    print(f"pair 0 tokens = {hf_tokenizer.convert_ids_to_tokens(pair_input_ids[0])}")
    print(f"max |st.encode - manual mean+normalize| = {st_vs_manual:.3g}")
    for p in (OUT_JSON, OUT_HEAD):
        print(f"{p.relative_to(REPO_ROOT)}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
