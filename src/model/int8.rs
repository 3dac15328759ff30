//! `--precision int8`: the encoder's linear layers on [`crate::kernels::int8`]
//! (weights quantized per output channel when the model loads, activations per
//! row as they arrive). The word table goes to f16 ([`super::embedding`]);
//! position embeddings, layer norms, attention and the
//! classification head stay f32. Inference only: there is no backward pass.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, DType, Result, Shape, Tensor};
use serde::{Deserialize, Serialize};

use crate::kernels::int8::{ColumnWeights, Kernel, QuantizedWeights};

/// The arithmetic of inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats throughout.
    #[default]
    F32,
    /// The encoder's linear layers in 8-bit integers (CPU with AVX2 or better).
    Int8,
}

/// The kinds of linear layer in an encoder layer, for keeping some in f32
/// under int8 (`--int8-keep-f32`, as ONNX Runtime's `quantize_dynamic` takes
/// `nodes_to_exclude`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LinearKind {
    Query,
    Key,
    Value,
    AttentionOutput,
    FfnIn,
    FfnOut,
}

impl LinearKind {
    pub const ALL: [Self; 6] = [Self::Query, Self::Key, Self::Value, Self::AttentionOutput, Self::FfnIn, Self::FfnOut];

    /// The kind of an encoder layer's linear weight or layer, by its name in
    /// either family (BERT `attention.self.query`, MPNet `attention.attn.q`, …).
    pub fn of(name: &str) -> Option<Self> {
        let (_, path) = in_layer(name)?;
        let path = path.strip_suffix(".weight").unwrap_or(path);
        Some(match path {
            "attention.self.query" | "attention.attn.q" => Self::Query,
            "attention.self.key" | "attention.attn.k" => Self::Key,
            "attention.self.value" | "attention.attn.v" => Self::Value,
            "attention.output.dense" | "attention.attn.o" => Self::AttentionOutput,
            "intermediate.dense" => Self::FfnIn,
            "output.dense" => Self::FfnOut,
            _ => return None,
        })
    }

    /// Whether this kind reads a layer norm's output (query, key, value, FFN
    /// in), where an encoder's few large activation columns are.
    pub fn reads_layer_norm(self) -> bool {
        matches!(self, Self::Query | Self::Key | Self::Value | Self::FfnIn)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Encoder layers a set can name (`--int8-keep-f32-layers`): one bit each.
pub const MAX_LAYERS: u8 = 64;

/// Input columns `--int8-f32-columns` can name.
pub const MAX_F32_COLUMNS: usize = 8;

/// How a frozen model computes: its precision and, in int8, the kinds of
/// linear layer and the whole encoder layers that stay f32, and the input
/// columns multiplied in f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Arithmetic {
    pub precision: Precision,
    kept_f32: u8,
    kept_layers: u64,
    /// An index asked for past [`MAX_LAYERS`]: no model has it, and
    /// [`Arithmetic::check_for_model`] says so rather than dropping it.
    beyond: Option<u8>,
    /// Input columns of the layers that read a layer norm's output, multiplied
    /// in f32 ([`QuantizedWeights::with_f32_columns`]): the first `columns` of these.
    f32_columns: [u16; MAX_F32_COLUMNS],
    columns: u8,
    /// The columns are chosen when the model loads ([`super::int8_columns`]),
    /// which then sets them as [`Arithmetic::with_f32_columns`] does.
    auto_columns: bool,
}

impl Arithmetic {
    pub fn new(precision: Precision, keep_f32: &[LinearKind]) -> Self {
        Self { precision, kept_f32: keep_f32.iter().fold(0, |set, k| set | k.bit()), ..Self::default() }
    }

    /// The same, with encoder layers `layers` (0 the first) kept whole in
    /// f32; an index that is not one of the model's layers is an error when
    /// the model is loaded ([`Arithmetic::check_for_model`]).
    pub fn keeping_layers(self, layers: &[u8]) -> Self {
        let kept_layers = layers.iter().filter(|&&i| i < MAX_LAYERS).fold(0, |set, &i| set | 1u64 << i);
        let beyond = layers.iter().copied().filter(|&i| i >= MAX_LAYERS).min();
        Self { kept_layers, beyond, ..self }
    }

