//! The encoder's matrix products: weights quantized per output row to 10-bit integers (kept
//! widened to i16), activations quantized per token to up to 15 bits, products summed in i32.
//!
//! f32 products run at half the speed of `i32x4.dot_i16x8_s` in wasm SIMD128 (no FMA), and
//! candle's f32 matmul is mostly scalar there. The widths are chosen so a whole row's sum can
//! never overflow i32: integer sums are exact, so a token's output does not depend on how
//! tokens are batched, and native and wasm agree bit for bit on every product.

/// Largest weight quant: 10 bits keep the per-row rounding error near 0.1 % of a weight.
const WEIGHT_MAX: i32 = 511;
/// Rows are padded with zeros to a multiple of this (one iteration of the SIMD kernel).
const STEP: usize = 128;

pub struct QMatrix {
    /// Outputs.
    pub rows: usize,
    /// Inputs.
    pub cols: usize,
    /// `cols` rounded up to `STEP`; the padding holds zeros.
    stride: usize,
    /// rows x stride quants. Each group of four rows is interleaved by eight columns,
    /// `[group][column / 8][row][8]`, so a kernel walks one weight pointer with constant
    /// offsets (four row pointers did not fit the registers Wasmtime has left); the last
    /// `rows % 4` rows stay row after row.
    qs: Vec<i16>,
    /// Per-row scale.
    scales: Vec<f32>,
    bias: Vec<f32>,
    /// Largest activation quant for which `cols * WEIGHT_MAX * act_max` fits in i32.
    act_max: f32,
}

/// Activations quantized for one product; reused across calls to avoid reallocating.
#[derive(Default)]
pub struct Quantized {
    qs: Vec<i16>,
    scales: Vec<f32>,
}

impl QMatrix {
    /// From row-major f32 weights (`rows` outputs of `cols` inputs) and a bias per row. `None`
    /// when a row is too long for exact 32-bit sums at a useful activation precision.
    pub fn new(w: &[f32], rows: usize, cols: usize, bias: Vec<f32>) -> Option<Self> {
        assert!(w.len() == rows * cols && bias.len() == rows, "QMatrix::new: callers check shapes");
        let act_max = (i32::MAX as u64 / (cols.max(1) as u64 * WEIGHT_MAX as u64)).min(i16::MAX as u64);
        if act_max < 127 {
            return None;
        }
        let stride = cols.div_ceil(STEP) * STEP;
        let mut qs = vec![0i16; rows * stride];
        let mut scales = Vec::with_capacity(rows);
        for (row, q) in w.chunks_exact(cols.max(1)).zip(qs.chunks_exact_mut(stride)) {
            scales.push(quantize(row, WEIGHT_MAX as f32, &mut q[..cols]));
        }
        let mut group = vec![0i16; 4 * stride];
        for q in qs.chunks_exact_mut(4 * stride) {
            group.copy_from_slice(q);
            for (c, dst) in q.chunks_exact_mut(8).enumerate() {
                let (block, row) = (c / 4, c % 4);
                dst.copy_from_slice(&group[row * stride + block * 8..][..8]);
            }
        }
        Some(QMatrix { rows, cols, stride, qs, scales, bias, act_max: act_max as f32 })
    }

    /// Quant of row `r`, column `k`, in the interleaved layout.
    #[cfg_attr(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"), allow(dead_code))]
    fn quant(&self, r: usize, k: usize) -> i16 {
        if r < self.rows / 4 * 4 {
            self.qs[(r / 4) * 4 * self.stride + ((k / 8) * 4 + r % 4) * 8 + k % 8]
        } else {
            self.qs[r * self.stride + k]
        }
    }

    pub fn bytes(&self) -> u64 {
        (self.qs.len() * 2 + (self.scales.len() + self.bias.len()) * 4) as u64
    }

