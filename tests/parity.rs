//! Parity with PyTorch on the real encoders: all-MiniLM-L6-v2 (BERT, the
//! default) and all-mpnet-base-v2 (MPNet).
//!
//! Reference numbers: `tests/fixtures/minilm-parity.json` and
//! `tests/fixtures/mpnet-parity.json`, made by `scripts/make_parity_minilm.py`
//! and `scripts/make_parity_mpnet.py` with sentence-transformers 6.2.0 and
//! transformers 5.24.0. The models are not in git: fetch them with
//! `scripts/fetch-model.sh` and `scripts/fetch-model.sh all-mpnet-base-v2`
//! (`.ci/run` does). Without a model its tests print why and pass.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;
use stancekit::inference::embed::Embedder;
use stancekit::kernels::int8::Kernel;
use stancekit::model::{EncoderConfig, ParamStore, Pooling, Precision, StanceModel};
use stancekit::resolve;
use stancekit::tokenization::{Batch, StanceTokenizer};

/// One real model and its fixture.
struct Case {
    model: &'static str,
    fixture: &'static str,
    head: &'static str,
}

const MINILM: Case =
    Case { model: resolve::DEFAULT_MODEL, fixture: "minilm-parity.json", head: "minilm-head.safetensors" };
const MPNET: Case =
    Case { model: "models/all-mpnet-base-v2", fixture: "mpnet-parity.json", head: "mpnet-head.safetensors" };

#[derive(Deserialize)]
struct Fixture {
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
    pair_targets: Vec<String>,
    pair_sentence_index: Vec<usize>,
    pair_max_length: usize,
    pair_input_ids: Vec<Vec<u32>>,
    /// BERT's; MPNet has no token types.
    #[serde(default)]
    pair_token_type_ids: Option<Vec<Vec<u32>>>,
    logits_cls: Vec<Vec<f32>>,
    logits_mean: Vec<Vec<f32>>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fetched model, or `None` after saying why the test is skipped.
fn model_dir(case: &Case, test: &str) -> Option<resolve::ModelDir> {
    let dir = root().join(case.model);
    match resolve::resolve(dir.to_str()?) {
        Ok(m) => Some(m),
        Err(e) => {
            // Straight to stderr: libtest captures `eprintln!`, and a skip must be seen.
            let _ = writeln!(std::io::stderr(), "SKIPPED {test} ({}): {e}", case.model);
            None
        }
    }
}

fn fixture(case: &Case) -> Fixture {
    let text = std::fs::read_to_string(root().join("tests/fixtures").join(case.fixture)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max)
}

fn embeddings_match(case: &Case) {
    let Some(dir) = model_dir(case, "embeddings_match_sentence_transformers") else { return };
    let f = fixture(case);
    let embedder = Embedder::load(&dir, &Device::Cpu, None, Precision::F32).unwrap();
    let texts: Vec<&str> = f.sentences.iter().map(String::as_str).collect();
    for batch_size in [1, 3, 8] {
        let got = embedder.embed(&texts, batch_size).unwrap();
        for (i, (g, want)) in got.iter().zip(&f.embeddings).enumerate() {
            let d = max_diff(g, want);
            assert!(d <= 1e-4, "{}: sentence {i}, batch {batch_size}: max abs difference {d}", case.model);
        }
    }
    // The long sentence (212 tokens) must not be cut at the tokenizer.json's 128.
    let tok = StanceTokenizer::from_file(&dir.tokenizer(), 384).unwrap();
    let ids: Vec<Vec<u32>> = tok.encode_texts(&texts).unwrap().into_iter().map(|e| e.ids).collect();
    assert_eq!(ids, f.token_ids);
}

/// `--precision int8` against sentence-transformers' f32 embeddings: close in
/// direction (what the frozen recipe and cosine search read), on every int8
/// kernel this CPU runs (they agree to the bit, so one bound serves all).
fn int8_embeddings_stay_close(case: &Case) {
    let Some(dir) = model_dir(case, "int8_embeddings_stay_close") else { return };
    if Kernel::select().is_err() {
        let _ = writeln!(std::io::stderr(), "SKIPPED int8_embeddings_stay_close ({}): no int8 kernel here", case.model);
        return;
    }
    let f = fixture(case);
    let embedder = Embedder::load(&dir, &Device::Cpu, None, Precision::Int8).unwrap();
    let texts: Vec<&str> = f.sentences.iter().map(String::as_str).collect();
    let got = embedder.embed(&texts, 4).unwrap();
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
    };
    let gaps: Vec<f32> = got.iter().zip(&f.embeddings).map(|(g, w)| 1.0 - cos(g, w)).collect();
    let mean = gaps.iter().sum::<f32>() / gaps.len() as f32;
    // Measured on the 1,249 TweetEval test tweets with MPNet: mean 1.95e-3, worst 4.9e-3.
    assert!(gaps.iter().all(|&g| g < 0.01) && mean < 0.004, "{}: 1 - cos per sentence {gaps:?}", case.model);
}