    /// The same, with the input `columns` of the query, key, value and
    /// FFN-in layers multiplied in f32; more than [`MAX_F32_COLUMNS`]
    /// different ones are an error.
    pub fn with_f32_columns(self, columns: &[u16]) -> std::result::Result<Self, String> {
        let mut sorted = columns.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() > MAX_F32_COLUMNS {
            return Err(format!("--int8-f32-columns takes at most {MAX_F32_COLUMNS} columns"));
        }
        let mut f32_columns = [0; MAX_F32_COLUMNS];
        f32_columns[..sorted.len()].copy_from_slice(&sorted);
        Ok(Self { f32_columns, columns: sorted.len() as u8, ..self })
    }

    /// The same, with the f32 columns chosen when the model loads, from the
    /// activations of a built-in text (`model::int8_columns`).
    pub fn with_f32_columns_chosen_at_load(self) -> Self {
        Self { auto_columns: true, ..self }
    }

    /// Whether the f32 columns are chosen when the model loads.
    pub fn f32_columns_chosen_at_load(&self) -> bool {
        self.auto_columns
    }

    /// The input columns multiplied in f32, in order.
    pub fn f32_columns(&self) -> Vec<usize> {
        self.f32_columns[..self.columns as usize].iter().map(|&c| c as usize).collect()
    }

    /// The columns the linear weight `name` multiplies in f32: those of
    /// [`Arithmetic::f32_columns`] if it reads a layer norm's output (query,
    /// key, value, FFN in), where an encoder's few large columns are.
    pub(crate) fn f32_columns_of(&self, name: &str) -> Vec<usize> {
        match LinearKind::of(name).is_some_and(LinearKind::reads_layer_norm) {
            true => self.f32_columns(),
            false => Vec::new(),
        }
    }

    /// The kinds of linear layer kept in f32, in declaration order.
    pub fn kept_f32(&self) -> Vec<LinearKind> {
        LinearKind::ALL.into_iter().filter(|k| self.kept_f32 & k.bit() != 0).collect()
    }

    /// The encoder layers kept whole in f32, in order.
    pub fn kept_layers(&self) -> Vec<u8> {
        (0..MAX_LAYERS).filter(|&i| self.kept_layers & (1 << i) != 0).collect()
    }

    /// Whether the linear weight or layer `name` runs in int8.
    pub(crate) fn quantizes(&self, name: &str) -> bool {
        let kept_layer = layer_index(name).is_some_and(|i| self.keeps_layer(i));
        self.precision == Precision::Int8
            && !kept_layer
            && LinearKind::of(name).is_none_or(|k| self.kept_f32 & k.bit() == 0)
    }

    /// Whether encoder layer `i` is kept whole in f32.
    fn keeps_layer(&self, i: usize) -> bool {
        i < MAX_LAYERS as usize && self.kept_layers & (1 << i) != 0
    }

    /// An error unless every layer kept in f32 is one of the model's `layers`,
    /// and some int8 layer reads the f32 columns given: columns that nothing
    /// reads would be neither checked against a layer's width nor used.
    pub(crate) fn check_for_model(&self, layers: usize) -> std::result::Result<(), String> {
        if let Some(i) = self.kept_layers().into_iter().chain(self.beyond).find(|&i| i as usize >= layers) {
            return Err(format!("--int8-keep-f32-layers {i}: the model has {layers} layers, 0 to {}", layers - 1));
        }
        let every_layer_kept = (0..layers).all(|i| self.keeps_layer(i));
        let readers_kept =
            LinearKind::ALL.into_iter().filter(|k| k.reads_layer_norm()).all(|k| self.kept_f32 & k.bit() != 0);
        let given = self.columns > 0 && !self.f32_columns_chosen_at_load();
        if self.precision == Precision::Int8 && given && (every_layer_kept || readers_kept) {
            return Err("--int8-f32-columns: no layer reads them in int8 (the query, key, value and FFN-in \
                        layers are all kept in f32); leave the flag out"
                .into());
        }
        Ok(())
    }
}

/// The encoder layer a weight or layer name belongs to (`…encoder.layer.N.…`, both families).
fn layer_index(name: &str) -> Option<usize> {
    in_layer(name)?.0.parse().ok()
}

/// `…encoder.layer.N.PATH` split into N and PATH (both families name layers so).
fn in_layer(name: &str) -> Option<(&str, &str)> {
    name.split_once("encoder.layer.")?.1.split_once('.')
}

impl From<Precision> for Arithmetic {
    fn from(precision: Precision) -> Self {
        Self::new(precision, &[])
    }
}

/// What int8 runs on: the kernel, and which layers it quantizes (what loading
/// hands the encoder, and what a run reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int8Plan {
    pub kernel: Kernel,
    pub arithmetic: Arithmetic,
}

