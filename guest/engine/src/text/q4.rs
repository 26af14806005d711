//! Q4_1 weights (the block type SmolLM2 ships in) multiplied as they are, the way llama.cpp
//! does it (integer dot products per block, activations quantized once per call), nibbles
//! widened in registers.
//!
//! Converting Q4_1 to Q8_0 at load was simpler, but it held 1.7x the bytes and every decoded
//! token reads every weight: keeping four bits per weight halves what a token has to stream
//! through the cache and trims the process's memory by the same amount.
//!
//! A Q4_1 block is 32 weights `d * q + m` with `q` in 0..16: the 16 bytes hold element `j` in
//! the low nibble of byte `j` and element `j + 16` in the high nibble. Here `d` and `m` are
//! kept as f32 (converted once, not per block per row per token), and with activations
//! `x = dx * qx` a block's dot product is `d * dx * sum(q * qx) + m * dx * sum(qx)`.

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

use crate::error::{EngineError, Result};
use crate::text::q8::QuantizedInput;

const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 20;
const PACKED: usize = BLOCK / 2;

pub struct Q4Matrix {
    pub rows: usize,
    pub cols: usize,
    /// Packed nibbles, row after row, in the block order of the file; rows padded with zeros
    /// to a multiple of four so every pass handles four rows.
    qs: Vec<u8>,
    /// Block scales and minimums interleaved by groups of four rows: `[group][block][row % 4]`,
    /// so a kernel loads the four rows' values of a block as one vector.
    scales: Vec<f32>,
    mins: Vec<f32>,
}

impl Q4Matrix {
    /// From a 2-D Q4_1 tensor (rows x cols, rows being outputs).
    pub fn from_qtensor(t: &QTensor) -> Result<Self> {
        if t.dtype() != GgmlDType::Q4_1 {
            return Err(EngineError::Internal(format!("Q4Matrix from a {:?} tensor", t.dtype())));
        }
        let (rows, cols) = t.shape().dims2()?;
        Self::from_blocks(&t.data()?, rows, cols)
    }

    /// From Q4_1 blocks as a GGUF file holds them.
    pub fn from_blocks(data: &[u8], rows: usize, cols: usize) -> Result<Self> {
        if !cols.is_multiple_of(BLOCK) {
            return Err(EngineError::Internal(format!("Q4_1 rows of {cols} values")));
        }
        let bpr = cols / BLOCK;
        if data.len() != rows * bpr * BLOCK_BYTES {
            return Err(EngineError::Internal(format!("Q4_1 data of {} bytes for {} blocks", data.len(), rows * bpr)));
        }
        let padded = rows.next_multiple_of(4);
        let mut qs = zeroed(padded * cols / 2, rows, cols)?;
        let mut scales = zeroed(padded * bpr, rows, cols)?;
        let mut mins = zeroed(padded * bpr, rows, cols)?;
        for (i, block) in data.chunks_exact(BLOCK_BYTES).enumerate() {
            let (r, b) = (i / bpr, i % bpr);
            let at = Self::interleaved(bpr, r, b);
            scales[at] = f16::from_le_bytes([block[0], block[1]]).to_f32();
            mins[at] = f16::from_le_bytes([block[2], block[3]]).to_f32();
            qs[i * PACKED..(i + 1) * PACKED].copy_from_slice(&block[4..]);
        }
        Ok(Q4Matrix { rows, cols, qs, scales, mins })
    }

    /// Where block `b` of row `r` keeps its scale and minimum.
    fn interleaved(bpr: usize, r: usize, b: usize) -> usize {
        ((r / 4) * bpr + b) * 4 + r % 4
    }

    pub fn bytes(&self) -> u64 {
        (self.qs.len() + (self.scales.len() + self.mins.len()) * 4) as u64
    }

