//! Llama-family decoder (Llama, SmolLM, Mistral-style GQA) over quantized GGUF weights.
//!
//! Follows candle-transformers' `quantized_llama`, with three differences that matter here:
//! weights are immutable and shared (`Arc`), so several generations can run over one load;
//! the KV cache lives in a per-generation [`KvState`] sized to what that generation needs;
//! the token embedding stays quantized and rows are dequantized on lookup.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, IndexOp, Module, Tensor, D};
use candle_nn::kv_cache::KvCache;

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::text::q4::Q4Matrix;
use crate::text::q8::{Q8Matrix, QuantizedInput};
use crate::text::weights::{ConvertedWeights, Weight, WeightLoader};

/// Longest context a model may declare (Llama 3.1's 128k); the RoPE tables are built for it.
const MAX_CONTEXT: usize = 1 << 17;

pub struct LlamaConfig {
    pub architecture: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub embedding_length: usize,
    pub head_dim: usize,
    pub rope_dim: usize,
    pub rope_freq_base: f32,
    pub rms_eps: f64,
    pub context_length: usize,
    pub vocab_size: usize,
}

impl LlamaConfig {
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let arch = gguf.require_str("general.architecture")?.to_string();
        if !matches!(arch.as_str(), "llama" | "mistral") {
            return Err(EngineError::Unsupported(format!(
                "{}: architecture \"{arch}\"; this engine runs llama-family models (llama, mistral)",
                gguf.file_name
            )));
        }
        let key = |k: &str| format!("{arch}.{k}");
        let u = |k: &str| -> Result<usize> { Ok(gguf.require_u64(&key(k))? as usize) };
        let n_head = u("attention.head_count")?;
        let n_kv_head = gguf.get(&key("attention.head_count_kv")).and_then(|v| v.as_u64()).map(|v| v as usize).unwrap_or(n_head);
        let embedding_length = u("embedding_length")?;
        let n_layer = u("block_count")?;
        let context_length = u("context_length")?;
        let field_err = |what: &str| EngineError::InvalidModel(format!("{}: {what}", gguf.file_name));
        if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 || embedding_length % n_head != 0 {
            return Err(field_err(&format!(
                "{arch}.attention.head_count {n_head} / head_count_kv {n_kv_head} / embedding_length {embedding_length} are inconsistent"
            )));
        }
        if context_length > MAX_CONTEXT {
            return Err(EngineError::Unsupported(format!(
                "{}: {arch}.context_length is {context_length}; this engine handles up to {MAX_CONTEXT}",
                gguf.file_name
            )));
        }
        if n_layer == 0 || n_layer > 1024 || context_length == 0 {
            return Err(field_err(&format!("{arch}.block_count {n_layer} or context_length {context_length} out of range")));
        }
        let head_dim = embedding_length / n_head;
        let rope_dim = gguf.get(&key("rope.dimension_count")).and_then(|v| v.as_u64()).map(|v| v as usize).unwrap_or(head_dim);
        if rope_dim == 0 || rope_dim > head_dim || !rope_dim.is_multiple_of(2) {
            return Err(field_err(&format!("{arch}.rope.dimension_count {rope_dim} does not fit head size {head_dim}")));
        }
        let rms_eps = gguf.get(&key("attention.layer_norm_rms_epsilon")).and_then(|v| v.as_f64()).unwrap_or(1e-5);
        let rope_freq_base = gguf.get(&key("rope.freq_base")).and_then(|v| v.as_f64()).unwrap_or(10000.0) as f32;
        let vocab_size = gguf.require_tensor("token_embd.weight")?.dims.get(1).copied().unwrap_or(0);
        Ok(LlamaConfig {
            architecture: arch,
            n_layer,
            n_head,
            n_kv_head,
            embedding_length,
            head_dim,
            rope_dim,
            rope_freq_base,
            rms_eps,
            context_length,
            vocab_size,
        })
    }

    /// Bytes of KV cache per token of context (f32 keys and values, every layer).
    pub fn kv_bytes_per_token(&self) -> u64 {
        (self.n_layer * 2 * self.n_kv_head * self.head_dim * 4) as u64
    }
}

struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps as f32)
    }
}

