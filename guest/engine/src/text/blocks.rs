//! The GGUF block types the component multiplies as they ship, one row each in [`BLOCK_KINDS`]
//! (as ggml's `type_traits` table): how a file block decodes into sub-blocks of 32 weights
//! `scale * q + min`, and which own layout, and so which SIMD kernel, holds them.
//!
//! Adding a block type whose weights are at most five bits plus a scale and a minimum per 32
//! (or eight bits and a scale) is one decoder function here and one row: the layouts and their
//! kernels never see the file's block format. Types not in the table (Q6_K with its scales per
//! 16, Q2_K, Q3_K) are converted at load (see `weights.rs`).
//!
//! Every decoder reproduces ggml's dequantization exactly: `scale * q + min` in f32 gives the
//! same value as ggml's own formula for each type (checked against candle's dequantize).

use candle_core::quantized::GgmlDType;
use half::f16;

use crate::error::Result;
use crate::text::nibbles::NibbleMatrix;
use crate::text::q8::{Q8Matrix, QuantizedInput};

/// Weights per sub-block: the unit every own layout and kernel works in.
pub const SUB: usize = 32;

/// Sub-blocks in the largest file block (256 weights, the K-quants).
pub const MAX_SUBS: usize = 8;

/// 32 weights `scale * q[k] + min`.
#[derive(Clone, Copy, Default)]
pub struct SubBlock {
    pub q: [i8; SUB],
    pub scale: f32,
    pub min: f32,
}

/// Which own layout holds a block type's sub-blocks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Layout {
    /// q in 0..16 (`nibbles.rs`, four bits a weight).
    Nibbles,
    /// q in 0..32 (`nibbles.rs` with a fifth bit beside the nibbles).
    Nibbles5,
    /// q in -128..128, min 0 (`q8.rs`).
    Bytes,
}

pub struct BlockKind {
    pub dtype: GgmlDType,
    pub layout: Layout,
    /// Decodes one file block (`dtype.type_size()` bytes) into its sub-blocks; returns how many.
    pub decode: fn(&[u8], &mut [SubBlock; MAX_SUBS]) -> usize,
}

pub static BLOCK_KINDS: [BlockKind; 7] = [
    BlockKind { dtype: GgmlDType::Q4_0, layout: Layout::Nibbles, decode: q4_0 },
    BlockKind { dtype: GgmlDType::Q4_1, layout: Layout::Nibbles, decode: q4_1 },
    BlockKind { dtype: GgmlDType::Q4K, layout: Layout::Nibbles, decode: q4_k },
    BlockKind { dtype: GgmlDType::Q5_0, layout: Layout::Nibbles5, decode: q5_0 },
    BlockKind { dtype: GgmlDType::Q5_1, layout: Layout::Nibbles5, decode: q5_1 },
    BlockKind { dtype: GgmlDType::Q5K, layout: Layout::Nibbles5, decode: q5_k },
    BlockKind { dtype: GgmlDType::Q8_0, layout: Layout::Bytes, decode: q8_0 },
];

/// The row of `dtype`, if the component multiplies it as it is.
pub fn dtype_kind(dtype: GgmlDType) -> Option<&'static BlockKind> {
    BLOCK_KINDS.iter().find(|k| k.dtype == dtype)
}

/// A matrix held in an own layout: what the model layers multiply and look rows up in.
pub trait OwnMatrix: Send + Sync {
    fn rows(&self) -> usize;
    fn cols(&self) -> usize;
    fn bytes(&self) -> u64;
    /// The file's block type the weights came from ("Q4_K"), for model-info.
    fn type_name(&self) -> String;
    /// Row `i` dequantized (an embedding lookup).
    fn row(&self, i: usize, out: &mut [f32]);
    /// `out[i * stride + r] = dot(row r, input i)` for every row r and input i.
    fn matmul_quantized(&self, x: &QuantizedInput, out: &mut [f32], stride: usize);
}

