//! Running a model over many inputs: length-sorted batches, results in input order.

pub mod embed;
mod input;
pub mod predict;
pub mod segment;

pub use input::{open_records, read_texts, InputFormat, ReadOptions, Record, Records, Span, TextItem};

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::tokenization::{Batch, Encoded};
use crate::Result;

/// Runs `forward` over `encoded` in batches of similar length (padding is the
/// main waste at these sizes), and returns one output row per input, in input order.
/// On CPU the batches run side by side on rayon's threads: one batch's ops are
/// too small to scale well across cores, whole batches do.
pub fn run_sorted(
    encoded: &[Encoded],
    batch_size: usize,
    pad_id: u32,
    device: &Device,
    forward: impl Fn(&Batch) -> Result<Tensor> + Sync,
) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| encoded[i].len());
    let chunks: Vec<&[usize]> = order.chunks(batch_size.max(1)).collect();
    let run = |chunk: &&[usize]| -> Result<Vec<Vec<f32>>> {
        let batch = Batch::from_encoded(chunk.iter().map(|&i| &encoded[i]), pad_id, device)?;
        let out = forward(&batch)?.to_device(&Device::Cpu)?.to_dtype(candle_core::DType::F32)?;
        Ok(out.to_vec2::<f32>()?)
    };
    let outputs: Vec<Vec<Vec<f32>>> = if device.is_cpu() {
        chunks.par_iter().map(run).collect::<Result<_>>()?
    } else {
        chunks.iter().map(run).collect::<Result<_>>()?
    };
    let mut rows: Vec<Vec<f32>> = vec![Vec::new(); encoded.len()];
    for (chunk, out) in chunks.iter().zip(outputs) {
        for (&i, row) in chunk.iter().zip(out) {
            rows[i] = row;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_come_back_in_input_order() {
        let encoded: Vec<Encoded> = [5usize, 2, 4, 1, 3]
            .iter()
            .map(|&n| Encoded { ids: vec![n as u32; n], type_ids: vec![0; n], target: None })
            .collect();
        // Each row reports the example's unpadded length, which identifies it.
        let rows = run_sorted(&encoded, 2, 0, &Device::Cpu, |b| {
            Ok(b.attention_mask.to_dtype(candle_core::DType::F32)?.sum_keepdim(1)?)
        })
        .unwrap();
        let lengths: Vec<f32> = rows.iter().map(|r| r[0]).collect();
        assert_eq!(lengths, vec![5.0, 2.0, 4.0, 1.0, 3.0]);
    }
}
