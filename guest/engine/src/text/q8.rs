//! Q8_0 weights laid out for fast matrix-vector products: int8 quants interleaved by groups of
//! four rows and block scales already in f32.
//!
//! candle keeps Q8_0 as 34-byte blocks with an f16 scale, and its wasm kernel converts two f16
//! scales in software for every block of every row. Converting the weight scales once at load,
//! quantizing the activations once per call (their int16 widening shared by every row), and
//! four rows per pass make decode markedly faster in the component.
//!
//! Rows go in groups of four, and a group's quants are stored `[block][row][32]` (its scales
//! `[block][row]`), so a pass over a group reads one sequential stream through one pointer
//! (see `q4.rs` for why that matters under Wasmtime). The last `rows % 4` rows, if any, stay
//! row after row. The layout is a permutation within each group's bytes, so a file's buffer
//! can still be taken over in place.

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

use crate::error::{EngineError, Result};
use crate::text::blocks::{dtype_kind, BlockKind, OwnMatrix, SubBlock, MAX_SUBS};
use crate::text::weights::{check_blocks, tensor_blocks, weight_buffer};

const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 34;

pub struct Q8Matrix {
    pub rows: usize,
    pub cols: usize,
    /// rows x cols int8 quants, in the layout of the module comment.
    qs: Vec<i8>,
    /// rows x (cols / 32) scales, in the same order as the blocks of `qs`.
    scales: Vec<f32>,
}

impl Q8Matrix {
    /// From a 2-D Q8_0 tensor (rows x cols, rows being outputs).
    pub fn from_qtensor(t: &QTensor) -> Result<Self> {
        let (data, rows, cols) = tensor_blocks(t, GgmlDType::Q8_0)?;
        let kind = dtype_kind(GgmlDType::Q8_0).ok_or_else(|| EngineError::Internal("no Q8_0 row in the block table".into()))?;
        Self::from_blocks(kind, &data, rows, cols)
    }

    /// From `kind` blocks (eight-bit sub-blocks with no minimum) as a GGUF file holds them.
    pub fn from_blocks(kind: &BlockKind, data: &[u8], rows: usize, cols: usize) -> Result<Self> {
        let blocks = rows * cols / BLOCK;
        check_blocks(kind.dtype, data, rows, cols)?;
        let mut qs = weight_buffer(rows * cols, rows, cols)?;
        let mut scales = weight_buffer(blocks, rows, cols)?;
        let mut subs = [SubBlock::default(); MAX_SUBS];
        for block in data.chunks_exact(kind.dtype.type_size()) {
            let n = (kind.decode)(block, &mut subs);
            for sub in &subs[..n] {
                if sub.min != 0.0 {
                    return Err(EngineError::Internal(format!("{:?} blocks with minimums in the eight-bit layout", kind.dtype)));
                }
                scales.push(sub.scale);
                qs.extend_from_slice(&sub.q);
            }
        }
        Ok(Q8Matrix::interleaved(rows, cols, qs, scales))
    }

    /// From the Q8_0 blocks at `start` in `file`, which is the end of the file's bytes: the
    /// quants are moved to the front of the file's own buffer and it becomes the matrix, so
    /// the first tensor of a file (the token embeddings, usually) is never held twice.
    pub fn from_file_tail(mut file: Vec<u8>, start: usize, rows: usize, cols: usize) -> Result<Self> {
        let tail = file.get(start..).ok_or_else(|| EngineError::Internal(format!("Q8_0 data at {start} past the end of {} bytes", file.len())))?;
        let blocks = rows * check_blocks(GgmlDType::Q8_0, tail, rows, cols)?;
        let mut scales = weight_buffer(blocks, rows, cols)?;
        for b in 0..blocks {
            // Block b's quants land at b * 32, before where block b + 1 starts: nothing unread
            // is overwritten.
            let at = start + b * BLOCK_BYTES;
            scales.push(f16::from_le_bytes([file[at], file[at + 1]]).to_f32());
            file.copy_within(at + 2..at + BLOCK_BYTES, b * BLOCK);
        }
        file.truncate(blocks * BLOCK);
        file.shrink_to_fit();
        let mut file = std::mem::ManuallyDrop::new(file);
        // SAFETY: i8 and u8 have the same size and alignment and every bit pattern is valid
        // for both; the buffer's ownership moves to the new Vec (the old one is not dropped).
        let qs = unsafe { Vec::from_raw_parts(file.as_mut_ptr() as *mut i8, file.len(), file.capacity()) };
        Ok(Q8Matrix::interleaved(rows, cols, qs, scales))
    }

