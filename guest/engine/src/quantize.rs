//! Re-quantizing a GGUF model file: every matrix to one block type, with llama.cpp's rules for
//! what stays as it is, what a `--mix` keeps at more bits, and where a type cannot hold a row.
//!
//! What is kept: 1-D tensors (norms, biases) and anything that is not a matrix. Matrices are
//! dequantized to f32 and quantized again with candle's reference quantizers (the ones ggml's
//! `quantize_row_*_ref` are), so the output is the GGUF that llama.cpp's own tools would write
//! for the same type, up to its importance-matrix options. Metadata is copied; the alignment is
//! the writer's 32 bytes and `general.file_type` names the new type.

use std::borrow::Cow;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::Device;

use crate::error::{EngineError, Result};
use crate::gguf::writer::{write, TensorData};
use crate::gguf::{GgufFile, TensorInfo, Value};
use crate::text::weights::dtype_name;

/// The block types a file can be quantized to.
pub const TARGETS: [GgmlDType; 9] = [
    GgmlDType::Q4_0,
    GgmlDType::Q4_1,
    GgmlDType::Q5_0,
    GgmlDType::Q5_1,
    GgmlDType::Q8_0,
    GgmlDType::Q4K,
    GgmlDType::Q5K,
    GgmlDType::Q6K,
    GgmlDType::F16,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantizeOptions {
    pub target: GgmlDType,
    /// As llama.cpp's `_M` mixes: the output projection (or tied embeddings) at Q6_K, and
    /// `attn_v` / `ffn_down` at Q6_K in the layers `more_bits` picks.
    pub mix: bool,
}

/// What happened to one tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorChange {
    pub name: String,
    pub from: GgmlDType,
    pub to: GgmlDType,
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Why `to` is not the requested type (kept, mixed, or a fallback), if it is not.
    pub reason: Option<String>,
}

pub struct Quantized {
    pub gguf: Vec<u8>,
    pub tensors: Vec<TensorChange>,
}

