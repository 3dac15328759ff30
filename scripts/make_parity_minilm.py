#!/usr/bin/env python3
"""Make the PyTorch parity fixture for the real all-MiniLM-L6-v2 encoder.

Reads the model folder models/all-MiniLM-L6-v2/ (fetch it first with
scripts/fetch-model.sh) and writes, relative to the repository root:

* ``tests/fixtures/minilm-parity.json`` with
  - ``sentences``: 8 fixed English news-style sentences (apostrophes, quotes,
    non-ASCII punctuation and letters, one of 212 word-piece tokens, i.e. longer
    than 128 but below the model's max_seq_length of 256);
  - ``token_ids``: the input_ids sentence-transformers feeds the model for each
    sentence ([CLS] ... [SEP], truncated at max_seq_length, no padding);
  - ``embeddings``: ``SentenceTransformer(folder).encode(sentences)`` exactly
    (mean pooling over tokens, then L2 normalisation, as modules.json says);
  - a pair-classification reference for 3 (target, sentence) pairs tokenised
    with the Hugging Face tokenizer as a pair (``truncation='only_second'``,
    ``max_length=128``): ``pair_input_ids``, ``pair_token_type_ids``, and the
    logits of a fixed random linear head (384 -> 3) applied to transformers'
    ``BertModel`` ``pooler_output`` (``logits_cls``; dense + tanh on [CLS], the
    checkpoint carries the pooler weights) and to the masked mean of
    ``last_hidden_state`` without normalisation (``logits_mean``).
* ``tests/fixtures/minilm-head.safetensors``: that head,
  ``torch.manual_seed(0); torch.nn.Linear(384, 3)``, saved as
  ``classifier.weight`` (3x384) and ``classifier.bias`` (3).

Everything runs on CPU in eval mode in float32; the pairs are run one at a
time without padding. Numbers are float32 values written as JSON floats (exact).

    /root/refvenv/bin/python scripts/make_parity_minilm.py

Needs torch, transformers, sentence-transformers and safetensors; never
touches the network (HF_HUB_OFFLINE=1). The sentences, pairs and head seed,
and the steps it shares with scripts/make_parity_mpnet.py (the
sentence-transformers reference and its checks, the pair tokenisation, the
common fixture fields, the JSON layout), are in scripts/fixture_common.py.
"""

from __future__ import annotations

import fixture_common as fc
from fixture_common import HEAD_SEED, PAIR_MAX_LENGTH, REPO_ROOT, as_list

fc.set_offline_env()  # before transformers (huggingface_hub) is imported

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoTokenizer, BertModel  # noqa: E402

MODEL_DIR = REPO_ROOT / "models" / "all-MiniLM-L6-v2"
OUT_JSON = REPO_ROOT / "tests" / "fixtures" / "minilm-parity.json"
OUT_HEAD = REPO_ROOT / "tests" / "fixtures" / "minilm-head.safetensors"


def main() -> None:
    st_cfg = fc.start_parity(MODEL_DIR, "scripts/fetch-model.sh")

    # --- sentence-transformers reference ---------------------------------------
    max_seq_length, embeddings, token_ids, _ = fc.st_reference(MODEL_DIR, st_cfg, 384)

    # --- transformers BertModel + random head on sentence pairs -----------------
    bert = fc.load_encoder(BertModel, MODEL_DIR, ": pooler would be random")
    assert bert.pooler is not None
    # Cross-check: the same mean-pool + normalise by hand, one sentence at a time.
    st_vs_manual = fc.manual_mean_gap(bert, token_ids, embeddings)

    hf_tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR))

    torch.manual_seed(HEAD_SEED)
    head = torch.nn.Linear(384, 3)
    head.eval()
    OUT_HEAD.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {
            "classifier.weight": head.weight.detach().contiguous(),
            "classifier.bias": head.bias.detach().contiguous(),
        },
        str(OUT_HEAD),
    )

    pair_input_ids, pair_token_type_ids, logits_cls, logits_mean = [], [], [], []
    with torch.no_grad():
        for _, enc in fc.encode_pairs(hf_tokenizer):
            out = bert(
                input_ids=enc["input_ids"],
                token_type_ids=enc["token_type_ids"],
                attention_mask=enc["attention_mask"],
            )
            mean = fc.masked_mean(out.last_hidden_state, enc["attention_mask"])
            pair_input_ids.append(enc["input_ids"][0].tolist())
            pair_token_type_ids.append(enc["token_type_ids"][0].tolist())
            logits_cls.append(as_list(head(out.pooler_output)[0]))
            logits_mean.append(as_list(head(mean)[0]))
    assert len(pair_input_ids[1]) == PAIR_MAX_LENGTH

    common = fc.parity_fixture(
        "Parity reference for all-MiniLM-L6-v2 (sentence-transformers embeddings, token ids, "
        "and a random linear head on BertModel outputs for sentence pairs); float32, eval "
        "mode, CPU; made by scripts/make_parity_minilm.py",
        MODEL_DIR,
        max_seq_length,
        token_ids,
        embeddings,
    )
    fixture = {
        **common,
        "pair_input_ids": pair_input_ids,
        "pair_token_type_ids": pair_token_type_ids,
        "head_file": "tests/fixtures/minilm-head.safetensors",
        "head_seed": HEAD_SEED,
        "pooler_weights_in_checkpoint": True,
        "logits_cls": logits_cls,
        "logits_mean": logits_mean,
    }
    fc.dump_json(fixture, OUT_JSON)

    fc.print_parity_summary(
        max_seq_length, token_ids, pair_input_ids, st_vs_manual, (OUT_JSON, OUT_HEAD)
    )


if __name__ == "__main__":
    main()
