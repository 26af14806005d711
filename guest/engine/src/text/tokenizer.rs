//! Tokenizers for text-generation models, built from GGUF metadata and chosen by
//! `tokenizer.ggml.model`: byte-level BPE (`gpt2`) or SentencePiece-style (`llama`, see
//! [`crate::text::spm`]).
//!
//! candle's `TokenizerFromGguf` is not available on wasm32, so the byte-level BPE is assembled
//! here from `tokenizer.ggml.tokens` / `merges` / `token_type` with the `tokenizers` crate.

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::error::{EngineError, Result};
use crate::gguf::{GgufFile, Value};
use crate::text::spm::SpmTokenizer;

/// GGUF token types (llama.cpp `llama_token_type`): 1 normal, 2 unknown, 3 control,
/// 4 user-defined, 5 unused, 6 byte. Everything but normal and byte text is special.
fn is_special_type(token_type: u64) -> bool {
    (2..=5).contains(&token_type)
}

/// The tokenizer models this engine reads, by `tokenizer.ggml.model`.
const TOKENIZER_MODELS: &str = "\"gpt2\" (byte-level BPE) and \"llama\" (SentencePiece)";

enum Vocabulary {
    Bpe(Box<Tokenizer>),
    Spm(Box<SpmTokenizer>),
}

pub struct TextTokenizer {
    inner: Vocabulary,
    /// Cached: `Tokenizer::get_vocab_size` builds the whole vocabulary map on every call.
    vocab_size: usize,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    /// Tokens that end generation: EOS and the chat end-of-turn marker when present.
    pub end_ids: Vec<u32>,
    pub add_bos: bool,
}

impl TextTokenizer {
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let file = &gguf.file_name;
        let model = gguf.require_str("tokenizer.ggml.model")?;
        if !matches!(model, "gpt2" | "llama") {
            return Err(EngineError::Unsupported(format!(
                "{file}: tokenizer.ggml.model is \"{model}\"; this engine reads {TOKENIZER_MODELS}"
            )));
        }
        let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
        let types: Vec<u64> = match gguf.get("tokenizer.ggml.token_type").and_then(Value::as_array) {
            Some(a) => a.iter().map(|v| v.as_u64().unwrap_or(1)).collect(),
            None => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(EngineError::InvalidModel(format!(
                "{file}: tokenizer.ggml.token_type has {} entries for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let id = |key: &str| -> Result<Option<u32>> {
            match gguf.get(key).and_then(Value::as_u64) {
                None => Ok(None),
                Some(v) if (v as usize) < tokens.len() => Ok(Some(v as u32)),
                Some(v) => Err(EngineError::InvalidModel(format!(
                    "{file}: {key} = {v} but the vocabulary has {} tokens",
                    tokens.len()
                ))),
            }
        };
        let unknown_id = id("tokenizer.ggml.unknown_token_id")?;
        let inner = if model == "gpt2" {
            Vocabulary::Bpe(Box::new(bpe(gguf, &tokens, &types)?))
        } else {
            let scores = match gguf.get("tokenizer.ggml.scores").and_then(Value::as_array) {
                Some(a) => a.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect(),
                None => vec![0.0; tokens.len()],
            };
            let add_space_prefix = !matches!(gguf.get("tokenizer.ggml.add_space_prefix"), Some(Value::Bool(false)));
            let pieces = tokens.iter().map(|t| t.to_string()).collect();
            Vocabulary::Spm(Box::new(SpmTokenizer::new(file, pieces, scores, types, unknown_id, add_space_prefix)?))
        };
        let bos_id = id("tokenizer.ggml.bos_token_id")?;
        let eos_id = id("tokenizer.ggml.eos_token_id")?;
        let eot_id = id("tokenizer.ggml.eot_token_id")?;
        let mut end_ids: Vec<u32> = eos_id.into_iter().chain(eot_id).collect();
        // Chat models end a turn with their end-of-turn marker even when EOS is another token.
        for marker in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"] {
            end_ids.extend(match &inner {
                Vocabulary::Bpe(t) => t.token_to_id(marker),
                Vocabulary::Spm(t) => t.token_to_id(marker),
            });
        }
        end_ids.sort_unstable();
        end_ids.dedup();
        let add_bos = matches!(gguf.get("tokenizer.ggml.add_bos_token"), Some(Value::Bool(true)));
        let vocab_size = match &inner {
            Vocabulary::Bpe(t) => t.get_vocab_size(true),
            Vocabulary::Spm(t) => t.vocab_size(),
        };
        Ok(TextTokenizer { inner, vocab_size, bos_id, eos_id, end_ids, add_bos })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Token ids of `text`; special-token markers in the text (e.g. `<|im_start|>`) become their
    /// single ids. `add_special_tokens` prepends BOS when the model asks for it, unless the text
    /// already starts with it (chat templates that write the BOS marker themselves).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let mut ids = match &self.inner {
            Vocabulary::Bpe(t) => {
                let encoding = t.encode_fast(text, false).map_err(|e| EngineError::InvalidInput(format!("tokenizing the text: {e}")))?;
                encoding.get_ids().to_vec()
            }
            Vocabulary::Spm(t) => t.encode(text)?,
        };
        if let (true, true, Some(bos)) = (add_special_tokens, self.add_bos, self.bos_id) {
            if ids.first() != Some(&bos) {
                ids.insert(0, bos);
            }
        }
        Ok(ids)
    }

