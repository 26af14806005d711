//! Text generation: a loaded GGUF model (weights, tokenizer, chat template) and the
//! [`Generation`] that streams a completion from it.

pub mod blocks;
pub mod chat_template;
pub mod decoder;
pub mod gemma3;
pub mod layers;
pub mod llama;
pub mod nibbles;
pub mod q8;
pub mod sampler;
pub mod spm;
pub mod template_budget;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) mod simd;
pub mod tokenizer;
pub mod weights;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{EngineError, Result};
use crate::gguf::{GgufFile, Value};
use crate::memory;
use crate::types::{Completion, FinishReason, LoadOptions, Sampling, ScoreReport, TokenScore};
use chat_template::ChatTemplate;
use decoder::{Decoder, KvState};
use sampler::Sampler;
use tokenizer::TextTokenizer;
use weights::WeightLoader;

/// The own layouts (`blocks.rs`) pay off in the component, where their kernels are SIMD128.
/// The component built without SIMD128 keeps them too (their portable kernels), so it holds the
/// same weights as the SIMD build and decodes the same tokens. Natively candle's own kernels
/// beat the portable fallbacks, so native builds keep candle's.
pub const FAST_KERNELS: bool = cfg!(target_arch = "wasm32");

/// Prompts are run through the model in chunks of this many tokens, which bounds the size of
/// the attention scores (heads x chunk x context) during prefill.
const PREFILL_CHUNK: usize = 512;

/// Room for the tokenizer (vocabulary, merges) and load-time scratch beyond the weights.
const LOAD_HEADROOM: u64 = 16 << 20;

pub struct TextModel {
    pub decoder: Box<dyn Decoder>,
    pub tokenizer: TextTokenizer,
    pub template: ChatTemplate,
    /// Longest sequence a generation may reach: the model's, or less if the load options say so.
    pub context_length: usize,
    /// KV-cache bytes held by generations alive right now.
    live_cache_bytes: AtomicU64,
}

impl TextModel {
    /// Takes the file's bytes: they are handed back tensor by tensor as the weights are built.
    pub fn load(file_name: &str, bytes: Vec<u8>, options: &LoadOptions) -> Result<Self> {
        let gguf = GgufFile::parse(file_name, &bytes)?;
        let config = decoder::read_config(&gguf)?;
        let mut loader = WeightLoader::new(options.conversion);
        // Checked before the tokenizer is built: past this point an allocation failure would
        // trap instead of returning an error.
        memory::ensure_available(estimate_extra_bytes(&gguf, &loader) + LOAD_HEADROOM, &format!("loading {file_name}"))?;
        let tokenizer = TextTokenizer::from_gguf(&gguf)?;
        let token_text = |id: Option<u32>| id.and_then(|i| tokenizer.token_text(i)).unwrap_or_default();
        let template = ChatTemplate::new(
            gguf.get("tokenizer.chat_template").and_then(Value::as_str),
            &config.shape().architecture,
            token_text(tokenizer.bos_id),
            token_text(tokenizer.eos_id),
        )?;
        let context_length = match options.context_length {
            Some(0) => return Err(EngineError::InvalidInput("load option context-length must be at least 1".into())),
            Some(n) => (n as usize).min(config.shape().context_length),
            None => config.shape().context_length,
        };
        let tensors = gguf.tensors.clone();
        drop(gguf);
        let mut weights = loader.convert_all(file_name, &tensors, bytes)?;
        let decoder = config.build(&mut weights, &loader)?;
        Ok(TextModel { decoder, tokenizer, template, context_length, live_cache_bytes: AtomicU64::new(0) })
    }

    pub fn cache_bytes(&self) -> u64 {
        self.live_cache_bytes.load(Ordering::Relaxed)
    }

