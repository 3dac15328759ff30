//! Trainable parameters kept under transformers' `BertForSequenceClassification`
//! names (`bert.*`, `classifier.*`), filled from a checkpoint where it has them.
//!
//! candle-nn's `VarMap::load` fails as soon as the model holds a tensor the file
//! lacks (a new head), and a plain `VarBuilder` over a file gives constants, not
//! `Var`s. This store gives both: checkpoint tensors become `Var`s, and only the
//! tensors a scope allows are initialised, from a seeded RNG and by name as
//! transformers' `_init_weights` does (candle's init hints are ignored).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::{Init, VarBuilder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::Family;
use super::int8::Int8Plan;
use crate::kernels::int8::{ColumnWeights, QuantizedWeights};
use crate::{Error, Result};

struct Inner {
    checkpoint: HashMap<String, Tensor>,
    source: String,
    vars: BTreeMap<String, Var>,
    /// What a frozen store handed out, by name: a model rebuilt from it reads the same tensors.
    constants: HashMap<String, Tensor>,
    /// Linear weights quantized as the file was read ([`ParamStore::from_safetensors_int8`]),
    /// until their layer takes them.
    quantized: HashMap<String, Arc<QuantizedWeights>>,
    /// Names of the variables drawn fresh rather than read from the checkpoint.
    initialised: Vec<String>,
    rng: ChaCha8Rng,
}

/// Shared parameter store; cheap to clone.
#[derive(Clone)]
pub struct ParamStore {
    inner: Arc<Mutex<Inner>>,
    device: Device,
    /// What the model computes in: f32, or f64 in tests (see `ParamStore::in_dtype`, a test helper).
    dtype: DType,
    /// Hand out detached tensors (see [`ParamStore::frozen`]).
    frozen: bool,
}

impl ParamStore {
    /// A store with no checkpoint: every tensor is initialised (tests, new heads).
    pub fn random(device: &Device, seed: u64) -> Self {
        Self::with_checkpoint(HashMap::new(), "(random initialisation)".into(), device, seed)
    }

    /// Reads a safetensors checkpoint; `seed` drives the initialisation of what it lacks.
    pub fn from_safetensors(path: &Path, device: &Device, seed: u64) -> Result<Self> {
        let (tensors, _) = read_safetensors(path, None)?;
        let checkpoint = tensors.into_iter().map(|(name, t)| (canonical_name(&name), t)).collect();
        Ok(Self::with_checkpoint(checkpoint, path.display().to_string(), device, seed))
    }

    /// A frozen store for an int8 model: the encoder layers' linear weights are
    /// quantized for `plan`'s kernel as the file is read (those it keeps in
    /// f32 excepted), one at a time, and their f32
    /// values never held all at once (the model takes them with
    /// [`ParamStore::take_quantized`]); what the model reads in their place
    /// is a stand-in of their shape that holds no memory.
    pub(crate) fn from_safetensors_int8(path: &Path, plan: Int8Plan) -> Result<Self> {
        let (tensors, quantized) = read_safetensors(path, Some(plan))?;
        let checkpoint = tensors.into_iter().map(|(name, t)| (canonical_name(&name), t)).collect();
        let store = Self::with_checkpoint(checkpoint, path.display().to_string(), &Device::Cpu, 0).frozen();
        store.lock().quantized = quantized.into_iter().map(|(name, q)| (canonical_name(&name), Arc::new(q))).collect();
        Ok(store)
    }

    /// The weights quantized at load for `name` (the model's name for them), once.
    pub(crate) fn take_quantized(&self, name: &str) -> Option<Arc<QuantizedWeights>> {
        let mut inner = self.lock();
        let key = if inner.quantized.contains_key(name) { name.to_string() } else { bare(name)?.to_string() };
        inner.quantized.remove(&key)
    }

    /// Quantized weights that no layer took: a checkpoint whose names the model does not use.
    pub(crate) fn untaken_quantized(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().quantized.keys().cloned().collect();
        names.sort();
        names
    }

