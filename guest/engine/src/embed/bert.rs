//! BERT sentence embeddings from `model.safetensors` + `tokenizer.json` + `config.json`:
//! mean pooling over the attention mask, then L2 normalisation (what sentence-transformers
//! does for all-MiniLM-L6-v2).

use serde::Deserialize;
use tokenizers::{Tokenizer, TruncationParams};

use super::encoder::{Config, Encoder};
use crate::error::{EngineError, Result};
use crate::memory;
use crate::types::ModelFile;

/// Texts are tokenized this many at a time.
const BATCH: usize = 32;
/// Sentences are packed into one encoder pass up to this many tokens (a longer sentence runs
/// alone): enough to share each weight read among many tokens, few enough to bound
/// activation memory (the feed-forward buffer is tokens x intermediate_size floats).
const PASS_TOKENS: usize = 1024;

pub struct BertEmbedder {
    encoder: Encoder,
    tokenizer: Tokenizer,
    pub hidden_size: usize,
    pub max_tokens: usize,
    pub vocab_size: usize,
    pub weight_bytes: u64,
    pub parameters: u64,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

fn find<'a>(files: &'a [ModelFile], name: &str) -> Option<&'a ModelFile> {
    files.iter().find(|f| f.name == name || f.name.ends_with(&format!("/{name}")))
}

impl BertEmbedder {
    pub fn load(files: Vec<ModelFile>) -> Result<Self> {
        let names: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
        let missing = |name: &str| {
            EngineError::InvalidInput(format!(
                "an embedding model needs model.safetensors, tokenizer.json and config.json; {name} is missing (got {names:?})"
            ))
        };
        let config_file = find(&files, "config.json").ok_or_else(|| missing("config.json"))?;
        let tokenizer_file = find(&files, "tokenizer.json").ok_or_else(|| missing("tokenizer.json"))?;
        let config: Config = serde_json::from_slice(&config_file.bytes)
            .map_err(|e| EngineError::InvalidModel(format!("config.json: {e}")))?;
        let act = config.validate()?;
        // tokenizers 0.22 panics (a trap in the component) on some files it should refuse, so
        // those are checked first (all found by fuzzing): see `check_tokenizer_json`.
        let json: serde_json::Value = serde_json::from_slice(&tokenizer_file.bytes)
            .map_err(|e| EngineError::InvalidModel(format!("tokenizer.json: not JSON: {e}")))?;
        check_tokenizer_json(&json)?;
        let mut tokenizer = Tokenizer::from_bytes(&tokenizer_file.bytes)
            .map_err(|e| EngineError::InvalidModel(format!("tokenizer.json: {e}")))?;
        // sentence-transformers truncates at max_seq_length (256 for MiniLM), not at the
        // tokenizer's own setting.
        let max_tokens = match find(&files, "sentence_bert_config.json") {
            Some(f) => serde_json::from_slice::<SentenceBertConfig>(&f.bytes)
                .map_err(|e| EngineError::InvalidModel(format!("sentence_bert_config.json: {e}")))?
                .max_seq_length,
            None => 256,
        }
        .min(config.max_position_embeddings);
        // Each text runs at its own length: padding would only be computed and masked away.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| EngineError::InvalidModel(format!("tokenizer.json: truncation: {e}")))?;
        let vocab_size = tokenizer.get_vocab_size(true);

        let weights = files.iter().find(|f| f.name.ends_with(".safetensors")).ok_or_else(|| missing("model.safetensors"))?;
        let (parameters, f32_bytes) = safetensors_size(weights)?;
        memory::ensure_available(f32_bytes, &format!("loading {}", weights.name))?;
        let encoder = Encoder::load(&weights.name, &weights.bytes, &config, act)?;
        Ok(BertEmbedder {
            weight_bytes: encoder.bytes(),
            encoder,
            tokenizer,
            hidden_size: config.hidden_size,
            max_tokens,
            vocab_size,
            parameters,
        })
    }

    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed_counted(texts)?.0)
    }

    /// The embeddings, and how many tokens the encoder saw (after truncation) in all.
    pub fn embed_counted(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64)> {
        if texts.is_empty() {
            return Err(EngineError::InvalidInput("texts is empty; embed needs at least one text".into()));
        }
        let mut out = Vec::with_capacity(texts.len());
        let mut seen = 0u64;
        for batch in texts.chunks(BATCH) {
            let encodings = self
                .tokenizer
                .encode_batch(batch.to_vec(), true)
                .map_err(|e| EngineError::InvalidInput(format!("tokenizing: {e}")))?;
            seen += encodings.iter().map(|e| e.len() as u64).sum::<u64>();
            let mut pass = 0;
            while pass < encodings.len() {
                let mut end = pass + 1;
                let mut tokens = encodings[pass].len();
                while end < encodings.len() && tokens + encodings[end].len() <= PASS_TOKENS {
                    tokens += encodings[end].len();
                    end += 1;
                }
                let ids: Vec<u32> = encodings[pass..end].iter().flat_map(|e| e.get_ids().iter().copied()).collect();
                let lens: Vec<usize> = encodings[pass..end].iter().map(|e| e.len()).collect();
                out.extend(self.pool(&ids, &lens)?);
                pass = end;
            }
        }
        Ok((out, seen))
    }

    /// The token ids the encoder sees for `text` (truncated as for embedding).
    pub fn tokenize(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, add_special_tokens)
            .map_err(|e| EngineError::InvalidInput(format!("tokenizing: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The mean of each text's token states, L2-normalised.
    fn pool(&self, ids: &[u32], lens: &[usize]) -> Result<Vec<Vec<f32>>> {
        let h = self.hidden_size;
        let hidden = self.encoder.forward(ids, lens)?;
        let mut start = 0;
        Ok(lens
            .iter()
            .map(|&len| {
                let mut mean = vec![0f32; h];
                for token in hidden[start * h..(start + len) * h].chunks_exact(h) {
                    for (m, v) in mean.iter_mut().zip(token) {
                        *m += v;
                    }
                }
                start += len;
                let inv = 1.0 / (len as f32).max(1e-9);
                mean.iter_mut().for_each(|m| *m *= inv);
                let norm = mean.iter().map(|m| m * m).sum::<f32>().sqrt().max(1e-12);
                mean.iter_mut().for_each(|m| *m /= norm);
                mean
            })
            .collect())
    }
}

/// (parameters, f32 bytes) from the safetensors header, before loading anything.
fn safetensors_size(file: &ModelFile) -> Result<(u64, u64)> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&file.bytes)
        .map_err(|e| EngineError::InvalidModel(format!("{}: not a valid safetensors file: {e}", file.name)))?;
    let parameters: u64 = metadata.tensors().values().map(|t| t.shape.iter().product::<usize>() as u64).sum();
    Ok((parameters, parameters * 4))
}