impl Int8Plan {
    /// Every linear layer in int8 on `kernel`.
    #[cfg(test)]
    pub fn all(kernel: Kernel) -> Self {
        Self { kernel, arithmetic: Precision::Int8.into() }
    }

    /// How the weight named `name` is quantized: (kernel, with a residual,
    /// input columns in f32), what [`quantize_tensor`] makes and a layer checks.
    pub(crate) fn for_weight(&self, name: &str) -> (Kernel, bool, Vec<usize>) {
        (self.kernel, residual_weights(name), self.arithmetic.f32_columns_of(name))
    }

    /// The arithmetic of a model that ran with `plan` (f32 without one).
    pub fn arithmetic_of(plan: Option<Self>) -> Arithmetic {
        plan.map(|p| p.arithmetic).unwrap_or_default()
    }
}

/// A linear layer's quantized weights and its f32 bias.
#[derive(Clone)]
pub(crate) struct Int8Linear {
    weights: Arc<QuantizedWeights>,
    bias: Arc<Vec<f32>>,
    /// While the f32 columns are chosen ([`super::int8_columns`]): the largest
    /// |value| each input column has had.
    observed: Option<Arc<Mutex<Vec<f32>>>>,
}

impl std::fmt::Debug for Int8Linear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = &self.weights;
        write!(f, "Int8Linear({}×{}, {})", w.outputs(), w.inputs(), w.kernel().name())
    }
}

impl Int8Linear {
    /// Quantized weights `[out, in]` with the layer's bias `[out]` (kept in f32).
    pub fn new(weights: Arc<QuantizedWeights>, bias: Option<&Tensor>) -> Result<Self> {
        let outputs = weights.outputs();
        let bias = match bias {
            Some(b) => b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            None => vec![0.0; outputs],
        };
        if bias.len() != outputs {
            candle_core::bail!("int8 linear: bias of {} for {outputs} outputs", bias.len());
        }
        Ok(Self { weights, bias: Arc::new(bias), observed: None })
    }

    /// Starts (or stops, and forgets) recording each input column's largest
    /// |value| (of inputs this layer quantizes first: attention's query for
    /// the query, key and value).
    pub fn observe(&mut self, on: bool) {
        self.observed = on.then(|| Arc::new(Mutex::new(vec![0.0; self.weights.inputs()])));
    }

    /// Each input column's largest |value| since [`Int8Linear::observe`]
    /// (`None` if not observing or no input came).
    pub fn observed(&self) -> Option<Vec<f32>> {
        let seen = self.observed.as_ref()?.lock().unwrap_or_else(|e| e.into_inner()).clone();
        seen.iter().any(|&m| m > 0.0).then_some(seen)
    }

    /// Multiplies these input columns in f32 from now on, given as (column,
    /// its f32 weights, one per output) ([`QuantizedWeights::set_f32_columns`]).
    pub fn set_f32_columns(&mut self, columns: Vec<ColumnWeights>) -> Result<()> {
        match Arc::get_mut(&mut self.weights) {
            Some(weights) => {
                weights.set_f32_columns(columns).map_err(|e| candle_core::Error::Msg(format!("int8 linear: {e}")))
            }
            None => candle_core::bail!("int8 linear: the weights are shared and cannot change"),
        }
    }