/// A weight matrix: Q8_0 and Q4_1 in the fast layouts of [`Q8Matrix`] and [`Q4Matrix`] (where
/// their SIMD kernels run), anything else through candle; matrices that could not be stacked
/// into one stay parts whose outputs are concatenated.
enum Linear {
    Q8(Arc<Q8Matrix>),
    Q4(Arc<Q4Matrix>),
    Candle(QMatMul),
    Parts(Vec<Linear>),
}

impl Linear {
    fn new(w: Weight) -> Result<Self> {
        Ok(match w {
            Weight::Q8(m) => Linear::Q8(Arc::new(m)),
            Weight::Q4(m) => Linear::Q4(Arc::new(m)),
            Weight::Tensor(t) => Linear::Candle(QMatMul::from_qtensor(t)?),
        })
    }

    fn stacked(w: std::result::Result<Weight, Vec<Weight>>) -> Result<Self> {
        match w {
            Ok(w) => Linear::new(w),
            Err(parts) => Ok(Linear::Parts(parts.into_iter().map(Linear::new).collect::<Result<_>>()?)),
        }
    }

    fn bytes(&self) -> u64 {
        match self {
            Linear::Q8(m) => m.bytes(),
            Linear::Q4(m) => m.bytes(),
            Linear::Candle(QMatMul::QTensor(t)) => t.storage_size_in_bytes() as u64,
            Linear::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => (t.elem_count() * t.dtype().size_in_bytes()) as u64,
            Linear::Parts(parts) => parts.iter().map(Linear::bytes).sum(),
        }
    }

    /// Output width (rows of the weight matrix).
    fn out_len(&self) -> candle_core::Result<usize> {
        match self {
            Linear::Q8(m) => Ok(m.rows),
            Linear::Q4(m) => Ok(m.rows),
            Linear::Candle(QMatMul::QTensor(t)) => Ok(t.shape().dims2()?.0),
            Linear::Candle(QMatMul::Tensor(t) | QMatMul::TensorF16(t)) => Ok(t.dims2()?.0),
            Linear::Parts(parts) => parts.iter().map(Linear::out_len).sum(),
        }
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Linear::Candle(m) => m.forward(x),
            Linear::Q8(_) | Linear::Q4(_) => own_kernel_forward(x, std::slice::from_ref(self)),
            // Own-kernel parts write straight into one output: candle ops cost more in the
            // component than the products of these small matrices.
            Linear::Parts(parts) if parts.iter().all(|p| p.own_kernel().is_some()) => own_kernel_forward(x, parts),
            Linear::Parts(parts) => Tensor::cat(&parts.iter().map(|p| p.forward(x)).collect::<candle_core::Result<Vec<_>>>()?, D::Minus1),
        }
    }

    /// (rows, cols) of a matrix with an own kernel.
    fn own_kernel(&self) -> Option<(usize, usize)> {
        match self {
            Linear::Q8(m) => Some((m.rows, m.cols)),
            Linear::Q4(m) => Some((m.rows, m.cols)),
            _ => None,
        }
    }

    fn own_matmul(&self, x: &QuantizedInput, out: &mut [f32], stride: usize) {
        match self {
            Linear::Q8(m) => m.matmul_quantized(x, out, stride),
            Linear::Q4(m) => m.matmul_quantized(x, out, stride),
            _ => {}
        }
    }
}

/// `x` (.., cols) through own-kernel matrices side by side (their rows concatenated) over plain
/// f32 slices.
fn own_kernel_forward(x: &Tensor, parts: &[Linear]) -> candle_core::Result<Tensor> {
    let dims: Vec<(usize, usize)> = parts.iter().filter_map(Linear::own_kernel).collect();
    let cols = dims.first().map_or(0, |d| d.1);
    let total: usize = dims.iter().map(|d| d.0).sum();
    let mut shape = x.dims().to_vec();
    if dims.len() != parts.len() || dims.iter().any(|d| d.1 != cols) || shape.last() != Some(&cols) {
        candle_core::bail!("input of shape {shape:?} for weight matrices {dims:?}");
    }
    let xs: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let n = xs.len() / cols;
    // Quantized once for all the parts.
    let xs = QuantizedInput::new(&xs);
    let mut out = vec![0f32; n * total];
    let mut offset = 0;
    for (part, &(rows, _)) in parts.iter().zip(&dims) {
        part.own_matmul(&xs, &mut out[offset..], total);
        offset += rows;
    }
    if let Some(last) = shape.last_mut() {
        *last = total;
    }
    Tensor::from_vec(out, shape, &Device::Cpu)
}