    /// From row-major quants and scales, each group of four rows permuted in place.
    fn interleaved(rows: usize, cols: usize, mut qs: Vec<i8>, mut scales: Vec<f32>) -> Self {
        let bpr = cols / BLOCK;
        let mut group = vec![0i8; 4 * cols];
        let mut group_scales = vec![0f32; 4 * bpr];
        for g in 0..rows / 4 {
            let (q, d) = (&mut qs[g * 4 * cols..(g + 1) * 4 * cols], &mut scales[g * 4 * bpr..(g + 1) * 4 * bpr]);
            group.copy_from_slice(q);
            group_scales.copy_from_slice(d);
            for row in 0..4 {
                for b in 0..bpr {
                    q[(4 * b + row) * BLOCK..][..BLOCK].copy_from_slice(&group[row * cols + b * BLOCK..][..BLOCK]);
                    d[4 * b + row] = group_scales[row * bpr + b];
                }
            }
        }
        Q8Matrix { rows, cols, qs, scales }
    }

    /// Where block `b` of row `i` starts, counted in blocks.
    fn block_index(&self, i: usize, b: usize) -> usize {
        let bpr = self.cols / BLOCK;
        if i < self.rows / 4 * 4 {
            ((i / 4) * bpr + b) * 4 + i % 4
        } else {
            i * bpr + b
        }
    }
}

impl OwnMatrix for Q8Matrix {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn bytes(&self) -> u64 {
        (self.qs.len() + self.scales.len() * 4) as u64
    }

    fn type_name(&self) -> String {
        "Q8_0".into()
    }

    fn row(&self, i: usize, out: &mut [f32]) {
        for (b, out) in out[..self.cols].chunks_exact_mut(BLOCK).enumerate() {
            let at = self.block_index(i, b);
            let d = self.scales[at];
            for (o, &q) in out.iter_mut().zip(&self.qs[at * BLOCK..(at + 1) * BLOCK]) {
                *o = q as f32 * d;
            }
        }
    }

    /// Each group of four weight rows is read once and used for every input vector, so a
    /// prompt's tokens share one pass over the weights.
    fn matmul_quantized(&self, x: &QuantizedInput, out: &mut [f32], stride: usize) {
        let (cols, bpr) = (self.cols, self.cols / BLOCK);
        let n = x.q.len() / cols;
        let (xq, xds) = (&x.q, &x.ds);
        let mut r = 0;
        while r + 4 <= self.rows {
            let (w, ws) = (&self.qs[r * cols..(r + 4) * cols], &self.scales[r * bpr..(r + 4) * bpr]);
            for i in 0..n {
                let d = dot4(w, ws, &xq[i * cols..(i + 1) * cols], &xds[2 * i * bpr..2 * (i + 1) * bpr]);
                out[i * stride + r..i * stride + r + 4].copy_from_slice(&d);
            }
            r += 4;
        }
        for r in r..self.rows {
            let (w, ws) = (&self.qs[r * cols..(r + 1) * cols], &self.scales[r * bpr..(r + 1) * bpr]);
            for i in 0..n {
                out[i * stride + r] = dot1(w, ws, &xq[i * cols..(i + 1) * cols], &xds[2 * i * bpr..2 * (i + 1) * bpr]);
            }
        }
    }
}

/// Input vectors quantized once for every matrix that multiplies them (Q, K and V, say).
pub struct QuantizedInput {
    /// int16 quants.
    pub q: Vec<i16>,
    /// Per block of 32: the f32 scale, then the scale times the sum of the quants (what Q4_1
    /// minimums multiply), side by side so a kernel walks one pointer for both.
    pub ds: Vec<f32>,
}

impl QuantizedInput {
    pub fn new(x: &[f32]) -> Self {
        let blocks = x.len() / BLOCK;
        let mut input = QuantizedInput { q: vec![0; blocks * BLOCK], ds: vec![0.0; 2 * blocks] };
        for (b, chunk) in x.chunks_exact(BLOCK).enumerate() {
            let (d, sum) = quantize_block(chunk, &mut input.q[b * BLOCK..(b + 1) * BLOCK]);
            input.ds[2 * b] = d;
            input.ds[2 * b + 1] = sum as f32 * d;
        }
        input
    }
}

