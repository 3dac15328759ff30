"""What the fixture-generator scripts share, kept in one place.

Four scripts write the PyTorch reference fixtures under tests/fixtures/:

* scripts/make_golden_tiny.py and scripts/make_golden_tiny_mpnet.py -- the
  golden fixtures of a tiny random BERT and a tiny random MPNet (tiny-bert/,
  tiny-mpnet/);
* scripts/make_parity_minilm.py and scripts/make_parity_mpnet.py -- the parity
  fixtures of the real all-MiniLM-L6-v2 and all-mpnet-base-v2 encoders
  (minilm-parity.json + minilm-head.safetensors, mpnet-parity.json +
  mpnet-head.safetensors).

Each pair is the same recipe for two architectures, and the Rust tests read
both fixtures of a pair the same way, so the pieces they have in common must
not drift apart. They live here, once:

* for all four: ``as_list`` (float32 tensor -> JSON list), ``dump_json`` (the
  fixtures' JSON layout), ``masked_mean`` (mean over the unmasked tokens);
* for the golden pair: the config fields both tiny models have (sizes,
  activation, labels, dropout), the seed, the N(0, 0.5) re-initialisation of
  every parameter (LayerNorm weights 1 + N(0, 0.5)), the save-and-check of
  ``model.safetensors``, Hugging Face Trainer's weight-decay groups (and their
  cross-check against transformers' own helper), the gradients and the AdamW
  step with those groups and its hyper-parameters, the ``generator`` record;
* for the parity pair: the 8 sentences, the (target, sentence) pairs, the
  pair length and head seed, the offline environment, the checks of the model
  folder's sentence-transformers layout, the sentence-transformers reference
  (embeddings and token ids), the by-hand mean-pool cross-check, the pair
  tokenisation, the fixture fields both JSON files start with, and the
  summary printed at the end.

The scripts are run as ``python scripts/NAME.py``, so scripts/ is first on
``sys.path`` and ``import fixture_common`` finds this file. Nothing here
imports transformers or sentence-transformers at import time: the parity
scripts call :func:`set_offline_env` first, before huggingface_hub reads
HF_HUB_OFFLINE.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent


# --- all four scripts ----------------------------------------------------------


def as_list(t: torch.Tensor):
    assert t.dtype == torch.float32, t.dtype
    return t.detach().cpu().tolist()


def dump_json(obj: dict, path: Path, depth: int = 1) -> None:
    """JSON with one key per line in the top ``depth`` levels of dicts, the rest compact.

    The parity fixtures use depth 1 (one top-level key per line), the golden
    fixtures depth 2 (one top-level and one second-level key per line).
    """

    def fmt(value, indent: int) -> str:
        if isinstance(value, dict) and indent < depth:
            pad = "  " * (indent + 1)
            items = [f"{pad}{json.dumps(k)}: {fmt(v, indent + 1)}" for k, v in value.items()]
            return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
        return json.dumps(value, ensure_ascii=False, allow_nan=False)

    path.write_text(fmt(obj, 0) + "\n", encoding="utf-8")


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` [batch, seq, dim] over the tokens whose mask is 1 (no normalisation)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def versions(sentence_transformers: bool = False) -> dict:
    """Versions of the libraries (and Python) that made a fixture."""
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__}
    if sentence_transformers:
        import sentence_transformers as st

        out["sentence_transformers"] = st.__version__
    out["python"] = platform.python_version()
    return out


# --- golden fixtures (tiny random models) --------------------------------------

SEED = 0
INIT_STD = 0.5
LABELS = [0, 2]
ADAMW = {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}
# Config fields both tiny models share (each script adds its architecture's own).
TINY_CONFIG = {
    "vocab_size": 64,
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "hidden_act": "gelu",  # exact erf
    "num_labels": 3,
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
}


def set_deterministic() -> None:
    """CPU, single-threaded, deterministic kernels, float32."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)


def layer_norm_param_names(model: torch.nn.Module) -> set[str]:
    names = set()
    for mod_name, mod in model.named_modules():
        if isinstance(mod, torch.nn.LayerNorm):
            for p_name, _ in mod.named_parameters(recurse=False):
                names.add(f"{mod_name}.{p_name}" if mod_name else p_name)
    return names


