//! Building blocks the architecture files assemble: weight matrices over whichever kernel holds
//! their blocks, token embeddings looked up by row, RMS norms, rotary position embeddings,
//! attention masks and grouped-query attention over a KV cache. Nothing here knows an
//! architecture or a GGUF key.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Module, Tensor, D};
use candle_nn::kv_cache::KvCache;

use crate::error::Result;
use crate::text::blocks::OwnMatrix;
use crate::text::q8::QuantizedInput;
use crate::text::weights::{ConvertedWeights, Weight};

pub struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    pub fn take(weights: &mut ConvertedWeights, name: &str, eps: f64) -> Result<Self> {
        Ok(RmsNorm { weight: weights.take_f32(name)?, eps: eps as f32 })
    }

    /// Normalizes over the last dimension, whatever the leading ones (tokens, heads).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)
    }

    pub fn bytes(&self) -> u64 {
        (self.weight.elem_count() * 4) as u64
    }
}

/// A weight matrix: in an own layout where its SIMD kernel runs (see `blocks.rs`), anything
/// else through candle; matrices that could not be stacked into one stay parts whose outputs
/// are concatenated.
pub enum Linear {
    Own(Arc<dyn OwnMatrix>),
    Candle(QMatMul),
    Parts(Vec<Linear>),
}

impl Linear {
    pub fn new(w: Weight) -> Result<Self> {
        Ok(match w {
            Weight::Own(m) => Linear::Own(Arc::from(m)),
            Weight::Tensor(t) => Linear::Candle(QMatMul::from_qtensor(t)?),
        })
    }

    pub fn take(weights: &mut ConvertedWeights, name: &str) -> Result<Self> {
        Linear::new(weights.take(name)?)
    }

    /// Matrices with the same input width (Q, K and V, say) as one: a single matmul where the
    /// blocks allow stacking, else parts side by side.
    pub fn take_stacked(weights: &mut ConvertedWeights, names: &[String]) -> Result<Self> {
        match weights.take_stacked(names)? {
            Ok(w) => Linear::new(w),
            Err(parts) => Ok(Linear::Parts(parts.into_iter().map(Linear::new).collect::<Result<_>>()?)),
        }
    }

    pub fn bytes(&self) -> u64 {
        match self {
            Linear::Own(m) => m.bytes(),
            Linear::Candle(QMatMul::QTensor(t)) => t.storage_size_in_bytes() as u64,
            Linear::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => (t.elem_count() * t.dtype().size_in_bytes()) as u64,
            Linear::Parts(parts) => parts.iter().map(Linear::bytes).sum(),
        }
    }

    /// Output width (rows of the weight matrix).
    pub fn out_len(&self) -> candle_core::Result<usize> {
        match self {
            Linear::Own(m) => Ok(m.rows()),
            Linear::Candle(QMatMul::QTensor(t)) => Ok(t.shape().dims2()?.0),
            Linear::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => Ok(t.dims2()?.0),
            Linear::Parts(parts) => parts.iter().map(Linear::out_len).sum(),
        }
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Candle(m) => m.forward(x),
            Linear::Own(_) => own_kernel_forward(x, std::slice::from_ref(self)),
            // Own-kernel parts write straight into one output: candle ops cost more in the
            // component than the products of these small matrices.
            Linear::Parts(parts) if parts.iter().all(|p| p.own_kernel().is_some()) => own_kernel_forward(x, parts),
            Linear::Parts(parts) => Tensor::cat(&parts.iter().map(|p| p.forward(x)).collect::<candle_core::Result<Vec<_>>>()?, D::Minus1),
        }
    }

    /// The matrix, if it has an own kernel.
    fn own_kernel(&self) -> Option<&dyn OwnMatrix> {
        match self {
            Linear::Own(m) => Some(m.as_ref()),
            _ => None,
        }
    }
}

/// `x` (.., cols) through own-kernel matrices side by side (their rows concatenated) over plain
/// f32 slices.
fn own_kernel_forward(x: &Tensor, parts: &[Linear]) -> candle_core::Result<Tensor> {
    let matrices: Vec<&dyn OwnMatrix> = parts.iter().filter_map(Linear::own_kernel).collect();
    let cols = matrices.first().map_or(0, |m| m.cols());
    let total: usize = matrices.iter().map(|m| m.rows()).sum();
    let mut shape = x.dims().to_vec();
    if matrices.len() != parts.len() || matrices.iter().any(|m| m.cols() != cols) || shape.last() != Some(&cols) {
        let dims: Vec<(usize, usize)> = matrices.iter().map(|m| (m.rows(), m.cols())).collect();
        candle_core::bail!("input of shape {shape:?} for weight matrices {dims:?}");
    }
    let xs: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let n = xs.len() / cols;
    // Quantized once for all the parts.
    let xs = QuantizedInput::new(&xs);
    let mut out = vec![0f32; n * total];
    let mut offset = 0;
    for m in matrices {
        m.matmul_quantized(&xs, &mut out[offset..], total);
        offset += m.rows();
    }
    if let Some(last) = shape.last_mut() {
        *last = total;
    }
    Tensor::from_vec(out, shape, &Device::Cpu)
}

