//! `--int8-f32-columns auto` (int8's default): which input columns of the
//! layers that read a layer norm's output (query, key, value, FFN in) to
//! multiply in f32, chosen when the model loads.
//!
//! An encoder's layer-norm outputs carry a few columns far above the rest,
//! the same few in almost every layer (`scripts/int8-error-sim.py`: MPNet's
//! 461, 555, 568, 756, up to 40× the median column; MiniLM's 63, 99, 223,
//! and 157 or 338, which are nearly even), and each row's u8 step must span
//! them. They belong to the model more than to the text: the simulation picks
//! the same ones from 4 to 57 sentences of the project's news and from
//! tweets. So the int8 model reads a short built-in text once, each input's
//! largest columns are counted, and the columns most often among them go to
//! f32, with their exact weights read again from the file. The text is short
//! because it is read at every start-up: 6 sentences cost MPNet about 36 ms
//! on 2 cores, 16 about 108 ms, for the same columns.

use std::path::Path;

use candle_core::Device;

use super::encoder::Encoder;
use super::int8::{Int8Linear, Int8Plan, LinearKind};
use super::linear::Linear;
use crate::tokenization::{Batch, StanceTokenizer};

/// The built-in text: varied English (news, opinion, chat), read in as few
/// model calls as the tokenizer's length allows ([`sequences`]), none padded.
const TEXTS: [&str; 6] = [
    "The government said on Tuesday that it would raise taxes on fuel next year.",
    "I honestly think this is the worst decision the council has ever made!",
    "Scientists found that the new vaccine cut hospital admissions by almost half.",
    "Can anyone explain why the trains are late again this morning?",
    "The company reported a loss of 3.2 billion dollars in the second quarter.",
    "We should welcome refugees, not build walls against them.",
];

/// Columns multiplied in f32: what `scripts/int8-error-sim.py` measured (4
/// per layer took the embeddings' error from 1.03e-3 to 3.07e-4 on MiniLM).
const COLUMNS: usize = 4;

/// The int8 layers that read a layer norm's output, with their weights' names, in order.
fn readers(encoder: &mut Encoder) -> Vec<(String, &mut Int8Linear)> {
    let reads = |l: &Linear| LinearKind::of(l.name()).is_some_and(LinearKind::reads_layer_norm);
    encoder
        .linears_mut()
        .into_iter()
        .filter(|l| reads(l))
        .filter_map(|l| Some((l.name().to_string(), l.int8_mut()?)))
        .collect()
}

/// With `plan`'s columns chosen at load: runs the built-in text through the
/// int8 `encoder`, chooses the columns ([`choose`]) and sets them, with their
/// f32 weights from `weights`, on every layer that reads a layer norm's
/// output. Returns the plan with the columns it set (the same plan otherwise).
pub(crate) fn choose_f32_columns(
    encoder: &mut Encoder,
    tokenizer: &StanceTokenizer,
    weights: &Path,
    plan: Int8Plan,
) -> crate::Result<Int8Plan> {
    if !plan.arithmetic.f32_columns_chosen_at_load() {
        return Ok(plan);
    }
    let columns = choose(&observe(encoder, tokenizer)?, COLUMNS);
    if !columns.is_empty() {
        let readers = readers(encoder);
        let wanted: Vec<(String, Vec<usize>)> =
            readers.iter().map(|(name, _)| (name.clone(), columns.iter().map(|&c| c as usize).collect())).collect();
        let exact = super::weights::read_columns(weights, &wanted)?;
        for ((_, int8), exact) in readers.into_iter().zip(exact) {
            int8.set_f32_columns(exact).map_err(super::model_error)?;
        }
    }
    let arithmetic = plan.arithmetic.with_f32_columns(&columns).map_err(crate::Error::Model)?;
    Ok(Int8Plan { arithmetic, ..plan })
}

/// Each int8 input of a layer that reads a layer norm's output (the query's
/// for attention, the FFN's), its largest |value| per column over [`TEXTS`].
fn observe(encoder: &mut Encoder, tokenizer: &StanceTokenizer) -> crate::Result<Vec<Vec<f32>>> {
    let set = |encoder: &mut Encoder, on: bool| readers(encoder).into_iter().for_each(|(_, l)| l.observe(on));
    set(encoder, true);
    let run = |encoder: &Encoder| -> crate::Result<()> {
        let texts = sequences(tokenizer)?;
        for encoded in tokenizer.encode_texts(&texts.iter().map(String::as_str).collect::<Vec<_>>())? {
            let batch = Batch::from_encoded([&encoded], tokenizer.pad_id(), &Device::Cpu)?;
            encoder.forward_t(&batch, false).map_err(super::model_error)?;
        }
        Ok(())
    };
    let result = run(encoder);
    let seen = readers(encoder).into_iter().filter_map(|(_, l)| l.observed()).collect();
    set(encoder, false);
    result.map(|_| seen)
}

/// [`TEXTS`] joined, whole sentences at a time, into sequences that fit the
/// tokenizer's length: a few calls of many rows each cost less than a call
/// per sentence.
fn sequences(tokenizer: &StanceTokenizer) -> crate::Result<Vec<String>> {
    let room = tokenizer.max_length().saturating_sub(4).max(1);
    let mut sequences: Vec<(String, usize)> = Vec::new();
    for (text, encoded) in TEXTS.iter().zip(tokenizer.encode_texts(&TEXTS)?) {
        // Less the two special tokens each sentence has alone.
        let tokens = encoded.len().saturating_sub(2);
        match sequences.last_mut() {
            Some((joined, used)) if *used + tokens <= room => {
                joined.push(' ');
                joined.push_str(text);
                *used += tokens;
            }
            _ => sequences.push((text.to_string(), tokens)),
        }
    }
    Ok(sequences.into_iter().map(|(joined, _)| joined).collect())
}