def build_random_model(model_cls, config) -> torch.nn.Module:
    """``model_cls(config)`` with every parameter re-drawn from N(0, INIT_STD).

    LayerNorm weights get 1 + N(0, INIT_STD), so that no value is trivially 0
    or 1. Seeded with ``torch.manual_seed(SEED)`` before construction.
    """
    torch.manual_seed(SEED)
    model = model_cls(config)
    ln_names = layer_norm_param_names(model)
    with torch.no_grad():
        # Draw in named_parameters() order, right after construction, with the
        # same seeded generator: deterministic.
        for name, p in model.named_parameters():
            p.normal_(0.0, INIT_STD)
            if name in ln_names and name.endswith(".weight"):
                p.add_(1.0)
    return model


def save_model(model: torch.nn.Module, out_dir: Path, prefixes: tuple[str, ...]) -> set[str]:
    """``save_pretrained`` into ``out_dir`` and check ``model.safetensors``.

    It must hold exactly the model's parameters, each named with one of
    ``prefixes``, in under 64 KiB. Returns the saved tensor names.
    """
    from safetensors import safe_open

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    st_path = out_dir / "model.safetensors"
    with safe_open(str(st_path), framework="pt") as f:
        saved = set(f.keys())
    expected_names = {n for n, _ in model.named_parameters()}
    assert saved == expected_names, saved ^ expected_names
    assert all(n.startswith(prefixes) for n in saved)
    size_kib = st_path.stat().st_size / 1024
    assert size_kib < 64, f"model.safetensors unexpectedly large: {size_kib:.1f} KiB"
    return saved


def decay_groups(model: torch.nn.Module) -> tuple[list[str], list[str]]:
    """Split parameter names as transformers.Trainer does for weight decay.

    Trainer decays every parameter except those of LayerNorm modules and those
    whose name contains "bias" (which includes MPNet's
    relative_attention_bias.weight).
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


def trainer_adamw_step(model: torch.nn.Module) -> tuple[list[str], list[str]]:
    """One ``torch.optim.AdamW`` step (ADAMW) with Trainer's two parameter groups.

    The gradients must already be in place. Returns the (decay, no_decay)
    parameter names.
    """
    params = dict(model.named_parameters())
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
    return decay, no_decay


def grads_and_adamw_step(
    model: torch.nn.Module, grad_names: list[str], after_names: list[str]
) -> tuple[dict, list[str], list[str], dict]:
    """After ``loss.backward()``: the gradients of ``grad_names``, one Trainer-style
    AdamW step, and the values of ``after_names`` after it.

    Returns (grads, decay, no_decay, after).
    """
    params = dict(model.named_parameters())
    grads = {name: as_list(params[name].grad) for name in grad_names}
    decay, no_decay = trainer_adamw_step(model)
    after = {name: as_list(params[name]) for name in after_names}
    return grads, decay, no_decay, after


def adamw_record(decay: list[str], no_decay: list[str]) -> dict:
    """The ``adamw`` entry of expected.json."""
    return {
        "lr": ADAMW["lr"],
        "betas": ADAMW["betas"],
        "eps": ADAMW["eps"],
        "weight_decay": ADAMW["weight_decay"],
        "decay_params": decay,
        "no_decay_params": no_decay,
    }


def golden_generator() -> dict:
    """The ``generator`` entry of expected.json (before any model-specific extras)."""
    return {
        **versions(),
        "seed": SEED,
        "init_std": INIT_STD,
        "attn_implementation": "eager",
    }


def print_files(out_dir: Path) -> int:
    """Print each file of ``out_dir`` with its size; return the total size in bytes."""
    total = 0
    for p in sorted(out_dir.iterdir()):
        total += p.stat().st_size
        print(f"{p.relative_to(REPO_ROOT)}: {p.stat().st_size} bytes")
    return total


# --- parity fixtures (real models) ---------------------------------------------

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
# The sentence longer than 128 tokens (but shorter than max_seq_length).
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


def set_offline_env() -> None:
    """Never touch the network: call before importing transformers or sentence-transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def start_parity(model_dir: Path, fetch_command: str) -> dict:
    """Check the model folder, set up torch, and check the sentence-transformers layout.

    The folder must hold model.safetensors (else exit, naming
    ``fetch_command``) and be Transformer -> mean Pooling -> Normalize.
    Returns sentence_bert_config.json.
    """
    if not (model_dir / "model.safetensors").is_file():
        raise SystemExit(f"{model_dir} not found: run {fetch_command} first")
    torch.set_num_threads(1)
    torch.manual_seed(0)

    st_cfg = json.loads((model_dir / "sentence_bert_config.json").read_text())
    modules = json.loads((model_dir / "modules.json").read_text())
    pooling_cfg = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Normalize"]
    assert pooling_cfg["pooling_mode_mean_tokens"] and not pooling_cfg["pooling_mode_cls_token"]
    return st_cfg


