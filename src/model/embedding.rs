//! The word-embedding table both families start from. In f32 it is candle's
//! `Embedding`; in an int8 model it is kept in f16 (half the memory: 47 MB
//! of all-mpnet-base-v2's 94) and each looked-up row is widened to f32, so
//! everything after the lookup is unchanged. f16's 11-bit significand
//! rounds a value by at most 2⁻¹¹ of itself, far below the int8 layers'
//! steps.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{embedding, Embedding, VarBuilder};

use super::weights::ParamStore;

pub(super) struct WordEmbeddings {
    table: Embedding,
    /// The table's name in the store, to free its f32 copy there.
    name: String,
}

impl WordEmbeddings {
    /// `word_embeddings.weight` of the embeddings scope `vb`.
    pub fn load(vocab: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp("word_embeddings");
        let name = format!("{}.weight", vb.prefix());
        Ok(Self { table: embedding(vocab, hidden, vb)?, name })
    }

    /// Rows of the table for `ids`; an f16 table's widened to f32.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let rows = self.table.forward(ids)?;
        match rows.dtype() {
            DType::F16 => rows.to_dtype(DType::F32),
            _ => Ok(rows),
        }
    }

    /// Keeps the table in f16 from now on (inference with int8 layers), here
    /// and in `store`, so that its f32 copy is freed. A table that
    /// [`ParamStore::from_safetensors_int8`] read is already f16.
    pub fn halve(&mut self, store: &ParamStore) -> Result<()> {
        let table = self.table.embeddings();
        if table.dtype() != DType::F16 {
            let half = table.to_dtype(DType::F16)?;
            self.table = Embedding::new(half.clone(), self.table.hidden_size());
            store.replace_constant(&self.name, half);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// Halved, the table is f16 here and in the store, and its rows are the
    /// f32 rows rounded to f16 (relative error ≤ 2⁻¹¹), still handed out in f32.
    #[test]
    fn a_halved_table_is_f16_and_looks_up_rounded_rows() {
        let store = ParamStore::random(&Device::Cpu, 7).frozen();
        let vb = store.lenient(0.5).pp("embeddings");
        let mut words = WordEmbeddings::load(50, 8, vb.clone()).unwrap();
        let ids = Tensor::new(&[[3u32, 49, 0], [7, 7, 1]], &Device::Cpu).unwrap();
        let full = words.forward(&ids).unwrap();
        words.halve(&store).unwrap();
        let half = words.forward(&ids).unwrap();
        assert_eq!((half.dtype(), half.dims()), (DType::F32, full.dims()));
        let rounded = full.to_dtype(DType::F16).unwrap().to_dtype(DType::F32).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&half), flat(&rounded));
        for (a, b) in flat(&full).iter().zip(flat(&half)) {
            assert!((a - b).abs() <= a.abs() * 2f32.powi(-11) + 1e-7, "{a} vs {b}");
        }
        assert_ne!(flat(&full), flat(&half), "nothing was rounded");
        let kept = vb.pp("word_embeddings").get((50, 8), "weight").unwrap();
        assert_eq!(kept.dtype(), DType::F16, "the store still holds the f32 table");
    }
}