    /// Teacher-forced log-probabilities of `text`'s tokens (see [`ScoreReport`]).
    pub fn score(&self, text: &str) -> Result<ScoreReport> {
        let tokens = self.tokenizer.encode(text, true)?;
        if tokens.len() < 2 {
            return Err(EngineError::InvalidInput(format!("text to score has {} token(s); it needs at least 2", tokens.len())));
        }
        if tokens.len() > self.context_length {
            return Err(EngineError::InvalidInput(format!(
                "text to score has {} tokens; the context holds {}",
                tokens.len(),
                self.context_length
            )));
        }
        let shape = self.decoder.shape();
        let chunk_scratch = shape.scratch_bytes(SCORE_CHUNK.min(tokens.len()), tokens.len(), true);
        memory::ensure_available(tokens.len() as u64 * shape.kv_bytes_per_token() + chunk_scratch, "scoring this text")?;
        let mut state = self.decoder.new_state(tokens.len());
        let mut scores = Vec::with_capacity(tokens.len() - 1);
        // Chunks bound the logits held at once (a vocabulary-sized row per token).
        for (c, chunk) in tokens.chunks(SCORE_CHUNK).enumerate() {
            let logits = self.decoder.forward_all(chunk, &mut state)?;
            for (i, row) in logits.chunks_exact(logits.len() / chunk.len()).enumerate() {
                let Some(&next) = tokens.get(c * SCORE_CHUNK + i + 1) else { break };
                let (top, max) = row.iter().enumerate().fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| if v > bv { (j, v) } else { (bi, bv) });
                let log_sum = max + row.iter().map(|&v| (v - max).exp()).sum::<f32>().ln();
                let logprob = row.get(next as usize).map_or(f32::NEG_INFINITY, |&v| v - log_sum);
                scores.push(TokenScore { token: next, logprob, top_token: top as u32 });
            }
        }
        let mean_nll = -scores.iter().map(|s| s.logprob as f64).sum::<f64>() / scores.len() as f64;
        Ok(ScoreReport { tokens: scores, perplexity: mean_nll.exp() })
    }
}

/// Tokens run through the model at once when scoring.
const SCORE_CHUNK: usize = 64;

/// Memory a load needs beyond the file it is given, for what is allocated infallibly. Blocks
/// the own kernels take as they are need no probe: their layouts are allocated fallibly, and the
/// file is handed back as they are built. Other tensors go through candle (a copy, and an f32
/// copy when converted) and are held in the target type.
fn estimate_extra_bytes(gguf: &GgufFile, loader: &WeightLoader) -> u64 {
    let mut held = 0u64;
    let mut scratch = 0u64;
    for t in &gguf.tensors {
        let elements = t.elements() as u64;
        if loader.own_layout(t).is_some() {
            continue;
        }
        let (bytes, f32_copy) = match loader.target(t.dtype, &t.dims) {
            Some(target) => (elements / target.block_size() as u64 * target.type_size() as u64, elements * 4),
            None => (t.len as u64, 0),
        };
        held += bytes;
        scratch = scratch.max(2 * bytes + f32_copy);
    }
    held + scratch
}

/// One completion in progress. It owns its KV cache, so several can exist over one model.
pub struct Generation {
    model: Arc<TextModel>,
    state: KvState,
    sampler: Sampler,
    tokens: Vec<u32>,
    prompt_len: usize,
    max_tokens: usize,
    stop: Vec<String>,
    /// Text of the generated tokens (cut before a stop string once one is seen).
    text: String,
    /// Bytes of `text` already handed out by `next_piece`.
    emitted: usize,
    /// Generated tokens already decoded into `text[..stable_len]` for good (they ended on a whole
    /// UTF-8 character), so each step decodes only the tokens after them.
    stable_tokens: usize,
    stable_len: usize,
    next_logits: Option<Vec<f32>>,
    finish: Option<FinishReason>,
}

impl Generation {
    pub fn start(
        model: Arc<TextModel>,
        prompt: &str,
        max_tokens: u32,
        sampling: Option<Sampling>,
        stop: Vec<String>,
    ) -> Result<Self> {
        if max_tokens == 0 {
            return Err(EngineError::InvalidInput("max-tokens is 0; ask for at least 1 token".into()));
        }
        if let Some(i) = stop.iter().position(|s| s.is_empty()) {
            return Err(EngineError::InvalidInput(format!("stop[{i}] is an empty string")));
        }
        let sampler = Sampler::new(sampling)?;
        let tokens = model.tokenizer.encode(prompt, true)?;
        if tokens.is_empty() {
            return Err(EngineError::InvalidInput("prompt is empty".into()));
        }
        let ctx = model.context_length;
        if tokens.len() >= ctx {
            return Err(EngineError::InvalidInput(format!(
                "prompt has {} tokens; the context holds {ctx}, leaving no room to generate",
                tokens.len()
            )));
        }
        // Saturating: on wasm32 `usize` is 32 bits and max-tokens may be u32::MAX.
        let capacity = ctx.min(tokens.len().saturating_add(max_tokens as usize));
        let shape = model.decoder.shape();
        // KV cache plus prefill activations (attention scores and MLP intermediates).
        let scratch = shape.scratch_bytes(tokens.len().min(PREFILL_CHUNK), capacity, false);
        memory::ensure_available(capacity as u64 * shape.kv_bytes_per_token() + scratch, "the KV cache for this generation")?;
        let mut state = model.decoder.new_state(capacity);
        let mut logits = None;
        for chunk in tokens.chunks(PREFILL_CHUNK) {
            logits = Some(model.decoder.forward(chunk, &mut state)?);
        }
        model.live_cache_bytes.fetch_add(state.bytes(shape), Ordering::Relaxed);
        Ok(Generation {
            prompt_len: tokens.len(),
            model,
            state,
            sampler,
            tokens,
            max_tokens: max_tokens as usize,
            stop,
            text: String::new(),
            emitted: 0,
            stable_tokens: 0,
            stable_len: 0,
            next_logits: logits,
            finish: None,
        })
    }

