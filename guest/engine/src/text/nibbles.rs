//! Weights of four or five bits with a scale and a minimum per 32 (Q4_0, Q4_1, Q4_K; Q5_0,
//! Q5_1, Q5_K: see `blocks.rs`) multiplied as they are, the way llama.cpp does it (integer dot
//! products per block, activations quantized once per call), bits widened in registers.
//!
//! Converting them to Q8_0 at load was simpler, but it held 1.7x the bytes and every decoded
//! token reads every weight: keeping four or five bits per weight halves what a token has to
//! stream through the cache and trims the process's memory by the same amount.
//!
//! A sub-block is 32 weights `d * q + m` with `q` in 0..16 (or 0..32). Here `d` and `m` are
//! kept as f32 (converted once, not per block per row per token), and with activations
//! `x = dx * qx` a block's dot product is `d * dx * sum(q * qx) + m * dx * sum(qx)`.
//!
//! Layout, chosen for the machine code Wasmtime generates: rows go in groups of four, and a
//! group's block `b` is one record (the four rows' 16 packed bytes, [their four 32-bit words of
//! fifth bits,] then their four scales, then their four minimums), records in block order. A
//! decode step therefore reads each group as a single sequential stream through one pointer
//! (four row pointers and two scale pointers did not fit in registers and were spilled and
//! reloaded every block). Within a row's 16 bytes, 16-bit lane `j` holds weights `j`, `j + 8`,
//! `j + 16` and `j + 24` at bits 0, 4, 8 and 12, so one shift and one mask per eight weights
//! widen them to int16 (the file's byte order needed byte shifts and unpacks, which x86 lacks
//! and Cranelift emulates). A fifth-bit word has bit `k` for weight `k`.

use candle_core::quantized::GgmlDType;

use crate::error::Result;
use crate::text::blocks::{BlockKind, OwnMatrix, SubBlock, MAX_SUBS, SUB};
use crate::text::q8::QuantizedInput;
use crate::text::weights::{check_blocks, dtype_name, weight_buffer};

const BLOCK: usize = SUB;
const PACKED: usize = BLOCK / 2;
/// Where a record's fifth-bit words start (five-bit layout only).
const FIFTHS_AT: usize = 4 * PACKED;

/// Bytes of one record: packed weights, [fifth bits,] scales, minimums.
const fn record_size(fifth: bool) -> usize {
    scales_at(fifth) + 4 * 4 + 4 * 4
}

/// Where a record's four scales start; its four minimums follow them.
const fn scales_at(fifth: bool) -> usize {
    4 * PACKED + if fifth { 4 * 4 } else { 0 }
}

/// A matrix of four-bit (`FIFTH` false) or five-bit weights.
pub struct NibbleMatrix<const FIFTH: bool> {
    pub rows: usize,
    pub cols: usize,
    /// The file's block type.
    source: GgmlDType,
    /// Records, `[group of four rows][block]` (see the module comment); rows padded with zeros
    /// to a multiple of four so every pass handles four rows.
    /// Held in pieces of `CHUNK_GROUPS` groups: a load builds these while it hands the file's
    /// memory back tensor by tensor, and pieces this size fit the holes that leaves (one
    /// buffer per matrix, 1.2x the bytes the file freed for it, did not, and the linear
    /// memory grew past what memory-stats accounts for).
    chunks: Vec<Vec<u8>>,
}

const CHUNK_GROUPS: usize = 32;

impl<const FIFTH: bool> NibbleMatrix<FIFTH> {
    const RECORD: usize = record_size(FIFTH);
    const SCALES_AT: usize = scales_at(FIFTH);
    const MINS_AT: usize = Self::SCALES_AT + 16;

