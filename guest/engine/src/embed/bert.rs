//! BERT sentence embeddings from `model.safetensors` + `tokenizer.json` + `config.json`:
//! mean pooling over the attention mask, then L2 normalisation (what sentence-transformers
//! does for all-MiniLM-L6-v2).

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use serde::Deserialize;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::{EngineError, Result};
use crate::memory;
use crate::types::ModelFile;

/// Texts are run through the encoder this many at a time, which bounds activation memory.
const BATCH: usize = 32;

pub struct BertEmbedder {
    model: BertModel,
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
        if config.hidden_size == 0 || config.num_attention_heads == 0 || config.hidden_size % config.num_attention_heads != 0 {
            return Err(EngineError::InvalidModel(format!(
                "config.json: hidden_size {} is not a multiple of num_attention_heads {}",
                config.hidden_size, config.num_attention_heads
            )));
        }
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
        let pad_id = tokenizer.token_to_id("[PAD]").unwrap_or(config.pad_token_id as u32);
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id,
            pad_token: "[PAD]".into(),
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_tokens, ..Default::default() }))
            .map_err(|e| EngineError::InvalidModel(format!("tokenizer.json: truncation: {e}")))?;
        let vocab_size = tokenizer.get_vocab_size(true);

        let mut files = files;
        let index = files
            .iter()
            .position(|f| f.name.ends_with(".safetensors"))
            .ok_or_else(|| missing("model.safetensors"))?;
        let weights = files.swap_remove(index);
        let (parameters, weight_bytes) = safetensors_size(&weights)?;
        memory::ensure_available(weight_bytes, &format!("loading {}", weights.name))?;
        let vb = VarBuilder::from_buffered_safetensors(weights.bytes, DType::F32, &Device::Cpu)
            .map_err(|e| EngineError::InvalidModel(format!("{}: {e}", weights.name)))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| EngineError::InvalidModel(format!("{}: {e}", weights.name)))?;
        Ok(BertEmbedder {
            model,
            tokenizer,
            hidden_size: config.hidden_size,
            max_tokens,
            vocab_size,
            weight_bytes,
            parameters,
        })
    }

    pub fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Err(EngineError::InvalidInput("texts is empty; embed needs at least one text".into()));
        }
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            out.extend(self.embed_batch(batch)?);
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EngineError::InvalidInput(format!("tokenizing: {e}")))?;
        let n = encodings.len();
        let len = encodings.first().map(|e| e.len()).unwrap_or(0);
        let ids: Vec<u32> = encodings.iter().flat_map(|e| e.get_ids().to_vec()).collect();
        let mask: Vec<u32> = encodings.iter().flat_map(|e| e.get_attention_mask().to_vec()).collect();
        self.pool(ids, mask, n, len).map_err(|e| EngineError::compute("BERT forward", e))
    }

    fn pool(&self, ids: Vec<u32>, mask: Vec<u32>, n: usize, len: usize) -> candle_core::Result<Vec<Vec<f32>>> {
        let device = Device::Cpu;
        let ids = Tensor::from_vec(ids, (n, len), &device)?;
        let mask = Tensor::from_vec(mask, (n, len), &device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?; // (n, len, h)
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?; // (n, len, 1)
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?; // (n, h)
        let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?; // (n, 1)
        let mean = summed.broadcast_div(&counts)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
        mean.broadcast_div(&norm)?.to_vec2::<f32>()
    }
}

/// (parameters, f32 bytes) from the safetensors header, before loading anything.
fn safetensors_size(file: &ModelFile) -> Result<(u64, u64)> {
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&file.bytes)
        .map_err(|e| EngineError::InvalidModel(format!("{}: not a valid safetensors file: {e}", file.name)))?;
    let parameters: u64 = metadata.tensors().values().map(|t| t.shape.iter().product::<usize>() as u64).sum();
    Ok((parameters, parameters * 4))
}