/// llama.cpp's `llama_ftype` for `general.file_type`: tools show it as the file's type.
fn file_type(target: GgmlDType, mix: bool) -> u32 {
    match (target, mix) {
        (GgmlDType::F16, _) => 1,
        (GgmlDType::Q4_0, _) => 2,
        (GgmlDType::Q4_1, _) => 3,
        (GgmlDType::Q8_0, _) => 7,
        (GgmlDType::Q5_0, _) => 8,
        (GgmlDType::Q5_1, _) => 9,
        (GgmlDType::Q4K, false) => 14,
        (GgmlDType::Q4K, true) => 15,
        (GgmlDType::Q5K, false) => 16,
        (GgmlDType::Q5K, true) => 17,
        (GgmlDType::Q6K, _) => 18,
        _ => 0,
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third between.
fn more_bits(layer: usize, layers: usize) -> bool {
    layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2
}

/// The type a K-quant falls back to when a row's length is not a multiple of 256 (llama.cpp's
/// choices), and F16 when it is not even a multiple of 32.
fn fallback(target: GgmlDType, row: usize) -> Option<GgmlDType> {
    if row % target.block_size() == 0 {
        return None;
    }
    let next = match target {
        GgmlDType::Q4K => GgmlDType::Q5_0,
        GgmlDType::Q5K => GgmlDType::Q5_1,
        GgmlDType::Q6K => GgmlDType::Q8_0,
        _ => GgmlDType::F16,
    };
    Some(if row % next.block_size() == 0 { next } else { GgmlDType::F16 })
}

/// The type `info` gets, and why when that is not `options.target`.
fn plan(info: &TensorInfo, options: QuantizeOptions, layers: usize, has_output: bool) -> (GgmlDType, Option<String>) {
    if info.dims.len() != 2 || info.dims[0] < 32 {
        return (info.dtype, Some("not a matrix: kept".into()));
    }
    let mut target = options.target;
    let mut reason = None;
    let is_output = info.name == "output.weight" || (!has_output && info.name == "token_embd.weight");
    let layer = info.name.strip_prefix("blk.").and_then(|r| r.split('.').next()).and_then(|n| n.parse::<usize>().ok());
    let low_bits = matches!(target, GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q4K | GgmlDType::Q5K);
    if options.mix && low_bits {
        let sensitive = is_output
            || layer.is_some_and(|l| (info.name.ends_with(".attn_v.weight") || info.name.ends_with(".ffn_down.weight")) && more_bits(l, layers));
        if sensitive {
            target = GgmlDType::Q6K;
            reason = Some(if is_output { "mix: output projection at Q6_K".into() } else { "mix: more bits in this layer".into() });
        }
    }
    if let Some(next) = fallback(target, info.dims[0]) {
        reason = Some(format!("rows of {} do not fit {} blocks of {}: {}", info.dims[0], dtype_name(target), target.block_size(), dtype_name(next)));
        target = next;
    }
    (target, reason)
}

/// Quantizes every matrix of `bytes` (a GGUF file) as `options` says.
pub fn quantize(file_name: &str, bytes: &[u8], options: QuantizeOptions) -> Result<Quantized> {
    if !TARGETS.contains(&options.target) {
        return Err(EngineError::InvalidInput(format!(
            "cannot quantize to {}; the types are {}",
            dtype_name(options.target),
            TARGETS.iter().map(|t| dtype_name(*t)).collect::<Vec<_>>().join(", ")
        )));
    }
    let file = GgufFile::parse(file_name, bytes)?;
    let arch = file.require_str("general.architecture")?.to_string();
    let layers = file.get(&format!("{arch}.block_count")).and_then(Value::as_u64).unwrap_or(0) as usize;
    let has_output = file.tensor("output.weight").is_some();
    let device = Device::Cpu;
    let (mut tensors, mut changes) = (Vec::with_capacity(file.tensors.len()), Vec::with_capacity(file.tensors.len()));
    for info in &file.tensors {
        let data = file.data(info);
        let (to, reason) = plan(info, options, layers, has_output);
        let out = if to == info.dtype {
            data.to_vec()
        } else {
            let fail = |e: candle_core::Error| EngineError::InvalidModel(format!("{file_name}: tensor {}: {e}", info.name));
            let storage = QStorage::from_data(Cow::Borrowed(data), &device, info.dtype).map_err(fail)?;
            let values = QTensor::new(storage, info.shape()).map_err(fail)?.dequantize(&device).map_err(fail)?;
            QTensor::quantize(&values, to).map_err(fail)?.data().map_err(fail)?.into_owned()
        };
        changes.push(TensorChange {
            name: info.name.clone(),
            from: info.dtype,
            to,
            bytes_before: data.len() as u64,
            bytes_after: out.len() as u64,
            reason: if to == options.target { None } else { reason },
        });
        tensors.push(TensorData { name: info.name.clone(), dims: info.dims.clone(), dtype: to, bytes: out });
    }
    let mut metadata: Vec<(&str, Value)> = file
        .metadata
        .iter()
        .filter(|(k, _)| k.as_str() != "general.alignment" && k.as_str() != "general.file_type")
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    // Architecture first, as llama.cpp writes it (readers do not depend on the order).
    metadata.sort_by_key(|(k, _)| (*k != "general.architecture", k.to_string()));
    metadata.push(("general.file_type", Value::U32(file_type(options.target, options.mix))));
    Ok(Quantized { gguf: write(&metadata, &tensors), tensors: changes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TinyLlama;

    #[test]
    fn every_matrix_gets_the_target_and_the_rest_is_kept() {
        let source = TinyLlama { block_type: GgmlDType::Q8_0, ..TinyLlama::default() }.gguf();
        for target in TARGETS {
            let out = quantize("tiny.gguf", &source, QuantizeOptions { target, mix: false }).unwrap();
            let file = GgufFile::parse("out.gguf", &out.gguf).unwrap();
            for t in &file.tensors {
                let expected = if t.dims.len() == 1 { GgmlDType::F32 } else { plan(t, QuantizeOptions { target, mix: false }, 2, false).0 };
                assert_eq!(t.dtype, expected, "{} to {target:?}", t.name);
            }
            // Width 64: K-quants (256-value blocks) fall back, and the report says so.
            if target.block_size() == 256 {
                assert!(out.tensors.iter().any(|c| c.reason.as_deref().is_some_and(|r| r.contains("do not fit"))), "{target:?}");
            }
        }
    }

    #[test]
    fn the_mix_keeps_the_output_projection_at_q6_k_where_rows_allow() {
        let info = |name: &str, row: usize| TensorInfo { name: name.into(), dims: vec![row, 512], dtype: GgmlDType::F32, start: 0, len: 0 };
        let mix = QuantizeOptions { target: GgmlDType::Q4K, mix: true };
        assert_eq!(plan(&info("token_embd.weight", 512), mix, 30, false).0, GgmlDType::Q6K);
        assert_eq!(plan(&info("token_embd.weight", 512), mix, 30, true).0, GgmlDType::Q4K);
        assert_eq!(plan(&info("blk.0.attn_v.weight", 512), mix, 30, true).0, GgmlDType::Q6K);
        assert_eq!(plan(&info("blk.4.attn_v.weight", 512), mix, 30, true).0, GgmlDType::Q4K);
        assert_eq!(plan(&info("blk.0.attn_q.weight", 512), mix, 30, true).0, GgmlDType::Q4K);
        // 576-wide rows (SmolLM2) hold no 256-value block: Q6_K falls back to Q8_0, Q4_K to Q5_0.
        assert_eq!(plan(&info("token_embd.weight", 576), mix, 30, false).0, GgmlDType::Q8_0);
        assert_eq!(plan(&info("blk.1.attn_q.weight", 576), mix, 30, false).0, GgmlDType::Q5_0);
    }

    #[test]
    fn a_file_quantized_to_q8_0_generates_what_the_loaders_own_q8_0_conversion_does() {
        use crate::*;
        let source = TinyLlama::default().gguf(); // Q4_1, which the loader converts to Q8_0
        let out = quantize("tiny.gguf", &source, QuantizeOptions { target: GgmlDType::Q8_0, mix: false }).unwrap();
        let complete = |bytes: Vec<u8>| {
            let mut engine = Engine::new();
            engine.load_model("m", ModelKind::TextGeneration, vec![ModelFile { name: "m.gguf".into(), bytes }], &LoadOptions::default()).unwrap();
            engine.generate(&GenerateRequest { model: "m".into(), prompt: "the cat".into(), max_tokens: 12, sampling: None, stop: vec![] }).unwrap().text
        };
        assert_eq!(complete(out.gguf), complete(source));
    }

    #[test]
    fn a_type_that_is_not_a_target_is_invalid_input() {
        let source = TinyLlama::default().gguf();
        let err = quantize("tiny.gguf", &source, QuantizeOptions { target: GgmlDType::Q8K, mix: false }).err().unwrap();
        assert!(matches!(&err, EngineError::InvalidInput(m) if m.contains("Q4_K")), "{err}");
    }
}
