//! Sentence embeddings (`stancekit embed`, run by `commands/embed.rs`)
//! exactly as sentence-transformers' `encode()` gives them for the model (its
//! `modules.json` decides pooling and normalisation,
//! `sentence_bert_config.json` the maximum length).

use std::path::Path;

use candle_core::{Device, Tensor};

use crate::model::{mean_pool, Arithmetic, DropoutRng, Encoder, EncoderConfig, Int8Plan, Output};
use crate::resolve::ModelDir;
use crate::tokenization::{Batch, Encoded, StanceTokenizer};
use crate::{Error, Result};

/// How sentence-transformers turns token vectors into one vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentencePooling {
    Mean,
    Cls,
}

/// The sentence-transformers modules after the encoder.
#[derive(Debug, Clone, PartialEq)]
pub struct SentencePipeline {
    pub pooling: SentencePooling,
    pub normalize: bool,
    pub max_seq_length: Option<usize>,
}

impl SentencePipeline {
    /// Reads `modules.json` and friends; a plain transformers folder gets what
    /// sentence-transformers gives it: mean pooling, no normalisation.
    pub fn from_dir(dir: &ModelDir) -> Result<Self> {
        let modules = read_json(&dir.file("modules.json"))?.unwrap_or(serde_json::json!([]));
        let modules = modules.as_array().cloned().unwrap_or_default();
        let has = |kind: &str| modules.iter().any(|m| m["type"].as_str().is_some_and(|t| t.ends_with(kind)));
        let pooling = match modules.iter().find(|m| m["type"].as_str().is_some_and(|t| t.ends_with(".Pooling"))) {
            Some(m) => pooling_mode(&dir.file(&format!("{}/config.json", m["path"].as_str().unwrap_or("1_Pooling"))))?,
            None => SentencePooling::Mean,
        };
        let max_seq_length = read_json(&dir.file("sentence_bert_config.json"))?
            .and_then(|c| c["max_seq_length"].as_u64())
            .map(|n| n as usize);
        Ok(Self { pooling, normalize: has(".Normalize"), max_seq_length })
    }

    /// [batch, seq, hidden] → [batch, hidden].
    pub fn apply(&self, hidden: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let pooled = match self.pooling {
            SentencePooling::Mean => mean_pool(hidden, attention_mask)?,
            SentencePooling::Cls => hidden.narrow(1, 0, 1)?.squeeze(1)?,
        };
        if !self.normalize {
            return Ok(pooled);
        }
        // torch.nn.functional.normalize: x / max(‖x‖₂, 1e-12)
        let norm = pooled.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        pooled.broadcast_div(&norm)
    }
}