/// A rows x cols matrix of `kind` blocks as a GGUF file holds them, in its own layout.
pub fn own_matrix(kind: &BlockKind, data: &[u8], rows: usize, cols: usize) -> Result<Box<dyn OwnMatrix>> {
    Ok(match kind.layout {
        Layout::Nibbles => Box::new(NibbleMatrix::<false>::from_blocks(kind, data, rows, cols)?),
        Layout::Nibbles5 => Box::new(NibbleMatrix::<true>::from_blocks(kind, data, rows, cols)?),
        Layout::Bytes => Box::new(Q8Matrix::from_blocks(kind, data, rows, cols)?),
    })
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The 32 weights of a block that holds weight k in the low nibble of `qs[k]` and k + 16 in its
/// high one (Q4_0, Q4_1, Q5_0, Q5_1), with the fifth bits of `qh` (bit k for weight k) if any.
fn split_nibbles(qs: &[u8], qh: u32, q: &mut [i8; SUB]) {
    for k in 0..SUB / 2 {
        let (lo, hi) = (qs[k] & 0x0F, qs[k] >> 4);
        q[k] = (lo | (((qh >> k) & 1) << 4) as u8) as i8;
        q[k + 16] = (hi | (((qh >> (k + 16)) & 1) << 4) as u8) as i8;
    }
}

/// Q4_0: f16 d, 16 bytes of nibbles; w = d * (q - 8).
fn q4_0(b: &[u8], out: &mut [SubBlock; MAX_SUBS]) -> usize {
    let d = f16_at(b, 0);
    out[0].scale = d;
    out[0].min = -8.0 * d;
    split_nibbles(&b[2..18], 0, &mut out[0].q);
    1
}

/// Q4_1: f16 d, f16 m, 16 bytes of nibbles; w = d * q + m.
fn q4_1(b: &[u8], out: &mut [SubBlock; MAX_SUBS]) -> usize {
    out[0].scale = f16_at(b, 0);
    out[0].min = f16_at(b, 2);
    split_nibbles(&b[4..20], 0, &mut out[0].q);
    1
}

/// Q5_0: f16 d, 32 fifth bits, 16 bytes of nibbles; w = d * (q - 16).
fn q5_0(b: &[u8], out: &mut [SubBlock; MAX_SUBS]) -> usize {
    let d = f16_at(b, 0);
    out[0].scale = d;
    out[0].min = -16.0 * d;
    split_nibbles(&b[6..22], u32_at(b, 2), &mut out[0].q);
    1
}

/// Q5_1: f16 d, f16 m, 32 fifth bits, 16 bytes of nibbles; w = d * q + m.
fn q5_1(b: &[u8], out: &mut [SubBlock; MAX_SUBS]) -> usize {
    out[0].scale = f16_at(b, 0);
    out[0].min = f16_at(b, 2);
    split_nibbles(&b[8..24], u32_at(b, 4), &mut out[0].q);
    1
}

/// Q8_0: f16 d, 32 int8; w = d * q.
fn q8_0(b: &[u8], out: &mut [SubBlock; MAX_SUBS]) -> usize {
    out[0].scale = f16_at(b, 0);
    out[0].min = 0.0;
    for (q, &v) in out[0].q.iter_mut().zip(&b[2..34]) {
        *q = v as i8;
    }
    1
}

/// The 6-bit scale and minimum of sub-block `j` of a Q4_K / Q5_K super-block.
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// The eight sub-blocks of a Q4_K (`qh` None) or Q5_K super-block: f16 d, f16 dmin, 12 bytes
/// of packed scales and minimums, [Q5_K: 32 bytes of fifth bits,] 128 bytes of nibbles.
/// Sub-block 2j holds the low nibbles of bytes 32j..32j+32, 2j+1 their high ones;
/// w = d * scale * q - dmin * min.
fn k_quant(b: &[u8], qh: Option<&[u8]>, qs: &[u8], out: &mut [SubBlock; MAX_SUBS]) -> usize {
    let (d, dmin, scales) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
    for (s, sub) in out.iter_mut().enumerate() {
        let (sc, m) = scale_min_k4(s, scales);
        sub.scale = d * sc as f32;
        sub.min = -(dmin * m as f32);
        let (j, high) = (s / 2, s % 2 == 1);
        for l in 0..SUB {
            let byte = qs[32 * j + l];
            let nibble = if high { byte >> 4 } else { byte & 0x0F };
            let fifth = qh.map_or(0, |qh| (qh[l] >> s) & 1);
            sub.q[l] = (nibble | fifth << 4) as i8;
        }
    }
    MAX_SUBS
}

fn q4_k(b: &[u8], out: &mut [SubBlock; MAX_SUBS]) -> usize {
    k_quant(b, None, &b[16..144], out)
}

fn q5_k(b: &[u8], out: &mut [SubBlock; MAX_SUBS]) -> usize {
    k_quant(b, Some(&b[16..48]), &b[48..176], out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::q8::check;
    use crate::text::weights::dtype_name;
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};

    /// scripts/test-kernels-wasm runs these tests to check the SIMD kernels: a wasm build
    /// without SIMD128 would check the portable ones a second time.
    #[cfg(target_arch = "wasm32")]
    #[test]
    fn wasm_test_builds_have_the_simd_kernels() {
        assert!(cfg!(target_feature = "simd128"), "this wasm build has no SIMD128; the kernel tests would not reach the SIMD kernels");
    }

    /// Every row's kernel (SIMD in the component's build, portable natively) against the
    /// dequantized weights times the rounded inputs, with rows not a multiple of four.
    #[test]
    fn every_kernel_equals_the_dequantized_product() {
        for kind in &BLOCK_KINDS {
            for (rows, cols) in [(7, 512), (8, 256)] {
                let (q, x) = check::inputs(kind.dtype, rows, cols, 3);
                let m = own_matrix(kind, &q.data().unwrap(), rows, cols).unwrap();
                assert_eq!(m.type_name(), dtype_name(kind.dtype));
                check::assert_kernel(m.as_ref(), &q, &x);
            }
        }
    }

    /// Each decoder gives exactly what candle's dequantize gives, on weights that use the
    /// whole range of each type (and a row of zeros).
    #[test]
    fn every_decoder_equals_the_dequantized_blocks() {
        let cols = 512;
        let w: Vec<f32> = (0..4 * cols).map(|i| if i < cols { 0.0 } else { ((i * 7919 % 1013) as f32 - 506.0) / 97.0 * (1.0 + (i % 5) as f32) }).collect();
        let w = Tensor::from_vec(w, (4, cols), &Device::Cpu).unwrap();
        for kind in &BLOCK_KINDS {
            let q = QTensor::quantize(&w, kind.dtype).unwrap();
            let expected: Vec<f32> = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            let data = q.data().unwrap();
            let mut got = Vec::new();
            let mut subs = [SubBlock::default(); MAX_SUBS];
            for block in data.chunks_exact(kind.dtype.type_size()) {
                let n = (kind.decode)(block, &mut subs);
                assert_eq!(n * SUB, kind.dtype.block_size(), "{:?}", kind.dtype);
                for s in &subs[..n] {
                    let bits = match kind.layout {
                        Layout::Nibbles => 0..16,
                        Layout::Nibbles5 => 0..32,
                        Layout::Bytes => -128..128,
                    };
                    assert!(s.q.iter().all(|&v| bits.contains(&(v as i32))), "{:?}: quants outside {bits:?}", kind.dtype);
                    got.extend(s.q.iter().map(|&v| v as f32 * s.scale + s.min));
                }
            }
            assert_eq!(got.len(), expected.len());
            for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
                assert!(a == b, "{:?} weight {i}: {a} vs {b}", kind.dtype);
            }
        }
    }
}
