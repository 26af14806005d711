//! The BERT encoder: embeddings, then self-attention layers, over sentences packed one after
//! another (no padding). Dense layers see every token of every sentence in one product, so
//! the weights are read once per pass; attention runs per sentence at its own length.

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use super::ops::{add_layer_norm, axpy, dot, softmax, Activation};
use super::qgemm::{QMatrix, Quantized};
use crate::error::{EngineError, Result};

/// The fields of a Hugging Face BERT `config.json` the encoder uses.
#[derive(Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_position")]
    pub position_embedding_type: String,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_position() -> String {
    "absolute".into()
}

impl Config {
    /// Checks what the encoder relies on; names the offending field.
    pub fn validate(&self) -> Result<Activation> {
        let invalid = |m: String| Err(EngineError::InvalidModel(format!("config.json: {m}")));
        if self.hidden_size == 0 || self.num_attention_heads == 0 || !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return invalid(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.intermediate_size == 0 || self.vocab_size == 0 || self.max_position_embeddings == 0 || self.type_vocab_size == 0 {
            return invalid("intermediate_size, vocab_size, max_position_embeddings and type_vocab_size must be positive".into());
        }
        if self.position_embedding_type != "absolute" {
            return Err(EngineError::Unsupported(format!(
                "config.json: position_embedding_type {:?} (only \"absolute\")",
                self.position_embedding_type
            )));
        }
        Activation::from_config(&self.hidden_act)
            .ok_or_else(|| EngineError::Unsupported(format!("config.json: hidden_act {:?}", self.hidden_act)))
    }
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value stacked: one product for all three.
    qkv: QMatrix,
    attn_out: QMatrix,
    attn_norm: Norm,
    up: QMatrix,
    down: QMatrix,
    ffn_norm: Norm,
}

pub struct Encoder {
    hidden: usize,
    heads: usize,
    eps: f32,
    act: Activation,
    /// vocab x hidden.
    word: Vec<f32>,
    /// max_positions x hidden: position embedding plus token type 0 (every token is type 0).
    position: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
}

/// Named tensors of one safetensors file, as f32, shape-checked.
struct Tensors<'a> {
    file: &'a str,
    st: SafeTensors<'a>,
    /// "" or "bert." (checkpoints saved from `BertForX` models).
    prefix: &'static str,
}

impl Tensors<'_> {
    fn get(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let full = format!("{}{name}", self.prefix);
        let invalid = |m: String| EngineError::InvalidModel(format!("{}: tensor {full} {m}", self.file));
        let t = self.st.tensor(&full).map_err(|_| invalid("is missing".into()))?;
        if t.shape() != shape {
            return Err(invalid(format!("has shape {:?}, expected {shape:?}", t.shape())));
        }
        let data = t.data();
        Ok(match t.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            other => return Err(invalid(format!("is {other:?}; expected F32, F16 or BF16"))),
        })
    }

    fn norm(&self, name: &str, h: usize) -> Result<Norm> {
        Ok(Norm { gamma: self.get(&format!("{name}.weight"), &[h])?, beta: self.get(&format!("{name}.bias"), &[h])? })
    }

    /// Linear layers stacked row-wise into one matrix (rows = outputs, PyTorch's layout).
    fn linear(&self, names: &[&str], rows: usize, cols: usize) -> Result<QMatrix> {
        let (mut w, mut b) = (Vec::with_capacity(names.len() * rows * cols), Vec::with_capacity(names.len() * rows));
        for name in names {
            w.extend(self.get(&format!("{name}.weight"), &[rows, cols])?);
            b.extend(self.get(&format!("{name}.bias"), &[rows])?);
        }
        QMatrix::new(&w, names.len() * rows, cols, b).ok_or_else(|| {
            EngineError::Unsupported(format!("{}: {} has rows of {cols} values, too long for 32-bit integer sums", self.file, names[0]))
        })
    }
}

/// Buffers of one pass, sized for its tokens.
struct Scratch {
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    inter: Vec<f32>,
    scores: Vec<f32>,
    quant: Quantized,
}