/// Dequantizes one row of a matrix into a slice.
type RowLookup<'a> = &'a dyn Fn(usize, &mut [f32]);

/// Token embeddings: rows of the embedding matrix, looked up without dequantizing the table.
enum Embeddings {
    Q8(Arc<Q8Matrix>),
    Q4(Arc<Q4Matrix>),
    Candle(Arc<QTensor>),
}

impl Embeddings {
    fn lookup(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let (rows, cols, row): (usize, usize, RowLookup) = match self {
            Embeddings::Candle(t) => return t.embedding(&Tensor::new(ids, &Device::Cpu)?),
            Embeddings::Q8(m) => (m.rows, m.cols, &|i, out| m.row(i, out)),
            Embeddings::Q4(m) => (m.rows, m.cols, &|i, out| m.row(i, out)),
        };
        let mut out = vec![0f32; ids.len() * cols];
        for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(cols)) {
            if id as usize >= rows {
                candle_core::bail!("token id {id} is outside the embedding table of {rows} rows");
            }
            row(id as usize, dst);
        }
        Tensor::from_vec(out, (ids.len(), cols), &Device::Cpu)
    }
}

struct Layer {
    /// Q, K and V stacked: one matmul yields all three.
    wqkv: Linear,
    wo: Linear,
    attn_norm: RmsNorm,
    /// Gate and up projections stacked.
    w_gate_up: Linear,
    w_down: Linear,
    ffn_norm: RmsNorm,
}

/// The immutable weights of a loaded model.
pub struct Llama {
    pub config: LlamaConfig,
    token_embd: Embeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    cos: Tensor,
    sin: Tensor,
    pub weight_bytes: u64,
    pub parameters: u64,
    pub quantization: String,
    pub source_quantization: String,
}

/// The per-generation state: one KV cache per layer, sized for `capacity` tokens.
pub struct KvState {
    caches: Vec<KvCache>,
    pub capacity: usize,
    pub position: usize,
}

impl KvState {
    pub fn bytes(&self, config: &LlamaConfig) -> u64 {
        self.capacity as u64 * config.kv_bytes_per_token()
    }
}