/// One block of 32 values to int16 quants; returns the scale and the sum of the quants.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn quantize_block(x: &[f32], q: &mut [i16]) -> (f32, i32) {
    use core::arch::wasm32::*;
    assert!(x.len() >= BLOCK && q.len() >= BLOCK);
    // SAFETY: x holds 32 f32 and q 32 i16 (asserted above).
    unsafe {
        let load = |k: usize| v128_load(x.as_ptr().add(4 * k) as *const v128);
        let mut m = f32x4_splat(0.0);
        for k in 0..8 {
            m = f32x4_max(m, f32x4_abs(load(k)));
        }
        let amax = f32x4_extract_lane::<0>(m).max(f32x4_extract_lane::<1>(m)).max(f32x4_extract_lane::<2>(m)).max(f32x4_extract_lane::<3>(m));
        let scale = amax / 32767.0;
        let inv = f32x4_splat(if scale == 0.0 { 0.0 } else { 1.0 / scale });
        let mut sum = i32x4_splat(0);
        for k in 0..4 {
            let a = i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(load(2 * k), inv)));
            let b = i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(load(2 * k + 1), inv)));
            sum = i32x4_add(sum, i32x4_add(a, b));
            v128_store(q.as_mut_ptr().add(8 * k) as *mut v128, i16x8_narrow_i32x4(a, b));
        }
        let sum = i32x4_extract_lane::<0>(sum) + i32x4_extract_lane::<1>(sum) + i32x4_extract_lane::<2>(sum) + i32x4_extract_lane::<3>(sum);
        (scale, sum)
    }
}

/// One block of 32 values to int16 quants; returns the scale and the sum of the quants.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn quantize_block(x: &[f32], q: &mut [i16]) -> (f32, i32) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = amax / 32767.0;
    let inv = if scale == 0.0 { 0.0 } else { 1.0 / scale };
    let mut sum = 0;
    for (q, v) in q.iter_mut().zip(x) {
        *q = (v * inv).round_ties_even() as i16;
        sum += *q as i32;
    }
    (scale, sum)
}

