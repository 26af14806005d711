//! Q4_1 weights (the block type SmolLM2 ships in) multiplied as they are, the way llama.cpp
//! does it (integer dot products per block, activations quantized once per call), nibbles
//! widened in registers.
//!
//! Converting Q4_1 to Q8_0 at load was simpler, but it held 1.7x the bytes and every decoded
//! token reads every weight: keeping four bits per weight halves what a token has to stream
//! through the cache and trims the process's memory by the same amount.
//!
//! A Q4_1 block is 32 weights `d * q + m` with `q` in 0..16. Here `d` and `m` are kept as f32
//! (converted once, not per block per row per token), and with activations `x = dx * qx` a
//! block's dot product is `d * dx * sum(q * qx) + m * dx * sum(qx)`.
//!
//! Layout, chosen for the machine code Wasmtime generates: rows go in groups of four, and a
//! group's block `b` is one 96-byte record (the four rows' 16 packed bytes, then their four
//! scales, then their four minimums), records in block order. A decode step therefore reads
//! each group as a single sequential stream through one pointer (four row pointers and two
//! scale pointers did not fit in registers and were spilled and reloaded every block). Within
//! a row's 16 bytes, 16-bit lane `j` holds weights `j`, `j + 8`, `j + 16` and `j + 24` at bits
//! 0, 4, 8 and 12, so one shift and one mask per eight weights widen them to int16 (the
//! file's byte order needed byte shifts and unpacks, which x86 lacks and Cranelift emulates).

use candle_core::quantized::{GgmlDType, QTensor};
use half::f16;

use crate::error::{EngineError, Result};
use crate::text::q8::QuantizedInput;

const BLOCK: usize = 32;
const BLOCK_BYTES: usize = 20;
const PACKED: usize = BLOCK / 2;
/// One block of a group of four rows: packed weights, scales, minimums.
const RECORD: usize = 4 * PACKED + 4 * 4 + 4 * 4;
const SCALES_AT: usize = 4 * PACKED;
const MINS_AT: usize = SCALES_AT + 16;

pub struct Q4Matrix {
    pub rows: usize,
    pub cols: usize,
    /// Records of `RECORD` bytes, `[group of four rows][block]` (see the module comment);
    /// rows padded with zeros to a multiple of four so every pass handles four rows.
    records: Vec<u8>,
}

impl Q4Matrix {
    /// From a 2-D Q4_1 tensor (rows x cols, rows being outputs).
    pub fn from_qtensor(t: &QTensor) -> Result<Self> {
        if t.dtype() != GgmlDType::Q4_1 {
            return Err(EngineError::Internal(format!(
                "Q4Matrix from a {:?} tensor",
                t.dtype()
            )));
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
            return Err(EngineError::Internal(format!(
                "Q4_1 data of {} bytes for {} blocks",
                data.len(),
                rows * bpr
            )));
        }
        let groups = rows.div_ceil(4);
        let mut records = Vec::new();
        records
            .try_reserve_exact(groups * bpr * RECORD)
            .map_err(|_| {
                EngineError::ResourceExhausted(format!(
                    "no memory left for a {rows}x{cols} weight matrix"
                ))
            })?;
        records.resize(groups * bpr * RECORD, 0);
        for (i, block) in data.chunks_exact(BLOCK_BYTES).enumerate() {
            let (r, b) = (i / bpr, i % bpr);
            let record = &mut records[((r / 4) * bpr + b) * RECORD..][..RECORD];
            let lane = r % 4;
            let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
            let m = f16::from_le_bytes([block[2], block[3]]).to_f32();
            record[SCALES_AT + 4 * lane..][..4].copy_from_slice(&d.to_le_bytes());
            record[MINS_AT + 4 * lane..][..4].copy_from_slice(&m.to_le_bytes());
            // The file holds weight k in the low nibble of byte k and k + 16 in its high one.
            let w = |k: usize| {
                if k < PACKED {
                    block[4 + k] & 0x0F
                } else {
                    block[4 + k - PACKED] >> 4
                }
            };
            let packed = &mut record[lane * PACKED..][..PACKED];
            for j in 0..8 {
                packed[2 * j] = w(j) | w(j + 8) << 4;
                packed[2 * j + 1] = w(j + 16) | w(j + 24) << 4;
            }
        }
        Ok(Q4Matrix {
            rows,
            cols,
            records,
        })
    }