fn pooling_mode(path: &Path) -> Result<SentencePooling> {
    let config = read_json(path)?.unwrap_or(serde_json::json!({"pooling_mode_mean_tokens": true}));
    let on = |key: &str| config[key].as_bool().unwrap_or(false);
    match (on("pooling_mode_mean_tokens"), on("pooling_mode_cls_token")) {
        (true, false) => Ok(SentencePooling::Mean),
        (false, true) => Ok(SentencePooling::Cls),
        _ => Err(Error::Model(format!("{}: only mean or CLS pooling is supported", path.display()))),
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    path.exists().then(|| crate::io::read_json(path)).transpose()
}

/// An encoder with its tokenizer and sentence-transformers pipeline.
pub struct Embedder {
    encoder: Encoder,
    tokenizer: StanceTokenizer,
    pipeline: SentencePipeline,
    device: Device,
    /// The int8 kernel and layers, if loaded at `--precision int8`.
    pub int8: Option<Int8Plan>,
    /// The length of an embedding: the encoder's width (pooling keeps it).
    pub dimension: usize,
}

impl Embedder {
    pub fn load(
        dir: &ModelDir,
        device: &Device,
        max_length: Option<usize>,
        arithmetic: impl Into<Arithmetic>,
    ) -> Result<Self> {
        let config = EncoderConfig::load(&dir.config())?;
        // Constants, not trainable variables: no graph, and no copy of the weights.
        let (params, int8) =
            crate::model::inference_params(&dir.weights(), device, arithmetic.into(), config.num_hidden_layers)?;
        crate::model::check_layer_count(&config, &params, &dir.weights())?;
        let mut encoder =
            Encoder::load(params.strict(), &config, &DropoutRng::new(0)).map_err(crate::model::model_error)?;
        params.release_checkpoint();
        let pipeline = SentencePipeline::from_dir(dir)?;
        let limit = max_length.or(pipeline.max_seq_length).unwrap_or(config.max_tokens());
        let tokenizer = StanceTokenizer::from_file(&dir.tokenizer(), limit.min(config.max_tokens()))?;
        crate::model::check_tokenizer(&tokenizer, &config, &dir.tokenizer())?;
        let int8 = match int8 {
            Some(plan) => {
                encoder.quantize(plan, &params).map_err(crate::model::model_error)?;
                Some(crate::model::choose_f32_columns(&mut encoder, &tokenizer, &dir.weights(), plan)?)
            }
            None => None,
        };
        Ok(Self { encoder, tokenizer, pipeline, device: device.clone(), int8, dimension: config.hidden_size })
    }

    /// One embedding per sentence, in input order.
    pub fn embed(&self, texts: &[&str], batch_size: usize) -> Result<Vec<Vec<f32>>> {
        let pool = |hidden: &Tensor, mask: &Tensor| Ok(self.pipeline.apply(hidden, mask)?);
        self.encode_with(&self.tokenizer.encode_texts(texts)?, batch_size, Output::LAST, pool)
    }

    /// The sentences another tokenizer of the same model encoded (the frozen
    /// recipe's, with its own length limit), through this encoder, which
    /// returns `output` ([batch, seq, width]), and `pool` (that and the mask →
    /// [batch, width]).
    pub fn encode_with<F>(
        &self,
        encoded: &[Encoded],
        batch_size: usize,
        output: Output,
        pool: F,
    ) -> Result<Vec<Vec<f32>>>
    where
        F: Fn(&Tensor, &Tensor) -> Result<Tensor> + Sync,
    {
        crate::tokenization::run_sorted(encoded, batch_size, self.tokenizer.pad_id(), &self.device, |batch: &Batch| {
            pool(&self.encoder.forward_output_t(batch, false, output)?, &batch.attention_mask)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Precision;

    /// `--int8-f32-columns auto` reaches the embedder too: a planted large
    /// column is found when the base model loads.
    #[test]
    fn an_int8_embedder_chooses_its_f32_columns_at_load() {
        use crate::model::Arithmetic;
        let dir = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_mpnet_model(dir.path(), 3).unwrap();
        crate::testing::plant_large_column(dir.path(), 9, 30.0).unwrap();
        let model = ModelDir::open(dir.path()).unwrap();
        let auto = Arithmetic::from(Precision::Int8).with_f32_columns_chosen_at_load();
        let embedder = Embedder::load(&model, &Device::Cpu, None, auto).unwrap();
        assert_eq!(embedder.int8.unwrap().arithmetic.f32_columns(), [9]);
    }

    #[test]
    fn embeddings_are_unit_length_and_batch_independent() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_model(dir.path(), 3).unwrap();
        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        let model = ModelDir::open(dir.path()).unwrap();
        let embedder = Embedder::load(&model, &Device::Cpu, None, Precision::F32).unwrap();
        assert_eq!(
            embedder.pipeline,
            SentencePipeline { pooling: SentencePooling::Mean, normalize: true, max_seq_length: None }
        );
        let texts = ["the war must end", "peace", "europe must pay more for defence and it will"];
        let together = embedder.embed(&texts, 3).unwrap();
        for (i, text) in texts.iter().enumerate() {
            let alone = &embedder.embed(&[text], 1).unwrap()[0];
            let diff = alone.iter().zip(&together[i]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(diff < 1e-5, "padding changed sentence {i} by {diff}");
            let norm = alone.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5);
        }
    }
}