/// x as int16 quants and f32 block scales. The kernels widen weights to int16 anyway, so the
/// activations keep 16 bits rather than llama.cpp's 8: the same instructions, and perplexity
/// within 0.01% of f32 instead of 1%. (Bounds: |w| <= 127 times |x| <= 32767, eight products
/// per i32 lane per block, stays below 2^31.)
#[cfg(test)]
pub(crate) fn quantize(x: &[f32]) -> (Vec<i16>, Vec<f32>) {
    let input = QuantizedInput::new(x);
    (input.q, input.ds.iter().step_by(2).copied().collect())
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod kernel {
    use core::arch::wasm32::*;

    use super::BLOCK;
    use crate::text::simd::{dot, finish, fold, lanes, load4, pinned};

    #[inline(always)]
    unsafe fn block_dot(w: *const i8, x: *const i16) -> v128 {
        let w0 = v128_load(w as *const v128);
        let w1 = v128_load(w.add(16) as *const v128);
        let s = i32x4_dot_i16x8(i16x8_extend_low_i8x16(w0), v128_load(x as *const v128));
        let s = i32x4_add(s, i32x4_dot_i16x8(i16x8_extend_high_i8x16(w0), v128_load(x.add(8) as *const v128)));
        let s = i32x4_add(s, i32x4_dot_i16x8(i16x8_extend_low_i8x16(w1), v128_load(x.add(16) as *const v128)));
        i32x4_add(s, i32x4_dot_i16x8(i16x8_extend_high_i8x16(w1), v128_load(x.add(24) as *const v128)))
    }

    #[inline(always)]
    fn sum(v: v128) -> f32 {
        f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v)
    }

    pub fn dot1(w: &[i8], ws: &[f32], x: &[i16], xs: &[f32]) -> f32 {
        assert!(w.len() >= ws.len() * BLOCK && x.len() >= ws.len() * BLOCK && xs.len() >= 2 * ws.len());
        let mut acc = f32x4_splat(0.0);
        for b in 0..ws.len() {
            // SAFETY: w and x hold ws.len() blocks of 32 values (checked by the callers' slicing).
            let s = unsafe { block_dot(w.as_ptr().add(b * BLOCK), x.as_ptr().add(b * BLOCK)) };
            acc = f32x4_add(acc, f32x4_mul(f32x4_convert_i32x4(s), f32x4_splat(ws[b] * xs[2 * b])));
        }
        sum(acc)
    }

    /// sum(w * qx) of one block of int8 weights (widened as they are loaded) against the
    /// block's four input vectors, as four i32 lanes.
    #[inline(always)]
    unsafe fn row_dot(w: *const i8, x: &[v128; 4]) -> v128 {
        dot([0, 8, 16, 24].map(|k| i16x8_load_extend_i8x8(w.add(k))), x)
    }

    /// One block of a group of four rows (quants at `w`, scales at `ws`) against one input
    /// block: the four rows' products, scaled.
    #[inline(always)]
    unsafe fn group_block(w: *const i8, ws: *const f32, x: *const i16, xd: *const f32, fence: *mut v128) -> v128 {
        let x = load4(x);
        // A store after each row keeps Cranelift from issuing every load first.
        let row = |r: usize| pinned(row_dot(w.add(r * BLOCK), &x), fence);
        let sums = finish(fold(row(0), row(1)), fold(row(2), row(3)));
        f32x4_mul(f32x4_convert_i32x4(sums), f32x4_mul(v128_load(ws as *const v128), v128_load32_splat(xd as *const u32)))
    }

    /// A group of four rows (`w`: `[block][row][32]`, `ws`: `[block][row]`) times one input.
    #[inline(never)]
    pub fn dot4(w: &[i8], ws: &[f32], x: &[i16], xds: &[f32]) -> [f32; 4] {
        let bpr = ws.len() / 4;
        assert!(w.len() >= 4 * bpr * BLOCK && x.len() >= bpr * BLOCK && xds.len() >= 2 * bpr);
        let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let (mut w, mut ws, mut x, mut xds) = (w.as_ptr(), ws.as_ptr(), x.as_ptr(), xds.as_ptr());
        let mut slot = i32x4_splat(0);
        let fence: *mut v128 = &mut slot;
        let mut left = bpr;
        // Two blocks per iteration (as in the Q4_1 kernel).
        // SAFETY: each step reads the next one or two blocks of each stream, of which `left`
        // remain (asserted above).
        unsafe {
            while left >= 2 {
                acc0 = f32x4_add(acc0, group_block(w, ws, x, xds, fence));
                acc1 = f32x4_add(acc1, group_block(w.add(4 * BLOCK), ws.add(4), x.add(BLOCK), xds.add(2), fence));
                (w, ws, x, xds, left) = (w.add(8 * BLOCK), ws.add(8), x.add(2 * BLOCK), xds.add(4), left - 2);
            }
            if left == 1 {
                acc0 = f32x4_add(acc0, group_block(w, ws, x, xds, fence));
            }
        }
        lanes(f32x4_add(acc0, acc1))
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod kernel {
    use super::BLOCK;

    pub fn dot1(w: &[i8], ws: &[f32], x: &[i16], xs: &[f32]) -> f32 {
        let mut acc = 0f32;
        for (b, (wb, xb)) in w.chunks_exact(BLOCK).zip(x.chunks_exact(BLOCK)).enumerate() {
            let s: i32 = wb.iter().zip(xb).map(|(&a, &c)| a as i32 * c as i32).sum();
            acc += s as f32 * ws[b] * xs[2 * b];
        }
        acc
    }

    pub fn dot4(w: &[i8], ws: &[f32], x: &[i16], xs: &[f32]) -> [f32; 4] {
        let mut out = [0f32; 4];
        for (b, (wb, d)) in w.chunks_exact(4 * BLOCK).zip(ws.chunks_exact(4)).enumerate() {
            let (xb, xd) = (&x[b * BLOCK..(b + 1) * BLOCK], xs[2 * b]);
            for (r, o) in out.iter_mut().enumerate() {
                let s: i32 = wb[r * BLOCK..(r + 1) * BLOCK].iter().zip(xb).map(|(&a, &c)| a as i32 * c as i32).sum();
                *o += s as f32 * (d[r] * xd);
            }
        }
        out
    }
}

use kernel::{dot1, dot4};

/// What the own kernels' tests share: inputs, and the product a kernel must reproduce (up to
/// summation order): the dequantized weights times the rounded activations.
#[cfg(test)]
pub(crate) mod check {
    use super::*;
    use crate::text::blocks::OwnMatrix;
    use candle_core::{Device, Module, Tensor};

    /// Test weights (rows x cols) quantized to `dtype`, and `inputs` input vectors of cols.
    pub fn inputs(dtype: GgmlDType, rows: usize, cols: usize, inputs: usize) -> (QTensor, Vec<f32>) {
        let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 37.0 * (1.0 + (i / 64 % 3) as f32)).collect();
        let x: Vec<f32> = (0..inputs * cols).map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0).collect();
        (QTensor::quantize(&Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap(), dtype).unwrap(), x)
    }

    /// The matrix `m` made from `q` against the exact product with `x` (several inputs at once,
    /// the prompt path; one at a time, the decode path; written side by side with another
    /// matrix's outputs) and its row 3 against the dequantized row.
    pub fn assert_kernel(m: &dyn OwnMatrix, q: &QTensor, x: &[f32]) {
        let (rows, cols) = (m.rows(), m.cols());
        let n = x.len() / cols;
        let (xq, xd) = quantize(x);
        let x_rounded: Vec<f32> = xq.iter().enumerate().map(|(i, &v)| v as f32 * xd[i / BLOCK]).collect();
        let deq = q.dequantize(&Device::Cpu).unwrap();
        let expected: Vec<f32> = candle_core::quantized::QMatMul::Tensor(deq.clone())
            .forward(&Tensor::from_vec(x_rounded, (n, cols), &Device::Cpu).unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * b.abs().max(1.0);
        let mut all = vec![0f32; n * rows];
        m.matmul_quantized(&QuantizedInput::new(x), &mut all, rows);
        for (i, (a, b)) in all.iter().zip(&expected).enumerate() {
            assert!(close(*a, *b), "{}: output {i} of {n} inputs at once: {a} vs {b}", m.type_name());
        }
        for (i, input) in x.chunks_exact(cols).enumerate() {
            let mut one = vec![0f32; rows];
            m.matmul_quantized(&QuantizedInput::new(input), &mut one, rows);
            for (r, (a, b)) in one.iter().zip(&expected[i * rows..]).enumerate() {
                assert!(close(*a, *b), "{}: input {i} alone, row {r}: {a} vs {b}", m.type_name());
            }
        }
        let mut wide = vec![0f32; n * (rows + 5)];
        m.matmul_quantized(&QuantizedInput::new(x), &mut wide[5..], rows + 5);
        for i in 0..n {
            assert_eq!(wide[i * (rows + 5) + 5..(i + 1) * (rows + 5)], all[i * rows..(i + 1) * rows]);
        }
        let deq: Vec<f32> = deq.flatten_all().unwrap().to_vec1().unwrap();
        let mut row3 = vec![0f32; cols];
        m.row(3, &mut row3);
        assert!(row3.iter().zip(&deq[3 * cols..4 * cols]).all(|(a, b)| a == b), "{}: row 3 differs from the dequantized row", m.type_name());
    }
}

#[cfg(test)]
mod tests {
    use super::check::*;
    use super::*;
    use crate::text::blocks::{dtype_kind, own_matrix};

    #[test]
    fn matmul_matches_the_dequantized_product() {
        let (q, x) = inputs(GgmlDType::Q8_0, 7, 96, 3);
        let m = own_matrix(dtype_kind(GgmlDType::Q8_0).unwrap(), &q.data().unwrap(), 7, 96).unwrap();
        assert_kernel(m.as_ref(), &q, &x);
        // The same matrix made in place from a file's tail.
        let direct = Q8Matrix::from_qtensor(&q).unwrap();
        let mut file = vec![7u8; 100];
        file.extend_from_slice(&q.data().unwrap());
        let in_place = Q8Matrix::from_file_tail(file, 100, 7, 96).unwrap();
        assert_eq!((in_place.qs.as_slice(), in_place.scales.as_slice()), (direct.qs.as_slice(), direct.scales.as_slice()));
    }
}
