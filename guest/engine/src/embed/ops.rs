//! The encoder's element-wise and small vector operations, written as branch-free loops over
//! slices so LLVM vectorises them for SIMD128 and natively alike (libm's `expf`/`erff` would
//! be one scalar call per value).

/// Lanes of the partial sums in reductions: two 4-lane vectors in flight.
const LANES: usize = 8;

/// Values per loop iteration of the reductions and `axpy`: four `LANES` chunks written out,
/// so a 32-value attention head is one iteration. Each wasm loop iteration costs Wasmtime a
/// header (its interruption check, where the accumulators are spilled).
const UNROLL: usize = 4 * LANES;

/// Runs `step` on the start of every whole `LANES` chunk of `0..n`, in order, four chunks per
/// loop iteration while four remain; returns where the tail after the last chunk starts. The
/// reductions built on it add in the same order as one chunk per iteration.
#[inline(always)]
fn each_chunk(n: usize, mut step: impl FnMut(usize)) -> usize {
    let mut k = 0;
    while k + UNROLL <= n {
        for c in 0..UNROLL / LANES {
            step(k + c * LANES);
        }
        k += UNROLL;
    }
    while k + LANES <= n {
        step(k);
        k += LANES;
    }
    k
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let tail = each_chunk(n, |k| {
        let (x, y) = (&a[k..k + LANES], &b[k..k + LANES]);
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    });
    acc.iter().sum::<f32>() + a[tail..].iter().zip(&b[tail..]).map(|(x, y)| x * y).sum::<f32>()
}

fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let tail = each_chunk(a.len(), |k| {
        let x = &a[k..k + LANES];
        for i in 0..LANES {
            acc[i] += x[i];
        }
    });
    acc.iter().sum::<f32>() + a[tail..].iter().sum::<f32>()
}

/// The largest of `a` mapped through `f`, or `init` if larger (or `a` is empty). A compare
/// and select rather than `f32::max`, whose NaN rule has no SIMD128 instruction: in the
/// component that was a call to libm's `fmaxf` for every value.
#[inline(always)]
pub fn max_of(a: &[f32], init: f32, f: impl Fn(f32) -> f32) -> f32 {
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut acc = [init; LANES];
    let tail = each_chunk(a.len(), |k| {
        let x = &a[k..k + LANES];
        for i in 0..LANES {
            acc[i] = larger(acc[i], f(x[i]));
        }
    });
    let tail = a[tail..].iter().fold(init, |m, &v| larger(m, f(v)));
    acc.iter().fold(tail, |m, &v| larger(m, v))
}

/// `y += a * x`.
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    let tail = each_chunk(n, |k| {
        let (y, x) = (&mut y[k..k + LANES], &x[k..k + LANES]);
        for i in 0..LANES {
            y[i] += a * x[i];
        }
    });
    for (y, x) in y[tail..].iter_mut().zip(&x[tail..]) {
        *y += a * x;
    }
}

/// `x = layer_norm(x + residual) * gamma + beta` over one token.
pub fn add_layer_norm(x: &mut [f32], residual: Option<&[f32]>, gamma: &[f32], beta: &[f32], eps: f32) {
    if let Some(r) = residual {
        for (x, r) in x.iter_mut().zip(r) {
            *x += r;
        }
    }
    let n = x.len() as f32;
    let mean = sum(x) / n;
    for v in x.iter_mut() {
        *v -= mean;
    }
    let var = dot(x, x) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in x.iter_mut().zip(gamma).zip(beta) {
        *v = *v * inv * g + b;
    }
}