    /// Replaces what a frozen store keeps for `name` (a weight now held in int8) by `value`.
    pub(crate) fn replace_constant(&self, name: &str, value: Tensor) {
        if let Some(t) = self.lock().constants.get_mut(name) {
            *t = value;
        }
    }

    fn with_checkpoint(checkpoint: HashMap<String, Tensor>, source: String, device: &Device, seed: u64) -> Self {
        let inner = Inner {
            checkpoint,
            source,
            vars: BTreeMap::new(),
            constants: HashMap::new(),
            quantized: HashMap::new(),
            initialised: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        Self { inner: Arc::new(Mutex::new(inner)), device: device.clone(), dtype: DType::F32, frozen: false }
    }

    /// The same store handing out `dtype` tensors. Every fused CPU kernel takes
    /// f32 alone, so a model built in f64 runs on the CPU the composite candle
    /// ops that `--device cuda` runs: tests check that path against PyTorch.
    #[cfg(test)]
    pub(crate) fn in_dtype(self, dtype: DType) -> Self {
        Self { dtype, ..self }
    }

    /// The same store for inference: models built from it hold constants, not
    /// `Var`s. An op over a `Var` records its inputs for backprop, so a forward
    /// pass over `Var`s keeps every intermediate alive until its output is
    /// dropped; over constants each activation is freed as soon as it is used.
    pub fn frozen(&self) -> Self {
        Self { frozen: true, ..self.clone() }
    }

    /// The names of the tensors the file holds (those quantized at load aside), sorted.
    pub(crate) fn checkpoint_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().checkpoint.keys().cloned().collect();
        names.sort();
        names
    }

    /// Frees the checkpoint's copy of the tensors once the model is built.
    pub fn release_checkpoint(&self) {
        self.lock().checkpoint = HashMap::new();
    }

    fn hand_out(&self, var: &Var) -> Tensor {
        if self.frozen {
            var.as_tensor().detach()
        } else {
            var.as_tensor().clone()
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A builder whose tensors must all come from the checkpoint.
    pub fn strict(&self) -> VarBuilder<'static> {
        self.builder(None)
    }

    /// A builder that initialises what the checkpoint lacks (a new classification
    /// head): weights from normal(0, `init_range`), biases 0, LayerNorm weights 1.
    pub fn lenient(&self, init_range: f64) -> VarBuilder<'static> {
        self.builder(Some(init_range))
    }