impl Encoder {
    pub fn load(file: &str, bytes: &[u8], config: &Config, act: Activation) -> Result<Self> {
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| EngineError::InvalidModel(format!("{file}: not a valid safetensors file: {e}")))?;
        let prefix = if st.tensor("embeddings.word_embeddings.weight").is_err() && st.tensor("bert.embeddings.word_embeddings.weight").is_ok() {
            "bert."
        } else {
            ""
        };
        let t = Tensors { file, st, prefix };
        let (h, inter) = (config.hidden_size, config.intermediate_size);
        let word = t.get("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        let mut position = t.get("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?;
        let token_type = t.get("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
        for row in position.chunks_exact_mut(h) {
            for (p, t) in row.iter_mut().zip(&token_type[..h]) {
                *p += t;
            }
        }
        let emb_norm = t.norm("embeddings.LayerNorm", h)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let l = format!("encoder.layer.{i}");
                let qkv = [format!("{l}.attention.self.query"), format!("{l}.attention.self.key"), format!("{l}.attention.self.value")];
                Ok(Layer {
                    qkv: t.linear(&qkv.iter().map(String::as_str).collect::<Vec<_>>(), h, h)?,
                    attn_out: t.linear(&[&format!("{l}.attention.output.dense")], h, h)?,
                    attn_norm: t.norm(&format!("{l}.attention.output.LayerNorm"), h)?,
                    up: t.linear(&[&format!("{l}.intermediate.dense")], inter, h)?,
                    down: t.linear(&[&format!("{l}.output.dense")], h, inter)?,
                    ffn_norm: t.norm(&format!("{l}.output.LayerNorm"), h)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder {
            hidden: h,
            heads: config.num_attention_heads,
            eps: config.layer_norm_eps as f32,
            act,
            word,
            position,
            emb_norm,
            layers,
        })
    }

    /// Bytes of weights held.
    pub fn bytes(&self) -> u64 {
        let norm = |n: &Norm| ((n.gamma.len() + n.beta.len()) * 4) as u64;
        let layers: u64 = self
            .layers
            .iter()
            .map(|l| l.qkv.bytes() + l.attn_out.bytes() + l.up.bytes() + l.down.bytes() + norm(&l.attn_norm) + norm(&l.ffn_norm))
            .sum();
        ((self.word.len() + self.position.len()) * 4) as u64 + norm(&self.emb_norm) + layers
    }

    /// Hidden states (tokens x hidden) of sentences whose token ids are concatenated in `ids`,
    /// `lens[i]` tokens for sentence `i`.
    pub fn forward(&self, ids: &[u32], lens: &[usize]) -> Result<Vec<f32>> {
        let h = self.hidden;
        let n = ids.len();
        debug_assert_eq!(lens.iter().sum::<usize>(), n);
        let (vocab, positions) = (self.word.len() / h, self.position.len() / h);
        let mut x = vec![0f32; n * h];
        let mut t = 0;
        for &len in lens {
            if len > positions {
                return Err(EngineError::InvalidInput(format!("a text of {len} tokens; the model has {positions} positions")));
            }
            for p in 0..len {
                let id = ids[t] as usize;
                if id >= vocab {
                    return Err(EngineError::InvalidModel(format!("token id {id} is outside the {vocab} word embeddings")));
                }
                let row = &mut x[t * h..(t + 1) * h];
                for ((o, w), q) in row.iter_mut().zip(&self.word[id * h..(id + 1) * h]).zip(&self.position[p * h..(p + 1) * h]) {
                    *o = w + q;
                }
                add_layer_norm(row, None, &self.emb_norm.gamma, &self.emb_norm.beta, self.eps);
                t += 1;
            }
        }
        let inter = self.layers.first().map_or(0, |l| l.up.rows);
        let mut s = Scratch {
            qkv: vec![0f32; n * 3 * h],
            ctx: vec![0f32; n * h],
            tmp: vec![0f32; n * h],
            inter: vec![0f32; n * inter],
            scores: Vec::new(),
            quant: Quantized::default(),
        };
        for layer in &self.layers {
            layer.qkv.forward(&x, &mut s.qkv, &mut s.quant);
            self.attention(&s.qkv, lens, &mut s.ctx, &mut s.scores);
            layer.attn_out.forward(&s.ctx, &mut s.tmp, &mut s.quant);
            self.residual_norm(&mut s.tmp, &x, &layer.attn_norm);
            std::mem::swap(&mut x, &mut s.tmp);
            layer.up.forward(&x, &mut s.inter, &mut s.quant);
            self.act.apply(&mut s.inter);
            layer.down.forward(&s.inter, &mut s.tmp, &mut s.quant);
            self.residual_norm(&mut s.tmp, &x, &layer.ffn_norm);
            std::mem::swap(&mut x, &mut s.tmp);
        }
        Ok(x)
    }

    fn residual_norm(&self, x: &mut [f32], residual: &[f32], norm: &Norm) {
        let h = self.hidden;
        for (x, r) in x.chunks_exact_mut(h).zip(residual.chunks_exact(h)) {
            add_layer_norm(x, Some(r), &norm.gamma, &norm.beta, self.eps);
        }
    }

    /// Scaled dot-product attention of every head, each sentence attending to itself only.
    fn attention(&self, qkv: &[f32], lens: &[usize], ctx: &mut [f32], scores: &mut Vec<f32>) {
        let h = self.hidden;
        let dh = h / self.heads;
        let scale = 1.0 / (dh as f32).sqrt();
        let row = |t: usize, part: usize, head: usize| &qkv[t * 3 * h + part * h + head * dh..][..dh];
        let mut start = 0;
        for &len in lens {
            for head in 0..self.heads {
                for i in start..start + len {
                    let q = row(i, 0, head);
                    scores.clear();
                    scores.extend((start..start + len).map(|j| dot(q, row(j, 1, head)) * scale));
                    softmax(scores);
                    let out = &mut ctx[i * h + head * dh..][..dh];
                    out.fill(0.0);
                    for (j, &p) in (start..start + len).zip(scores.iter()) {
                        axpy(out, p, row(j, 2, head));
                    }
                }
            }
            start += len;
        }
    }
}