    /// Row `i` dequantized.
    pub fn row(&self, i: usize, out: &mut [f32]) {
        let bpr = self.cols / BLOCK;
        let qs = &self.qs[i * self.cols / 2..(i + 1) * self.cols / 2];
        for (b, packed) in qs.chunks_exact(PACKED).enumerate() {
            let at = Self::interleaved(bpr, i, b);
            let (d, m) = (self.scales[at], self.mins[at]);
            let out = &mut out[b * BLOCK..(b + 1) * BLOCK];
            for (j, &byte) in packed.iter().enumerate() {
                out[j] = (byte & 0x0F) as f32 * d + m;
                out[j + PACKED] = (byte >> 4) as f32 * d + m;
            }
        }
    }

    /// `out[i][r] = dot(row r, x[i])` for `x` holding whole input vectors of `cols` values;
    /// each group of four weight rows is read once for every input vector.
    pub fn matmul(&self, x: &[f32], out: &mut [f32]) {
        self.matmul_quantized(&QuantizedInput::new(x), out, self.rows)
    }

    /// As [`Q4Matrix::matmul`], for inputs already quantized, with input i's outputs at
    /// `out[i * stride..]` (so matrices side by side can fill one output).
    pub fn matmul_quantized(&self, x: &QuantizedInput, out: &mut [f32], stride: usize) {
        let (cols, bpr) = (self.cols, self.cols / BLOCK);
        let n = x.q.len() / cols;
        let (xq, xd, xsum) = (&x.q, &x.d, &x.sums);
        let packed_cols = cols / 2;
        // Several inputs (a prompt): each group of rows is unpacked to int16 once and then
        // serves every input with no per-input nibble work.
        let mut unpacked = if n > 1 { vec![0i16; 4 * cols] } else { Vec::new() };
        for r in (0..self.rows).step_by(4) {
            let w = &self.qs[r * packed_cols..(r + 4) * packed_cols];
            let group = (r / 4) * bpr * 4..(r / 4 + 1) * bpr * 4;
            let (d, m) = (&self.scales[group.clone()], &self.mins[group]);
            if n > 1 {
                unpack(w, &mut unpacked);
            }
            let live = (self.rows - r).min(4);
            let input = |i: usize| (&xq[i * cols..(i + 1) * cols], &xd[i * bpr..(i + 1) * bpr], &xsum[i * bpr..(i + 1) * bpr]);
            let mut i = 0;
            // Two inputs per pass over the unpacked rows, then the odd one out.
            while n > 1 && i + 2 <= n {
                let dots = dot4_unpacked2(&unpacked, cols, d, m, [input(i), input(i + 1)]);
                for (k, dots) in dots.iter().enumerate() {
                    out[(i + k) * stride + r..(i + k) * stride + r + live].copy_from_slice(&dots[..live]);
                }
                i += 2;
            }
            if i < n {
                let (x, xd, xs) = input(i);
                let dots = if n > 1 { dot4_unpacked(&unpacked, cols, d, m, x, xd, xs) } else { dot4(w, cols, d, m, x, xd, xs) };
                out[i * stride + r..i * stride + r + live].copy_from_slice(&dots[..live]);
            }
        }
    }
}

