//! Turns GGUF tensors into candle tensors, converting block types on the way as the load
//! options ask, one tensor at a time so a conversion never holds a whole f32 model.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::error::{EngineError, Result};
use crate::gguf::TensorInfo;
use crate::text::decoder::WeightSummary;
use crate::text::blocks::{dtype_kind, own_matrix, OwnMatrix};
use crate::text::q8::Q8Matrix;
use crate::text::FAST_KERNELS;
use crate::types::WeightConversion;

/// Bytes of tensors that may lie before the matrix that takes over the file's buffer (copied
/// out first), see [`WeightLoader::convert_all`].
const TAKE_OVER_HEAD: usize = 1 << 20;

pub struct WeightLoader {
    conversion: WeightConversion,
    pub parameters: u64,
    held_by_type: BTreeMap<String, u64>,
    source_by_type: BTreeMap<String, u64>,
}

impl WeightLoader {
    pub fn new(conversion: WeightConversion) -> Self {
        WeightLoader {
            conversion,
            parameters: 0,
            held_by_type: BTreeMap::new(),
            source_by_type: BTreeMap::new(),
        }
    }

    /// The block type this tensor is converted to, if any. 1-D tensors (norms) stay as they are.
    pub fn target(&self, dtype: GgmlDType, dims: &[usize]) -> Option<GgmlDType> {
        if dims.len() < 2 {
            return None;
        }
        let wanted = match self.conversion {
            WeightConversion::Keep => None,
            // Q4_1 has an own kernel in the component; for the rest candle has no SIMD128
            // kernel, and Q8_0 is ~4x faster and loses nothing measurable (Q4_0 does lose
            // quality on SmolLM2). K-quants too in the component, where candle's K-quant
            // kernels are scalar (natively they are AVX2 and stay).
            // Where this build has SIMD kernels (the component), the block types in the
            // table are multiplied as they are; the others are converted to Q8_0, which loses
            // nothing measurable (candle's kernels for them are scalar in wasm). Natively
            // candle's kernels run the rest, with Q4_1 and Q5 as Q8_0, which candle runs
            // faster.
            WeightConversion::Auto => match dtype {
                _ if FAST_KERNELS && dtype_kind(dtype).is_some() => None,
                GgmlDType::Q2K | GgmlDType::Q3K | GgmlDType::Q6K if FAST_KERNELS => Some(GgmlDType::Q8_0),
                GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1 => Some(GgmlDType::Q8_0),
                _ => None,
            },
            WeightConversion::Q8_0 => Some(GgmlDType::Q8_0),
            WeightConversion::Q4_0 => Some(GgmlDType::Q4_0),
            WeightConversion::F16 => Some(GgmlDType::F16),
            WeightConversion::Dequantize => Some(GgmlDType::F32),
        };
        wanted.filter(|&t| t != dtype && dims[0].is_multiple_of(t.block_size()))
    }

    /// Every tensor of the file converted as the options ask, taking the file's bytes: tensors
    /// are converted last in the file first, and the file is cut back behind each one, so its
    /// memory is handed back while the weights are built and a load never holds the file and
    /// the weights whole at once.
    pub fn convert_all(&mut self, file_name: &str, tensors: &[TensorInfo], mut bytes: Vec<u8>) -> Result<ConvertedWeights> {
        let mut order: Vec<&TensorInfo> = tensors.iter().collect();
        order.sort_by_key(|t| std::cmp::Reverse(t.start));
        let mut converted = HashMap::with_capacity(tensors.len());
        for (i, info) in order.iter().enumerate() {
            if info.start.checked_add(info.len).is_none_or(|end| end > bytes.len()) {
                return Err(EngineError::InvalidModel(format!("{file_name}: tensor {} lies outside the file", info.name)));
            }
            // A Q8_0 matrix for the own kernel with only small tensors before it in the file
            // (the token embeddings, usually, after a norm or two) takes over the file's buffer
            // instead of being copied out of it: those few are copied out first. Otherwise the
            // biggest matrix would be held twice at the peak of the load.
            let before = &order[i + 1..];
            let small_before = before.iter().map(|t| t.len).sum::<usize>() <= TAKE_OVER_HEAD;
            if let (true, Some((rows, cols)), GgmlDType::Q8_0) = (small_before, self.own_layout(info), info.dtype) {
                for t in before {
                    let tensor = self.convert(file_name, t, &bytes[t.start..t.start + t.len])?;
                    converted.insert(t.name.clone(), tensor);
                }
                bytes.truncate(info.start + info.len);
                let weight = Weight::Own(Box::new(Q8Matrix::from_file_tail(bytes, info.start, rows, cols)?));
                self.record(info, &weight);
                converted.insert(info.name.clone(), weight);
                break;
            }
            let tensor = self.convert(file_name, info, &bytes[info.start..info.start + info.len])?;
            converted.insert(info.name.clone(), tensor);
            bytes.truncate(info.start);
            bytes.shrink_to_fit();
        }
        Ok(ConvertedWeights { file_name: file_name.to_string(), tensors: converted })
    }