    fn builder(&self, init_range: Option<f64>) -> VarBuilder<'static> {
        let backend = Backend { store: self.clone(), init_range };
        VarBuilder::from_backend(Box::new(backend), self.dtype, self.device.clone())
    }

    /// Every parameter created so far, sorted by name.
    pub fn vars(&self) -> Vec<(String, Var)> {
        self.lock().vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The parameters that were initialised because the checkpoint lacked them.
    pub fn initialised(&self) -> Vec<String> {
        self.lock().initialised.clone()
    }

    /// Writes every parameter as safetensors under its transformers name.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut staged = crate::io::Staged::default();
        self.stage(path, &mut staged)?;
        staged.commit()
    }

    /// [`Self::save`] staged: `staged.commit()` puts the file in place.
    pub fn stage(&self, path: &Path, staged: &mut crate::io::Staged) -> Result<()> {
        let tensors: HashMap<String, Tensor> =
            self.vars().into_iter().map(|(name, var)| (name, var.as_tensor().clone())).collect();
        staged.by_name(path, |tmp| {
            candle_core::safetensors::save(&tensors, tmp).map_err(|e| Error::Model(format!("{}: {e}", path.display())))
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update; the map is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, shape: &Shape, name: &str, init_range: Option<f64>) -> candle_core::Result<Tensor> {
        let mut inner = self.lock();
        if let Some(var) = inner.vars.get(name) {
            return check_shape(var.as_tensor(), shape, name, "the model").map(|_| self.hand_out(var));
        }
        if let Some(t) = inner.constants.get(name) {
            return check_shape(t, shape, name, "the model").map(|_| t.clone());
        }
        let value = match lookup(&inner.checkpoint, name) {
            Some(t) => {
                check_shape(t, shape, name, &inner.source)?;
                // A frozen f16 word table stays f16 (an int8 store reads it so, see
                // `read_safetensors`): its rows widen to f32 exactly when looked up.
                let half = self.frozen && t.dtype() == DType::F16 && kept_in_half(name);
                t.to_dtype(if half { DType::F16 } else { self.dtype })?.to_device(&self.device)?
            }
            None => match init_range {
                Some(range) => {
                    inner.initialised.push(name.to_string());
                    initial_value(&mut inner.rng, shape, name, range)?.to_dtype(self.dtype)?.to_device(&self.device)?
                }
                None => candle_core::bail!("{}: missing tensor `{name}`", inner.source),
            },
        };
        if self.frozen {
            // Constants never train: hand out the checkpoint's own tensor (a
            // `Var` would copy it, doubling the memory a loaded model takes).
            inner.constants.insert(name.to_string(), value.clone());
            return Ok(value);
        }
        let var = Var::from_tensor(&value)?;
        inner.vars.insert(name.to_string(), var.clone());
        Ok(self.hand_out(&var))
    }
}

/// Reads every tensor of a safetensors file, one at a time: the memory it
/// takes is the tensors (plus, for other dtypes than f32, the largest one's
/// bytes), where reading the whole file first (as
/// `candle_core::safetensors::load` does) takes twice the file.
/// With `int8`, the tensors [`quantized_at_load`] picks are quantized as they
/// are read and come back as zero-size stand-ins of their shape.
fn read_safetensors(
    path: &Path,
    int8: Option<Int8Plan>,
) -> Result<(HashMap<String, Tensor>, HashMap<String, QuantizedWeights>)> {
    let bad = |what: String| Error::Model(format!("{}: {what}", path.display()));
    let (file, header) = read_header(path)?;
    let (mut tensors, mut quantized) = (HashMap::new(), HashMap::new());
    for (name, entry) in &header {
        let (at, dtype) = (entry.at, entry.dtype);
        let half = int8.is_some() && kept_in_half(name);
        let tensor = read_tensor(&file, at, dtype, &entry.shape, half).map_err(|e| match e {
            ReadError::Io(e) => Error::io(path, e),
            ReadError::Tensor(e) => bad(format!("tensor `{name}`: {e}")),
        })?;
        let tensor = match int8 {
            Some(plan) if quantized_at_load(name, &entry.shape) && plan.arithmetic.quantizes(name) => {
                let q = super::int8::quantize_tensor(&tensor, name, plan)
                    .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
                quantized.insert(name.clone(), q);
                super::int8::stand_in(tensor.shape()).map_err(|e| bad(format!("tensor `{name}`: {e}")))?
            }
            _ => tensor,
        };
        tensors.insert(name.clone(), tensor);
    }
    Ok((tensors, quantized))
}

/// A safetensors file's header, checked: each tensor's place, dtype and shape.
fn read_header(path: &Path) -> Result<(std::fs::File, Vec<(String, TensorEntry)>)> {
    use std::os::unix::fs::FileExt;
    let bad = |what: String| Error::Model(format!("{}: {what}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut head = [0u8; 8];
    file.read_exact_at(&mut head, 0).map_err(|_| bad("not a safetensors file (shorter than its header)".into()))?;
    let header_len = u64::from_le_bytes(head);
    if header_len > len.saturating_sub(8) || header_len > 100 << 20 {
        return Err(bad(format!("not a safetensors file (header of {header_len} bytes)")));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact_at(&mut header, 8).map_err(|e| Error::io(path, e))?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("bad safetensors header: {e}")))?;
    let data_start = 8 + header_len;
    let entries = header.into_iter().filter(|(name, _)| name != "__metadata__").map(|(name, info)| {
        let entry: RawEntry = serde_json::from_value(info).map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        let dtype =
            safetensors_dtype(&entry.dtype).ok_or_else(|| bad(format!("tensor `{name}`: dtype {}", entry.dtype)))?;
        let [begin, end] = entry.data_offsets;
        let bytes = entry.shape.iter().product::<usize>() * dtype.size_in_bytes();
        if end < begin || (end - begin) as usize != bytes || data_start + end > len {
            return Err(bad(format!("tensor `{name}`: offsets {begin}..{end} do not hold shape {:?}", entry.shape)));
        }
        Ok((name, TensorEntry { at: data_start + begin, dtype, shape: entry.shape }))
    });
    Ok((file, entries.collect::<Result<_>>()?))
}

/// Some input columns of 2-D weights [outputs, inputs] in the safetensors
/// file at `path`, as f32: for each (name, columns) asked, (column, its
/// `outputs` weights) pairs. Each tensor's bytes are mapped alone, with
/// their pages entered at once, and unmapped before the next: only the
/// columns' cache lines are read, and at most one tensor's pages count
/// towards the process's memory at a time.
pub(crate) fn read_columns(path: &Path, wanted: &[(String, Vec<usize>)]) -> Result<Vec<Vec<ColumnWeights>>> {
    let bad = |what: String| Error::Model(format!("{}: {what}", path.display()));
    let (file, header) = read_header(path)?;
    let entries: HashMap<String, TensorEntry> = header.into_iter().collect();
    wanted
        .iter()
        .map(|(name, columns)| {
            let entry = lookup(&entries, name).ok_or_else(|| bad(format!("missing tensor `{name}`")))?;
            let &[outputs, inputs] = &entry.shape[..] else {
                return Err(bad(format!("tensor `{name}` has shape {:?}, not [outputs, inputs]", entry.shape)));
            };
            if let Some(c) = columns.iter().find(|&&c| c >= inputs) {
                return Err(bad(format!("tensor `{name}`: no column {c} of {inputs}")));
            }
            let size = entry.dtype.size_in_bytes();
            // SAFETY: a read-only map, dropped here; a file changed meanwhile gives
            // other numbers, as reading it would, never unsafety.
            let map = unsafe {
                memmap2::MmapOptions::new().offset(entry.at).len(outputs * inputs * size).populate().map(&file)
            }
            .map_err(|e| Error::io(path, e))?;
            columns
                .iter()
                .map(|&c| {
                    let column: Option<Vec<f32>> =
                        (0..outputs).map(|o| float_at(&map, entry.dtype, o * inputs + c)).collect();
                    column.map(|w| (c, w)).ok_or_else(|| bad(format!("tensor `{name}`: not a float tensor")))
                })
                .collect()
        })
        .collect()
}

/// Element `i` of little-endian `bytes` holding `dtype` floats, as f32.
fn float_at(bytes: &[u8], dtype: DType, i: usize) -> Option<f32> {
    let size = dtype.size_in_bytes();
    let b = bytes.get(i * size..(i + 1) * size)?;
    Some(match dtype {
        DType::F32 => f32::from_le_bytes(b.try_into().ok()?),
        DType::F16 => half::f16::from_le_bytes(b.try_into().ok()?).to_f32(),
        DType::BF16 => half::bf16::from_le_bytes(b.try_into().ok()?).to_f32(),
        DType::F64 => f64::from_le_bytes(b.try_into().ok()?) as f32,
        _ => return None,
    })
}

enum ReadError {
    Io(std::io::Error),
    Tensor(candle_core::Error),
}

/// One tensor's bytes at `at`: f32 (all of a model's weights) straight into
/// the tensor's own storage, other dtypes through a byte buffer; with `half`,
/// as f16 (f32 converted a slice at a time, never held whole).
fn read_tensor(
    file: &std::fs::File,
    at: u64,
    dtype: DType,
    shape: &[usize],
    half: bool,
) -> std::result::Result<Tensor, ReadError> {
    use std::os::unix::fs::FileExt;
    let n: usize = shape.iter().product();
    if half && dtype == DType::F32 && cfg!(target_endian = "little") {
        const SLICE: usize = 1 << 16;
        let (mut values, mut buffer) = (Vec::with_capacity(n), vec![0f32; SLICE.min(n)]);
        for start in (0..n).step_by(SLICE) {
            let part = &mut buffer[..SLICE.min(n - start)];
            // SAFETY: any bytes are a valid f32, and the view covers exactly the slice's memory.
            let view = unsafe { std::slice::from_raw_parts_mut(part.as_mut_ptr().cast::<u8>(), part.len() * 4) };
            file.read_exact_at(view, at + 4 * start as u64).map_err(ReadError::Io)?;
            values.extend(part.iter().map(|&v| half::f16::from_f32(v)));
        }
        return Tensor::from_vec(values, shape, &Device::Cpu).map_err(ReadError::Tensor);
    }
    if half {
        let tensor = read_tensor(file, at, dtype, shape, false)?;
        return tensor.to_dtype(DType::F16).map_err(ReadError::Tensor);
    }
    if dtype == DType::F32 && cfg!(target_endian = "little") {
        let mut values = vec![0f32; n];
        // SAFETY: any bytes are a valid f32, and the view covers exactly the vector's memory.
        let view = unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), n * 4) };
        file.read_exact_at(view, at).map_err(ReadError::Io)?;
        return Tensor::from_vec(values, shape, &Device::Cpu).map_err(ReadError::Tensor);
    }
    let mut data = vec![0u8; n * dtype.size_in_bytes()];
    file.read_exact_at(&mut data, at).map_err(ReadError::Io)?;
    Tensor::from_raw_buffer(&data, dtype, shape, &Device::Cpu).map_err(ReadError::Tensor)
}

