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
touches the network (HF_HUB_OFFLINE=1). The sentences, pairs and head seed,
and the steps it shares with scripts/make_parity_minilm.py (the
sentence-transformers reference and its checks, the pair tokenisation, the
common fixture fields, the JSON layout), are in scripts/fixture_common.py.
"""

from __future__ import annotations

import fixture_common as fc
from fixture_common import HEAD_SEED, PAIR_MAX_LENGTH, REPO_ROOT, as_list

fc.set_offline_env()  # before transformers (huggingface_hub) is imported

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoTokenizer, MPNetModel  # noqa: E402
from transformers.models.mpnet.modeling_mpnet import MPNetClassificationHead  # noqa: E402

MODEL_DIR = REPO_ROOT / "models" / "all-mpnet-base-v2"
OUT_JSON = REPO_ROOT / "tests" / "fixtures" / "mpnet-parity.json"
OUT_HEAD = REPO_ROOT / "tests" / "fixtures" / "mpnet-head.safetensors"

HIDDEN = 768
NUM_LABELS = 3
BOS, PAD, EOS = 0, 1, 2


def main() -> None:
    st_cfg = fc.start_parity(MODEL_DIR, "scripts/fetch-model.sh all-mpnet-base-v2")

    # --- sentence-transformers reference ---------------------------------------
    max_seq_length, embeddings, token_ids, batch = fc.st_reference(MODEL_DIR, st_cfg, HIDDEN)
    assert max_seq_length == 384, max_seq_length
    assert "token_type_ids" not in batch, list(batch)
    for i, ids in enumerate(token_ids):
        keep = batch["attention_mask"][i].bool()
        assert set(batch["input_ids"][i][~keep].tolist()) <= {PAD}  # padded with <pad> = 1
        assert ids[0] == BOS and ids[-1] == EOS, ids

    # --- transformers MPNetModel + random heads on sentence pairs ---------------
    mpnet = fc.load_encoder(MPNetModel, MODEL_DIR)
    # Cross-check: the same mean-pool + normalise by hand, one sentence at a time.
    st_vs_manual = fc.manual_mean_gap(mpnet, token_ids, embeddings)
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
        for target, enc in fc.encode_pairs(hf_tokenizer):
            assert "token_type_ids" not in enc, list(enc)
            ids = enc["input_ids"][0].tolist()
            # <s> A </s></s> B </s>, A being the target on its own.
            target_ids = hf_tokenizer(target, add_special_tokens=False)["input_ids"]
            n = len(target_ids)
            assert ids[: n + 3] == [BOS, *target_ids, EOS, EOS] and ids[-1] == EOS, ids
            out = mpnet(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            hidden = out.last_hidden_state
            mean = fc.masked_mean(hidden, enc["attention_mask"])
            cls = cls_head(hidden)
            by_hand = cls_head.out_proj(torch.tanh(cls_head.dense(hidden[:, 0])))
            assert torch.allclose(cls, by_hand, rtol=0, atol=1e-6)
            pair_input_ids.append(ids)
            logits_cls.append(as_list(cls[0]))
            logits_mean.append(as_list(mean_head(mean)[0]))
    assert len(pair_input_ids[1]) == PAIR_MAX_LENGTH

    common = fc.parity_fixture(
        "Parity reference for all-mpnet-base-v2 (sentence-transformers embeddings, token ids, "
        "and fixed random heads on MPNetModel outputs for sentence pairs); float32, eval "
        "mode, CPU; made by scripts/make_parity_mpnet.py",
        MODEL_DIR,
        max_seq_length,
        token_ids,
        embeddings,
    )
    fixture = {
        **common,
        "pair_input_ids": pair_input_ids,
        "head_file": "tests/fixtures/mpnet-head.safetensors",
        "head_seed": HEAD_SEED,
        "head_cls": "MPNetClassificationHead: out_proj(tanh(dense(last_hidden_state[:, 0])))",
        "head_mean": "classifier: Linear(768, 3) on the masked mean of last_hidden_state",
        "logits_cls": logits_cls,
        "logits_mean": logits_mean,
    }
    fc.dump_json(fixture, OUT_JSON)

    fc.print_parity_summary(
        max_seq_length,
        token_ids,
        pair_input_ids,
        st_vs_manual,
        (OUT_JSON, OUT_HEAD),
        extra_lines=(
            f"pair 0 ids = {pair_input_ids[0]}",
            f"pair 0 tokens = {hf_tokenizer.convert_ids_to_tokens(pair_input_ids[0])}",
        ),
    )


if __name__ == "__main__":
    main()
