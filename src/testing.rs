//! Tiny, randomly initialised models and tokenizers for tests: no download, no
//! network, milliseconds to run. Public so that the end-to-end tests in `tests/`
//! share them.
#![doc(hidden)]

use std::path::Path;

use candle_core::Device;
use tokenizers::Tokenizer;

use crate::model::{DropoutRng, Encoder, EncoderConfig, HeadKind, ParamStore, Pooling};
use crate::Result;

/// BERT's special tokens at ids 0–4; MPNet's (RoBERTa-style) take the same places.
const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const MPNET_SPECIALS: [&str; 5] = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];
const WORDS: &str = "the war must end and ukraine joining nato europe pay more land never give up \
    borders peace talks defence spending against for not is a of to in will should it be";

/// The word list of the tiny tokenizer: specials, words, then letters and
/// `##`-continuations so that any lowercase ASCII word can be spelled.
pub fn tiny_vocab() -> Vec<String> {
    vocab_with(SPECIALS)
}

fn vocab_with(specials: [&str; 5]) -> Vec<String> {
    let letters = ('a'..='z').map(String::from);
    let pieces = ('a'..='z').map(|c| format!("##{c}"));
    let punct = [",", ".", "'", "?", "!", "-", "\"", ":", ";"].map(String::from);
    specials
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
    tokenizer_json(SPECIALS, ("[CLS]", "[SEP]", false), "[UNK]")
}

/// The same for MPNet: `<s> A </s></s> B </s>`, every type id 0.
pub fn tiny_mpnet_tokenizer_json() -> String {
    tokenizer_json(MPNET_SPECIALS, ("<s>", "</s>", true), "<unk>")
}