    /// Text of `ids`; `skip_special` leaves out control tokens such as `<|im_end|>`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(EngineError::InvalidInput(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        match &self.inner {
            Vocabulary::Bpe(t) => t.decode(ids, skip_special).map_err(|e| EngineError::InvalidInput(format!("decoding tokens: {e}"))),
            Vocabulary::Spm(t) => t.decode(ids, skip_special),
        }
    }

    pub fn token_text(&self, id: u32) -> Option<String> {
        match &self.inner {
            Vocabulary::Bpe(t) => t.id_to_token(id),
            Vocabulary::Spm(t) => t.piece(id).map(str::to_string),
        }
    }
}

/// Byte-level BPE from `tokenizer.ggml.tokens` / `merges`, with the special token types added
/// as special tokens.
fn bpe(gguf: &GgufFile, tokens: &[&str], types: &[u64]) -> Result<Tokenizer> {
    let file = &gguf.file_name;
    let merges = string_array(gguf, "tokenizer.ggml.merges")?;
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(i, t)| (t.to_string(), i as u32)).collect();
        let merges: Vec<(String, String)> = merges
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| {
                    EngineError::InvalidModel(format!("{file}: tokenizer.ggml.merges[{i}] = {m:?} has no space"))
                })
            })
            .collect::<Result<_>>()?;
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| EngineError::InvalidModel(format!("{file}: building the BPE tokenizer: {e}")))?;
        let mut inner = Tokenizer::new(bpe);
        // The GPT-2 split regex, with digits split one by one first (SmolLM2, like Llama 3 and
        // Qwen, never merges digits).
        let pre = Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
        ]);
        inner.with_pre_tokenizer(Some(pre));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let specials: Vec<AddedToken> = tokens
            .iter()
            .zip(types)
            .filter(|(_, &ty)| is_special_type(ty))
            .map(|(t, _)| AddedToken::from(t.to_string(), true))
            .collect();
        inner.add_special_tokens(&specials);

    Ok(inner)
}

fn string_array<'a>(gguf: &'a GgufFile, key: &str) -> Result<Vec<&'a str>> {
    let array = gguf
        .require(key)?
        .as_array()
        .ok_or_else(|| EngineError::InvalidModel(format!("{}: {key} is not an array", gguf.file_name)))?;
    array
        .iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str().ok_or_else(|| EngineError::InvalidModel(format!("{}: {key}[{i}] is not a string", gguf.file_name)))
        })
        .collect()
}