    /// `x·Wᵀ + b` over the last dimension, then GELU (erf) with `gelu`.
    pub fn forward(&self, x: &Tensor, gelu: bool) -> Result<Tensor> {
        let mut out = Self::forward_shared(&[(self, gelu)], x)?;
        Ok(out.remove(0))
    }

    /// Several layers (each with or without GELU) over one input, which is
    /// quantized once for all of them.
    pub fn forward_shared(layers: &[(&Int8Linear, bool)], x: &Tensor) -> Result<Vec<Tensor>> {
        let Some((first, _)) = layers.first() else { return Ok(Vec::new()) };
        let x = x.contiguous()?;
        let (storage, layout) = x.storage_and_layout();
        let xs = match (&*storage, layout.contiguous_offsets()) {
            (candle_core::Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => &v[a..b],
            _ => candle_core::bail!("int8 linear: needs a contiguous f32 CPU tensor"),
        };
        let (w, dims) = (&first.weights, layout.dims());
        let same = |l: &Int8Linear| l.weights.inputs() == w.inputs() && l.weights.kernel() == w.kernel();
        if dims.last() != Some(&w.inputs()) || !layers.iter().all(|(l, _)| same(l)) {
            candle_core::bail!("int8 linear: input {dims:?} does not fit {} inputs", w.inputs());
        }
        if let Some(seen) = &first.observed {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            for row in xs.chunks(w.inputs().max(1)) {
                seen.iter_mut().zip(row).for_each(|(m, v)| *m = m.max(v.abs()));
            }
        }
        let input = w.quantize_input(xs);
        let gelu: &(dyn Fn(&mut [f32]) + Sync) = &crate::kernels::gelu::gelu_in_place;
        layers
            .iter()
            .map(|(l, with_gelu)| {
                let y = l.weights.matmul_quantized(&input, Some(&l.bias), if *with_gelu { gelu } else { &|_| {} });
                let mut shape = dims.to_vec();
                *shape.last_mut().expect("rank ≥ 1") = l.weights.outputs();
                Tensor::from_vec(y, shape, x.device())
            })
            .collect()
    }
}

/// Whether the weight named `name` is kept with its rounding residual
/// ([`QuantizedWeights::with_residual`]): the FFN output layers'. Their
/// inputs (after GELU) meet weights that 8 bits round worst: on the TweetEval
/// test tweets, MPNet's sentence embeddings in int8 were 1.95e-3 from f32 in
/// mean 1 − cosine, 1.80e-3 with only those weights rounded (activations and
/// the rest f32), 1.11e-3 with them rounded to 11 bits instead of 8.
fn residual_weights(name: &str) -> bool {
    LinearKind::of(name) == Some(LinearKind::FfnOut)
}

/// Quantizes the torch-layout weight [out, in] named `name` per output
/// channel, as `plan` says (kernel, residual, columns in f32).
pub(crate) fn quantize_tensor(weight: &Tensor, name: &str, plan: Int8Plan) -> Result<QuantizedWeights> {
    let (outputs, inputs) = weight.dims2()?;
    let (kernel, residual, columns) = plan.for_weight(name);
    if let Some(c) = columns.iter().find(|&&c| c >= inputs) {
        candle_core::bail!("--int8-f32-columns {c}: the layer has {inputs} inputs, 0 to {}", inputs - 1);
    }
    let weight = weight.to_dtype(DType::F32)?.to_device(&candle_core::Device::Cpu)?.contiguous()?;
    let (storage, layout) = weight.storage_and_layout();
    match (&*storage, layout.contiguous_offsets()) {
        (candle_core::Storage::Cpu(CpuStorage::F32(v)), Some((a, b))) => {
            let weight = &v[a..b];
            Ok(QuantizedWeights::with_residual(weight, outputs, inputs, kernel, residual)
                .with_f32_columns(&columns, weight))
        }
        _ => candle_core::bail!("int8: the weight must be an f32 CPU tensor"),
    }
}

/// What stands where an f32 weight was once it runs in int8: its shape, and
/// one f32 of memory (a zero broadcast).
pub(crate) fn stand_in(shape: &Shape) -> Result<Tensor> {
    Tensor::zeros((), DType::F32, &candle_core::Device::Cpu)?.broadcast_as(shape)
}

/// The parameters of a model loaded for inference at `precision`: frozen
/// constants, and with int8 the encoder layers' linear weights quantized as
/// the file is read, for the kernel returned beside them (which
/// [`super::Encoder::quantize`] must then be given). `layers`: the encoder's.
pub(crate) fn inference_params(
    weights: &std::path::Path,
    device: &candle_core::Device,
    arithmetic: Arithmetic,
    layers: usize,
) -> crate::Result<(super::ParamStore, Option<Int8Plan>)> {
    arithmetic.check_for_model(layers).map_err(crate::Error::Model)?;
    match arithmetic.precision {
        Precision::F32 => Ok((super::ParamStore::from_safetensors(weights, device, 0)?.frozen(), None)),
        Precision::Int8 => {
            let plan = Int8Plan { kernel: kernel_for(device)?, arithmetic };
            Ok((super::ParamStore::from_safetensors_int8(weights, plan)?, Some(plan)))
        }
    }
}

/// The int8 kernel for a model on `device`: the CPU only, with AVX2 or better
/// (or what [`crate::kernels::int8::KERNEL_ENV`] names).
pub(crate) fn kernel_for(device: &candle_core::Device) -> crate::Result<Kernel> {
    if !device.is_cpu() {
        return Err(crate::Error::Model(
            "--precision int8 runs on the CPU: add --device cpu, or use --precision f32 on a GPU".into(),
        ));
    }
    Kernel::select().map_err(crate::Error::Model)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;
    use crate::model::Classifier;
    use crate::resolve::ModelDir;

    const PAIRS: [(&str, &str); 4] = [
        ("ukraine joining nato", "nato is for peace"),
        ("ukraine joining nato", "never"),
        ("europe pay more for defence", "europe must pay for its own defence now"),
        ("europe pay more for defence", "peace"),
    ];

    /// A tiny classifier of each family, in a folder that lives as long as the first value.
    fn both_families() -> (tempfile::TempDir, [(std::path::PathBuf, ModelDir); 2]) {
        let dir = tempfile::tempdir().unwrap();
        let (bert, mpnet) = (dir.path().join("bert"), dir.path().join("mpnet"));
        crate::testing::write_tiny_classifier(&bert, 3).unwrap();
        crate::testing::write_tiny_mpnet_classifier(&mpnet, false, 4).unwrap();
        let open = |p: std::path::PathBuf| (p.clone(), ModelDir::open(&p).unwrap());
        (dir, [open(bert), open(mpnet)])
    }

    fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
        a.iter().flatten().zip(b.iter().flatten()).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
    }