    /// `out[t * rows + r] = bias[r] + dot(row r, x[t])` for every token `t` of `x`, whose
    /// tokens are `cols` values each.
    pub fn forward(&self, x: &[f32], out: &mut [f32], buf: &mut Quantized) {
        let n = x.len() / self.cols;
        assert!(x.len() == n * self.cols && out.len() == n * self.rows, "QMatrix::forward: callers size the buffers");
        buf.qs.clear();
        buf.qs.resize(n * self.stride, 0);
        buf.scales.clear();
        for (token, q) in x.chunks_exact(self.cols).zip(buf.qs.chunks_exact_mut(self.stride)) {
            buf.scales.push(quantize(token, self.act_max, &mut q[..self.cols]));
        }
        kernel::product(self, &buf.qs, &buf.scales, out);
    }
}

/// `v` as integers in [-max, max] into `q`; returns the scale that maps them back.
fn quantize(v: &[f32], max: f32, q: &mut [i16]) -> f32 {
    let amax = crate::embed::ops::max_of(v, 0.0, f32::abs);
    let scale = amax / max;
    let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
    round_into(v, inv, q);
    scale
}

/// `q[i] = round(v[i] * inv)`, ties to even; |v[i] * inv| <= max < 2^15.
fn round_into(v: &[f32], inv: f32, q: &mut [i16]) {
    let n = v.len().min(q.len());
    let done = round_simd(&v[..n], inv, &mut q[..n]);
    // Adding and subtracting 1.5 * 2^23 rounds to nearest-even without a libm call, which
    // keeps this loop vectorised natively too; |x * inv| <= max < 2^22.
    const ROUND: f32 = 12_582_912.0;
    for (q, &x) in q[done..n].iter_mut().zip(&v[done..n]) {
        *q = ((x * inv + ROUND) - ROUND) as i16;
    }
}

/// The leading multiple of eight values of [`round_into`] with SIMD128 (LLVM leaves the
/// saturating float-to-int cast scalar in wasm: a compare and two selects per value, 8% of an
/// embedding); returns how many it did. `v` and `q` have the same length.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
fn round_simd(v: &[f32], inv: f32, q: &mut [i16]) -> usize {
    use core::arch::wasm32::*;
    let inv = f32x4_splat(inv);
    let mut done = 0;
    while done + 8 <= v.len() {
        // SAFETY: values done..done + 8 are within v and q (same length).
        unsafe {
            let at = |k: usize| i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(v128_load(v.as_ptr().add(done + k) as *const v128), inv)));
            v128_store(q.as_mut_ptr().add(done) as *mut v128, i16x8_narrow_i32x4(at(0), at(4)));
        }
        done += 8;
    }
    done
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn round_simd(_: &[f32], _: f32, _: &mut [i16]) -> usize {
    0
}

