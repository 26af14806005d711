//! SIMD128 building blocks the quantized kernels (`q4`, `q8`) share: int16 dot products of
//! a block, folding four rows' lane sums into one vector, and the fence that orders Cranelift's
//! code.

use core::arch::wasm32::*;

/// Stores `v` to a scratch slot nobody reads, and returns it. Cranelift keeps loads and stores
/// in program order and computes pure values just before their first use by one, so without
/// such stores every load of a loop body is issued first and the vectors they fill are spilled;
/// a volatile store after each row makes its arithmetic happen there. (Loads that must stay
/// behind it are volatile too, so LLVM keeps the order.)
#[inline(always)]
pub unsafe fn pinned(v: v128, fence: *mut v128) -> v128 {
    core::ptr::write_volatile(fence, v);
    v
}

/// A block's 32 int16 values as four vectors.
#[inline(always)]
pub unsafe fn load4(x: *const i16) -> [v128; 4] {
    [0, 8, 16, 24].map(|k| v128_load(x.add(k) as *const v128))
}

/// sum(w * x) of four int16 weight vectors against a block's four input vectors, as four i32
/// lanes.
#[inline(always)]
pub fn dot(w: [v128; 4], x: &[v128; 4]) -> v128 {
    let s = i32x4_add(i32x4_dot_i16x8(w[0], x[0]), i32x4_dot_i16x8(w[1], x[1]));
    i32x4_add(s, i32x4_add(i32x4_dot_i16x8(w[2], x[2]), i32x4_dot_i16x8(w[3], x[3])))
}

/// Two rows' lane sums folded to [a0+a2, b0+b2, a1+a3, b1+b3].
#[inline(always)]
pub fn fold(a: v128, b: v128) -> v128 {
    i32x4_add(i32x4_shuffle::<0, 4, 1, 5>(a, b), i32x4_shuffle::<2, 6, 3, 7>(a, b))
}

/// Four rows' sums from two folds: [sum(a), sum(b), sum(c), sum(d)].
#[inline(always)]
pub fn finish(ab: v128, cd: v128) -> v128 {
    i32x4_add(i32x4_shuffle::<0, 1, 4, 5>(ab, cd), i32x4_shuffle::<2, 3, 6, 7>(ab, cd))
}

/// The four lanes of an f32 vector.
#[inline(always)]
pub fn lanes(v: v128) -> [f32; 4] {
    [f32x4_extract_lane::<0>(v), f32x4_extract_lane::<1>(v), f32x4_extract_lane::<2>(v), f32x4_extract_lane::<3>(v)]
}