/// Token embeddings: rows of the embedding matrix, looked up without dequantizing the table.
pub enum Embeddings {
    Own(Arc<dyn OwnMatrix>),
    Candle(Arc<QTensor>),
}

impl Embeddings {
    /// The token embedding table and, for models whose output matrix is the same one (tied
    /// embeddings), that matrix sharing its blocks.
    pub fn take_with_tied_output(weights: &mut ConvertedWeights, name: &str) -> Result<(Self, Linear)> {
        Ok(match weights.take(name)? {
            Weight::Own(m) => {
                let m: Arc<dyn OwnMatrix> = Arc::from(m);
                (Embeddings::Own(m.clone()), Linear::Own(m))
            }
            Weight::Tensor(t) => {
                let t = Arc::new(t);
                (Embeddings::Candle(t.clone()), Linear::Candle(QMatMul::from_arc(t)?))
            }
        })
    }

    pub fn bytes(&self) -> u64 {
        match self {
            Embeddings::Candle(t) => t.storage_size_in_bytes() as u64,
            Embeddings::Own(m) => m.bytes(),
        }
    }

    /// (tokens, width) rows for `ids`.
    pub fn lookup(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let m = match self {
            Embeddings::Candle(t) => {
                let rows = t.shape().dims2()?.0;
                if let Some(bad) = ids.iter().find(|&&id| id as usize >= rows) {
                    candle_core::bail!("token id {bad} is outside the embedding table of {rows} rows");
                }
                return t.embedding(&Tensor::new(ids, &Device::Cpu)?);
            }
            Embeddings::Own(m) => m,
        };
        let (rows, cols) = (m.rows(), m.cols());
        let mut out = vec![0f32; ids.len() * cols];
        for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(cols)) {
            if id as usize >= rows {
                candle_core::bail!("token id {id} is outside the embedding table of {rows} rows");
            }
            m.row(id as usize, dst);
        }
        Tensor::from_vec(out, (ids.len(), cols), &Device::Cpu)
    }
}

/// Which dimensions of a head RoPE rotates together.
#[derive(Clone, Copy)]
pub enum RopeStyle {
    /// Pairs (0,1), (2,3), ...: llama's original layout (ggml's normal mode).
    Interleaved,
    /// Pairs (i, i + dim/2): GPT-NeoX's layout, used by Gemma, Qwen and Phi.
    Halves,
}

/// Rotary position embeddings over the first `dim` dimensions of each head. The angles of the
/// first positions are tabled (up to [`ROPE_TABLE_BYTES`] per base: all 8k positions of
/// SmolLM2, the first 2k of Gemma's 256-wide heads); later positions are computed per call,
/// which for a 32k-context model spares tens of MB per distinct base.
pub struct Rope {
    inv_freq: Vec<f32>,
    dim: usize,
    style: RopeStyle,
    /// cos and sin for positions `0..tabled`, (tabled, dim / 2) each.
    table: (Tensor, Tensor),
    tabled: usize,
}

/// Bytes of cos and sin tables one [`Rope`] holds.
const ROPE_TABLE_BYTES: usize = 2 << 20;

impl Rope {
    /// `freq_scale` multiplies every angle (linear RoPE scaling; 1.0 for none); `context` is
    /// the longest sequence the model runs.
    pub fn new(dim: usize, base: f32, freq_scale: f32, style: RopeStyle, context: usize) -> candle_core::Result<Self> {
        let inv_freq: Vec<f32> = (0..dim).step_by(2).map(|i| freq_scale / base.powf(i as f32 / dim as f32)).collect();
        let tabled = context.min(ROPE_TABLE_BYTES / (inv_freq.len() * 8).max(1));
        let table = compute_angles(&inv_freq, 0, tabled)?;
        Ok(Rope { inv_freq, dim, style, table, tabled })
    }

    /// cos and sin of the angles at positions `pos..pos + len`, (len, dim / 2) each.
    pub fn angles(&self, pos: usize, len: usize) -> candle_core::Result<(Tensor, Tensor)> {
        if pos + len <= self.tabled {
            return Ok((self.table.0.narrow(0, pos, len)?, self.table.1.narrow(0, pos, len)?));
        }
        compute_angles(&self.inv_freq, pos, len)
    }