/// The few 128-bit integer operations the kernel needs, for wasm SIMD128 and x86-64 SSE2
/// (always present there), so one kernel serves the component and native builds.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::*;

    pub type V = v128;

    #[inline(always)]
    pub fn zero() -> V {
        i32x4_splat(0)
    }

    pub use crate::text::simd::pinned;

    /// Volatile, so LLVM keeps each load after the `pinned` store before it.
    #[inline(always)]
    pub unsafe fn load(p: *const i16) -> V {
        core::ptr::read_volatile(p as *const v128)
    }

    /// `acc + dot(w, x)`, pairwise: eight i16 products into four i32 lanes.
    #[inline(always)]
    pub fn madd(acc: V, w: V, x: V) -> V {
        i32x4_add(acc, i32x4_dot_i16x8(w, x))
    }

    /// [sum(a0), sum(a1), sum(a2), sum(a3)].
    #[inline(always)]
    pub fn reduce4(a0: V, a1: V, a2: V, a3: V) -> V {
        let a01 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a0, a1), i32x4_shuffle::<2, 6, 3, 7>(a0, a1));
        let a23 = i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a2, a3), i32x4_shuffle::<2, 6, 3, 7>(a2, a3));
        i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(a01, a23), i32x4_shuffle::<2, 3, 6, 7>(a01, a23))
    }

    #[inline(always)]
    pub fn sum(a: V) -> i32 {
        i32x4_extract_lane::<0>(a) + i32x4_extract_lane::<1>(a) + i32x4_extract_lane::<2>(a) + i32x4_extract_lane::<3>(a)
    }

    /// `out[i] = sums[i] * scales[i] * xs + bias[i]` for four lanes.
    #[inline(always)]
    pub unsafe fn store4(sums: V, scales: *const f32, xs: f32, bias: *const f32, out: *mut f32) {
        let scale = f32x4_mul(v128_load(scales as *const v128), f32x4_splat(xs));
        let v = f32x4_add(f32x4_mul(f32x4_convert_i32x4(sums), scale), v128_load(bias as *const v128));
        v128_store(out as *mut v128, v);
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use core::arch::x86_64::*;

    pub type V = __m128i;

    #[inline(always)]
    pub fn zero() -> V {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { _mm_setzero_si128() }
    }

    #[inline(always)]
    pub unsafe fn load(p: *const i16) -> V {
        _mm_loadu_si128(p as *const __m128i)
    }

    /// LLVM's native code needs no fence (see the wasm `pinned`).
    #[inline(always)]
    pub unsafe fn pinned(v: V, _fence: *mut V) -> V {
        v
    }

    #[inline(always)]
    pub fn madd(acc: V, w: V, x: V) -> V {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe { _mm_add_epi32(acc, _mm_madd_epi16(w, x)) }
    }

    #[inline(always)]
    pub fn reduce4(a0: V, a1: V, a2: V, a3: V) -> V {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        unsafe {
            let a01 = _mm_add_epi32(_mm_unpacklo_epi32(a0, a1), _mm_unpackhi_epi32(a0, a1));
            let a23 = _mm_add_epi32(_mm_unpacklo_epi32(a2, a3), _mm_unpackhi_epi32(a2, a3));
            _mm_add_epi32(_mm_unpacklo_epi64(a01, a23), _mm_unpackhi_epi64(a01, a23))
        }
    }

    #[inline(always)]
    pub fn sum(a: V) -> i32 {
        let mut lanes = [0i32; 4];
        // SAFETY: lanes holds 16 bytes.
        unsafe { _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, a) };
        lanes.iter().sum()
    }

    #[inline(always)]
    pub unsafe fn store4(sums: V, scales: *const f32, xs: f32, bias: *const f32, out: *mut f32) {
        let scale = _mm_mul_ps(_mm_loadu_ps(scales), _mm_set1_ps(xs));
        _mm_storeu_ps(out, _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(sums), scale), _mm_loadu_ps(bias)));
    }
}

#[cfg(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64"))]
mod kernel {
    use super::simd::{load, madd, pinned, reduce4, store4, sum, zero, V};
    use super::{QMatrix, STEP};

    /// Runs `$body` with `$h` set to each listed column offset of one loop iteration, written
    /// out: LLVM turns a loop over a constant array into a loop that reads the array, and each
    /// wasm loop costs Wasmtime a loop header.
    macro_rules! unrolled {
        ($h:ident in [$($v:literal)*] => $body:block) => {
            $({
                let $h: usize = $v;
                $body
            })*
        };
    }
    /// 128 columns as 16-column pieces.
    macro_rules! each_16_columns {
        ($h:ident => $body:block) => { unrolled!($h in [0 16 32 48 64 80 96 112] => $body) };
    }
    const _: () = assert!(STEP == 128, "each_16_columns! lists the offsets of 128 columns");

    // Cranelift issues a loop body's loads in program order and computes pure values just
    // before their first use by a store or branch, so without help every load of an iteration
    // comes first and the vectors they fill are spilled. Each accumulator update is therefore
    // `pinned` (a store): its loads, products and sum happen together. A piece of 16 columns
    // (four token vectors, two weight vectors, eight accumulators) is the most that fits the
    // 16 vector registers; 8-column pieces, with twice the stores, were 9% slower. 128 columns
    // per iteration amortise Wasmtime's loop header, whose interruption check spills the
    // accumulators: 32 columns per iteration without fences was 20% slower.

