//! Tiny, randomly initialised models and tokenizers for tests: no download, no
//! network, milliseconds to run. Public so that the end-to-end tests in `tests/`
//! share them.
#![doc(hidden)]

use std::path::Path;

use candle_core::Device;
use tokenizers::Tokenizer;

use crate::model::{Bert, BertConfig, DropoutRng, ParamStore};
use crate::Result;

const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const WORDS: &str = "the war must end and ukraine joining nato europe pay more land never give up \
    borders peace talks defence spending against for not is a of to in will should it be";

/// The word list of the tiny tokenizer: specials, words, then letters and
/// `##`-continuations so that any lowercase ASCII word can be spelled.
pub fn tiny_vocab() -> Vec<String> {
    let letters = ('a'..='z').map(String::from);
    let pieces = ('a'..='z').map(|c| format!("##{c}"));
    let punct = [",", ".", "'", "?", "!", "-", "\"", ":", ";"].map(String::from);
    SPECIALS
        .iter()
        .map(|s| s.to_string())
        .chain(WORDS.split_whitespace().map(String::from))
        .chain(letters)
        .chain(pieces)
        .chain(punct)
        .chain(('0'..='9').map(String::from))
        .collect()
}

/// A `tokenizer.json` in the shape transformers writes for BERT (WordPiece, lower case).
pub fn tiny_tokenizer_json() -> String {
    let vocab: serde_json::Map<String, serde_json::Value> =
        tiny_vocab().into_iter().enumerate().map(|(i, w)| (w, i.into())).collect();
    let special = |id: &str, type_id: u32| serde_json::json!({"SpecialToken": {"id": id, "type_id": type_id}});
    let seq = |id: &str, type_id: u32| serde_json::json!({"Sequence": {"id": id, "type_id": type_id}});
    let added: Vec<_> = SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({"id": i, "content": s, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [special("[CLS]", 0), seq("A", 0), special("[SEP]", 0)],
            "pair": [special("[CLS]", 0), seq("A", 0), special("[SEP]", 0), seq("B", 1), special("[SEP]", 1)],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

pub fn tiny_tokenizer() -> Tokenizer {
    tiny_tokenizer_json().parse().expect("the tiny tokenizer parses")
}

/// A 2-layer BERT of hidden size 16 over the tiny vocabulary.
pub fn tiny_config() -> BertConfig {
    serde_json::from_value(serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": tiny_vocab().len(), "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64,
        "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02
    }))
    .expect("the tiny config parses")
}

/// Writes a base-model folder (config.json, model.safetensors under `BertModel`
/// names, tokenizer.json) with weights drawn from `seed`.
pub fn write_tiny_model(dir: &Path, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let config = tiny_config();
    let params = ParamStore::random(&Device::Cpu, seed);
    Bert::load(params.lenient(config.initializer_range), &config, &DropoutRng::new(seed))
        .map_err(crate::model::model_error)?;
    params.save(&dir.join("model.safetensors"))?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| crate::Error::io(dir.join(name), e))
    };
    write("config.json", serde_json::to_string_pretty(&config).expect("config serialises"))?;
    write("tokenizer.json", tiny_tokenizer_json())
}

/// Writes a trained-format classifier folder (as `stancekit train` saves one)
/// with a random tiny encoder and head: labels favor/against/none, targets
/// `nato` and `defence`. Its base model is written to `dir/base`.
pub fn write_tiny_classifier(dir: &Path, seed: u64) -> Result<()> {
    use crate::model::{Classifier, Pooling, StanceSpec};
    let base = dir.join("base");
    write_tiny_model(&base, seed)?;
    let spec = StanceSpec {
        labels: ["favor", "against", "none"].map(String::from).to_vec(),
        targets: [("nato", "ukraine joining nato"), ("defence", "europe pay more for defence")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        pooling: Pooling::Cls,
        max_length: 32,
    };
    let base_dir = crate::resolve::resolve(&base.to_string_lossy())?;
    Classifier::from_base(&base_dir, spec, &Device::Cpu, seed)?.save(dir, &base)
}

/// A parameter store holding a random tiny encoder under `bert.*`, so that
/// [`crate::model::StanceModel::new`] finds it as it would a checkpoint.
pub fn tiny_params(seed: u64) -> ParamStore {
    let config = tiny_config();
    let params = ParamStore::random(&Device::Cpu, seed);
    Bert::load(params.lenient(config.initializer_range).pp("bert"), &config, &DropoutRng::new(seed))
        .expect("the tiny encoder builds");
    params
}