    /// Decodes until there is new text to hand out; `None` once generation has finished and
    /// everything was handed out.
    pub fn next_piece(&mut self) -> Result<Option<String>> {
        loop {
            let ready = self.ready_end();
            if ready > self.emitted {
                let piece = self.text.get(self.emitted..ready).unwrap_or_default().to_string();
                self.emitted = ready;
                return Ok(Some(piece));
            }
            if self.finish.is_some() {
                return Ok(None);
            }
            self.step()?;
        }
    }

    pub fn run_to_end(mut self) -> Result<Completion> {
        while self.next_piece()?.is_some() {}
        Ok(self.completion())
    }

    pub fn completion(&self) -> Completion {
        Completion {
            text: self.text.clone(),
            prompt_tokens: self.prompt_len as u32,
            completion_tokens: (self.tokens.len() - self.prompt_len) as u32,
            finish_reason: self.finish.unwrap_or(FinishReason::Length),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Samples one token and, unless that ends generation, runs it through the model.
    fn step(&mut self) -> Result<()> {
        let Some(logits) = self.next_logits.take() else {
            self.finish.get_or_insert(FinishReason::Length);
            return Ok(());
        };
        let token = self.sampler.sample(logits, &self.tokens)?;
        if self.model.tokenizer.end_ids.contains(&token) {
            self.finish = Some(FinishReason::EndOfText);
            return Ok(());
        }
        self.tokens.push(token);
        let tail = self.model.tokenizer.decode(&self.tokens[self.prompt_len + self.stable_tokens..], true)?;
        self.text.truncate(self.stable_len);
        self.text.push_str(&tail);
        if !tail.ends_with('\u{FFFD}') {
            self.stable_tokens = self.tokens.len() - self.prompt_len;
            self.stable_len = self.text.len();
        }
        if let Some(at) = self.first_stop() {
            self.text.truncate(at);
            self.finish = Some(FinishReason::StopString);
            return Ok(());
        }
        let generated = self.tokens.len() - self.prompt_len;
        if generated >= self.max_tokens {
            self.finish = Some(FinishReason::Length);
        } else if self.state.position >= self.model.context_length {
            self.finish = Some(FinishReason::ContextFull);
        } else {
            self.next_logits = Some(self.model.decoder.forward(&[token], &mut self.state)?);
        }
        Ok(())
    }

    fn first_stop(&self) -> Option<usize> {
        self.stop.iter().filter_map(|s| self.text.find(s.as_str())).min()
    }

    /// End of the text that is safe to hand out: all of it once finished; otherwise hold back
    /// an unfinished UTF-8 character and anything that could be the start of a stop string.
    fn ready_end(&self) -> usize {
        if self.finish.is_some() {
            return self.text.len();
        }
        let base = self.text.trim_end_matches('\u{FFFD}').len();
        let mut end = base;
        for s in &self.stop {
            // Longest proper prefix of the stop string that the text ends with.
            let starts: Vec<usize> = s.char_indices().skip(1).map(|(k, _)| k).collect();
            let held = starts.into_iter().rev().find(|&k| self.text[..base].ends_with(&s[..k]));
            if let Some(k) = held {
                end = end.min(base - k);
            }
        }
        // `end` may have moved left of what was emitted if text grew oddly; never go back.
        end.max(self.emitted).min(self.text.len())
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        let bytes = self.state.bytes(self.model.decoder.shape());
        self.model.live_cache_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}
