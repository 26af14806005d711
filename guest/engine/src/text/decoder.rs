//! The seam between generation and the architectures: token ids in, logits out, the KV cache
//! held by the caller in a [`KvState`] (the execution context), so the same loop could drive a
//! forward pass served elsewhere (a host's wasi-nn backend, say). Generation, scoring, memory
//! accounting and model-info go only through [`Decoder`]; each architecture is one file that
//! reads its own GGUF keys and implements it, named once in [`ARCHITECTURES`].

use std::ops::RangeInclusive;

use candle_nn::kv_cache::KvCache;

use crate::error::{EngineError, Result};
use crate::gguf::GgufFile;
use crate::text::weights::{ConvertedWeights, WeightLoader};
use crate::text::{gemma3, llama};

/// Reads an architecture's hyperparameters from the file, before any weight is converted.
type ReadConfig = fn(&Hparams<'_>) -> Result<Box<dyn DecoderConfig>>;

/// Every architecture the engine runs, by `general.architecture`. A new one is a file with a
/// `read_config` and one line here.
const ARCHITECTURES: &[(&str, ReadConfig)] = &[
    ("llama", llama::read_config),
    ("mistral", llama::read_config),
    ("gemma3", gemma3::read_config),
];

/// What every decoder reports about its shape: what the generation loop, scoring, the memory
/// checks and model-info need, whatever the architecture.
#[derive(Clone, Debug)]
pub struct DecoderShape {
    pub architecture: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub embedding_length: usize,
    pub feed_forward_length: usize,
    pub context_length: usize,
    pub vocab_size: usize,
}

impl DecoderShape {
    /// Bytes of KV cache per token of context (f32 keys and values, every layer).
    pub fn kv_bytes_per_token(&self) -> u64 {
        (self.n_layer * 2 * self.n_kv_head * self.head_dim * 4) as u64
    }

    /// Activations of a forward pass over `tokens` tokens against `context` keys, with room for
    /// candle's temporaries: attention scores, the widest intermediates and the logits.
    pub fn scratch_bytes(&self, tokens: usize, context: usize, every_token_logits: bool) -> u64 {
        let (t, c) = (tokens as u64, context as u64);
        let inner = self.feed_forward_length.max(self.n_head * self.head_dim) as u64;
        let logits = if every_token_logits { t } else { 1 } * self.vocab_size as u64;
        (t * (self.n_head as u64 * c + 8 * self.embedding_length as u64 + 2 * inner) + logits) * 4 * 2
    }
}

/// Weights as held, for model-info and memory-stats.
#[derive(Clone, Debug, Default)]
pub struct WeightSummary {
    pub weight_bytes: u64,
    pub parameters: u64,
    /// Block type holding most of the bytes now, and in the file.
    pub quantization: String,
    pub source_quantization: String,
}

pub trait Decoder: Send + Sync {
    fn shape(&self) -> &DecoderShape;
    fn weights(&self) -> &WeightSummary;
    /// Runs `tokens` from `state.position` (checked to fit by the caller) and returns the
    /// logits of the last token, or of every token, one vocabulary-sized row each.
    fn run(&self, tokens: &[u32], state: &mut KvState, every_token: bool) -> candle_core::Result<Vec<f32>>;
}

impl dyn Decoder {
    pub fn new_state(&self, capacity: usize) -> KvState {
        let shape = self.shape();
        let capacity = capacity.min(shape.context_length);
        KvState { caches: (0..shape.n_layer).map(|_| KvCache::new(2, capacity)).collect(), capacity, position: 0 }
    }

    /// Runs `tokens` at the state's position and returns the logits of the last one.
    pub fn forward(&self, tokens: &[u32], state: &mut KvState) -> Result<Vec<f32>> {
        self.forward_logits(tokens, state, false)
    }

    /// As [`Decoder::forward`], but the logits of every token, one vocabulary-sized row each.
    pub fn forward_all(&self, tokens: &[u32], state: &mut KvState) -> Result<Vec<f32>> {
        self.forward_logits(tokens, state, true)
    }

    fn forward_logits(&self, tokens: &[u32], state: &mut KvState, every_token: bool) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(EngineError::Internal("forward called with no tokens".into()));
        }
        if state.position + tokens.len() > state.capacity {
            return Err(EngineError::ResourceExhausted(format!(
                "the KV cache holds {} tokens; {} more do not fit after {}",
                state.capacity,
                tokens.len(),
                state.position
            )));
        }
        let vocab = self.shape().vocab_size;
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(EngineError::InvalidInput(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        let architecture = &self.shape().architecture;
        let logits = self.run(tokens, state, every_token).map_err(|e| EngineError::compute(&format!("{architecture} forward"), e))?;
        state.position += tokens.len();
        Ok(logits)
    }
}

/// An architecture's hyperparameters, read and checked; building it takes the weights.
pub trait DecoderConfig {
    fn shape(&self) -> &DecoderShape;
    fn build(self: Box<Self>, weights: &mut ConvertedWeights, loader: &WeightLoader) -> Result<Box<dyn Decoder>>;
}

/// The hyperparameters of the file's architecture, or an error naming it and the supported ones.
pub fn read_config(gguf: &GgufFile) -> Result<Box<dyn DecoderConfig>> {
    let arch = gguf.require_str("general.architecture")?;
    let Some((_, read)) = ARCHITECTURES.iter().find(|(name, _)| *name == arch) else {
        let names: Vec<&str> = ARCHITECTURES.iter().map(|(name, _)| *name).collect();
        return Err(EngineError::Unsupported(format!(
            "{}: general.architecture is \"{arch}\"; this engine runs {}",
            gguf.file_name,
            names.join(", ")
        )));
    };
    read(&Hparams { gguf, arch })
}

/// The per-generation state: one KV cache per layer, sized for `capacity` tokens.
pub struct KvState {
    pub(crate) caches: Vec<KvCache>,
    pub capacity: usize,
    pub position: usize,
}

impl KvState {
    pub fn bytes(&self, shape: &DecoderShape) -> u64 {
        self.capacity as u64 * shape.kv_bytes_per_token()
    }
}

/// Longest context a model may declare (Llama 3.1's 128k).
pub const MAX_CONTEXT: usize = 1 << 17;

/// The `{arch}.*` keys of a file, read with checks: every value is named in the error when it is
/// missing, of the wrong type, or well-formed but absurd.
pub struct Hparams<'a> {
    pub gguf: &'a GgufFile<'a>,
    pub arch: &'a str,
}