    /// Sums of a group of four weight rows (`w`, interleaved) against two tokens. Each weight
    /// vector is loaded once and used for both tokens.
    #[inline(always)]
    unsafe fn rows4_tokens2(w: *const i16, stride: usize, x0: *const i16, x1: *const i16) -> (V, V) {
        let mut a = [zero(); 8];
        let mut slot = zero();
        let f: *mut V = &mut slot;
        let mut k = 0;
        while k < stride {
            let wk = w.add(4 * k);
            each_16_columns!(h => {
                let (p0, p1) = (load(x0.add(k + h)), load(x0.add(k + h + 8)));
                let (q0, q1) = (load(x1.add(k + h)), load(x1.add(k + h + 8)));
                for r in 0..4 {
                    let (v0, v1) = (load(wk.add(4 * h + 8 * r)), load(wk.add(4 * h + 32 + 8 * r)));
                    a[2 * r] = pinned(madd(madd(a[2 * r], v0, p0), v1, p1), f);
                    a[2 * r + 1] = pinned(madd(madd(a[2 * r + 1], v0, q0), v1, q1), f);
                }
            });
            k += STEP;
        }
        (reduce4(a[0], a[2], a[4], a[6]), reduce4(a[1], a[3], a[5], a[7]))
    }

    #[inline(always)]
    unsafe fn rows4_tokens1(w: *const i16, stride: usize, x: *const i16) -> V {
        let mut a = [zero(); 4];
        let mut slot = zero();
        let f: *mut V = &mut slot;
        let mut k = 0;
        while k < stride {
            let wk = w.add(4 * k);
            each_16_columns!(h => {
                let (p0, p1) = (load(x.add(k + h)), load(x.add(k + h + 8)));
                for (r, a) in a.iter_mut().enumerate() {
                    let (v0, v1) = (load(wk.add(4 * h + 8 * r)), load(wk.add(4 * h + 32 + 8 * r)));
                    *a = pinned(madd(madd(*a, v0, p0), v1, p1), f);
                }
            });
            k += STEP;
        }
        reduce4(a[0], a[1], a[2], a[3])
    }

    #[inline(always)]
    unsafe fn row_token(w: *const i16, stride: usize, x: *const i16) -> i32 {
        let mut a = zero();
        let mut slot = zero();
        let f: *mut V = &mut slot;
        let mut k = 0;
        while k < stride {
            each_16_columns!(h => {
                let (p0, p1) = (load(x.add(k + h)), load(x.add(k + h + 8)));
                a = pinned(madd(madd(a, load(w.add(k + h)), p0), load(w.add(k + h + 8)), p1), f);
            });
            k += STEP;
        }
        sum(a)
    }

    pub fn product(m: &QMatrix, xq: &[i16], xs: &[f32], out: &mut [f32]) {
        let (rows, stride, n) = (m.rows, m.stride, xs.len());
        assert!(
            stride.is_multiple_of(STEP)
                && m.qs.len() == rows * stride
                && m.scales.len() == rows
                && m.bias.len() == rows
                && xq.len() == n * stride
                && out.len() == n * rows
        );
        let (w, x, o) = (m.qs.as_ptr(), xq.as_ptr(), out.as_mut_ptr());
        let (scales, bias) = (m.scales.as_ptr(), m.bias.as_ptr());
        // SAFETY: every pointer below stays inside the slices whose lengths are asserted above:
        // rows r..r+4 <= rows, tokens t (+1) < n, offsets k < stride.
        unsafe {
            let mut r = 0;
            while r + 4 <= rows {
                let wr = w.add(r * stride);
                let (sr, br) = (scales.add(r), bias.add(r));
                let mut t = 0;
                while t + 2 <= n {
                    let (s0, s1) = rows4_tokens2(wr, stride, x.add(t * stride), x.add((t + 1) * stride));
                    store4(s0, sr, xs[t], br, o.add(t * rows + r));
                    store4(s1, sr, xs[t + 1], br, o.add((t + 1) * rows + r));
                    t += 2;
                }
                if t < n {
                    store4(rows4_tokens1(wr, stride, x.add(t * stride)), sr, xs[t], br, o.add(t * rows + r));
                }
                r += 4;
            }
            for r in r..rows {
                for (t, &d) in xs.iter().enumerate() {
                    let s = row_token(w.add(r * stride), stride, x.add(t * stride));
                    *o.add(t * rows + r) = s as f32 * (m.scales[r] * d) + m.bias[r];
                }
            }
        }
    }
}

#[cfg(not(any(all(target_arch = "wasm32", target_feature = "simd128"), target_arch = "x86_64")))]
mod kernel {
    use super::QMatrix;