/// e^x to about 2 ulp for x in [-87, 88] (clamped outside): 2^n times a polynomial on
/// [-ln2/2, ln2/2].
#[inline(always)]
fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding and subtracting rounds to an integer.
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * 0.693_359_4) + n * 2.121_944_4e-4;
    // Cephes' expf polynomial (its 0.5 term is 0.50000001, the same f32).
    let p = 1.0
        + r
        + r * r * (0.5 + r * (0.166_666_65 + r * (0.041_665_796 + r * (0.008_333_452 + r * (0.001_398_2 + r * 0.000_198_756_91)))));
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// Softmax in place.
pub fn softmax(x: &mut [f32]) {
    let max = max_of(x, f32::NEG_INFINITY, |v| v);
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum(x);
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// The activations BERT configs name in `hidden_act`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// 0.5 x (1 + erf(x / sqrt 2)): `gelu`.
    GeluErf,
    /// The tanh approximation: `gelu_new`, `gelu_pytorch_tanh`.
    GeluTanh,
    Relu,
}

impl Activation {
    pub fn from_config(name: &str) -> Option<Self> {
        match name {
            "gelu" => Some(Activation::GeluErf),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }

    pub fn apply(self, x: &mut [f32]) {
        match self {
            Activation::GeluErf => x.iter_mut().for_each(|v| *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2))),
            Activation::GeluTanh => x.iter_mut().for_each(|v| {
                let u = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
                // tanh(u) = 1 - 2 / (e^2u + 1)
                *v = 0.5 * *v * (2.0 - 2.0 / (exp(2.0 * u) + 1.0));
            }),
            Activation::Relu => x.iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 }),
        }
    }
}

/// erf to 1.5e-7 absolute (Abramowitz & Stegun 7.1.26).
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t * (0.254_829_6 + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std_to_float_precision() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (got, want) = (exp(x), x.exp());
            assert!((got - want).abs() <= 4e-7 * want, "exp({x}) = {got}, want {want}");
        }
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        let xs: Vec<f32> = (-1000..=1000).map(|i| i as f32 / 100.0).collect();
        let mut got = xs.clone();
        Activation::GeluErf.apply(&mut got);
        for (x, g) in xs.iter().zip(got) {
            let want = 0.5 * *x as f64 * (1.0 + libm_erf(*x as f64 / std::f64::consts::SQRT_2));
            assert!((g as f64 - want).abs() <= 1e-6 * (1.0 + x.abs() as f64), "gelu({x}) = {g}, want {want}");
        }
    }

    /// erf by its Maclaurin series (1 - erf(4) is 1.5e-8): the reference for the test.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() > 4.0 {
            return x.signum();
        }
        let (mut term, mut total, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -x * x / n;
            total += term / (2.0 * n + 1.0);
        }
        total * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let mut x = vec![1.0, 3.0, -2.0, 0.5, 80.0, 79.0];
        softmax(&mut x);
        assert!((x.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(x[4] > x[5] && x[5] > x[1] && x[1] > x[0]);
    }

    #[test]
    fn layer_norm_normalises() {
        let mut x: Vec<f32> = (0..16).map(|i| i as f32 * 3.0 + 1.0).collect();
        add_layer_norm(&mut x, None, &[1.0; 16], &[0.0; 16], 1e-12);
        assert!(sum(&x).abs() < 1e-5 && (dot(&x, &x) / 16.0 - 1.0).abs() < 1e-5);
    }

    #[test]
    fn reductions_and_axpy_cover_unrolled_chunks_and_tails() {
        // Lengths with and without whole unrolled iterations, chunks and a scalar tail.
        for n in [0, 3, 8, 13, 32, 45, 64, 77] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 13) as f32 - 6.0) / 3.0).collect();
            let want_dot: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let want_sum: f64 = a.iter().map(|x| *x as f64).sum();
            assert!((dot(&a, &b) as f64 - want_dot).abs() < 1e-4, "dot, n = {n}");
            assert!((sum(&a) as f64 - want_sum).abs() < 1e-4, "sum, n = {n}");
            let want_max = a.iter().map(|x| x.abs()).fold(0.0, f32::max);
            assert_eq!(max_of(&a, 0.0, f32::abs), want_max, "max_of, n = {n}");
            let mut y = b.clone();
            axpy(&mut y, 0.5, &a);
            for i in 0..n {
                assert_eq!(y[i], b[i] + 0.5 * a[i], "axpy, n = {n}, i = {i}");
            }
        }
    }
}