#[derive(serde::Deserialize)]
struct RawEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// Where a tensor's bytes start in its file, and what they hold.
struct TensorEntry {
    at: u64,
    dtype: DType,
    shape: Vec<usize>,
}

fn safetensors_dtype(name: &str) -> Option<DType> {
    Some(match name {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "U8" => DType::U8,
        "U32" => DType::U32,
        "I64" => DType::I64,
        _ => return None,
    })
}

/// Old checkpoints call LayerNorm parameters gamma/beta.
fn canonical_name(name: &str) -> String {
    if let Some(stem) = name.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = name.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        name.to_string()
    }
}

/// Base encoders are saved without the `bert.` (`mpnet.`) prefix that a classifier checkpoint has.
fn lookup<'a, V>(checkpoint: &'a HashMap<String, V>, name: &str) -> Option<&'a V> {
    checkpoint.get(name).or_else(|| checkpoint.get(bare(name)?))
}

/// `name` without its family prefix, if it has one.
fn bare(name: &str) -> Option<&str> {
    let (prefix, bare) = name.split_once('.')?;
    Family::SUPPORTED.iter().any(|(_, f)| f.prefix() == prefix).then_some(bare)
}

/// The tensors an int8 model runs in int8: the encoder layers' linear weights.
fn quantized_at_load(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2
        && name.ends_with(".weight")
        && (name.starts_with("encoder.layer.") || name.contains(".encoder.layer."))
}