    /// Plain loops for other targets (wasm without SIMD128: the no-SIMD component). Groups of
    /// four rows are walked in their interleaved layout, eight columns of each row at a time:
    /// indexing every weight through `quant` made this 25-40x slower than the SIMD kernel.
    pub fn product(m: &QMatrix, xq: &[i16], xs: &[f32], out: &mut [f32]) {
        let dot8 = |w: &[i16], x: &[i16]| w.iter().zip(x).map(|(&a, &b)| a as i32 * b as i32).sum::<i32>();
        let full = m.rows / 4 * 4;
        for (g, w) in m.qs[..full * m.stride].chunks_exact(4 * m.stride).enumerate() {
            for (t, x) in xq.chunks_exact(m.stride).enumerate() {
                let mut s = [0i32; 4];
                for (w, x) in w.chunks_exact(32).zip(x.chunks_exact(8)) {
                    for (row, s) in s.iter_mut().enumerate() {
                        *s += dot8(&w[8 * row..8 * row + 8], x);
                    }
                }
                for (row, &s) in s.iter().enumerate() {
                    let r = 4 * g + row;
                    out[t * m.rows + r] = s as f32 * (m.scales[r] * xs[t]) + m.bias[r];
                }
            }
        }
        for r in full..m.rows {
            for (t, x) in xq.chunks_exact(m.stride).enumerate() {
                let s: i32 = x.iter().enumerate().map(|(k, &b)| m.quant(r, k) as i32 * b as i32).sum();
                out[t * m.rows + r] = s as f32 * (m.scales[r] * xs[t]) + m.bias[r];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(w: &[f32], bias: &[f32], x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let n = x.len() / cols;
        let mut out = vec![0f32; n * rows];
        for t in 0..n {
            for r in 0..rows {
                let s: f64 = (0..cols).map(|k| w[r * cols + k] as f64 * x[t * cols + k] as f64).sum();
                out[t * rows + r] = s as f32 + bias[r];
            }
        }
        out
    }

    #[test]
    fn products_match_f64_within_quantization_error() {
        // Odd sizes exercise the row, token and column tails.
        for (rows, cols, n) in [(7, 37, 3), (8, 64, 5), (12, 384, 2), (4, 1536, 1)] {
            let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 37.0).collect();
            let x: Vec<f32> = (0..n * cols).map(|i| ((i * 13 % 29) as f32 - 14.0) / 9.0).collect();
            let bias: Vec<f32> = (0..rows).map(|r| r as f32 * 0.25).collect();
            let m = QMatrix::new(&w, rows, cols, bias.clone()).unwrap();
            let mut out = vec![0f32; n * rows];
            m.forward(&x, &mut out, &mut Quantized::default());
            let expected = reference(&w, &bias, &x, rows, cols);
            let norm = (cols as f32).sqrt() * 1.4 * 1.6;
            for (i, (a, b)) in out.iter().zip(&expected).enumerate() {
                assert!((a - b).abs() <= 2e-3 * norm, "{rows}x{cols}, output {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn a_tokens_output_does_not_depend_on_the_batch() {
        let (rows, cols) = (9, 40);
        let w: Vec<f32> = (0..rows * cols).map(|i| ((i * 7 % 23) as f32 - 11.0) / 5.0).collect();
        let x: Vec<f32> = (0..3 * cols).map(|i| ((i * 11 % 31) as f32 - 15.0) / 4.0).collect();
        let m = QMatrix::new(&w, rows, cols, vec![0.5; rows]).unwrap();
        let mut all = vec![0f32; 3 * rows];
        m.forward(&x, &mut all, &mut Quantized::default());
        for t in 0..3 {
            let mut one = vec![0f32; rows];
            m.forward(&x[t * cols..(t + 1) * cols], &mut one, &mut Quantized::default());
            assert_eq!(one, all[t * rows..(t + 1) * rows]);
        }
    }

    #[test]
    fn rows_too_long_for_exact_sums_are_refused() {
        let cols = 1 << 16;
        assert!(QMatrix::new(&vec![0.0; cols], 1, cols, vec![0.0]).is_none());
    }
}