/// At most `k` columns: those most often among each input's `k` largest
/// (ties to the larger mean of max / median over the inputs). A column counts
/// only if among them in at least a quarter of the inputs and, on average,
/// at least twice the median column: an encoder without such columns gets
/// none, and pays nothing for them. Sorted.
fn choose(maxima: &[Vec<f32>], k: usize) -> Vec<u16> {
    let width = maxima.iter().map(Vec::len).min().unwrap_or(0);
    let (mut count, mut ratio) = (vec![0usize; width], vec![0f64; width]);
    for m in maxima {
        let mut order: Vec<usize> = (0..width).collect();
        order.sort_by(|&a, &b| m[b].total_cmp(&m[a]).then(a.cmp(&b)));
        let median = m[order[width / 2]].max(f32::MIN_POSITIVE) as f64;
        order.iter().take(k).for_each(|&c| count[c] += 1);
        ratio.iter_mut().zip(m).for_each(|(r, &v)| *r += v as f64 / median);
    }
    let inputs = maxima.len().max(1);
    let stands_out = |c: usize| count[c] > 0 && 4 * count[c] >= inputs && ratio[c] >= 2.0 * inputs as f64;
    let mut ranked: Vec<usize> = (0..width).filter(|&c| stands_out(c)).collect();
    ranked.sort_by(|&a, &b| count[b].cmp(&count[a]).then(ratio[b].total_cmp(&ratio[a])).then(a.cmp(&b)));
    let mut chosen: Vec<u16> = ranked.into_iter().take(k).map(|c| c as u16).collect();
    chosen.sort_unstable();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 16 columns, 40 where `big` says, else about 1 (column 15 the largest of those).
    fn input(big: &[usize]) -> Vec<f32> {
        (0..16).map(|c| if big.contains(&c) { 40.0 } else { 1.0 + c as f32 / 100.0 }).collect()
    }

    /// Columns 3 and 7 stand out in most inputs and are chosen. Column 5
    /// stands out in one input of five (under a quarter), and column 15 is
    /// among the 3 largest in four but no larger than the rest: neither is.
    #[test]
    fn the_columns_often_among_the_largest_and_large_are_chosen() {
        let maxima = vec![input(&[3, 7]), input(&[3, 7]), input(&[3, 7, 5]), input(&[7]), input(&[3])];
        assert_eq!(choose(&maxima, 2), [3, 7]);
        assert_eq!(choose(&maxima, 3), [3, 7]);
        // Column 5 in two of the five: a quarter or more.
        let maxima = [&maxima[..], &[input(&[5])]].concat();
        assert_eq!(choose(&maxima, 3), [3, 5, 7]);
        assert_eq!(choose(&maxima, 1), [3], "3 is the largest (by index among equals) in four of six");
        assert!(choose(&[], 4).is_empty());
    }

    /// A tiny classifier of each family: without a large column none is
    /// chosen; with one planted, the built-in text finds it (alone), and the
    /// model computes to the bit as with that column named (`--int8-f32-columns 5`).
    #[test]
    fn a_planted_large_column_is_found_at_load_in_both_families() {
        use crate::model::{Arithmetic, Classifier, Precision};
        let pairs = [("ukraine joining nato", "nato is for peace"), ("europe pay more for defence", "never")];
        let load = |dir: &Path, arithmetic: Arithmetic| {
            let model = crate::resolve::ModelDir::open(dir).unwrap();
            Classifier::load_inference(&model, &Device::Cpu, arithmetic).unwrap()
        };
        let int8 = Arithmetic::from(Precision::Int8);
        let writers: [fn(&Path) -> crate::Result<()>; 2] = [
            |d| crate::testing::write_tiny_classifier(d, 3),
            |d| crate::testing::write_tiny_mpnet_classifier(d, false, 4),
        ];
        for write in writers {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path()).unwrap();
            let auto = load(dir.path(), int8.with_f32_columns_chosen_at_load());
            assert!(auto.int8.unwrap().arithmetic.f32_columns().is_empty(), "a random model has no large column");
            crate::testing::plant_large_column(dir.path(), 5, 30.0).unwrap();
            let auto = load(dir.path(), int8.with_f32_columns_chosen_at_load());
            let plan = auto.int8.unwrap();
            assert_eq!(plan.arithmetic.f32_columns(), [5]);
            assert!(plan.arithmetic.f32_columns_chosen_at_load());
            let named = load(dir.path(), int8.with_f32_columns(&[5]).unwrap());
            let plain = load(dir.path(), int8);
            let got = auto.predict_proba(&pairs, 2).unwrap();
            assert_eq!(got, named.predict_proba(&pairs, 2).unwrap());
            assert_ne!(got, plain.predict_proba(&pairs, 2).unwrap(), "the column did change the arithmetic");
        }
    }

    /// An encoder whose columns are all alike gets no f32 columns, even
    /// though some are always among the largest.
    #[test]
    fn no_column_is_chosen_where_none_stands_out() {
        let maxima: Vec<Vec<f32>> = (0..12).map(|_| input(&[])).collect();
        assert!(choose(&maxima, 4).is_empty(), "{:?}", choose(&maxima, 4));
    }
}