    pub fn bytes(&self) -> u64 {
        self.records.len() as u64
    }

    /// Row `i` dequantized.
    pub fn row(&self, i: usize, out: &mut [f32]) {
        let bpr = self.cols / BLOCK;
        let lane = i % 4;
        for (b, record) in self.records[(i / 4) * bpr * RECORD..][..bpr * RECORD]
            .chunks_exact(RECORD)
            .enumerate()
        {
            let (d, m) = (
                f32_at(record, SCALES_AT + 4 * lane),
                f32_at(record, MINS_AT + 4 * lane),
            );
            let mut q = [0u8; BLOCK];
            unpack_packed(&record[lane * PACKED..][..PACKED], &mut q);
            for (o, &q) in out[b * BLOCK..(b + 1) * BLOCK].iter_mut().zip(&q) {
                *o = q as f32 * d + m;
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
        // Several inputs (a prompt): each group of rows is unpacked to int16 once and then
        // serves every input with no per-input nibble work.
        let mut unpacked = if n > 1 {
            Unpacked::new(cols)
        } else {
            Unpacked::new(0)
        };
        for (g, records) in self.records.chunks_exact(bpr * RECORD).enumerate() {
            let r = 4 * g;
            if n > 1 {
                unpack(records, &mut unpacked);
            }
            let live = (self.rows - r).min(4);
            let input = |i: usize| {
                (
                    &xq[i * cols..(i + 1) * cols],
                    &xd[i * bpr..(i + 1) * bpr],
                    &xsum[i * bpr..(i + 1) * bpr],
                )
            };
            let mut i = 0;
            // Two inputs per pass over the unpacked rows, then the odd one out.
            while n > 1 && i + 2 <= n {
                let dots = dot4_unpacked2(&unpacked, cols, [input(i), input(i + 1)]);
                for (k, dots) in dots.iter().enumerate() {
                    out[(i + k) * stride + r..(i + k) * stride + r + live]
                        .copy_from_slice(&dots[..live]);
                }
                i += 2;
            }
            if i < n {
                let (x, xd, xs) = input(i);
                let dots = if n > 1 {
                    dot4_unpacked(&unpacked, cols, x, xd, xs)
                } else {
                    dot4(records, bpr, x, xd, xs)
                };
                out[i * stride + r..i * stride + r + live].copy_from_slice(&dots[..live]);
            }
        }
    }
}

/// A group of four rows unpacked to one int16 per weight (`w`, row after row), with their
/// scales and minimums as `[block][row]`.
struct Unpacked {
    w: Vec<i16>,
    d: Vec<f32>,
    m: Vec<f32>,
}

impl Unpacked {
    fn new(cols: usize) -> Self {
        Unpacked {
            w: vec![0; 4 * cols],
            d: vec![0.0; cols / BLOCK * 4],
            m: vec![0.0; cols / BLOCK * 4],
        }
    }
}

fn f32_at(bytes: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One row's 16 packed bytes (in this layout's order) to its 32 weights in element order.
fn unpack_packed(packed: &[u8], q: &mut [u8; BLOCK]) {
    for j in 0..8 {
        let (lo, hi) = (packed[2 * j], packed[2 * j + 1]);
        (q[j], q[j + 8], q[j + 16], q[j + 24]) = (lo & 0x0F, lo >> 4, hi & 0x0F, hi >> 4);
    }
}

/// A group's records to int16 rows plus scales and minimums.
fn unpack(records: &[u8], out: &mut Unpacked) {
    let cols = out.w.len() / 4;
    for (b, record) in records.chunks_exact(RECORD).enumerate() {
        for lane in 0..4 {
            out.d[4 * b + lane] = f32_at(record, SCALES_AT + 4 * lane);
            out.m[4 * b + lane] = f32_at(record, MINS_AT + 4 * lane);
        }
    }
    unpack_weights(records, &mut out.w, cols);
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod kernel {
    use core::arch::wasm32::*;

    use super::{Unpacked, BLOCK, MINS_AT, PACKED, RECORD, SCALES_AT};

    // The entry points are kept out of line: inlined into the layer code, their loops shared
    // one register allocation with everything around them and spilled.

    /// One row's packed block as four int16 vectors: weights 0..8, 8..16, 16..24, 24..32.
    #[inline(always)]
    unsafe fn widen(w: *const u8) -> [v128; 4] {
        let p = v128_load(w as *const v128);
        let mask = u16x8_splat(0x000F);
        [
            v128_and(p, mask),
            v128_and(u16x8_shr(p, 4), mask),
            v128_and(u16x8_shr(p, 8), mask),
            u16x8_shr(p, 12),
        ]
    }

    /// The records' weights as int16 rows of `cols` (row `lane` at `out[lane * cols..]`).
    #[inline(never)]
    pub fn unpack_weights(records: &[u8], out: &mut [i16], cols: usize) {
        let blocks = records.len() / RECORD;
        assert!(blocks * BLOCK <= cols && out.len() >= 4 * cols);
        for b in 0..blocks {
            for lane in 0..4 {
                // SAFETY: record b is within records, and row lane's block b within out
                // (asserted above).
                unsafe {
                    let v = widen(records.as_ptr().add(b * RECORD + lane * PACKED));
                    let o = out.as_mut_ptr().add(lane * cols + b * BLOCK);
                    for (k, v) in v.into_iter().enumerate() {
                        v128_store(o.add(8 * k) as *mut v128, v);
                    }
                }
            }
        }
    }

    /// sum(q * qx) of one row's packed block against the block's four input vectors, as four
    /// i32 lanes.
    #[inline(always)]
    unsafe fn block_dot(w: *const u8, x: &[v128; 4]) -> v128 {
        let [a, b, c, d] = widen(w);
        let s = i32x4_add(i32x4_dot_i16x8(a, x[0]), i32x4_dot_i16x8(b, x[1]));
        i32x4_add(
            s,
            i32x4_add(i32x4_dot_i16x8(c, x[2]), i32x4_dot_i16x8(d, x[3])),
        )
    }

    /// sum(w * qx) of one block of int16 weights, as four i32 lanes.
    #[inline(always)]
    unsafe fn block_dot_unpacked(w: *const i16, x: *const i16) -> v128 {
        let s = i32x4_dot_i16x8(v128_load(w as *const v128), v128_load(x as *const v128));
        let s = i32x4_add(
            s,
            i32x4_dot_i16x8(
                v128_load(w.add(8) as *const v128),
                v128_load(x.add(8) as *const v128),
            ),
        );
        let s = i32x4_add(
            s,
            i32x4_dot_i16x8(
                v128_load(w.add(16) as *const v128),
                v128_load(x.add(16) as *const v128),
            ),
        );
        i32x4_add(
            s,
            i32x4_dot_i16x8(
                v128_load(w.add(24) as *const v128),
                v128_load(x.add(24) as *const v128),
            ),
        )
    }

    /// Four rows' lane sums as one vector: [sum(a), sum(b), sum(c), sum(d)].
    #[inline(always)]
    fn transpose_sum(a: v128, b: v128, c: v128, d: v128) -> v128 {
        let ab = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(a, b),
            i32x4_shuffle::<2, 6, 3, 7>(a, b),
        );
        let cd = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(c, d),
            i32x4_shuffle::<2, 6, 3, 7>(c, d),
        );
        i32x4_add(
            i32x4_shuffle::<0, 1, 4, 5>(ab, cd),
            i32x4_shuffle::<2, 3, 6, 7>(ab, cd),
        )
    }

    /// One block of four rows: the integer sums times the rows' scales times the input's
    /// scale, plus the rows' minimums times the input's block sum.
    #[inline(always)]
    unsafe fn scaled(sums: v128, d: v128, m: v128, xd: *const f32, xs: *const f32) -> v128 {
        let scaled = f32x4_mul(
            f32x4_convert_i32x4(sums),
            f32x4_mul(d, v128_load32_splat(xd as *const u32)),
        );
        f32x4_add(scaled, f32x4_mul(m, v128_load32_splat(xs as *const u32)))
    }

    fn lanes(v: v128) -> [f32; 4] {
        [
            f32x4_extract_lane::<0>(v),
            f32x4_extract_lane::<1>(v),
            f32x4_extract_lane::<2>(v),
            f32x4_extract_lane::<3>(v),
        ]
    }

    /// One group's block `b` (record at `p`) against one input.
    #[inline(always)]
    unsafe fn record_dot(p: *const u8, x: *const i16, xd: *const f32, xs: *const f32) -> v128 {
        let x = [0, 8, 16, 24].map(|k| v128_load(x.add(k) as *const v128));
        let sums = transpose_sum(
            block_dot(p, &x),
            block_dot(p.add(PACKED), &x),
            block_dot(p.add(2 * PACKED), &x),
            block_dot(p.add(3 * PACKED), &x),
        );
        scaled(
            sums,
            v128_load(p.add(SCALES_AT) as *const v128),
            v128_load(p.add(MINS_AT) as *const v128),
            xd,
            xs,
        )
    }

    /// A group of four rows (`records`, `bpr` of them) times one quantized input.
    #[inline(never)]
    pub fn dot4(records: &[u8], bpr: usize, x: &[i16], xd: &[f32], xs: &[f32]) -> [f32; 4] {
        assert!(
            records.len() >= bpr * RECORD
                && x.len() >= bpr * BLOCK
                && xd.len() >= bpr
                && xs.len() >= bpr
        );
        let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let (p, x, xd, xs) = (records.as_ptr(), x.as_ptr(), xd.as_ptr(), xs.as_ptr());
        let mut b = 0;
        // Two blocks per iteration: half the loop overhead (and Wasmtime's interruption check
        // at every loop header), and two independent accumulations.
        // SAFETY: b + 1 < bpr, and bounds asserted above.
        while b + 2 <= bpr {
            unsafe {
                acc0 = f32x4_add(
                    acc0,
                    record_dot(p.add(b * RECORD), x.add(b * BLOCK), xd.add(b), xs.add(b)),
                );
                acc1 = f32x4_add(
                    acc1,
                    record_dot(
                        p.add((b + 1) * RECORD),
                        x.add((b + 1) * BLOCK),
                        xd.add(b + 1),
                        xs.add(b + 1),
                    ),
                );
            }
            b += 2;
        }
        if b < bpr {
            // SAFETY: b < bpr, and bounds asserted above.
            acc0 = f32x4_add(acc0, unsafe {
                record_dot(p.add(b * RECORD), x.add(b * BLOCK), xd.add(b), xs.add(b))
            });
        }
        lanes(f32x4_add(acc0, acc1))
    }

    /// As [`dot4`] over four rows already unpacked to int16.
    #[inline(never)]
    pub fn dot4_unpacked(u: &Unpacked, cols: usize, x: &[i16], xd: &[f32], xs: &[f32]) -> [f32; 4] {
        let bpr = cols / BLOCK;
        let (w, d, m) = (&u.w, &u.d, &u.m);
        assert!(
            w.len() >= 4 * cols
                && d.len() >= 4 * bpr
                && m.len() >= 4 * bpr
                && x.len() >= cols
                && xd.len() >= bpr
                && xs.len() >= bpr
        );
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
                let (db, mb) = (
                    v128_load(d.as_ptr().add(4 * b) as *const v128),
                    v128_load(m.as_ptr().add(4 * b) as *const v128),
                );
                acc = f32x4_add(
                    acc,
                    scaled(sums, db, mb, xd.as_ptr().add(b), xs.as_ptr().add(b)),
                );
            }
        }
        lanes(acc)
    }

    /// [`dot4_unpacked`] for two inputs at once: each weight vector is loaded once for both.
    #[inline(never)]
    pub fn dot4_unpacked2(
        u: &Unpacked,
        cols: usize,
        x: [(&[i16], &[f32], &[f32]); 2],
    ) -> [[f32; 4]; 2] {
        let bpr = cols / BLOCK;
        let (w, d, m) = (&u.w, &u.d, &u.m);
        let [(x0, xd0, xs0), (x1, xd1, xs1)] = x;
        assert!(w.len() >= 4 * cols && d.len() >= 4 * bpr && m.len() >= 4 * bpr);
        assert!(
            x0.len() >= cols
                && xd0.len() >= bpr
                && xs0.len() >= bpr
                && x1.len() >= cols
                && xd1.len() >= bpr
                && xs1.len() >= bpr
        );
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
                let sums0 = transpose_sum(
                    block_dot_unpacked(r0, p0),
                    block_dot_unpacked(r1, p0),
                    block_dot_unpacked(r2, p0),
                    block_dot_unpacked(r3, p0),
                );
                let sums1 = transpose_sum(
                    block_dot_unpacked(r0, p1),
                    block_dot_unpacked(r1, p1),
                    block_dot_unpacked(r2, p1),
                    block_dot_unpacked(r3, p1),
                );
                let (db, mb) = (
                    v128_load(d.as_ptr().add(4 * b) as *const v128),
                    v128_load(m.as_ptr().add(4 * b) as *const v128),
                );
                acc0 = f32x4_add(
                    acc0,
                    scaled(sums0, db, mb, xd0.as_ptr().add(b), xs0.as_ptr().add(b)),
                );
                acc1 = f32x4_add(
                    acc1,
                    scaled(sums1, db, mb, xd1.as_ptr().add(b), xs1.as_ptr().add(b)),
                );
            }
        }
        [lanes(acc0), lanes(acc1)]
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod kernel {
    use super::{unpack, unpack_packed, Unpacked, BLOCK, PACKED, RECORD};

    pub fn unpack_weights(records: &[u8], out: &mut [i16], cols: usize) {
        for (b, record) in records.chunks_exact(RECORD).enumerate() {
            for lane in 0..4 {
                let mut q = [0u8; BLOCK];
                unpack_packed(&record[lane * PACKED..][..PACKED], &mut q);
                for (o, &q) in out[lane * cols + b * BLOCK..][..BLOCK].iter_mut().zip(&q) {
                    *o = q as i16;
                }
            }
        }
    }

    pub fn dot4(records: &[u8], bpr: usize, x: &[i16], xd: &[f32], xs: &[f32]) -> [f32; 4] {
        let mut unpacked = Unpacked::new(bpr * BLOCK);
        unpack(&records[..bpr * RECORD], &mut unpacked);
        dot4_unpacked(&unpacked, bpr * BLOCK, x, xd, xs)
    }

    pub fn dot4_unpacked2(
        u: &Unpacked,
        cols: usize,
        x: [(&[i16], &[f32], &[f32]); 2],
    ) -> [[f32; 4]; 2] {
        x.map(|(x, xd, xs)| dot4_unpacked(u, cols, x, xd, xs))
    }

    pub fn dot4_unpacked(u: &Unpacked, cols: usize, x: &[i16], xd: &[f32], xs: &[f32]) -> [f32; 4] {
        let mut out = [0f32; 4];
        for (r, o) in out.iter_mut().enumerate() {
            let row = &u.w[r * cols..(r + 1) * cols];
            for (b, (wb, xb)) in row
                .chunks_exact(BLOCK)
                .zip(x.chunks_exact(BLOCK))
                .enumerate()
            {
                let s: i32 = wb.iter().zip(xb).map(|(&a, &c)| a as i32 * c as i32).sum();
                *o += s as f32 * (u.d[4 * b + r] * xd[b]) + u.m[4 * b + r] * xs[b];
            }
        }
        out
    }
}

use kernel::{dot4, dot4_unpacked, dot4_unpacked2, unpack_weights};

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
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "input {i} row {r}: {a} vs {b}"
                );
            }
        }
        let mut row = vec![0f32; COLS];
        m.row(3, &mut row);
        assert_exact(&q, &x, &out, &row);
        // Written side by side with another matrix (stride wider than its rows): the same.
        let mut wide = [0f32; INPUTS * (ROWS + 5)];
        m.matmul_quantized(&QuantizedInput::new(&x), &mut wide[5..], ROWS + 5);
        for i in 0..INPUTS {
            assert_eq!(
                wide[i * (ROWS + 5) + 5..(i + 1) * (ROWS + 5)],
                out[i * ROWS..(i + 1) * ROWS]
            );
        }
    }
}