    /// (rows, cols) of a tensor whose blocks an own kernel multiplies as they are, so they go
    /// straight from the file to its layout: a matrix of a type in the block table, kept, in a
    /// build with the kernels.
    pub fn own_layout(&self, info: &TensorInfo) -> Option<(usize, usize)> {
        let kept = self.target(info.dtype, &info.dims).is_none() && dtype_kind(info.dtype).is_some();
        match info.shape()[..] {
            [rows, cols] if FAST_KERNELS && kept => Some((rows, cols)),
            _ => None,
        }
    }

    /// Bookkeeping of what the file had and what is held.
    fn record(&mut self, info: &TensorInfo, held: &Weight) {
        *self.source_by_type.entry(dtype_name(info.dtype)).or_default() += info.len as u64;
        self.parameters += info.elements() as u64;
        *self.held_by_type.entry(held.type_name()).or_default() += held.bytes();
    }

    fn convert(&mut self, file_name: &str, info: &TensorInfo, raw: &[u8]) -> Result<Weight> {
        let name = &info.name;
        let shape = info.shape();
        let matrix = FAST_KERNELS && shape.len() == 2;
        let target = self.target(info.dtype, &info.dims);
        let weight = match (self.own_layout(info), dtype_kind(info.dtype)) {
            (Some((rows, cols)), Some(kind)) => Weight::Own(own_matrix(kind, raw, rows, cols)?),
            _ => {
                let source = raw_qtensor(raw, info.dtype, shape)
                    .map_err(|e| EngineError::InvalidModel(format!("{file_name}: tensor {name}: {e}")))?;
                let held = match target {
                    None => source,
                    Some(target) => {
                        let f32_tensor = source.dequantize(&Device::Cpu)?;
                        drop(source);
                        QTensor::quantize(&f32_tensor, target)
                            .map_err(|e| EngineError::compute(&format!("converting {name} to {target:?}"), e))?
                    }
                };
                if matrix && held.dtype() == GgmlDType::Q8_0 {
                    Weight::Own(Box::new(Q8Matrix::from_qtensor(&held)?))
                } else {
                    Weight::Tensor(held)
                }
            }
        };
        self.record(info, &weight);
        Ok(weight)
    }

    /// What the loaded model holds, for model-info: `weight_bytes` as the architecture counts
    /// it (shared blocks once), the rest from this loader's bookkeeping.
    pub fn summary(&self, weight_bytes: u64) -> WeightSummary {
        WeightSummary {
            weight_bytes,
            parameters: self.parameters,
            quantization: dominant(&self.held_by_type),
            source_quantization: dominant(&self.source_by_type),
        }
    }
}

/// Names a GGML block type the way llama.cpp does ("Q8_0", "Q4_K", "F32").
pub fn dtype_name(dtype: GgmlDType) -> String {
    match dtype {
        GgmlDType::Q2K => "Q2_K".into(),
        GgmlDType::Q3K => "Q3_K".into(),
        GgmlDType::Q4K => "Q4_K".into(),
        GgmlDType::Q5K => "Q5_K".into(),
        GgmlDType::Q6K => "Q6_K".into(),
        GgmlDType::Q8K => "Q8_K".into(),
        other => format!("{other:?}"),
    }
}

/// One tensor as held: in the layout of an own SIMD kernel where this build has one for its
/// block type (see `blocks.rs`), else a candle QTensor.
pub enum Weight {
    Own(Box<dyn OwnMatrix>),
    Tensor(QTensor),
}

impl Weight {
    pub fn bytes(&self) -> u64 {
        match self {
            Weight::Own(m) => m.bytes(),
            Weight::Tensor(t) => t.storage_size_in_bytes() as u64,
        }
    }

    /// Values per row of a matrix.
    fn cols(&self) -> Result<usize> {
        Ok(match self {
            Weight::Own(m) => m.cols(),
            Weight::Tensor(t) => t.shape().dims2()?.1,
        })
    }

    fn type_name(&self) -> String {
        match self {
            Weight::Own(m) => m.type_name(),
            Weight::Tensor(t) => dtype_name(t.dtype()),
        }
    }
}

/// The converted tensors of one file, taken by name as the model is assembled.
pub struct ConvertedWeights {
    file_name: String,
    tensors: HashMap<String, Weight>,
}

impl ConvertedWeights {
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn take(&mut self, name: &str) -> Result<Weight> {
        self.tensors
            .remove(name)
            .ok_or_else(|| EngineError::InvalidModel(format!("{}: tensor {name} is missing", self.file_name)))
    }

