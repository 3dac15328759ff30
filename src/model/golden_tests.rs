//! Golden test: the encoder and head against PyTorch on a tiny random BERT.
//!
//! `tests/fixtures/tiny-bert/` was made by `scripts/make_golden_tiny.py`
//! (transformers 5.24.0, torch 2.15.0); its core is:
//!
//! ```python
//! torch.manual_seed(0)
//! model = BertForSequenceClassification(EncoderConfig(vocab_size=64, hidden_size=16,
//!     num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
//!     max_position_embeddings=32, num_labels=3))
//! for name, p in model.named_parameters():   # N(0, 0.5); LayerNorm weights 1 + N(0, 0.5)
//!     p.normal_(0.0, 0.5)
//! model.save_pretrained(out); model.eval()
//! enc = model.bert(input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
//! logits = model.classifier(enc.pooler_output)
//! loss = F.cross_entropy(logits, labels); loss.backward()
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use serde::Deserialize;

use super::*;
use crate::tokenization::Batch;

#[derive(Deserialize)]
struct Expected {
    input_ids: Vec<Vec<u32>>,
    token_type_ids: Vec<Vec<u32>>,
    attention_mask: Vec<Vec<u32>>,
    labels: Vec<u32>,
    last_hidden_state: Vec<Vec<Vec<f32>>>,
    pooler_output: Vec<Vec<f32>>,
    mean_pooled: Vec<Vec<f32>>,
    logits: Vec<Vec<f32>>,
    loss: f32,
    grads: BTreeMap<String, serde_json::Value>,
}

fn fixture() -> (PathBuf, Expected) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bert");
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    (dir, serde_json::from_str(&text).unwrap())
}

fn batch(e: &Expected) -> Batch {
    let t = |rows: &Vec<Vec<u32>>| Tensor::new(rows.clone(), &Device::Cpu).unwrap();
    Batch {
        input_ids: t(&e.input_ids),
        token_type_ids: t(&e.token_type_ids),
        attention_mask: t(&e.attention_mask),
        targets: None,
    }
}

pub(crate) fn flat(v: &serde_json::Value) -> Vec<f32> {
    match v {
        serde_json::Value::Array(items) => items.iter().flat_map(flat).collect(),
        other => vec![other.as_f64().unwrap() as f32],
    }
}

/// `got` (of any float dtype) against `want`, element by element.
pub(crate) fn assert_close(name: &str, got: &Tensor, want: Vec<f32>, tolerance: f32) {
    let got = got.flatten_all().unwrap().to_dtype(candle_core::DType::F32).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(got.len(), want.len(), "{name}: size");
    let diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff <= tolerance, "{name}: max abs difference {diff} > {tolerance}");
}

fn load(dir: &std::path::Path, pooling: Pooling) -> StanceModel {
    let config = EncoderConfig::load(&dir.join("config.json")).unwrap();
    let params = ParamStore::from_safetensors(&dir.join("model.safetensors"), &Device::Cpu, 0).unwrap();
    StanceModel::new(&config, &params, pooling, 3, 0).unwrap()
}

#[test]
fn forward_matches_pytorch() {
    let (dir, e) = fixture();
    let model = load(&dir, Pooling::Cls);
    let batch = batch(&e);
    let hidden = model.encoder.forward_t(&batch, false).unwrap();
    // Row 2's last position is padding: PyTorch still computes it, and so do we.
    let want: Vec<f32> = e.last_hidden_state.iter().flatten().flatten().copied().collect();
    assert_close("last_hidden_state", &hidden, want, 1e-5);
    let pooled = model.head.pool(&hidden, &batch.attention_mask).unwrap();
    assert_close("pooler_output", &pooled, e.pooler_output.concat(), 1e-5);
    assert_close("mean_pooled", &mean_pool(&hidden, &batch.attention_mask).unwrap(), e.mean_pooled.concat(), 1e-5);
    assert_close("logits", &model.forward_t(&batch, false).unwrap(), e.logits.concat(), 1e-5);
}

#[test]
fn gradients_match_pytorch() {
    let (dir, e) = fixture();
    assert_loss_and_gradients(&load(&dir, Pooling::Cls), &batch(&e), &e.labels, e.loss, &e.grads);
}

/// The mean cross-entropy for `labels` and the gradients of the named parameters, against PyTorch's.
pub(super) fn assert_loss_and_gradients(
    model: &StanceModel,
    batch: &Batch,
    labels: &[u32],
    loss: f32,
    grads: &BTreeMap<String, serde_json::Value>,
) {
    let logits = model.forward_t(batch, false).unwrap();
    let labels = Tensor::new(labels, &Device::Cpu).unwrap();
    let got = candle_nn::loss::cross_entropy(&logits, &labels).unwrap();
    assert_close("loss", &got, vec![loss], 1e-5);
    let computed = got.backward().unwrap();
    let vars: BTreeMap<String, candle_core::Var> = model.params.vars().into_iter().collect();
    for (name, want) in grads {
        let grad = computed.get(vars[name].as_tensor()).unwrap();
        assert_close(&format!("grad {name}"), grad, flat(want), 1e-4);
    }
}

#[test]
fn legacy_names_and_bare_encoder_names_load_the_same_model() {
    let (dir, e) = fixture();
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    // A base-model checkpoint: no `bert.` prefix, and LayerNorm as gamma/beta.
    let renamed: std::collections::HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, t)| {
            let k = k.strip_prefix("bert.").map(str::to_string).unwrap_or(k);
            let k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta");
            (k, t)
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.json"), tmp.path().join("config.json")).unwrap();
    candle_core::safetensors::save(&renamed, tmp.path().join("model.safetensors")).unwrap();
    let model = load(tmp.path(), Pooling::Cls);
    assert_close("logits", &model.forward_t(&batch(&e), false).unwrap(), e.logits.concat(), 1e-5);
}

#[test]
fn bad_checkpoints_name_the_tensor() {
    let (dir, _) = fixture();
    let config = EncoderConfig::load(&dir.join("config.json")).unwrap();
    let mut tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors.remove("bert.encoder.layer.1.attention.self.key.weight");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let params = ParamStore::from_safetensors(&path, &Device::Cpu, 0).unwrap();
    let err = StanceModel::new(&config, &params, Pooling::Cls, 3, 0).err().unwrap().to_string();
    assert!(err.contains("missing tensor `bert.encoder.layer.1.attention.self.key.weight`"), "{err}");

    let mut wide = config.clone();
    wide.intermediate_size = 48;
    let params = ParamStore::from_safetensors(&dir.join("model.safetensors"), &Device::Cpu, 0).unwrap();
    let err = StanceModel::new(&wide, &params, Pooling::Cls, 3, 0).err().unwrap().to_string();
    assert!(err.contains("`bert.encoder.layer.0.intermediate.dense.weight` has shape [32, 16]"), "{err}");
}