fn tokenizer_json(specials: [&str; 5], (start, end, mpnet): (&str, &str, bool), unk: &str) -> String {
    let vocab: serde_json::Map<String, serde_json::Value> =
        vocab_with(specials).into_iter().enumerate().map(|(i, w)| (w, i.into())).collect();
    let special = |id: &str, type_id: u32| serde_json::json!({"SpecialToken": {"id": id, "type_id": type_id}});
    let seq = |id: &str, type_id: u32| serde_json::json!({"Sequence": {"id": id, "type_id": type_id}});
    let added: Vec<_> = specials
        .iter()
        .enumerate()
        .map(|(i, s)| {
            serde_json::json!({"id": i, "content": s, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let second = u32::from(!mpnet);
    let mut pair = vec![special(start, 0), seq("A", 0), special(end, 0)];
    if mpnet {
        pair.push(special(end, 0));
    }
    pair.extend([seq("B", second), special(end, second)]);
    let id_of = |t: &str| specials.iter().position(|s| *s == t).expect("a special token");
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
            "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [special(start, 0), seq("A", 0), special(end, 0)],
            "pair": pair,
            "special_tokens": {
                start: {"id": start, "ids": [id_of(start)], "tokens": [start]},
                end: {"id": end, "ids": [id_of(end)], "tokens": [end]}
            }},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": unk, "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

pub fn tiny_tokenizer() -> Tokenizer {
    tiny_tokenizer_json().parse().expect("the tiny tokenizer parses")
}

/// A 2-layer BERT of hidden size 16 over the tiny vocabulary.
pub fn tiny_config() -> EncoderConfig {
    serde_json::from_value(serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert",
        "vocab_size": tiny_vocab().len(), "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64,
        "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02
    }))
    .expect("the tiny config parses")
}

/// The tiny model's sizes as a 2-layer MPNet: pad id 1, positions from 2.
pub fn tiny_mpnet_config() -> EncoderConfig {
    serde_json::from_value(serde_json::json!({
        "architectures": ["MPNetModel"], "model_type": "mpnet",
        "vocab_size": tiny_vocab().len(), "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 66,
        "relative_attention_num_buckets": 32, "hidden_act": "gelu", "layer_norm_eps": 1e-5,
        "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2,
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02
    }))
    .expect("the tiny MPNet config parses")
}

/// Writes a base-model folder (config.json, model.safetensors under `BertModel`
/// names, tokenizer.json) with weights drawn from `seed`.
pub fn write_tiny_model(dir: &Path, seed: u64) -> Result<()> {
    write_base_model(dir, &tiny_config(), tiny_tokenizer_json(), seed)
}

/// [`write_tiny_model`] for MPNet (`MPNetModel` names, no prefix, as all-mpnet-base-v2 ships).
pub fn write_tiny_mpnet_model(dir: &Path, seed: u64) -> Result<()> {
    write_base_model(dir, &tiny_mpnet_config(), tiny_mpnet_tokenizer_json(), seed)
}

fn write_base_model(dir: &Path, config: &EncoderConfig, tokenizer: String, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
    let params = ParamStore::random(&Device::Cpu, seed);
    // Names without the family's prefix, as a base checkpoint has them.
    Encoder::load_scope(params.lenient(config.initializer_range), config, &DropoutRng::new(seed))
        .map_err(crate::model::model_error)?;
    params.save(&dir.join("model.safetensors"))?;
    let write = |name: &str, text: String| {
        std::fs::write(dir.join(name), text).map_err(|e| crate::Error::io(dir.join(name), e))
    };
    write("config.json", serde_json::to_string_pretty(config).expect("config serialises"))?;
    write("tokenizer.json", tokenizer)
}

/// Writes a trained-format classifier folder (as `stancekit train` saves one)
/// with a random tiny encoder and head: labels favor/against/none, targets
/// `nato` and `defence`. Its base model is written to `dir/base`.
pub fn write_tiny_classifier(dir: &Path, seed: u64) -> Result<()> {
    write_classifier_on(dir, write_tiny_model, (Pooling::Cls, HeadKind::Joint), seed)
}

/// [`write_tiny_classifier`] on a tiny MPNet: with a `<s>` head, or with the
/// frozen recipe's classifier per target (random, as if fitted).
pub fn write_tiny_mpnet_classifier(dir: &Path, per_target: bool, seed: u64) -> Result<()> {
    let head = if per_target { (Pooling::Mean, HeadKind::PerTarget) } else { (Pooling::Cls, HeadKind::Joint) };
    write_classifier_on(dir, write_tiny_mpnet_model, head, seed)
}

fn write_classifier_on(
    dir: &Path,
    write_base: fn(&Path, u64) -> Result<()>,
    (pooling, head): (Pooling, HeadKind),
    seed: u64,
) -> Result<()> {
    use crate::model::{Classifier, StanceSpec};
    let base = dir.join("base");
    write_base(&base, seed)?;
    let spec = StanceSpec {
        labels: ["favor", "against", "none"].map(String::from).to_vec(),
        targets: [("nato", "ukraine joining nato"), ("defence", "europe pay more for defence")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into(),
        pooling,
        max_length: 32,
        head,
        feature_layers: 1,
        temperature: None,
        neutral: None,
    };
    let base_dir = crate::resolve::ModelDir::open(&base)?;
    Classifier::from_base(&base_dir, spec, &Device::Cpu, seed)?.save(dir, &base)
}

/// Multiplies column `column` of every layer norm's weight in the model of
/// `dir` by `factor`: a large activation column at the layer norms' outputs,
/// such as real encoders have (see `crate::model::int8_columns`).
pub fn plant_large_column(dir: &Path, column: usize, factor: f32) -> Result<()> {
    let path = dir.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).map_err(crate::model::model_error)?;
    for (_, t) in tensors.iter_mut().filter(|(name, _)| name.ends_with("LayerNorm.weight")) {
        let mut values = t.to_vec1::<f32>().map_err(crate::model::model_error)?;
        values[column] *= factor;
        *t = candle_core::Tensor::new(values, &Device::Cpu).map_err(crate::model::model_error)?;
    }
    candle_core::safetensors::save(&tensors, &path).map_err(crate::model::model_error)
}

/// A parameter store holding a random tiny encoder under `bert.*`, so that
/// [`crate::model::StanceModel::new`] finds it as it would a checkpoint.
pub fn tiny_params(seed: u64) -> ParamStore {
    params_for(&tiny_config(), seed)
}

/// [`tiny_params`] for `config`'s family (`mpnet.*` for MPNet).
pub fn params_for(config: &EncoderConfig, seed: u64) -> ParamStore {
    let params = ParamStore::random(&Device::Cpu, seed);
    Encoder::load(params.lenient(config.initializer_range), config, &DropoutRng::new(seed))
        .expect("the tiny encoder builds");
    params
}
