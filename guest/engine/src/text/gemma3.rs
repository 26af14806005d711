//! Gemma 3 decoder, after llama.cpp's `models/gemma3.cpp`: embeddings scaled by sqrt(width);
//! RMS norms before and after both attention and FFN (the GGUF stores Gemma's (1 + w) norm
//! weights with the 1 already added); RMS-normed queries and keys; NeoX-style RoPE; local
//! layers attending over a sliding window with their own RoPE base, every `pattern`-th layer
//! global; a GELU-gated FFN; the output tied to the embeddings.

use candle_core::{DType, IndexOp, D};

use crate::error::Result;
use crate::text::decoder::{Decoder, DecoderConfig, DecoderShape, Hparams, KvState, WeightSummary};
use crate::text::layers::{attention, attention_mask, split_qkv, Embeddings, Linear, RmsNorm, Rope, RopeStyle};
use crate::text::weights::{ConvertedWeights, WeightLoader};

pub struct Gemma3Config {
    shape: DecoderShape,
    rms_eps: f64,
    /// Keys a local layer sees, the query's own included; `None` when every layer is global.
    sliding_window: Option<usize>,
    /// Every `pattern`-th layer (the last of each group) attends globally.
    pattern: usize,
    rope_base_global: f32,
    rope_base_local: f32,
    /// Linear RoPE scaling of the global layers (1 / `rope.scaling.factor`).
    rope_scale_global: f32,
    final_softcap: Option<f32>,
}

pub fn read_config(h: &Hparams) -> Result<Box<dyn DecoderConfig>> {
    let shape = h.shape()?;
    let sliding_window = match h.count_or("attention.sliding_window", 0, 0..=1 << 20)? {
        0 => None,
        n => Some(n),
    };
    let factor = h.float_or("rope.scaling.factor", 1.0, 1e-3..=1e6)?;
    let softcap = h.float_or("final_logit_softcapping", 0.0, 0.0..=1e6)?;
    Ok(Box::new(Gemma3Config {
        rms_eps: h.float_or("attention.layer_norm_rms_epsilon", 1e-6, 1e-12..=1e-1)?,
        sliding_window,
        pattern: h.count_or("attention.sliding_window_pattern", 6, 1..=1024)?,
        rope_base_global: h.float_or("rope.freq_base", 1e6, 1.0..=1e12)? as f32,
        rope_base_local: h.float_or("rope.freq_base_swa", 1e4, 1.0..=1e12)? as f32,
        rope_scale_global: (1.0 / factor) as f32,
        final_softcap: (softcap > 0.0).then_some(softcap as f32),
        shape,
    }))
}

struct Layer {
    /// Q, K and V stacked: one matmul yields all three.
    wqkv: Linear,
    wo: Linear,
    attn_norm: RmsNorm,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    attn_post_norm: RmsNorm,
    /// Gate and up projections stacked.
    w_gate_up: Linear,
    w_down: Linear,
    ffn_norm: RmsNorm,
    ffn_post_norm: RmsNorm,
    /// The sliding window of a local layer; `None` for a global one.
    window: Option<usize>,
}

pub struct Gemma3 {
    shape: DecoderShape,
    token_embd: Embeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope_global: Rope,
    rope_local: Rope,
    final_softcap: Option<f32>,
    weights: WeightSummary,
}

impl DecoderConfig for Gemma3Config {
    fn shape(&self) -> &DecoderShape {
        &self.shape
    }