    /// Rotates `x` (batch, heads, tokens, head_dim) by the angles from [`Rope::angles`].
    pub fn apply(&self, x: &Tensor, (cos, sin): &(Tensor, Tensor)) -> candle_core::Result<Tensor> {
        let x = x.contiguous()?;
        let head_dim = x.dim(D::Minus1)?;
        let rotate = |x: &Tensor| match self.style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(x, cos, sin),
            RopeStyle::Halves => candle_nn::rotary_emb::rope(x, cos, sin),
        };
        if self.dim == head_dim {
            return rotate(&x);
        }
        let rotated = rotate(&x.narrow(D::Minus1, 0, self.dim)?.contiguous()?)?;
        let rest = x.narrow(D::Minus1, self.dim, head_dim - self.dim)?;
        Tensor::cat(&[rotated, rest], D::Minus1)
    }
}

fn compute_angles(inv_freq: &[f32], pos: usize, len: usize) -> candle_core::Result<(Tensor, Tensor)> {
    let mut angles = Vec::with_capacity(len * inv_freq.len());
    for p in pos..pos + len {
        angles.extend(inv_freq.iter().map(|f| p as f32 * f));
    }
    let angles = Tensor::from_vec(angles, (len, inv_freq.len()), &Device::Cpu)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// Additive attention mask for `seq_len` queries at positions `pos..` over every key so far: 0
/// where query i may see key j (j at or before it, and within `window` positions when the
/// attention slides), -inf elsewhere. `None` when nothing would be masked (one query that sees
/// every key), which spares the add. Repeated `n_rep` times along the query rows for
/// [`attention`]'s grouped layout.
pub fn attention_mask(seq_len: usize, pos: usize, window: Option<usize>, n_rep: usize) -> candle_core::Result<Option<Tensor>> {
    let kv_len = pos + seq_len;
    let window = window.unwrap_or(usize::MAX);
    if seq_len == 1 && kv_len <= window {
        return Ok(None);
    }
    let visible = |i: usize, j: usize| j <= pos + i && pos + i - j < window;
    let row = |i: usize| (0..kv_len).map(move |j| if visible(i, j) { 0.0 } else { f32::NEG_INFINITY });
    let mask: Vec<f32> = (0..n_rep).flat_map(|_| (0..seq_len).flat_map(row)).collect();
    Ok(Some(Tensor::from_vec(mask, (1, 1, n_rep * seq_len, kv_len), &Device::Cpu)?))
}

/// Grouped-query attention of `q` (1, heads, tokens, head_dim) over the cache after appending
/// `k` and `v` (1, kv_heads, tokens, head_dim); the scores are multiplied by `scale` (1.0 where
/// the architecture scales `q` itself). The query heads that share a KV head become extra rows
/// of that head's attention, so K/V are never copied per query head. Returns (1, tokens,
/// heads * head_dim).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, cache: &mut KvCache, mask: Option<&Tensor>, scale: f64) -> candle_core::Result<Tensor> {
    let (_, n_head, seq_len, head_dim) = q.dims4()?;
    let n_kv_head = k.dim(1)?;
    let (k, v) = cache.append(&k.contiguous()?, &v.contiguous()?)?;
    let q = q.contiguous()?.reshape((1, n_kv_head, n_head / n_kv_head * seq_len, head_dim))?;
    let att = q.matmul(&k.t()?)?;
    let att = if scale == 1.0 { att } else { (att * scale)? };
    let att = match mask {
        Some(m) => att.broadcast_add(m)?,
        None => att,
    };
    let att = candle_nn::ops::softmax_last_dim(&att)?;
    let y = att.matmul(&v)?; // (1, n_kv, n_rep * seq, hd)
    y.reshape((1, n_head, seq_len, head_dim))?.transpose(1, 2)?.reshape((1, seq_len, n_head * head_dim))
}

/// Splits the stacked Q|K|V projection (1, tokens, (heads + 2 kv_heads) * head_dim) into
/// (1, heads, tokens, head_dim) and twice (1, kv_heads, tokens, head_dim).
pub fn split_qkv(qkv: &Tensor, n_head: usize, n_kv_head: usize, head_dim: usize) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let seq_len = qkv.dim(1)?;
    let (q_len, kv_len) = (n_head * head_dim, n_kv_head * head_dim);
    let heads = |start: usize, len: usize, n: usize| -> candle_core::Result<Tensor> {
        qkv.narrow(D::Minus1, start, len)?.reshape((1, seq_len, n, head_dim))?.transpose(1, 2)
    };
    Ok((heads(0, q_len, n_head)?, heads(q_len, kv_len, n_kv_head)?, heads(q_len + kv_len, kv_len, n_kv_head)?))
}