/// The tensors an int8 model keeps in f16 ([`super::embedding`]): the word embeddings.
fn kept_in_half(name: &str) -> bool {
    name.ends_with("embeddings.word_embeddings.weight")
}

fn check_shape(t: &Tensor, shape: &Shape, name: &str, source: &str) -> candle_core::Result<()> {
    if t.shape() != shape {
        candle_core::bail!("{source}: tensor `{name}` has shape {:?}, the config needs {:?}", t.dims(), shape.dims());
    }
    Ok(())
}

/// transformers' `BertPreTrainedModel._init_weights`, decided by the tensor's name.
fn initial_value(rng: &mut ChaCha8Rng, shape: &Shape, name: &str, range: f64) -> candle_core::Result<Tensor> {
    let n = shape.elem_count();
    let values: Vec<f32> = if name.ends_with("LayerNorm.weight") {
        vec![1.0; n]
    } else if name.ends_with("bias") {
        vec![0.0; n]
    } else {
        (0..n).map(|_| (range * normal(rng)) as f32).collect()
    };
    Tensor::from_vec(values, shape, &Device::Cpu)
}

/// A standard normal draw (Box–Muller), so initial weights depend on the seed alone.
pub(crate) fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

struct Backend {
    store: ParamStore,
    /// `Some(range)` where missing tensors may be initialised.
    init_range: Option<f64>,
}