    /// From `kind` blocks as a GGUF file holds them.
    pub fn from_blocks(kind: &BlockKind, data: &[u8], rows: usize, cols: usize) -> Result<Self> {
        let file_bpr = check_blocks(kind.dtype, data, rows, cols)?;
        let bpr = cols / BLOCK;
        let groups = rows.div_ceil(4);
        let mut chunks = Vec::with_capacity(groups.div_ceil(CHUNK_GROUPS));
        for first in (0..groups).step_by(CHUNK_GROUPS) {
            let len = (groups - first).min(CHUNK_GROUPS) * bpr * Self::RECORD;
            let mut chunk = weight_buffer(len, rows, cols)?;
            chunk.resize(len, 0);
            chunks.push(chunk);
        }
        let mut subs = [SubBlock::default(); MAX_SUBS];
        for (i, block) in data.chunks_exact(kind.dtype.type_size()).enumerate() {
            let (r, file_block) = (i / file_bpr, i % file_bpr);
            let (g, row) = (r / 4, r % 4);
            let n = (kind.decode)(block, &mut subs);
            for (s, sub) in subs[..n].iter().enumerate() {
                let b = file_block * n + s;
                let record = &mut chunks[g / CHUNK_GROUPS][((g % CHUNK_GROUPS) * bpr + b) * Self::RECORD..][..Self::RECORD];
                record[Self::SCALES_AT + 4 * row..][..4].copy_from_slice(&sub.scale.to_le_bytes());
                record[Self::MINS_AT + 4 * row..][..4].copy_from_slice(&sub.min.to_le_bytes());
                let w = |k: usize| sub.q[k] as u8 & 0x0F;
                let packed = &mut record[row * PACKED..][..PACKED];
                for j in 0..8 {
                    packed[2 * j] = w(j) | w(j + 8) << 4;
                    packed[2 * j + 1] = w(j + 16) | w(j + 24) << 4;
                }
                if FIFTH {
                    let fifths = sub.q.iter().enumerate().fold(0u32, |bits, (k, &q)| bits | (((q as u8 >> 4) & 1) as u32) << k);
                    record[FIFTHS_AT + 4 * row..][..4].copy_from_slice(&fifths.to_le_bytes());
                }
            }
        }
        Ok(NibbleMatrix { rows, cols, source: kind.dtype, chunks })
    }

    /// The records of group `g` (rows 4g..4g+4), one per block.
    fn group(&self, g: usize) -> &[u8] {
        let size = self.cols / BLOCK * Self::RECORD;
        &self.chunks[g / CHUNK_GROUPS][(g % CHUNK_GROUPS) * size..][..size]
    }
}

impl<const FIFTH: bool> OwnMatrix for NibbleMatrix<FIFTH> {
    fn rows(&self) -> usize {
        self.rows
    }

    fn cols(&self) -> usize {
        self.cols
    }

    fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum()
    }

    fn type_name(&self) -> String {
        dtype_name(self.source)
    }

    fn row(&self, i: usize, out: &mut [f32]) {
        let row = i % 4;
        for (b, record) in self.group(i / 4).chunks_exact(Self::RECORD).enumerate() {
            let (d, m) = (f32_at(record, Self::SCALES_AT + 4 * row), f32_at(record, Self::MINS_AT + 4 * row));
            let mut q = [0u8; BLOCK];
            unpack_row::<FIFTH>(record, row, &mut q);
            for (o, &q) in out[b * BLOCK..(b + 1) * BLOCK].iter_mut().zip(&q) {
                *o = q as f32 * d + m;
            }
        }
    }

    fn matmul_quantized(&self, x: &QuantizedInput, out: &mut [f32], stride: usize) {
        let (cols, bpr) = (self.cols, self.cols / BLOCK);
        let n = x.q.len() / cols;
        let input = |i: usize| (&x.q[i * cols..(i + 1) * cols], &x.ds[2 * i * bpr..2 * (i + 1) * bpr]);
        // Several inputs (a prompt): each group of rows is unpacked to int16 once and then
        // serves every input with no per-input bit work.
        let mut unpacked = Unpacked::new(if n > 1 { bpr } else { 0 });
        for g in 0..self.rows.div_ceil(4) {
            let records = self.group(g);
            let (r, live) = (4 * g, (self.rows - 4 * g).min(4));
            let mut put = |i: usize, dots: [f32; 4]| out[i * stride + r..i * stride + r + live].copy_from_slice(&dots[..live]);
            if n == 1 {
                let (x, xds) = input(0);
                put(0, dot4::<FIFTH>(records, x, xds));
                continue;
            }
            unpacked.fill::<FIFTH>(records);
            let mut i = 0;
            // Two inputs per pass over the unpacked rows, then the odd one out.
            while i + 2 <= n {
                let [a, b] = dot4_unpacked2(&unpacked, [input(i), input(i + 1)]);
                put(i, a);
                put(i + 1, b);
                i += 2;
            }
            while i < n {
                let (x, xds) = input(i);
                put(i, dot4_unpacked(&unpacked, x, xds));
                i += 1;
            }
        }
    }
}

/// A group of four rows unpacked to one int16 per weight, `w` as `[block][row][32]`, with
/// their scales and minimums as `[block][4 scales, 4 minimums]`: one pointer each for the
/// kernels to walk.
struct Unpacked {
    w: Vec<i16>,
    dm: Vec<f32>,
}