/// What tokenizers 0.22 would panic on rather than refuse (each found by fuzzing):
/// - JSON that is not JSON inside the `decoder` (an `expect` in its deserializer) - refused
///   above by parsing the whole file first;
/// - a `Precompiled` normalizer whose fields do not deserialize (an `expect` too);
/// - a `TemplateProcessing` that names a special token its `special_tokens` map lacks
///   (accepted, then an index into the map panics on the first encode).
fn check_tokenizer_json(tokenizer_json: &serde_json::Value) -> Result<()> {
    fn normalizers(n: &serde_json::Value) -> Result<()> {
        for nested in n.get("normalizers").and_then(|v| v.as_array()).into_iter().flatten() {
            normalizers(nested)?;
        }
        if n.get("type").and_then(|t| t.as_str()) == Some("Precompiled") {
            serde_json::from_value::<tokenizers::normalizers::Precompiled>(n.clone())
                .map_err(|e| EngineError::InvalidModel(format!("tokenizer.json: normalizer Precompiled: {e}")))?;
        }
        Ok(())
    }
    if let Some(n) = tokenizer_json.get("normalizer") {
        normalizers(n)?;
    }
    check_template_processing(tokenizer_json)
}

/// The post-processor part of [`check_tokenizer_json`], in the post-processor and in any
/// `Sequence` of them.
fn check_template_processing(tokenizer_json: &serde_json::Value) -> Result<()> {
    // By shape, not by "type": tokenizers' untagged fallback reads a template processor whose
    // type name is garbled too (found by fuzzing).
    fn walk(p: &serde_json::Value) -> Result<()> {
        for nested in p.get("processors").and_then(|v| v.as_array()).into_iter().flatten() {
            walk(nested)?;
        }
        let known = p.get("special_tokens").and_then(|v| v.as_object());
        for template in ["single", "pair"] {
            // A template is a list of pieces or one string of them ("[CLS]:0 $A:0 [SEP]:0").
            let pieces: Vec<serde_json::Value> = match p.get(template) {
                Some(serde_json::Value::Array(a)) => a.clone(),
                Some(serde_json::Value::String(s)) => s.split_whitespace().map(|w| serde_json::Value::String(w.into())).collect(),
                _ => Vec::new(),
            };
            for piece in &pieces {
                // A piece is {"SpecialToken": {"id": ...}} or the string form "[CLS]:0".
                let id = match piece {
                    serde_json::Value::String(s) if !s.starts_with('$') => s.split(':').next().map(str::to_string),
                    other => other.get("SpecialToken").and_then(|t| t.get("id")).and_then(|v| v.as_str()).map(str::to_string),
                };
                if let Some(id) = id {
                    if !known.is_some_and(|k| k.contains_key(&id)) {
                        return Err(EngineError::InvalidModel(format!(
                            "tokenizer.json: post_processor.{template} uses the special token {id:?}, which post_processor.special_tokens does not define"
                        )));
                    }
                }
            }
        }
        Ok(())
    }
    tokenizer_json.get("post_processor").map_or(Ok(()), walk)
}