    fn build(self: Box<Self>, weights: &mut ConvertedWeights, loader: &WeightLoader) -> Result<Box<dyn Decoder>> {
        let c = *self;
        let has_output = weights.contains("output.weight");
        let (token_embd, tied) = Embeddings::take_with_tied_output(weights, "token_embd.weight")?;
        let output = if has_output { Linear::take(weights, "output.weight")? } else { tied };
        let mut layers = Vec::with_capacity(c.shape.n_layer);
        for i in 0..c.shape.n_layer {
            let name = |n: &str| format!("blk.{i}.{n}.weight");
            let norm = |weights: &mut ConvertedWeights, n: &str| RmsNorm::take(weights, &name(n), c.rms_eps);
            let local = i % c.pattern < c.pattern - 1;
            layers.push(Layer {
                wqkv: Linear::take_stacked(weights, &[name("attn_q"), name("attn_k"), name("attn_v")])?,
                wo: Linear::take(weights, &name("attn_output"))?,
                w_gate_up: Linear::take_stacked(weights, &[name("ffn_gate"), name("ffn_up")])?,
                w_down: Linear::take(weights, &name("ffn_down"))?,
                attn_norm: norm(weights, "attn_norm")?,
                q_norm: norm(weights, "attn_q_norm")?,
                k_norm: norm(weights, "attn_k_norm")?,
                attn_post_norm: norm(weights, "post_attention_norm")?,
                ffn_norm: norm(weights, "ffn_norm")?,
                ffn_post_norm: norm(weights, "post_ffw_norm")?,
                window: c.sliding_window.filter(|_| local),
            });
        }
        let norm = RmsNorm::take(weights, "output_norm.weight", c.rms_eps)?;
        let layer_bytes = |l: &Layer| {
            [&l.wqkv, &l.wo, &l.w_gate_up, &l.w_down].iter().map(|m| m.bytes()).sum::<u64>()
                + [&l.attn_norm, &l.q_norm, &l.k_norm, &l.attn_post_norm, &l.ffn_norm, &l.ffn_post_norm].iter().map(|n| n.bytes()).sum::<u64>()
        };
        let weight_bytes = output.bytes() + layers.iter().map(layer_bytes).sum::<u64>() + norm.bytes() + if has_output { token_embd.bytes() } else { 0 };
        let head_dim = c.shape.head_dim;
        Ok(Box::new(Gemma3 {
            token_embd,
            layers,
            norm,
            output,
            rope_global: Rope::new(head_dim, c.rope_base_global, c.rope_scale_global, RopeStyle::Halves, c.shape.context_length)?,
            rope_local: Rope::new(head_dim, c.rope_base_local, 1.0, RopeStyle::Halves, c.shape.context_length)?,
            final_softcap: c.final_softcap,
            weights: loader.summary(weight_bytes),
            shape: c.shape,
        }))
    }
}

impl Decoder for Gemma3 {
    fn shape(&self) -> &DecoderShape {
        &self.shape
    }

    fn weights(&self) -> &WeightSummary {
        &self.weights
    }

    fn run(&self, tokens: &[u32], state: &mut KvState, every_token: bool) -> candle_core::Result<Vec<f32>> {
        let seq_len = tokens.len();
        let pos = state.position;
        let c = &self.shape;
        let n_rep = c.n_head / c.n_kv_head;
        let embedded = self.token_embd.lookup(tokens)?.unsqueeze(0)?;
        let mut x = (embedded * (c.embedding_length as f64).sqrt())?;
        let global_angles = self.rope_global.angles(pos, seq_len)?;
        let local_angles = self.rope_local.angles(pos, seq_len)?;
        let global_mask = attention_mask(seq_len, pos, None, n_rep)?;
        let window = self.layers.iter().find_map(|l| l.window);
        let local_mask = match window {
            Some(w) => attention_mask(seq_len, pos, Some(w), n_rep)?,
            None => None,
        };
        // Queries scaled before the product, as Gemma does (query_pre_attn_scalar = head_dim).
        let q_scale = 1.0 / (c.head_dim as f64).sqrt();
        let ffn_len = self.layers[0].w_gate_up.out_len()? / 2;
        for (layer, cache) in self.layers.iter().zip(state.caches.iter_mut()) {
            let (rope, angles, mask) = match layer.window {
                Some(_) => (&self.rope_local, &local_angles, local_mask.as_ref()),
                None => (&self.rope_global, &global_angles, global_mask.as_ref()),
            };
            let h = layer.attn_norm.forward(&x)?;
            let (q, k, v) = split_qkv(&layer.wqkv.forward(&h)?, c.n_head, c.n_kv_head, c.head_dim)?;
            let q = (rope.apply(&layer.q_norm.forward(&q)?, angles)? * q_scale)?;
            let k = rope.apply(&layer.k_norm.forward(&k)?, angles)?;
            let y = attention(&q, &k, &v, cache, mask, 1.0)?;
            let x1 = (layer.attn_post_norm.forward(&layer.wo.forward(&y)?)? + &x)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let gate_up = layer.w_gate_up.forward(&h)?;
            // GELU with the tanh approximation, as ggml's and Gemma's own.
            let gate = gate_up.narrow(D::Minus1, 0, ffn_len)?.gelu()?;
            let up = gate_up.narrow(D::Minus1, ffn_len, ffn_len)?;
            let ffn = layer.w_down.forward(&(gate * up)?)?;
            x = (layer.ffn_post_norm.forward(&ffn)? + &x1)?;
        }
        let x = if every_token { x } else { x.i((.., seq_len - 1..seq_len, ..))? };
        let x = self.norm.forward(&x)?;
        let mut logits = self.output.forward(&x)?;
        if let Some(cap) = self.final_softcap {
            logits = ((logits / cap as f64)?.tanh()? * cap as f64)?;
        }
        logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
    }
}