    /// Both families: int8 stays within a bound of f32, really differs from it
    /// (the layers did switch), and every kernel this CPU runs (and `amx`, on
    /// a model of the tile unit where there is none) gives the same
    /// probabilities to the bit, as the kernels' own tests promise.
    #[test]
    fn int8_models_stay_near_f32_and_agree_across_kernels() {
        let (_dir, models) = both_families();
        for (path, model) in &models {
            let f32 = Classifier::load_inference(model, &Device::Cpu, Precision::F32).unwrap();
            let want = f32.predict_proba(&PAIRS, 2).unwrap();
            let mut first: Option<Vec<Vec<f32>>> = None;
            for kernel in Kernel::tested() {
                let mut c = Classifier::load_frozen(model, &Device::Cpu).unwrap();
                c.model.encoder.quantize(Int8Plan::all(kernel), &c.model.params).unwrap();
                let got = c.predict_proba(&PAIRS, 2).unwrap();
                let diff = max_diff(&got, &want);
                assert!(diff > 0.0 && diff < 0.02, "{} {}: |Δp| {diff}", path.display(), kernel.name());
                match &first {
                    Some(p) => assert_eq!(p, &got, "{} differs from {}", kernel.name(), Kernel::tested()[0].name()),
                    None => first = Some(got),
                }
            }
            // Quantized as the file is read, never holding the f32 weights: the same model.
            let streamed = Classifier::load_inference(model, &Device::Cpu, Precision::Int8).unwrap();
            assert_eq!(streamed.int8.map(|p| p.kernel), Some(Kernel::available()[0]));
            assert_eq!(Some(streamed.predict_proba(&PAIRS, 2).unwrap()), first);
            assert!(streamed.inference_model().is_err(), "an int8 model has no f32 weights to rebuild from");
        }
    }