impl Llama {
    pub fn load(config: LlamaConfig, weights: &mut ConvertedWeights, loader: &WeightLoader) -> Result<Self> {
        let device = Device::Cpu;
        let has_output = weights.contains("output.weight");
        let token_embd = weights.take("token_embd.weight")?;
        // Models with tied embeddings (SmolLM2) have no output.weight: share the same blocks.
        let (token_embd, tied) = match token_embd {
            Weight::Q8(m) => {
                let m = Arc::new(m);
                (Embeddings::Q8(m.clone()), Linear::Q8(m))
            }
            Weight::Tensor(t) => {
                let t = Arc::new(t);
                (Embeddings::Candle(t.clone()), Linear::Candle(QMatMul::from_arc(t)?))
            }
            Weight::Q4(m) => {
                let m = Arc::new(m);
                (Embeddings::Q4(m.clone()), Linear::Q4(m))
            }
        };
        let output = if has_output { Linear::new(weights.take("output.weight")?)? } else { tied };
        let norm = |name: &str, weights: &mut ConvertedWeights| -> Result<RmsNorm> {
            Ok(RmsNorm { weight: weights.take_f32(name)?, eps: config.rms_eps })
        };
        let mut layers = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            let p = format!("blk.{i}");
            let names = |parts: &[&str]| parts.iter().map(|n| format!("{p}.{n}.weight")).collect::<Vec<_>>();
            let wqkv = Linear::stacked(weights.take_stacked(&names(&["attn_q", "attn_k", "attn_v"]))?)?;
            let w_gate_up = Linear::stacked(weights.take_stacked(&names(&["ffn_gate", "ffn_up"]))?)?;
            let wo = Linear::new(weights.take(&format!("{p}.attn_output.weight"))?)?;
            let w_down = Linear::new(weights.take(&format!("{p}.ffn_down.weight"))?)?;
            layers.push(Layer {
                wqkv,
                wo,
                w_gate_up,
                w_down,
                attn_norm: norm(&format!("{p}.attn_norm.weight"), weights)?,
                ffn_norm: norm(&format!("{p}.ffn_norm.weight"), weights)?,
            });
        }
        let norm = norm("output_norm.weight", weights)?;
        let (cos, sin) = rope_tables(config.rope_dim, config.rope_freq_base, config.context_length, &device)?;
        // What is actually held (the Q8 layout keeps f32 scales), for memory-stats.
        let norms = (config.n_layer * 2 + 1) * config.embedding_length * 4;
        let weight_bytes = output.bytes()
            + layers.iter().map(|l| l.wqkv.bytes() + l.wo.bytes() + l.w_gate_up.bytes() + l.w_down.bytes()).sum::<u64>()
            + norms as u64
            + match (&token_embd, has_output) {
                (Embeddings::Candle(t), true) => t.storage_size_in_bytes() as u64,
                (Embeddings::Q8(m), true) => m.bytes(),
                (Embeddings::Q4(m), true) => m.bytes(),
                _ => 0, // tied: counted as the output matrix
            };
        Ok(Llama {
            token_embd,
            layers,
            norm,
            output,
            cos,
            sin,
            weight_bytes,
            parameters: loader.parameters,
            quantization: loader.dominant_held(),
            source_quantization: loader.dominant_source(),
            config,
        })
    }

    pub fn new_state(&self, capacity: usize) -> KvState {
        let capacity = capacity.min(self.config.context_length);
        KvState { caches: (0..self.config.n_layer).map(|_| KvCache::new(2, capacity)).collect(), capacity, position: 0 }
    }

    /// Runs `tokens` at the state's position and returns the logits of the last one.
    pub fn forward(&self, tokens: &[u32], state: &mut KvState) -> Result<Vec<f32>> {
        self.forward_logits(tokens, state, false)
    }

    /// As [`Llama::forward`], but the logits of every token, one vocabulary-sized row each.
    pub fn forward_all(&self, tokens: &[u32], state: &mut KvState) -> Result<Vec<f32>> {
        self.forward_logits(tokens, state, true)
    }

    fn forward_logits(&self, tokens: &[u32], state: &mut KvState, every_token: bool) -> Result<Vec<f32>> {
        let seq_len = tokens.len();
        if seq_len == 0 {
            return Err(EngineError::Internal("forward called with no tokens".into()));
        }
        if state.position + seq_len > state.capacity {
            return Err(EngineError::ResourceExhausted(format!(
                "the KV cache holds {} tokens; {} more do not fit after {}",
                state.capacity, seq_len, state.position
            )));
        }
        let logits = self.forward_inner(tokens, state, every_token).map_err(|e| EngineError::compute("llama forward", e))?;
        state.position += seq_len;
        Ok(logits)
    }

    fn forward_inner(&self, tokens: &[u32], state: &mut KvState, every_token: bool) -> candle_core::Result<Vec<f32>> {
        let device = Device::Cpu;
        let seq_len = tokens.len();
        let pos = state.position;
        let mut x = self.token_embd.lookup(tokens)?.unsqueeze(0)?; // (1, seq, hidden)
        let mask = if seq_len > 1 { Some(causal_mask(seq_len, pos, &device)?) } else { None };
        let cos = self.cos.narrow(0, pos, seq_len)?;
        let sin = self.sin.narrow(0, pos, seq_len)?;
        let c = &self.config;
        let (q_len, kv_len) = (c.n_head * c.head_dim, c.n_kv_head * c.head_dim);
        let n_rep = c.n_head / c.n_kv_head;
        let ffn_len = self.layers[0].w_gate_up.out_len()? / 2;
        // Grouped-query attention without copying K/V per query head: the query heads that
        // share a KV head become extra rows of that head's attention (n_rep * seq rows), so the
        // mask repeats once per query head of the group.
        let mask = match mask {
            Some(m) => Some(Tensor::cat(&vec![&m; n_rep], 2)?),
            None => None,
        };
        for (layer, cache) in self.layers.iter().zip(state.caches.iter_mut()) {
            let residual = &x;
            let h = layer.attn_norm.forward(&x)?;
            let qkv = layer.wqkv.forward(&h)?;
            let q = qkv.narrow(D::Minus1, 0, q_len)?.reshape((1, seq_len, c.n_head, c.head_dim))?.transpose(1, 2)?;
            let k = qkv.narrow(D::Minus1, q_len, kv_len)?.reshape((1, seq_len, c.n_kv_head, c.head_dim))?.transpose(1, 2)?;
            let v = qkv.narrow(D::Minus1, q_len + kv_len, kv_len)?.reshape((1, seq_len, c.n_kv_head, c.head_dim))?.transpose(1, 2)?.contiguous()?;
            let q = self.rope(&q, &cos, &sin)?;
            let k = self.rope(&k, &cos, &sin)?;
            let (k, v) = cache.append(&k, &v)?;
            let q = q.reshape((1, c.n_kv_head, n_rep * seq_len, c.head_dim))?;
            let att = (q.matmul(&k.t()?)? * (1.0 / (c.head_dim as f64).sqrt()))?;
            let att = match &mask {
                Some(m) => att.broadcast_add(m)?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v)?; // (1, n_kv, n_rep * seq, hd)
            let y = y.reshape((1, c.n_head, seq_len, c.head_dim))?.transpose(1, 2)?.reshape((1, seq_len, c.embedding_length))?;
            let x1 = (layer.wo.forward(&y)? + residual)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let gate_up = layer.w_gate_up.forward(&h)?;
            let gate = candle_nn::ops::silu(&gate_up.narrow(D::Minus1, 0, ffn_len)?)?;
            let up = gate_up.narrow(D::Minus1, ffn_len, ffn_len)?;
            x = (layer.w_down.forward(&(gate * up)?)? + &x1)?;
        }
        let x = if every_token { x } else { x.i((.., seq_len - 1..seq_len, ..))? };
        let x = self.norm.forward(&x)?;
        let logits = self.output.forward(&x)?;
        logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
    }

    /// Interleaved RoPE (llama convention) over the first `rope_dim` dimensions of each head.
    fn rope(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        let x = x.contiguous()?;
        let rope_dim = self.config.rope_dim;
        if rope_dim == self.config.head_dim {
            return candle_nn::rotary_emb::rope_i(&x, cos, sin);
        }
        let rotated = candle_nn::rotary_emb::rope_i(&x.narrow(D::Minus1, 0, rope_dim)?.contiguous()?, cos, sin)?;
        let rest = x.narrow(D::Minus1, rope_dim, self.config.head_dim - rope_dim)?;
        Tensor::cat(&[rotated, rest], D::Minus1)
    }
}

