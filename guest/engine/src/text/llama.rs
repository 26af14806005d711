//! Llama-family decoder (Llama, SmolLM, Mistral-style GQA), after candle-transformers'
//! `quantized_llama`: pre-norm blocks, SiLU-gated FFN, interleaved RoPE, an output matrix or
//! tied embeddings.

use candle_core::{DType, IndexOp, Tensor, D};

use crate::error::Result;
use crate::text::decoder::{Decoder, DecoderConfig, DecoderShape, Hparams, KvState, WeightSummary};
use crate::text::layers::{attention, attention_mask, split_qkv, Embeddings, Linear, RmsNorm, Rope, RopeStyle};
use crate::text::weights::{ConvertedWeights, WeightLoader};

pub struct LlamaConfig {
    shape: DecoderShape,
    rope_dim: usize,
    rope_freq_base: f32,
    rms_eps: f64,
}

pub fn read_config(h: &Hparams) -> Result<Box<dyn DecoderConfig>> {
    let shape = h.shape()?;
    let rope_dim = h.count_or("rope.dimension_count", shape.head_dim, 2..=shape.head_dim)?;
    if !rope_dim.is_multiple_of(2) {
        return Err(h.invalid("rope.dimension_count", &format!("is {rope_dim}; RoPE rotates pairs, so it must be even")));
    }
    Ok(Box::new(LlamaConfig {
        rope_dim,
        rope_freq_base: h.float_or("rope.freq_base", 10000.0, 1.0..=1e12)? as f32,
        rms_eps: h.float_or("attention.layer_norm_rms_epsilon", 1e-5, 1e-12..=1e-1)?,
        shape,
    }))
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

pub struct Llama {
    shape: DecoderShape,
    token_embd: Embeddings,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: Linear,
    rope: Rope,
    weights: WeightSummary,
}

impl DecoderConfig for LlamaConfig {
    fn shape(&self) -> &DecoderShape {
        &self.shape
    }

    fn build(self: Box<Self>, weights: &mut ConvertedWeights, loader: &WeightLoader) -> Result<Box<dyn Decoder>> {
        let c = *self;
        let has_output = weights.contains("output.weight");
        // Models with tied embeddings (SmolLM2) have no output.weight: share the same blocks.
        let (token_embd, tied) = Embeddings::take_with_tied_output(weights, "token_embd.weight")?;
        let output = if has_output { Linear::take(weights, "output.weight")? } else { tied };
        let mut layers = Vec::with_capacity(c.shape.n_layer);
        for i in 0..c.shape.n_layer {
            let name = |n: &str| format!("blk.{i}.{n}.weight");
            layers.push(Layer {
                wqkv: Linear::take_stacked(weights, &[name("attn_q"), name("attn_k"), name("attn_v")])?,
                wo: Linear::take(weights, &name("attn_output"))?,
                w_gate_up: Linear::take_stacked(weights, &[name("ffn_gate"), name("ffn_up")])?,
                w_down: Linear::take(weights, &name("ffn_down"))?,
                attn_norm: RmsNorm::take(weights, &name("attn_norm"), c.rms_eps)?,
                ffn_norm: RmsNorm::take(weights, &name("ffn_norm"), c.rms_eps)?,
            });
        }
        let norm = RmsNorm::take(weights, "output_norm.weight", c.rms_eps)?;
        // What is actually held (the Q8 layout keeps f32 scales), for memory-stats; tied
        // embeddings are counted once, as the output matrix.
        let weight_bytes = output.bytes()
            + layers
                .iter()
                .map(|l| l.wqkv.bytes() + l.wo.bytes() + l.w_gate_up.bytes() + l.w_down.bytes() + l.attn_norm.bytes() + l.ffn_norm.bytes())
                .sum::<u64>()
            + norm.bytes()
            + if has_output { token_embd.bytes() } else { 0 };
        Ok(Box::new(Llama {
            token_embd,
            layers,
            norm,
            output,
            rope: Rope::new(c.rope_dim, c.rope_freq_base, 1.0, RopeStyle::Interleaved, c.shape.context_length)?,
            weights: loader.summary(weight_bytes),
            shape: c.shape,
        }))
    }
}

impl Decoder for Llama {
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
        let mut x = self.token_embd.lookup(tokens)?.unsqueeze(0)?; // (1, seq, hidden)
        let mask = attention_mask(seq_len, pos, None, c.n_head / c.n_kv_head)?;
        let angles = self.rope.angles(pos, seq_len)?;
        let ffn_len = self.layers[0].w_gate_up.out_len()? / 2;
        let scale = 1.0 / (c.head_dim as f64).sqrt();
        for (layer, cache) in self.layers.iter().zip(state.caches.iter_mut()) {
            let h = layer.attn_norm.forward(&x)?;
            let (q, k, v) = split_qkv(&layer.wqkv.forward(&h)?, c.n_head, c.n_kv_head, c.head_dim)?;
            let q = self.rope.apply(&q, &angles)?;
            let k = self.rope.apply(&k, &angles)?;
            let y = attention(&q, &k, &v, cache, mask.as_ref(), scale)?;
            let x1 = (layer.wo.forward(&y)? + &x)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let gate_up = layer.w_gate_up.forward(&h)?;
            let gate = candle_nn::ops::silu(&gate_up.narrow(D::Minus1, 0, ffn_len)?)?;
            let up = gate_up.narrow(D::Minus1, ffn_len, ffn_len)?;
            x = (layer.w_down.forward(&(gate * up)?)? + &x1)?;
        }
        let x = if every_token { x } else { x.i((.., seq_len - 1..seq_len, ..))? };
        let x = self.norm.forward(&x)?;
        let logits: Tensor = self.output.forward(&x)?;
        logits.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()
    }
}