    #[test]
    fn layer_kinds_are_read_from_either_familys_names() {
        use LinearKind::*;
        let names = [
            ("bert.encoder.layer.0.attention.self.query.weight", Some(Query)),
            ("encoder.layer.11.attention.attn.k.weight", Some(Key)),
            ("mpnet.encoder.layer.2.attention.attn.v", Some(Value)),
            ("encoder.layer.3.attention.output.dense.weight", Some(AttentionOutput)),
            ("encoder.layer.3.attention.attn.o.weight", Some(AttentionOutput)),
            ("encoder.layer.4.intermediate.dense.weight", Some(FfnIn)),
            ("encoder.layer.4.output.dense.weight", Some(FfnOut)),
            ("encoder.layer.4.output.LayerNorm.weight", None),
            ("pooler.dense.weight", None),
        ];
        for (name, kind) in names {
            assert_eq!(LinearKind::of(name), kind, "{name}");
        }
        let kept = Arithmetic::new(Precision::Int8, &[FfnOut]);
        assert!(!kept.quantizes("encoder.layer.4.output.dense.weight"));
        assert!(kept.quantizes("encoder.layer.4.intermediate.dense.weight"));
        assert!(!Arithmetic::from(Precision::F32).quantizes("encoder.layer.4.intermediate.dense.weight"));
        let first = Arithmetic::from(Precision::Int8).keeping_layers(&[0, 11]);
        assert_eq!(first.kept_layers(), [0, 11]);
        for (name, int8) in [
            ("bert.encoder.layer.0.attention.self.query.weight", false),
            ("mpnet.encoder.layer.0.output.dense", false),
            ("encoder.layer.11.attention.attn.k.weight", false),
            ("encoder.layer.1.attention.attn.k.weight", true),
            ("encoder.layer.10.intermediate.dense.weight", true),
        ] {
            assert_eq!(first.quantizes(name), int8, "{name}");
        }
        assert!(first.check_for_model(12).is_ok());
        let err = first.check_for_model(6).unwrap_err();
        assert!(err.contains("--int8-keep-f32-layers 11: the model has 6 layers, 0 to 5"), "{err}");
        // Past what the set can hold: still refused by name, not dropped.
        let far = Arithmetic::from(Precision::Int8).keeping_layers(&[1, 200, 70]);
        assert_eq!(far.kept_layers(), [1]);
        let err = far.check_for_model(12).unwrap_err();
        assert!(err.contains("--int8-keep-f32-layers 70: the model has 12 layers"), "{err}");
    }