fn rope_tables(rope_dim: usize, base: f32, max_len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
    let inv_freq: Vec<f32> = (0..rope_dim).step_by(2).map(|i| 1f32 / base.powf(i as f32 / rope_dim as f32)).collect();
    let half = inv_freq.len();
    let mut angles = Vec::with_capacity(max_len * half);
    for p in 0..max_len {
        angles.extend(inv_freq.iter().map(|f| p as f32 * f));
    }
    let angles = Tensor::from_vec(angles, (max_len, half), device)?;
    Ok((angles.cos()?, angles.sin()?))
}

/// Additive mask: 0 where query i (at absolute position pos+i) may see key j, -inf elsewhere.
fn causal_mask(seq_len: usize, pos: usize, device: &Device) -> candle_core::Result<Tensor> {
    let kv_len = pos + seq_len;
    let mask: Vec<f32> = (0..seq_len)
        .flat_map(|i| (0..kv_len).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (1, 1, seq_len, kv_len), device)
}



/// Names a GGML block type the way llama.cpp does ("Q8_0", "Q4_K", "F32").
pub fn dtype_name(dtype: GgmlDType) -> String {
    match dtype {
        GgmlDType::Q2K => "Q2_K".into(),
        GgmlDType::Q3K => "Q3_K".into(),
        GgmlDType::Q4K => "Q4_K".into(),
        GgmlDType::Q5K => "Q5_K".into(),
        GgmlDType::Q6K => "Q6_K".into(),
        GgmlDType::Q8K => "Q8_K".into(),
        other => format!("{other:?}"),
    }
}