    /// A dequantized f32 tensor (for small tensors such as norm weights).
    pub fn take_f32(&mut self, name: &str) -> Result<Tensor> {
        match self.take(name)? {
            Weight::Tensor(t) => Ok(t.dequantize(&Device::Cpu)?),
            _ => Err(EngineError::InvalidModel(format!("{}: tensor {name} should be a vector, not a matrix", self.file_name))),
        }
    }

    /// Several matrices with the same row length stacked into one (e.g. Q, K and V), so one
    /// matmul - and one quantization of the activations - serves all of them. `Err` gives the
    /// parts back when they cannot be stacked (different block types, say).
    pub fn take_stacked(&mut self, names: &[String]) -> Result<std::result::Result<Weight, Vec<Weight>>> {
        let parts = names.iter().map(|n| self.take(n)).collect::<Result<Vec<_>>>()?;
        let cols = parts.iter().map(Weight::cols).collect::<Result<Vec<_>>>()?;
        if let Some(i) = cols.iter().position(|&c| c != cols[0]) {
            return Err(EngineError::InvalidModel(format!(
                "{}: tensor {} has rows of {} values, unlike {} ({})",
                self.file_name, names[i], cols[i], names[0], cols[0]
            )));
        }
        match &parts[..] {
            // The own layouts stay apart: stacking them would copy every matrix into a new
            // allocation that the holes left by the file cannot hold, growing linear memory by
            // a fifth; separate passes cost next to nothing (one more input quantization).
            [Weight::Own(_), ..] => Ok(Err(parts)),
            [Weight::Tensor(first), ..] if parts.iter().all(|p| matches!(p, Weight::Tensor(t) if t.dtype() == first.dtype())) => {
                let dtype = first.dtype();
                let mut rows = 0;
                let mut bytes = Vec::new();
                for part in &parts {
                    if let Weight::Tensor(t) = part {
                        rows += t.shape().dims2()?.0;
                        bytes.extend_from_slice(&t.data()?);
                    }
                }
                drop(parts);
                Ok(Ok(Weight::Tensor(raw_qtensor(&bytes, dtype, vec![rows, cols[0]])?)))
            }
            _ => Ok(Err(parts)),
        }
    }
}

/// Wraps raw GGUF bytes as a QTensor. candle reads the bytes as blocks through a pointer cast,
/// so misaligned input is first copied to an aligned buffer.
fn raw_qtensor(raw: &[u8], dtype: GgmlDType, shape: Vec<usize>) -> candle_core::Result<QTensor> {
    if (raw.as_ptr() as usize).is_multiple_of(8) {
        return qtensor_from_ggml(dtype, raw, shape, &Device::Cpu);
    }
    let mut aligned = vec![0u64; raw.len().div_ceil(8)];
    // SAFETY: `aligned` spans at least raw.len() bytes; u8 has no alignment or validity needs.
    let bytes = unsafe { std::slice::from_raw_parts_mut(aligned.as_mut_ptr() as *mut u8, raw.len()) };
    bytes.copy_from_slice(raw);
    qtensor_from_ggml(dtype, bytes, shape, &Device::Cpu)
}

fn dominant(by_type: &BTreeMap<String, u64>) -> String {
    by_type.iter().max_by_key(|(_, &b)| b).map(|(t, _)| t.clone()).unwrap_or_default()
}

/// The blocks of a 2-D `kind` tensor (rows x cols, rows being outputs), for the own layouts.
pub(crate) fn tensor_blocks(t: &QTensor, kind: GgmlDType) -> Result<(Cow<'_, [u8]>, usize, usize)> {
    if t.dtype() != kind {
        return Err(EngineError::Internal(format!("{kind:?} layout from a {:?} tensor", t.dtype())));
    }
    let (rows, cols) = t.shape().dims2()?;
    Ok((t.data()?, rows, cols))
}

/// Checks that `data` is whole `kind` blocks of a rows x cols matrix; returns the blocks per row.
pub(crate) fn check_blocks(kind: GgmlDType, data: &[u8], rows: usize, cols: usize) -> Result<usize> {
    if !cols.is_multiple_of(kind.block_size()) {
        return Err(EngineError::Internal(format!("{kind:?} rows of {cols} values")));
    }
    let bpr = cols / kind.block_size();
    if data.len() != rows * bpr * kind.type_size() {
        return Err(EngineError::Internal(format!("{kind:?} data of {} bytes for {} blocks", data.len(), rows * bpr)));
    }
    Ok(bpr)
}

/// An empty buffer with room for `len` values, or an error rather than a trap when memory runs
/// out: weights are the big allocations of a load, made without a probe beforehand.
pub(crate) fn weight_buffer<T>(len: usize, rows: usize, cols: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| EngineError::ResourceExhausted(format!("no memory left for a {rows}x{cols} weight matrix")))?;
    Ok(v)
}
