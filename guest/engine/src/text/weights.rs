//! Turns GGUF tensors into candle tensors, converting block types on the way as the load
//! options ask, one tensor at a time so a conversion never holds a whole f32 model.

use std::collections::BTreeMap;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::text::llama::dtype_name;
use crate::text::FAST_KERNELS;
use crate::types::WeightConversion;

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
            // quality on SmolLM2).
            WeightConversion::Auto => match dtype {
                GgmlDType::Q4_1 if FAST_KERNELS => None,
                GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_1 => Some(GgmlDType::Q8_0),
                _ => None,
            },
            WeightConversion::Q8_0 => Some(GgmlDType::Q8_0),
            WeightConversion::Q4_0 => Some(GgmlDType::Q4_0),
            WeightConversion::F16 => Some(GgmlDType::F16),
            WeightConversion::Dequantize => Some(GgmlDType::F32),
        };
        wanted.filter(|&t| t != dtype && dims[0] % t.block_size() == 0)
    }

    pub fn qtensor(&mut self, gguf: &GgufFile, name: &str) -> Result<QTensor> {
        let info = gguf.require_tensor(name)?;
        let raw = gguf.data(info);
        let source = raw_qtensor(raw, info.dtype, info.shape())
            .map_err(|e| EngineError::InvalidModel(format!("{}: tensor {name}: {e}", gguf.file_name)))?;
        *self.source_by_type.entry(dtype_name(info.dtype)).or_default() += info.len as u64;
        self.parameters += info.elements() as u64;
        let held = match self.target(info.dtype, &info.dims) {
            None => source,
            Some(target) => {
                let f32_tensor = source.dequantize(&Device::Cpu)?;
                drop(source);
                QTensor::quantize(&f32_tensor, target)
                    .map_err(|e| EngineError::compute(&format!("converting {name} to {target:?}"), e))?
            }
        };
        let bytes = held.storage_size_in_bytes() as u64;
        *self.held_by_type.entry(dtype_name(held.dtype())).or_default() += bytes;
        Ok(held)
    }

    /// Several matrices with the same row length stacked into one (e.g. Q, K and V), so one
    /// matmul - and one quantization of the activations - serves all of them.
    pub fn stacked_qtensor(&mut self, gguf: &GgufFile, names: &[String]) -> Result<QTensor> {
        let parts = names.iter().map(|n| self.qtensor(gguf, n)).collect::<Result<Vec<_>>>()?;
        let dtype = parts[0].dtype();
        let cols = parts[0].shape().dims2()?.1;
        let mut rows = 0;
        let mut bytes = Vec::new();
        for (part, name) in parts.iter().zip(names) {
            let (r, c) = part.shape().dims2()?;
            if part.dtype() != dtype || c != cols {
                return Err(EngineError::InvalidModel(format!(
                    "{}: tensor {name} is {:?} {r}x{c}, unlike {} ({dtype:?}, {cols} columns)",
                    gguf.file_name,
                    part.dtype(),
                    names[0]
                )));
            }
            rows += r;
            bytes.extend_from_slice(&part.data()?);
        }
        drop(parts);
        Ok(raw_qtensor(&bytes, dtype, vec![rows, cols])?)
    }

    pub fn dominant_held(&self) -> String {
        dominant(&self.held_by_type)
    }

    pub fn dominant_source(&self) -> String {
        dominant(&self.source_by_type)
    }
}

/// A dequantized f32 tensor (for small tensors such as norm weights).
pub fn load_tensor(gguf: &GgufFile, name: &str, loader: &mut WeightLoader) -> Result<Tensor> {
    let q = loader.qtensor(gguf, name)?;
    Ok(q.dequantize(&Device::Cpu)?)
}

/// Wraps raw GGUF bytes as a QTensor. candle reads the bytes as blocks through a pointer cast,
/// so misaligned input is first copied to an aligned buffer.
fn raw_qtensor(raw: &[u8], dtype: GgmlDType, shape: Vec<usize>) -> candle_core::Result<QTensor> {
    if (raw.as_ptr() as usize) % 8 == 0 {
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