impl Hparams<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    /// An error naming `{arch}.{k}` and what is wrong with it.
    pub fn invalid(&self, k: &str, what: &str) -> EngineError {
        EngineError::InvalidModel(format!("{}: {}.{k} {what}", self.gguf.file_name, self.arch))
    }

    /// A required count within `range`.
    pub fn count(&self, k: &str, range: RangeInclusive<usize>) -> Result<usize> {
        let v = self.gguf.require_u64(&self.key(k))?;
        self.in_range(k, v, range)
    }

    /// An optional count within `range`, `default` when absent.
    pub fn count_or(&self, k: &str, default: usize, range: RangeInclusive<usize>) -> Result<usize> {
        match self.gguf.get(&self.key(k)) {
            None => Ok(default),
            Some(v) => match v.as_u64() {
                Some(v) => self.in_range(k, v, range),
                None => Err(self.invalid(k, "is not an integer")),
            },
        }
    }

    fn in_range(&self, k: &str, v: u64, range: RangeInclusive<usize>) -> Result<usize> {
        match usize::try_from(v) {
            Ok(v) if range.contains(&v) => Ok(v),
            _ => Err(self.invalid(k, &format!("is {v}; expected {} to {}", range.start(), range.end()))),
        }
    }

    /// An optional finite float within `range`, `default` when absent (NaN and infinities are
    /// refused: a NaN RoPE base would run and produce garbage).
    pub fn float_or(&self, k: &str, default: f64, range: RangeInclusive<f64>) -> Result<f64> {
        let v = match self.gguf.get(&self.key(k)) {
            None => return Ok(default),
            Some(v) => v.as_f64().ok_or_else(|| self.invalid(k, "is not a number"))?,
        };
        if v.is_finite() && range.contains(&v) {
            Ok(v)
        } else {
            Err(self.invalid(k, &format!("is {v}; expected a number from {} to {}", range.start(), range.end())))
        }
    }

    /// Rows of the token embedding table (the vocabulary the output logits cover), checked to
    /// be `embedding_length` wide.
    pub fn vocab_size(&self, embedding_length: usize) -> Result<usize> {
        let t = self.gguf.require_tensor("token_embd.weight")?;
        match t.dims[..] {
            [width, rows] if rows > 0 && width == embedding_length => Ok(rows),
            [width, _] if width != embedding_length => {
                Err(self.invalid("embedding_length", &format!("is {embedding_length}, but token_embd.weight holds rows of {width}")))
            }
            _ => Err(EngineError::InvalidModel(format!("{}: token_embd.weight has shape {:?}", self.gguf.file_name, t.dims))),
        }
    }

    /// The attention heads and their width, checked against each other: (heads, kv heads,
    /// head width). `head_dim` is `{arch}.attention.key_length` when the file has it, else
    /// `embedding_length / heads`.
    pub fn heads(&self, embedding_length: usize) -> Result<(usize, usize, usize)> {
        let n_head = self.count("attention.head_count", 1..=1024)?;
        let n_kv_head = self.count_or("attention.head_count_kv", n_head, 1..=1024)?;
        if !n_head.is_multiple_of(n_kv_head) {
            return Err(self.invalid("attention.head_count_kv", &format!("is {n_kv_head}, which does not divide head_count {n_head}")));
        }
        let head_dim = match self.gguf.get(&self.key("attention.key_length")) {
            Some(_) => self.count("attention.key_length", 2..=4096)?,
            None if embedding_length.is_multiple_of(n_head) => embedding_length / n_head,
            None => {
                return Err(self.invalid("embedding_length", &format!("is {embedding_length}, which head_count {n_head} does not divide")));
            }
        };
        let value_length = self.count_or("attention.value_length", head_dim, 1..=4096)?;
        if value_length != head_dim {
            return Err(self.invalid("attention.value_length", &format!("is {value_length}; this engine needs it equal to key_length {head_dim}")));
        }
        Ok((n_head, n_kv_head, head_dim))
    }

    /// The shape keys every decoder has.
    pub fn shape(&self) -> Result<DecoderShape> {
        let embedding_length = self.count("embedding_length", 1..=65536)?;
        let (n_head, n_kv_head, head_dim) = self.heads(embedding_length)?;
        let context_length = self.count("context_length", 1..=usize::MAX)?;
        if context_length > MAX_CONTEXT {
            return Err(EngineError::Unsupported(format!(
                "{}: {}.context_length is {context_length}; this engine handles up to {MAX_CONTEXT}",
                self.gguf.file_name, self.arch
            )));
        }
        Ok(DecoderShape {
            architecture: self.arch.to_string(),
            n_layer: self.count("block_count", 1..=1024)?,
            n_head,
            n_kv_head,
            head_dim,
            embedding_length,
            feed_forward_length: self.count_or("feed_forward_length", 4 * embedding_length, 1..=1 << 20)?,
            context_length,
            vocab_size: self.vocab_size(embedding_length)?,
        })
    }
}