impl Unpacked {
    fn new(blocks: usize) -> Self {
        Unpacked { w: vec![0; blocks * 4 * BLOCK], dm: vec![0.0; blocks * 8] }
    }

    fn fill<const FIFTH: bool>(&mut self, records: &[u8]) {
        for (record, dm) in records.chunks_exact(record_size(FIFTH)).zip(self.dm.chunks_exact_mut(8)) {
            for (k, v) in dm.iter_mut().enumerate() {
                *v = f32_at(record, scales_at(FIFTH) + 4 * k);
            }
        }
        unpack_weights::<FIFTH>(records, &mut self.w);
    }
}

fn f32_at(bytes: &[u8], at: usize) -> f32 {
    f32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// One row's weights of a record, in element order.
fn unpack_row<const FIFTH: bool>(record: &[u8], row: usize, q: &mut [u8; BLOCK]) {
    let packed = &record[row * PACKED..][..PACKED];
    for j in 0..8 {
        let (lo, hi) = (packed[2 * j], packed[2 * j + 1]);
        (q[j], q[j + 8], q[j + 16], q[j + 24]) = (lo & 0x0F, lo >> 4, hi & 0x0F, hi >> 4);
    }
    if FIFTH {
        let fifths = u32::from_le_bytes(record[FIFTHS_AT + 4 * row..][..4].try_into().unwrap_or_default());
        for (k, q) in q.iter_mut().enumerate() {
            *q |= (((fifths >> k) & 1) as u8) << 4;
        }
    }
}

// The kernels' loops are written for Cranelift's register allocator: LLVM emits wasm with no
// notion of registers, so a block's values are produced row by row and folded as soon as they
// can be (x86 has 16 vector registers; the first version kept 16 weight vectors live and spent
// a third of its instructions spilling them), and each loop walks one pointer per stream.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod kernel {
    use core::arch::wasm32::*;

    use super::{record_size, scales_at, Unpacked, BLOCK, FIFTHS_AT, PACKED};
    use crate::text::simd::{dot, finish, fold, lanes, load4, pinned};

    /// One row's packed block as four int16 vectors: weights 0..8, 8..16, 16..24, 24..32.
    #[inline(always)]
    unsafe fn widen(w: *const u8) -> [v128; 4] {
        let p = core::ptr::read_volatile(w as *const v128);
        let mask = u16x8_splat(0x000F);
        [v128_and(p, mask), v128_and(u16x8_shr(p, 4), mask), v128_and(u16x8_shr(p, 8), mask), u16x8_shr(p, 12)]
    }

    /// [`widen`] of row `row` of the record at `p`, with its fifth bits added (16 where bit k
    /// of the row's word is set; each lane tests its own bit and turns the all-ones of an
    /// equal compare into 16).
    #[inline(always)]
    unsafe fn widen_row<const FIFTH: bool>(p: *const u8, row: usize) -> [v128; 4] {
        let mut v = widen(p.add(row * PACKED));
        if FIFTH {
            let bits = core::ptr::read_unaligned(p.add(FIFTHS_AT + 4 * row) as *const u32);
            let (lo, hi) = (u16x8_splat(bits as u16), u16x8_splat((bits >> 16) as u16));
            let low_bits = u16x8(1, 2, 4, 8, 16, 32, 64, 128);
            let high_bits = u16x8(256, 512, 1024, 2048, 4096, 8192, 16384, 32768);
            let sixteen = u16x8_splat(16);
            let fifth = |word: v128, mask: v128| v128_and(i16x8_eq(v128_and(word, mask), mask), sixteen);
            v[0] = v128_or(v[0], fifth(lo, low_bits));
            v[1] = v128_or(v[1], fifth(lo, high_bits));
            v[2] = v128_or(v[2], fifth(hi, low_bits));
            v[3] = v128_or(v[3], fifth(hi, high_bits));
        }
        v
    }

    /// The records' weights as int16, `[block][row][32]`.
    #[inline(never)]
    pub fn unpack_weights<const FIFTH: bool>(records: &[u8], out: &mut [i16]) {
        let record = record_size(FIFTH);
        let blocks = records.len() / record;
        assert!(out.len() >= blocks * 4 * BLOCK);
        for b in 0..blocks {
            for row in 0..4 {
                // SAFETY: record b is within records, and its outputs within out (asserted above).
                unsafe {
                    let o = out.as_mut_ptr().add((4 * b + row) * BLOCK);
                    for (k, v) in widen_row::<FIFTH>(records.as_ptr().add(b * record), row).into_iter().enumerate() {
                        v128_store(o.add(8 * k) as *mut v128, v);
                    }
                }
            }
        }
    }

    /// One block of four rows: the integer sums times the rows' scales (`dm`, then their
    /// minimums at `dm + 4`) times the input's scale, plus the minimums times the input's
    /// block sum (`xds`: scale, then sum).
    #[inline(always)]
    unsafe fn scaled(sums: v128, dm: *const f32, xds: *const f32) -> v128 {
        let d = f32x4_mul(v128_load(dm as *const v128), v128_load32_splat(xds as *const u32));
        let m = f32x4_mul(v128_load(dm.add(4) as *const v128), v128_load32_splat(xds.add(1) as *const u32));
        f32x4_add(f32x4_mul(f32x4_convert_i32x4(sums), d), m)
    }


    /// One group's record at `p` against one input block.
    #[inline(always)]
    unsafe fn record_dot<const FIFTH: bool>(p: *const u8, x: *const i16, xds: *const f32, fence: *mut v128) -> v128 {
        let x = load4(x);
        let row = |r: usize| pinned(dot(widen_row::<FIFTH>(p, r), &x), fence);
        let ab = fold(row(0), row(1));
        let cd = fold(row(2), row(3));
        scaled(finish(ab, cd), p.add(scales_at(FIFTH)) as *const f32, xds)
    }

    /// A group of four rows (`records`, one per block) times one quantized input.
    #[inline(never)]
    pub fn dot4<const FIFTH: bool>(records: &[u8], x: &[i16], xds: &[f32]) -> [f32; 4] {
        let record = record_size(FIFTH);
        let bpr = records.len() / record;
        assert!(x.len() >= bpr * BLOCK && xds.len() >= 2 * bpr);
        let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let (mut p, mut x, mut xds) = (records.as_ptr(), x.as_ptr(), xds.as_ptr());
        let mut slot = i32x4_splat(0);
        let fence: *mut v128 = &mut slot;
        let mut left = bpr;
        // Two blocks per iteration: half the loop overhead (and Wasmtime's interruption check
        // at every loop header), and two independent accumulations.
        // SAFETY: each step reads the next one or two blocks of each stream, of which `left`
        // remain (asserted above).
        unsafe {
            while left >= 2 {
                acc0 = f32x4_add(acc0, record_dot::<FIFTH>(p, x, xds, fence));
                acc1 = f32x4_add(acc1, record_dot::<FIFTH>(p.add(record), x.add(BLOCK), xds.add(2), fence));
                (p, x, xds, left) = (p.add(2 * record), x.add(2 * BLOCK), xds.add(4), left - 2);
            }
            if left == 1 {
                acc0 = f32x4_add(acc0, record_dot::<FIFTH>(p, x, xds, fence));
            }
        }
        lanes(f32x4_add(acc0, acc1))
    }

    /// As [`dot4`] over four rows already unpacked to int16.
    #[inline(never)]
    pub fn dot4_unpacked(u: &Unpacked, x: &[i16], xds: &[f32]) -> [f32; 4] {
        let bpr = u.dm.len() / 8;
        assert!(u.w.len() >= bpr * 4 * BLOCK && x.len() >= bpr * BLOCK && xds.len() >= 2 * bpr);
        let mut acc = f32x4_splat(0.0);
        let (mut w, mut dm, mut x, mut xds) = (u.w.as_ptr(), u.dm.as_ptr(), x.as_ptr(), xds.as_ptr());
        // SAFETY: each step reads the next block of each stream, bpr of them (asserted above).
        unsafe {
            for _ in 0..bpr {
                let xv = load4(x);
                let ab = fold(dot(load4(w), &xv), dot(load4(w.add(BLOCK)), &xv));
                let cd = fold(dot(load4(w.add(2 * BLOCK)), &xv), dot(load4(w.add(3 * BLOCK)), &xv));
                acc = f32x4_add(acc, scaled(finish(ab, cd), dm, xds));
                (w, dm, x, xds) = (w.add(4 * BLOCK), dm.add(8), x.add(BLOCK), xds.add(2));
            }
        }
        lanes(acc)
    }

    /// One unpacked row against two inputs: each weight vector is loaded once for both.
    #[inline(always)]
    unsafe fn row_dot2(w: *const i16, x0: &[v128; 4], x1: &[v128; 4], fence: *mut v128) -> (v128, v128) {
        let (mut s0, mut s1) = (i32x4_splat(0), i32x4_splat(0));
        for k in 0..4 {
            let wk = core::ptr::read_volatile(w.add(8 * k) as *const v128);
            s0 = i32x4_add(s0, i32x4_dot_i16x8(wk, x0[k]));
            s1 = i32x4_add(s1, i32x4_dot_i16x8(wk, x1[k]));
        }
        pinned(i32x4_add(s0, s1), fence);
        (s0, s1)
    }

    /// [`dot4_unpacked`] for two inputs at once.
    #[inline(never)]
    pub fn dot4_unpacked2(u: &Unpacked, x: [(&[i16], &[f32]); 2]) -> [[f32; 4]; 2] {
        let bpr = u.dm.len() / 8;
        let [(x0, xds0), (x1, xds1)] = x;
        assert!(u.w.len() >= bpr * 4 * BLOCK);
        assert!(x0.len() >= bpr * BLOCK && xds0.len() >= 2 * bpr && x1.len() >= bpr * BLOCK && xds1.len() >= 2 * bpr);
        let (mut acc0, mut acc1) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let (mut w, mut dm) = (u.w.as_ptr(), u.dm.as_ptr());
        let mut slot = i32x4_splat(0);
        let fence: *mut v128 = &mut slot;
        let (mut x0, mut xds0, mut x1, mut xds1) = (x0.as_ptr(), xds0.as_ptr(), x1.as_ptr(), xds1.as_ptr());
        // SAFETY: each step reads the next block of each stream, bpr of them (asserted above).
        unsafe {
            for _ in 0..bpr {
                let (v0, v1) = (load4(x0), load4(x1));
                let (a0, a1) = row_dot2(w, &v0, &v1, fence);
                let (b0, b1) = row_dot2(w.add(BLOCK), &v0, &v1, fence);
                let (ab0, ab1) = (fold(a0, b0), fold(a1, b1));
                let (c0, c1) = row_dot2(w.add(2 * BLOCK), &v0, &v1, fence);
                let (d0, d1) = row_dot2(w.add(3 * BLOCK), &v0, &v1, fence);
                acc0 = f32x4_add(acc0, scaled(finish(ab0, fold(c0, d0)), dm, xds0));
                acc1 = f32x4_add(acc1, scaled(finish(ab1, fold(c1, d1)), dm, xds1));
                (w, dm) = (w.add(4 * BLOCK), dm.add(8));
                (x0, xds0, x1, xds1) = (x0.add(BLOCK), xds0.add(2), x1.add(BLOCK), xds1.add(2));
            }
        }
        [lanes(acc0), lanes(acc1)]
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod kernel {
    use super::{record_size, unpack_row, Unpacked, BLOCK};

    pub fn unpack_weights<const FIFTH: bool>(records: &[u8], out: &mut [i16]) {
        for (b, record) in records.chunks_exact(record_size(FIFTH)).enumerate() {
            for row in 0..4 {
                let mut q = [0u8; BLOCK];
                unpack_row::<FIFTH>(record, row, &mut q);
                for (o, &q) in out[(4 * b + row) * BLOCK..][..BLOCK].iter_mut().zip(&q) {
                    *o = q as i16;
                }
            }
        }
    }

    pub fn dot4<const FIFTH: bool>(records: &[u8], x: &[i16], xds: &[f32]) -> [f32; 4] {
        let mut unpacked = Unpacked::new(records.len() / record_size(FIFTH));
        unpacked.fill::<FIFTH>(records);
        dot4_unpacked(&unpacked, x, xds)
    }

    pub fn dot4_unpacked2(u: &Unpacked, x: [(&[i16], &[f32]); 2]) -> [[f32; 4]; 2] {
        x.map(|(x, xds)| dot4_unpacked(u, x, xds))
    }

    pub fn dot4_unpacked(u: &Unpacked, x: &[i16], xds: &[f32]) -> [f32; 4] {
        let mut out = [0f32; 4];
        for (b, (w, dm)) in u.w.chunks_exact(4 * BLOCK).zip(u.dm.chunks_exact(8)).enumerate() {
            let (xb, xd, xs) = (&x[b * BLOCK..(b + 1) * BLOCK], xds[2 * b], xds[2 * b + 1]);
            for (r, o) in out.iter_mut().enumerate() {
                let s: i32 = w[r * BLOCK..(r + 1) * BLOCK].iter().zip(xb).map(|(&a, &c)| a as i32 * c as i32).sum();
                *o += s as f32 * (dm[r] * xd) + dm[4 + r] * xs;
            }
        }
        out
    }
}

use kernel::{dot4, dot4_unpacked, dot4_unpacked2, unpack_weights};