/// A zeroed buffer, or an error rather than a trap when memory runs out (weights are the big
/// allocations of a load, made without a probe beforehand).
fn zeroed<T: Clone + Default>(len: usize, rows: usize, cols: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| EngineError::ResourceExhausted(format!("no memory left for a {rows}x{cols} weight matrix")))?;
    v.resize(len, T::default());
    Ok(v)
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod kernel {
    use core::arch::wasm32::*;

    use super::{BLOCK, PACKED};

    /// Packed blocks to one int16 per weight, in element order.
    pub fn unpack(packed: &[u8], out: &mut [i16]) {
        assert!(out.len() >= packed.len() * 2);
        for b in 0..packed.len() / PACKED {
            // SAFETY: block b is within packed and its 32 outputs within out (asserted above).
            unsafe {
                let bytes = v128_load(packed.as_ptr().add(b * PACKED) as *const v128);
                let (lo, hi) = (v128_and(bytes, u8x16_splat(0x0F)), u8x16_shr(bytes, 4));
                let o = out.as_mut_ptr().add(b * BLOCK);
                v128_store(o as *mut v128, u16x8_extend_low_u8x16(lo));
                v128_store(o.add(8) as *mut v128, u16x8_extend_high_u8x16(lo));
                v128_store(o.add(16) as *mut v128, u16x8_extend_low_u8x16(hi));
                v128_store(o.add(24) as *mut v128, u16x8_extend_high_u8x16(hi));
            }
        }
    }

    /// sum(q * qx) of one packed block, as four i32 lanes.
    #[inline(always)]
    unsafe fn block_dot(w: *const u8, x: *const i16) -> v128 {
        let packed = v128_load(w as *const v128);
        let lo = v128_and(packed, u8x16_splat(0x0F));
        let hi = u8x16_shr(packed, 4);
        let s = i32x4_dot_i16x8(u16x8_extend_low_u8x16(lo), v128_load(x as *const v128));
        let s = i32x4_add(s, i32x4_dot_i16x8(u16x8_extend_high_u8x16(lo), v128_load(x.add(8) as *const v128)));
        let s = i32x4_add(s, i32x4_dot_i16x8(u16x8_extend_low_u8x16(hi), v128_load(x.add(16) as *const v128)));
        i32x4_add(s, i32x4_dot_i16x8(u16x8_extend_high_u8x16(hi), v128_load(x.add(24) as *const v128)))
    }

    /// sum(w * qx) of one block of int16 weights, as four i32 lanes.
    #[inline(always)]
    unsafe fn block_dot_unpacked(w: *const i16, x: *const i16) -> v128 {
        let s = i32x4_dot_i16x8(v128_load(w as *const v128), v128_load(x as *const v128));
        let s = i32x4_add(s, i32x4_dot_i16x8(v128_load(w.add(8) as *const v128), v128_load(x.add(8) as *const v128)));
        let s = i32x4_add(s, i32x4_dot_i16x8(v128_load(w.add(16) as *const v128), v128_load(x.add(16) as *const v128)));
        i32x4_add(s, i32x4_dot_i16x8(v128_load(w.add(24) as *const v128), v128_load(x.add(24) as *const v128)))
    }

    /// Four rows' lane sums as one vector: [sum(a), sum(b), sum(c), sum(d)].
    #[inline(always)]
    fn transpose_sum(a: v128, b: v128, c: v128, d: v128) -> v128 {
        let ab = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b));
        let cd = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(c, d), i32x4_shuffle::<2, 6, 3, 7>(c, d));
        i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
    }

    /// One block of four rows into the accumulators: the integer sums times the rows' scales
    /// times the input's scale, and the rows' minimums times the input's block sum.
    #[inline(always)]
    unsafe fn accumulate(acc: &mut v128, sums: v128, d: *const f32, m: *const f32, xd: f32, xs: f32) {
        let scaled = f32x4_mul(f32x4_convert_i32x4(sums), f32x4_mul(v128_load(d as *const v128), f32x4_splat(xd)));
        *acc = f32x4_add(*acc, f32x4_add(scaled, f32x4_mul(v128_load(m as *const v128), f32x4_splat(xs))));
    }

    fn lanes(v: v128) -> [f32; 4] {
        [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
    }

    /// Four packed rows (`w` is 4 x cols / 2 bytes) times one quantized input.
    pub fn dot4(w: &[u8], cols: usize, d: &[f32], m: &[f32], x: &[i16], xd: &[f32], xs: &[f32]) -> [f32; 4] {
        let (bpr, packed_cols) = (cols / BLOCK, cols / 2);
        assert!(w.len() >= 4 * packed_cols && d.len() >= 4 * bpr && m.len() >= 4 * bpr && x.len() >= cols && xd.len() >= bpr && xs.len() >= bpr);
        let mut acc = f32x4_splat(0.0);
        let w0 = w.as_ptr();
        // SAFETY: the four rows lie within w (asserted above).
        let (w1, w2, w3) = unsafe { (w0.add(packed_cols), w0.add(2 * packed_cols), w0.add(3 * packed_cols)) };
        for b in 0..bpr {
            let (o, p) = (b * BLOCK, b * PACKED);
            // SAFETY: bounds asserted above; every row has bpr blocks.
            unsafe {
                let xp = x.as_ptr().add(o);
                let sums = transpose_sum(block_dot(w0.add(p), xp), block_dot(w1.add(p), xp), block_dot(w2.add(p), xp), block_dot(w3.add(p), xp));
                accumulate(&mut acc, sums, d.as_ptr().add(4 * b), m.as_ptr().add(4 * b), *xd.get_unchecked(b), *xs.get_unchecked(b));
            }
        }
        lanes(acc)
    }

    /// As [`dot4`] over four rows already unpacked to int16 (`w` is 4 x cols).
    pub fn dot4_unpacked(w: &[i16], cols: usize, d: &[f32], m: &[f32], x: &[i16], xd: &[f32], xs: &[f32]) -> [f32; 4] {
        let bpr = cols / BLOCK;
        assert!(w.len() >= 4 * cols && d.len() >= 4 * bpr && m.len() >= 4 * bpr && x.len() >= cols && xd.len() >= bpr && xs.len() >= bpr);
        let mut acc = f32x4_splat(0.0);
        let w0 = w.as_ptr();
        // SAFETY: the four rows lie within w (asserted above).
        let (w1, w2, w3) = unsafe { (w0.add(cols), w0.add(2 * cols), w0.add(3 * cols)) };
        for b in 0..bpr {
            let o = b * BLOCK;
            // SAFETY: bounds asserted above; every row has bpr blocks.
            unsafe {
                let xp = x.as_ptr().add(o);
                let sums = transpose_sum(
                    block_dot_unpacked(w0.add(o), xp),
                    block_dot_unpacked(w1.add(o), xp),
                    block_dot_unpacked(w2.add(o), xp),
                    block_dot_unpacked(w3.add(o), xp),
                );
                accumulate(&mut acc, sums, d.as_ptr().add(4 * b), m.as_ptr().add(4 * b), *xd.get_unchecked(b), *xs.get_unchecked(b));
            }
        }
        lanes(acc)
    }

    /// [`dot4_unpacked`] for two inputs at once: each weight vector is loaded once for both.
    pub fn dot4_unpacked2(w: &[i16], cols: usize, d: &[f32], m: &[f32], x: [(&[i16], &[f32], &[f32]); 2]) -> [[f32; 4]; 2] {
        let bpr = cols / BLOCK;
        let [(x0, xd0, xs0), (x1, xd1, xs1)] = x;
        assert!(w.len() >= 4 * cols && d.len() >= 4 * bpr && m.len() >= 4 * bpr);
        assert!(x0.len() >= cols && xd0.len() >= bpr && xs0.len() >= bpr && x1.len() >= cols && xd1.len() >= bpr && xs1.len() >= bpr);
        let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let w0 = w.as_ptr();
        // SAFETY: the four rows lie within w (asserted above).
        let (w1, w2, w3) = unsafe { (w0.add(cols), w0.add(2 * cols), w0.add(3 * cols)) };
        for b in 0..bpr {
            let o = b * BLOCK;
            // SAFETY: bounds asserted above; every row has bpr blocks.
            unsafe {
                let (p0, p1) = (x0.as_ptr().add(o), x1.as_ptr().add(o));
                let (r0, r1, r2, r3) = (w0.add(o), w1.add(o), w2.add(o), w3.add(o));
                let sums0 = transpose_sum(block_dot_unpacked(r0, p0), block_dot_unpacked(r1, p0), block_dot_unpacked(r2, p0), block_dot_unpacked(r3, p0));
                let sums1 = transpose_sum(block_dot_unpacked(r0, p1), block_dot_unpacked(r1, p1), block_dot_unpacked(r2, p1), block_dot_unpacked(r3, p1));
                let (db, mb) = (d.as_ptr().add(4 * b), m.as_ptr().add(4 * b));
                accumulate(&mut acc0, sums0, db, mb, *xd0.get_unchecked(b), *xs0.get_unchecked(b));
                accumulate(&mut acc1, sums1, db, mb, *xd1.get_unchecked(b), *xs1.get_unchecked(b));
            }
        }
        [lanes(acc0), lanes(acc1)]
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod kernel {
    use super::{BLOCK, PACKED};

    pub fn unpack(packed: &[u8], out: &mut [i16]) {
        for (block, out) in packed.chunks_exact(PACKED).zip(out.chunks_exact_mut(BLOCK)) {
            for (j, &byte) in block.iter().enumerate() {
                out[j] = (byte & 0x0F) as i16;
                out[j + PACKED] = (byte >> 4) as i16;
            }
        }
    }

    pub fn dot4(w: &[u8], cols: usize, d: &[f32], m: &[f32], x: &[i16], xd: &[f32], xs: &[f32]) -> [f32; 4] {
        let mut unpacked = vec![0i16; 4 * cols];
        unpack(w, &mut unpacked);
        dot4_unpacked(&unpacked, cols, d, m, x, xd, xs)
    }

    pub fn dot4_unpacked2(w: &[i16], cols: usize, d: &[f32], m: &[f32], x: [(&[i16], &[f32], &[f32]); 2]) -> [[f32; 4]; 2] {
        x.map(|(x, xd, xs)| dot4_unpacked(w, cols, d, m, x, xd, xs))
    }

    pub fn dot4_unpacked(w: &[i16], cols: usize, d: &[f32], m: &[f32], x: &[i16], xd: &[f32], xs: &[f32]) -> [f32; 4] {
        let mut out = [0f32; 4];
        for (r, o) in out.iter_mut().enumerate() {
            let row = &w[r * cols..(r + 1) * cols];
            for (b, (wb, xb)) in row.chunks_exact(BLOCK).zip(x.chunks_exact(BLOCK)).enumerate() {
                let s: i32 = wb.iter().zip(xb).map(|(&a, &c)| a as i32 * c as i32).sum();
                *o += s as f32 * d[4 * b + r] * xd[b] + m[4 * b + r] * xs[b];
            }
        }
        out
    }
}

use kernel::{dot4, dot4_unpacked, dot4_unpacked2, unpack};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::q8::check::*;

    #[test]
    fn matmul_matches_the_dequantized_product() {
        let (q, x) = inputs(GgmlDType::Q4_1);
        let m = Q4Matrix::from_qtensor(&q).unwrap();
        let mut out = vec![0f32; INPUTS * ROWS];
        m.matmul(&x, &mut out);
        // One input at a time takes the packed path (several take the unpacked one): the same.
        for (i, input) in x.chunks_exact(COLS).enumerate() {
            let mut one = vec![0f32; ROWS];
            m.matmul(input, &mut one);
            for (r, (a, b)) in one.iter().zip(&out[i * ROWS..(i + 1) * ROWS]).enumerate() {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "input {i} row {r}: {a} vs {b}");
            }
        }
        let mut row = vec![0f32; COLS];
        m.row(3, &mut row);
        assert_exact(&q, &x, &out, &row);
        // Written side by side with another matrix (stride wider than its rows): the same.
        let mut wide = [0f32; INPUTS * (ROWS + 5)];
        m.matmul_quantized(&QuantizedInput::new(&x), &mut wide[5..], ROWS + 5);
        for i in 0..INPUTS {
            assert_eq!(wide[i * (ROWS + 5) + 5..(i + 1) * (ROWS + 5)], out[i * ROWS..(i + 1) * ROWS]);
        }
    }
}