fn with_head(dir: &Path, head: &Path, out: &Path) {
    let mut tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
    tensors.extend(candle_core::safetensors::load(head, &Device::Cpu).unwrap());
    candle_core::safetensors::save(&tensors, out).unwrap();
}

fn pair_logits_match(case: &Case) {
    let Some(dir) = model_dir(case, "pair_logits_match_transformers") else { return };
    let f = fixture(case);
    let tok = StanceTokenizer::from_file(&dir.tokenizer(), f.pair_max_length).unwrap();
    let pairs: Vec<(&str, &str)> = f
        .pair_targets
        .iter()
        .zip(&f.pair_sentence_index)
        .map(|(t, &i)| (t.as_str(), f.sentences[i].as_str()))
        .collect();
    let encoded = tok.encode_pairs(&pairs).unwrap();
    assert_eq!(encoded.iter().map(|e| e.ids.clone()).collect::<Vec<_>>(), f.pair_input_ids);
    if let Some(types) = &f.pair_token_type_ids {
        assert_eq!(&encoded.iter().map(|e| e.type_ids.clone()).collect::<Vec<_>>(), types);
    }

    let tmp = tempfile::tempdir().unwrap();
    let weights = tmp.path().join("model.safetensors");
    with_head(dir.path(), &root().join("tests/fixtures").join(case.head), &weights);
    let config = EncoderConfig::load(&dir.config()).unwrap();
    let batch = Batch::from_encoded(&encoded, tok.pad_id(), &Device::Cpu).unwrap();
    // Trainable parameters take the differentiable ops; frozen ones the fused inference kernels.
    for frozen in [false, true] {
        for (pooling, want) in [(Pooling::Cls, &f.logits_cls), (Pooling::Mean, &f.logits_mean)] {
            let params = ParamStore::from_safetensors(&weights, &Device::Cpu, 0).unwrap();
            let params = if frozen { params.frozen() } else { params };
            let model = StanceModel::new(&config, &params, pooling, 3, 0).unwrap();
            let logits: Tensor = model.forward_t(&batch, false).unwrap();
            assert_eq!(logits.track_op(), !frozen);
            let got = logits.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let d = max_diff(&got, &want.concat());
            assert!(d <= 1e-5, "{}: {pooling:?}, frozen {frozen}: max abs difference {d}", case.model);
        }
    }
}

#[test]
fn minilm_embeddings_match_sentence_transformers() {
    embeddings_match(&MINILM);
}

#[test]
fn minilm_pair_logits_match_transformers() {
    pair_logits_match(&MINILM);
}

#[test]
fn mpnet_embeddings_match_sentence_transformers() {
    embeddings_match(&MPNET);
}

#[test]
fn mpnet_pair_logits_match_transformers() {
    pair_logits_match(&MPNET);
}

#[test]
fn minilm_int8_embeddings_stay_close_to_f32() {
    int8_embeddings_stay_close(&MINILM);
}

#[test]
fn mpnet_int8_embeddings_stay_close_to_f32() {
    int8_embeddings_stay_close(&MPNET);
}
