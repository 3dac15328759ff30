//! Golden test: the MPNet encoder and its head against PyTorch on a tiny random MPNet.
//!
//! `tests/fixtures/tiny-mpnet/` was made by `scripts/make_golden_tiny_mpnet.py`
//! (transformers 5.24.0, torch 2.15.0); its core is:
//!
//! ```python
//! torch.manual_seed(0)
//! model = MPNetForSequenceClassification(MPNetConfig(vocab_size=64, hidden_size=16,
//!     num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
//!     max_position_embeddings=40, relative_attention_num_buckets=32,
//!     layer_norm_eps=1e-5, pad_token_id=1, num_labels=3))
//! for name, p in model.named_parameters():   # N(0, 0.5); LayerNorm weights 1 + N(0, 0.5)
//!     p.normal_(0.0, 0.5)
//! model.save_pretrained(out); model.eval()
//! position_ids = create_position_ids_from_input_ids(input_ids, 1)
//! buckets = MPNetEncoder.relative_position_bucket(arange(L)[None, :] - arange(L)[:, None], 32)
//! enc = model.mpnet(input_ids, attention_mask=attention_mask)
//! logits = model.classifier(enc.last_hidden_state)   # dense → tanh → out_proj on <s>
//! loss = F.cross_entropy(logits, labels); loss.backward()
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use super::mpnet::{position_ids, relative_bucket};
use super::*;
use crate::tokenization::Batch;

#[derive(Deserialize)]
pub(crate) struct Expected {
    pub input_ids: Vec<Vec<u32>>,
    pub attention_mask: Vec<Vec<u32>>,
    pub labels: Vec<u32>,
    position_ids: Vec<Vec<u32>>,
    relative_position_bucket: Vec<Vec<u32>>,
    last_hidden_state: Vec<Vec<Vec<f32>>>,
    mean_pooled: Vec<Vec<f32>>,
    logits: Vec<Vec<f32>>,
    loss: f32,
    grads: BTreeMap<String, serde_json::Value>,
    pub after_adamw_step: BTreeMap<String, serde_json::Value>,
}

pub(crate) fn fixture() -> (PathBuf, Expected) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-mpnet");
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    (dir, serde_json::from_str(&text).unwrap())
}

pub(crate) fn batch(e: &Expected) -> Batch {
    let t = |rows: &Vec<Vec<u32>>| Tensor::new(rows.clone(), &Device::Cpu).unwrap();
    let types = t(&e.input_ids).zeros_like().unwrap();
    Batch { input_ids: t(&e.input_ids), token_type_ids: types, attention_mask: t(&e.attention_mask), targets: None }
}

pub(crate) use super::golden_tests::{assert_close, flat};

/// The fixture's classifier; `frozen` holds constants (inference), else `Var`s.
pub(crate) fn load(dir: &std::path::Path, frozen: bool) -> StanceModel {
    load_in(dir, frozen, DType::F32)
}

/// [`load`] computing in `dtype`: f64 takes the composite ops a GPU runs (see [`ParamStore::in_dtype`]).
pub(crate) fn load_in(dir: &std::path::Path, frozen: bool, dtype: DType) -> StanceModel {
    let config = EncoderConfig::load(&dir.join("config.json")).unwrap();
    let params = ParamStore::from_safetensors(&dir.join("model.safetensors"), &Device::Cpu, 0).unwrap().in_dtype(dtype);
    let params = if frozen { params.frozen() } else { params };
    StanceModel::new(&config, &params, Pooling::Cls, 3, 0).unwrap()
}

#[test]
fn positions_and_buckets_match_pytorch() {
    let (_, e) = fixture();
    let positions: Vec<Vec<u32>> = e.input_ids.iter().map(|row| position_ids(row, 1)).collect();
    assert_eq!(positions, e.position_ids);
    let l = e.relative_position_bucket.len() as i64;
    let buckets: Vec<Vec<u32>> = (0..l).map(|q| (0..l).map(|k| relative_bucket(k - q, 32)).collect()).collect();
    assert_eq!(buckets, e.relative_position_bucket);
}

#[test]
fn forward_matches_pytorch() {
    let (dir, e) = fixture();
    // Trainable parameters (the position table's gradient through the tap) and constants.
    for frozen in [false, true] {
        let model = load(&dir, frozen);
        let batch = batch(&e);
        let hidden = model.encoder.forward_t(&batch, false).unwrap();
        let want: Vec<f32> = e.last_hidden_state.iter().flatten().flatten().copied().collect();
        assert_close("last_hidden_state", &hidden, want, 1e-5);
        let mean = mean_pool(&hidden, &batch.attention_mask).unwrap();
        assert_close("mean_pooled", &mean, e.mean_pooled.concat(), 1e-5);
        assert_close("logits", &model.forward_t(&batch, false).unwrap(), e.logits.concat(), 1e-5);
    }
}

#[test]
fn gradients_match_pytorch() {
    let (dir, e) = fixture();
    super::golden_tests::assert_loss_and_gradients(&load(&dir, false), &batch(&e), &e.labels, e.loss, &e.grads);
}

/// What `--device cuda` runs (the composite ops, here in f64 on the CPU) gives
/// PyTorch's outputs, loss and gradients too, the position bias's included.
#[test]
fn the_composite_path_a_gpu_runs_matches_pytorch() {
    let (dir, e) = fixture();
    let model = load_in(&dir, false, DType::F64);
    let batch = batch(&e);
    let hidden = model.encoder.forward_t(&batch, false).unwrap();
    assert_eq!(hidden.dtype(), DType::F64);
    assert_close("last_hidden_state", &hidden, e.last_hidden_state.concat().concat(), 1e-5);
    super::golden_tests::assert_loss_and_gradients(&model, &batch, &e.labels, e.loss, &e.grads);
}

#[test]
fn bare_encoder_names_load_the_same_model() {
    let (dir, e) = fixture();
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    // A base checkpoint as sentence-transformers ships it: no `mpnet.` prefix.
    let renamed: std::collections::HashMap<String, Tensor> =
        tensors.into_iter().map(|(k, t)| (k.strip_prefix("mpnet.").map(str::to_string).unwrap_or(k), t)).collect();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.json"), tmp.path().join("config.json")).unwrap();
    candle_core::safetensors::save(&renamed, tmp.path().join("model.safetensors")).unwrap();
    let model = load(tmp.path(), true);
    assert_close("logits", &model.forward_t(&batch(&e), false).unwrap(), e.logits.concat(), 1e-5);
}

#[test]
fn a_config_that_disagrees_with_the_weights_names_the_tensor() {
    let (dir, _) = fixture();
    let mut config = EncoderConfig::load(&dir.join("config.json")).unwrap();
    config.relative_attention_num_buckets = Some(16);
    let params = ParamStore::from_safetensors(&dir.join("model.safetensors"), &Device::Cpu, 0).unwrap();
    let err = StanceModel::new(&config, &params, Pooling::Cls, 3, 0).err().unwrap().to_string();
    assert!(err.contains("`mpnet.encoder.relative_attention_bias.weight` has shape [32, 2]"), "{err}");
}