impl candle_nn::var_builder::SimpleBackend for Backend {
    fn get(&self, s: Shape, name: &str, _: Init, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        self.store.get(&s, name, self.init_range)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        let inner = self.store.lock();
        match inner.vars.get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => candle_core::bail!("{}: missing tensor `{name}`", inner.source),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        let inner = self.store.lock();
        inner.vars.contains_key(name) || lookup(&inner.checkpoint, name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_word_tables_are_kept_in_half() {
        assert!(kept_in_half("mpnet.embeddings.word_embeddings.weight"));
        assert!(kept_in_half("embeddings.word_embeddings.weight"));
        assert!(!kept_in_half("embeddings.position_embeddings.weight"));
    }

    /// Columns come back exact from f32 files and as rounded from f16 and
    /// bf16 ones, under a prefixed name too; a missing tensor or a column
    /// past the inputs is an error naming it.
    #[test]
    fn weight_columns_are_read_from_any_float_file() {
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<f32> = (0..12).map(|i| i as f32 * 0.3 - 1.0).collect();
        let w = Tensor::from_vec(values.clone(), (3, 4), &Device::Cpu).unwrap();
        let want: Vec<(usize, Vec<f32>)> = [3, 1].map(|c| (c, (0..3).map(|o| values[o * 4 + c]).collect())).to_vec();
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let path = dir.path().join(format!("{dtype:?}.safetensors"));
            let t = w.to_dtype(dtype).unwrap();
            candle_core::safetensors::save(
                &HashMap::from([("encoder.layer.0.q.weight".to_string(), t.clone())]),
                &path,
            )
            .unwrap();
            let got = read_columns(&path, &[("bert.encoder.layer.0.q.weight".into(), vec![3, 1])]).unwrap();
            let rounded: Vec<f32> = t.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let want: Vec<(usize, Vec<f32>)> =
                want.iter().map(|(c, _)| (*c, (0..3).map(|o| rounded[o * 4 + c]).collect())).collect();
            assert_eq!(got, [want], "{dtype:?}");
            let err = read_columns(&path, &[("encoder.layer.0.k.weight".into(), vec![0])]).unwrap_err().to_string();
            assert!(err.contains("missing tensor `encoder.layer.0.k.weight`"), "{err}");
            let err = read_columns(&path, &[("encoder.layer.0.q.weight".into(), vec![4])]).unwrap_err().to_string();
            assert!(err.contains("no column 4 of 4"), "{err}");
        }
        assert_eq!(want[0].1, [values[3], values[7], values[11]]);
    }

    #[test]
    fn legacy_layer_norm_names_are_renamed() {
        assert_eq!(canonical_name("bert.embeddings.LayerNorm.gamma"), "bert.embeddings.LayerNorm.weight");
        assert_eq!(canonical_name("encoder.layer.0.output.LayerNorm.beta"), "encoder.layer.0.output.LayerNorm.bias");
        assert_eq!(canonical_name("classifier.weight"), "classifier.weight");
    }

    #[test]
    fn strict_scope_names_the_missing_tensor() {
        let store = ParamStore::random(&Device::Cpu, 0);
        let err = store.strict().pp("bert").get((2, 2), "x").unwrap_err().to_string();
        assert!(err.contains("missing tensor `bert.x`"), "{err}");
    }

    #[test]
    fn initialisation_depends_on_the_seed_alone() {
        let draw = |seed| {
            let store = ParamStore::random(&Device::Cpu, seed);
            let t = store.lenient(0.02).get((30, 40), "w").unwrap();
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        let v = draw(7);
        let std = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
        assert!(std > 0.005 && std < 0.05, "std {std}");
    }

    #[test]
    fn save_and_reload_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let store = ParamStore::random(&Device::Cpu, 1);
        let a = store.lenient(1.0).pp("bert").get((2, 3), "w").unwrap();
        store.save(&path).unwrap();
        let reloaded = ParamStore::from_safetensors(&path, &Device::Cpu, 9).unwrap();
        let b = reloaded.strict().pp("bert").get((2, 3), "w").unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        let err = reloaded.strict().pp("bert").get((3, 2), "w").unwrap_err().to_string();
        assert!(err.contains("`bert.w` has shape [2, 3]"), "{err}");
    }
}
