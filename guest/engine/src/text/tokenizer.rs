//! Tokenizers for text-generation models, built from GGUF metadata.
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

/// GGUF token types (llama.cpp `llama_token_type`): 1 normal, 2 unknown, 3 control,
/// 4 user-defined, 5 unused, 6 byte. Everything but normal and byte text is special.
fn is_special_type(token_type: u64) -> bool {
    (2..=5).contains(&token_type)
}

pub struct TextTokenizer {
    inner: Tokenizer,
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
        if model != "gpt2" {
            return Err(EngineError::Unsupported(format!(
                "{file}: tokenizer.ggml.model is \"{model}\"; this engine reads byte-level BPE (\"gpt2\") tokenizers"
            )));
        }
        let tokens = string_array(gguf, "tokenizer.ggml.tokens")?;
        let merges = string_array(gguf, "tokenizer.ggml.merges")?;
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
            .zip(&types)
            .filter(|(_, &ty)| is_special_type(ty))
            .map(|(t, _)| AddedToken::from(t.to_string(), true))
            .collect();
        inner.add_special_tokens(&specials);

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
        let bos_id = id("tokenizer.ggml.bos_token_id")?;
        let eos_id = id("tokenizer.ggml.eos_token_id")?;
        let eot_id = id("tokenizer.ggml.eot_token_id")?;
        let mut end_ids: Vec<u32> = eos_id.into_iter().chain(eot_id).collect();
        // Chat models end a turn with their end-of-turn marker even when EOS is another token.
        for marker in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"] {
            end_ids.extend(inner.token_to_id(marker));
        }
        end_ids.sort_unstable();
        end_ids.dedup();
        let add_bos = matches!(gguf.get("tokenizer.ggml.add_bos_token"), Some(Value::Bool(true)));
        let vocab_size = inner.get_vocab_size(true);
        Ok(TextTokenizer { inner, vocab_size, bos_id, eos_id, end_ids, add_bos })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Token ids of `text`; special-token markers in the text (e.g. `<|im_start|>`) become their
    /// single ids. `add_special_tokens` prepends BOS when the model asks for it.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| EngineError::InvalidInput(format!("tokenizing the text: {e}")))?;
        let mut ids = Vec::with_capacity(encoding.len() + 1);
        if add_special_tokens && self.add_bos {
            ids.extend(self.bos_id);
        }
        ids.extend_from_slice(encoding.get_ids());
        Ok(ids)
    }

    /// Text of `ids`; `skip_special` leaves out control tokens such as `<|im_end|>`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        let vocab = self.vocab_size();
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(EngineError::InvalidInput(format!("token id {bad} is outside the vocabulary of {vocab}")));
        }
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| EngineError::InvalidInput(format!("decoding tokens: {e}")))
    }

    pub fn token_text(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }
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