def st_reference(model_dir: Path, st_cfg: dict, hidden: int):
    """sentence-transformers' embeddings of SENTENCES and the token ids it feeds the model.

    Returns (max_seq_length, embeddings [len(SENTENCES), hidden], token_ids,
    batch): token_ids are each sentence tokenised alone (truncated at
    max_seq_length, no padding), checked equal to the unpadded rows of
    sentence-transformers' own batched tokenisation ``batch``.
    """
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(model_dir), device="cpu")
    st_model.eval()
    max_seq_length = st_model.max_seq_length
    assert max_seq_length == st_cfg["max_seq_length"], (max_seq_length, st_cfg)

    embeddings = st_model.encode(SENTENCES, convert_to_tensor=True, show_progress_bar=False)
    assert tuple(embeddings.shape) == (len(SENTENCES), hidden)

    tokenizer = st_model.tokenizer
    token_ids = [
        tokenizer(s, truncation=True, max_length=max_seq_length)["input_ids"] for s in SENTENCES
    ]
    # Same ids as sentence-transformers' own batched tokenisation (minus padding).
    st_tokenize = getattr(st_model, "preprocess", None) or st_model.tokenize  # ST >= 6 / older
    batch = st_tokenize(SENTENCES)
    for i, ids in enumerate(token_ids):
        row = batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
        assert row == ids, (i, row, ids)
    long_len = len(token_ids[LONG_INDEX])
    assert 128 < long_len < max_seq_length, long_len
    return max_seq_length, embeddings, token_ids, batch


def load_encoder(model_cls, model_dir: Path, missing_note: str = ""):
    """``model_cls.from_pretrained`` (eager attention, eval mode); no weight may be missing."""
    model, info = model_cls.from_pretrained(
        str(model_dir), output_loading_info=True, attn_implementation="eager"
    )
    model.eval()
    missing = list(info.get("missing_keys", []))
    assert not missing, f"checkpoint lacks {missing}{missing_note}"
    return model


def manual_mean_gap(encoder, token_ids: list[list[int]], embeddings: torch.Tensor) -> float:
    """Max |embeddings - mean-pool + L2-normalise by hand|, one sentence at a time."""
    with torch.no_grad():
        manual = []
        for ids in token_ids:
            out = encoder(input_ids=torch.tensor([ids]))
            v = out.last_hidden_state[0].mean(dim=0)
            manual.append(v / v.norm().clamp(min=1e-12))
        return (torch.stack(manual) - embeddings).abs().max().item()


def encode_pairs(hf_tokenizer) -> list:
    """(target, encoding) for each of PAIRS, tokenised as a pair of texts.

    ``truncation='only_second'`` at PAIR_MAX_LENGTH, PyTorch tensors, checked
    to be unpadded.
    """
    encs = []
    for target, idx in PAIRS:
        enc = hf_tokenizer(
            target,
            SENTENCES[idx],
            truncation="only_second",
            max_length=PAIR_MAX_LENGTH,
            return_tensors="pt",
        )
        assert int(enc["attention_mask"].sum()) == enc["input_ids"].shape[1]  # no padding
        encs.append((target, enc))
    return encs


def print_parity_summary(
    max_seq_length: int,
    token_ids: list[list[int]],
    pair_input_ids: list[list[int]],
    st_vs_manual: float,
    out_files: tuple[Path, ...],
    extra_lines: tuple[str, ...] = (),
) -> None:
    """What a parity script prints when done (``extra_lines`` after the pair lengths)."""
    print(f"max_seq_length = {max_seq_length}")
    print(f"token counts = {[len(t) for t in token_ids]}")
    print(f"pair lengths = {[len(t) for t in pair_input_ids]}")
    for line in extra_lines:
        print(line)
    print(f"max |st.encode - manual mean+normalize| = {st_vs_manual:.3g}")
    for p in out_files:
        print(f"{p.relative_to(REPO_ROOT)}: {p.stat().st_size} bytes")


def parity_fixture(
    description: str,
    model_dir: Path,
    max_seq_length: int,
    token_ids: list[list[int]],
    embeddings: torch.Tensor,
) -> dict:
    """The fields both parity JSON files start with, in their order."""
    return {
        "description": description,
        "generator": versions(sentence_transformers=True),
        "model_dir": model_dir.relative_to(REPO_ROOT).as_posix(),
        "model_safetensors_sha256": sha256_file(model_dir / "model.safetensors"),
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
    }