    /// `--int8-f32-columns`: the columns reach the query, key, value and
    /// FFN-in layers and no others, in the streamed load and in a layer
    /// quantized after loading alike, on every kernel.
    #[test]
    fn f32_columns_reach_the_layers_that_read_a_layer_norm() {
        let int8 = Arithmetic::from(Precision::Int8);
        let columns = int8.with_f32_columns(&[7, 3, 7, 1, 2, 4, 5, 6, 8]).unwrap();
        assert_eq!(columns.f32_columns(), [1, 2, 3, 4, 5, 6, 7, 8]);
        let err = int8.with_f32_columns(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap_err();
        assert!(err.contains("at most 8"), "{err}");
        for (name, read) in [
            ("bert.encoder.layer.0.attention.self.query.weight", true),
            ("encoder.layer.1.attention.attn.v.weight", true),
            ("encoder.layer.1.intermediate.dense.weight", true),
            ("encoder.layer.1.attention.attn.o.weight", false),
            ("encoder.layer.1.output.dense.weight", false),
        ] {
            assert_eq!(!columns.f32_columns_of(name).is_empty(), read, "{name}");
        }
        let (_dir, models) = both_families();
        for (path, model) in &models {
            let arithmetic = Arithmetic::from(Precision::Int8).with_f32_columns(&[0, 5]).unwrap();
            let want = Classifier::load_inference(model, &Device::Cpu, Precision::F32).unwrap();
            let want = want.predict_proba(&PAIRS, 2).unwrap();
            let plain = Classifier::load_inference(model, &Device::Cpu, Precision::Int8).unwrap();
            let plain = plain.predict_proba(&PAIRS, 2).unwrap();
            let streamed = Classifier::load_inference(model, &Device::Cpu, arithmetic).unwrap();
            let streamed = streamed.predict_proba(&PAIRS, 2).unwrap();
            assert!(max_diff(&streamed, &plain) > 0.0, "{}: the columns changed nothing", path.display());
            assert!(max_diff(&streamed, &want) < 0.02, "{}: {}", path.display(), max_diff(&streamed, &want));
            for kernel in Kernel::tested() {
                let mut c = Classifier::load_frozen(model, &Device::Cpu).unwrap();
                c.model.encoder.quantize(Int8Plan { kernel, arithmetic }, &c.model.params).unwrap();
                assert_eq!(c.predict_proba(&PAIRS, 2).unwrap(), streamed, "{} {}", path.display(), kernel.name());
            }
        }
    }

    /// `--int8-keep-f32`: the layers named stay f32, in the streamed load too.
    #[test]
    fn kept_layers_run_in_f32() {
        use LinearKind::*;
        let (_dir, models) = both_families();
        for (path, model) in &models {
            let load = |keep: &[LinearKind]| {
                let c =
                    Classifier::load_inference(model, &Device::Cpu, Arithmetic::new(Precision::Int8, keep)).unwrap();
                c.predict_proba(&PAIRS, 2).unwrap()
            };
            let want = Classifier::load_inference(model, &Device::Cpu, Precision::F32).unwrap();
            let want = want.predict_proba(&PAIRS, 2).unwrap();
            let (int8, some, none) =
                (load(&[]), load(&[FfnIn, FfnOut]), load(&[Query, Key, Value, AttentionOutput, FfnIn, FfnOut]));
            // All kept: only the word table's f16 rounding is left.
            assert!(max_diff(&none, &want) < 1e-4, "{}: {}", path.display(), max_diff(&none, &want));
            assert!(max_diff(&some, &int8) > 0.0 && max_diff(&some, &none) > 0.0, "{}", path.display());
            // Whole encoder layers (`--int8-keep-f32-layers`): both of the tiny model's are all of it.
            let layers = |keep: &[u8]| {
                let arithmetic = Arithmetic::from(Precision::Int8).keeping_layers(keep);
                Classifier::load_inference(model, &Device::Cpu, arithmetic).unwrap().predict_proba(&PAIRS, 2).unwrap()
            };
            let (first, both) = (layers(&[0]), layers(&[0, 1]));
            assert!(max_diff(&both, &want) < 1e-4, "{}: {}", path.display(), max_diff(&both, &want));
            assert!(max_diff(&first, &int8) > 0.0 && max_diff(&first, &both) > 0.0, "{}", path.display());
        }
    }

    #[test]
    fn an_int8_layer_refuses_to_train() {
        let dir = tempfile::tempdir().unwrap();
        crate::testing::write_tiny_classifier(dir.path(), 3).unwrap();
        let model = ModelDir::open(dir.path()).unwrap();
        let c = Classifier::load_inference(&model, &Device::Cpu, Precision::Int8).unwrap();
        let batch = crate::tokenization::run_sorted(&c.encode_pairs(&PAIRS).unwrap(), 4, 0, &Device::Cpu, |b| {
            let err = c.model.forward_t(b, true).unwrap_err().to_string();
            assert!(err.contains("int8") && err.contains("inference only"), "{err}");
            Ok(candle_core::Tensor::zeros((b.input_ids.dim(0)?, 1), DType::F32, &Device::Cpu)?)
        });
        assert!(batch.is_ok());
    }
}
