//! The engine: the registry of loaded models and every operation the WIT world exposes,
//! in plain Rust. The component glue and native hosts call this and nothing below it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::embed::bert::BertEmbedder;
use crate::error::{EngineError, Result};
use crate::knowledge::KnowledgeGraph;
use crate::memory;
use crate::text::{Generation, TextModel};
use crate::types::*;

enum Model {
    Text(Arc<TextModel>),
    Embedding(Arc<BertEmbedder>),
}

struct Loaded {
    info: ModelInfo,
    model: Model,
}

pub struct Engine {
    models: BTreeMap<String, Loaded>,
    pub(crate) graph: KnowledgeGraph,
    /// The embedding model chosen to index the graph (`set-embedding-model`); by default the
    /// first loaded one.
    pub(crate) graph_embedding_model: Option<String>,
    /// Set by [`Engine::prepare_snapshot`]: the next call runs in an instance made from a
    /// snapshot, whose random-number state is a copy shared with every other such instance.
    resumed_from_snapshot: bool,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            models: BTreeMap::new(),
            graph: KnowledgeGraph::new().expect("an in-memory store cannot fail to open"),
            graph_embedding_model: None,
            resumed_from_snapshot: false,
        }
    }
}

const MAX_ID_LEN: usize = 128;

impl Engine {
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads (or replaces) model `id`. On failure whatever was loaded before stays as it was.
    pub fn load_model(&mut self, id: &str, kind: ModelKind, files: Vec<ModelFile>, options: &LoadOptions) -> Result<ModelInfo> {
        check_id(id)?;
        if files.is_empty() {
            return Err(EngineError::InvalidInput(format!("model {id}: no files given")));
        }
        let (info, model) = match kind {
            ModelKind::TextGeneration => {
                if files.len() != 1 {
                    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
                    return Err(EngineError::InvalidInput(format!(
                        "a text-generation model is one .gguf file; got {} files {names:?}",
                        files.len()
                    )));
                }
                let file = files.into_iter().next().ok_or_else(|| EngineError::InvalidInput(format!("model {id}: no files given")))?;
                let text = TextModel::load(&file.name, file.bytes, options)?;
                let c = text.decoder.shape();
                let w = text.decoder.weights();
                let info = ModelInfo {
                    id: id.to_string(),
                    kind,
                    architecture: c.architecture.clone(),
                    parameters: w.parameters,
                    quantization: w.quantization.clone(),
                    source_quantization: w.source_quantization.clone(),
                    weight_bytes: w.weight_bytes,
                    context_length: text.context_length as u32,
                    embedding_length: c.embedding_length as u32,
                    vocab_size: text.tokenizer.vocab_size() as u32,
                };
                (info, Model::Text(Arc::new(text)))
            }
            ModelKind::Embedding => {
                let bert = BertEmbedder::load(files)?;
                let info = ModelInfo {
                    id: id.to_string(),
                    kind,
                    architecture: "bert".into(),
                    parameters: bert.parameters,
                    // Encoder matrices are held as 10-bit integers per row in int16 (embeddings
                    // and norms stay f32); the file is f32.
                    quantization: "I16".into(),
                    source_quantization: "F32".into(),
                    weight_bytes: bert.weight_bytes,
                    context_length: bert.max_tokens as u32,
                    embedding_length: bert.hidden_size as u32,
                    vocab_size: bert.vocab_size as u32,
                };
                (info, Model::Embedding(Arc::new(bert)))
            }
        };
        self.models.insert(id.to_string(), Loaded { info: info.clone(), model });
        Ok(info)
    }

    pub fn unload_model(&mut self, id: &str) -> Result<()> {
        self.models.remove(id).map(|_| ()).ok_or_else(|| self.not_found(id))
    }

    pub fn list_models(&self) -> Vec<ModelInfo> {
        self.models.values().map(|m| m.info.clone()).collect()
    }

    pub fn generate(&self, request: &GenerateRequest) -> Result<Completion> {
        self.stream(request)?.run_to_end()
    }

    pub fn stream(&self, request: &GenerateRequest) -> Result<Generation> {
        let model = self.text_model(&request.model)?;
        Generation::start(model, &request.prompt, request.max_tokens, request.sampling, request.stop.clone())
    }

    pub fn chat(&self, request: &ChatRequest) -> Result<Completion> {
        self.stream_chat(request)?.run_to_end()
    }

    pub fn stream_chat(&self, request: &ChatRequest) -> Result<Generation> {
        let model = self.text_model(&request.model)?;
        let prompt = model.template.render(&request.messages)?;
        Generation::start(model, &prompt, request.max_tokens, request.sampling, request.stop.clone())
    }

    /// The rendered chat prompt, as the model will see it.
    pub fn render_chat(&self, model: &str, messages: &[ChatMessage]) -> Result<String> {
        self.text_model(model)?.template.render(messages)
    }

    pub fn embed(&self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        match self.models.get(model).map(|m| &m.model) {
            Some(Model::Embedding(bert)) => bert.embed(texts),
            Some(Model::Text(_)) => Err(EngineError::InvalidInput(format!(
                "model {model} is a text-generation model; embed needs an embedding model"
            ))),
            None => Err(self.not_found(model)),
        }
    }

    /// [`embed`](Self::embed), and the number of tokens the encoder saw in all (for usage).
    pub fn embed_counted(&self, model: &str, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64)> {
        match self.models.get(model).map(|m| &m.model) {
            Some(Model::Embedding(bert)) => bert.embed_counted(texts),
            Some(Model::Text(_)) => Err(EngineError::InvalidInput(format!(
                "model {model} is a text-generation model; embed needs an embedding model"
            ))),
            None => Err(self.not_found(model)),
        }
    }

    /// Token ids of `text` for a text-generation or an embedding model.
    pub fn tokenize(&self, model: &str, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        match self.models.get(model).map(|m| &m.model) {
            Some(Model::Text(t)) => t.tokenizer.encode(text, add_special_tokens),
            Some(Model::Embedding(b)) => b.tokenize(text, add_special_tokens),
            None => Err(self.not_found(model)),
        }
    }

    /// Called last before a host snapshots this instance's memory (pre-initialization): after
    /// it, the first call in every instance made from the snapshot draws fresh randomness.
    /// The host must also have dropped every resource (uploads, streams) by then.
    pub fn prepare_snapshot(&mut self) {
        self.resumed_from_snapshot = true;
    }

    /// Every call into the engine passes here first. In an instance made from a snapshot, the
    /// thread's random generator (blank-node ids: `rand`'s thread RNG, seeded once per thread)
    /// was frozen into the snapshot, so every instance would draw the same "random" ids and
    /// their graph changes would collide; it is reseeded from the host's entropy once. (std's
    /// hash-table keys are frozen too; that only costs hash-flooding resistance. Sampling is
    /// seeded per request and draws nothing here.)
    pub fn resume(&mut self) {
        if std::mem::take(&mut self.resumed_from_snapshot) {
            // Reseeding only fails without an entropy source, and then the first draw fails too.
            let _ = rand::rng().reseed();
        }
    }

    pub fn score(&self, model: &str, text: &str) -> Result<ScoreReport> {
        self.text_model(model)?.score(text)
    }

    pub fn detokenize(&self, model: &str, tokens: &[u32]) -> Result<String> {
        self.text_model(model)?.tokenizer.decode(tokens, false)
    }

    pub fn memory_stats(&self) -> MemoryStats {
        let (allocated_bytes, peak_allocated_bytes) = memory::allocated_bytes();
        MemoryStats {
            linear_memory_bytes: memory::linear_memory_bytes(),
            allocated_bytes,
            peak_allocated_bytes,
            models: self
                .models
                .values()
                .map(|m| ModelMemory {
                    id: m.info.id.clone(),
                    weight_bytes: m.info.weight_bytes,
                    cache_bytes: match &m.model {
                        Model::Text(t) => t.cache_bytes(),
                        Model::Embedding(_) => 0,
                    },
                })
                .collect(),
        }
    }

    pub(crate) fn embedding_model(&self, id: &str) -> Result<Arc<BertEmbedder>> {
        match self.models.get(id).map(|m| &m.model) {
            Some(Model::Embedding(b)) => Ok(b.clone()),
            Some(Model::Text(_)) => Err(EngineError::InvalidInput(format!("model {id} is a text-generation model, not an embedding model"))),
            None => Err(self.not_found(id)),
        }
    }

    /// Ids of the loaded models of one kind, in load-id order.
    pub(crate) fn model_ids(&self, kind: ModelKind) -> Vec<String> {
        self.models.values().filter(|m| m.info.kind == kind).map(|m| m.info.id.clone()).collect()
    }

    pub(crate) fn text_model(&self, id: &str) -> Result<Arc<TextModel>> {
        match self.models.get(id).map(|m| &m.model) {
            Some(Model::Text(t)) => Ok(t.clone()),
            Some(Model::Embedding(_)) => Err(EngineError::InvalidInput(format!(
                "model {id} is an embedding model; generation needs a text-generation model"
            ))),
            None => Err(self.not_found(id)),
        }
    }

    fn not_found(&self, id: &str) -> EngineError {
        let loaded: Vec<&str> = self.models.keys().map(String::as_str).collect();
        EngineError::NotFound(format!("no model with id {id:?} is loaded (loaded: {loaded:?})"))
    }
}

fn check_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(EngineError::InvalidInput(format!(
            "model id {id:?} must be 1 to {MAX_ID_LEN} characters without control characters"
        )));
    }
    Ok(())
}

/// Build facts hosts show to users: version, target, and whether SIMD128 was compiled in
/// (without it the quantized kernels run scalar, several times slower).
pub fn build_info() -> BuildInfo {
    BuildInfo {
        engine_version: env!("CARGO_PKG_VERSION").to_string(),
        target: if cfg!(target_arch = "wasm32") { "wasm32-wasip2".into() } else { std::env::consts::ARCH.to_string() + "-native" },
        simd128: cfg!(target_feature = "simd128"),
        relaxed_simd: cfg!(target_feature = "relaxed-simd"),
    }
}

/// Streams a model into the engine file by file, chunk by chunk (the `model-upload` resource).
pub struct ModelUpload {
    id: String,
    kind: ModelKind,
    options: LoadOptions,
    files: Vec<ModelFile>,
    current: Option<(ModelFile, Option<u64>)>,
}

/// Largest single file; wasm32 cannot hold one allocation of 2 GiB or more.
const MAX_FILE_BYTES: u64 = (2u64 << 30) - 1;

impl ModelUpload {
    pub fn new(id: &str, kind: ModelKind, options: LoadOptions) -> Self {
        ModelUpload { id: id.to_string(), kind, options, files: Vec::new(), current: None }
    }

    pub fn begin_file(&mut self, name: &str, size: Option<u64>) -> Result<()> {
        check_id(&self.id)?;
        if name.is_empty() {
            return Err(EngineError::InvalidInput("file name is empty".into()));
        }
        self.close_file()?;
        let mut bytes = Vec::new();
        if let Some(size) = size {
            if size > MAX_FILE_BYTES {
                return Err(EngineError::ResourceExhausted(format!(
                    "{name} is {}; one file may be at most {}",
                    memory::human_bytes(size),
                    memory::human_bytes(MAX_FILE_BYTES)
                )));
            }
            // Reserve now, so a file too big for the memory limit fails here, cleanly.
            bytes.try_reserve_exact(size as usize).map_err(|_| {
                EngineError::ResourceExhausted(format!(
                    "{name} is {}, more than the memory the host allows this component",
                    memory::human_bytes(size)
                ))
            })?;
        }
        self.current = Some((ModelFile { name: name.to_string(), bytes }, size));
        Ok(())
    }

    pub fn write(&mut self, chunk: &[u8]) -> Result<u64> {
        let Some((file, size)) = self.current.as_mut() else {
            return Err(EngineError::InvalidInput("write before begin-file".into()));
        };
        let new_len = file.bytes.len() as u64 + chunk.len() as u64;
        if let Some(size) = *size {
            if new_len > size {
                return Err(EngineError::InvalidInput(format!(
                    "{}: received {new_len} bytes, more than the {size} announced",
                    file.name
                )));
            }
        } else if new_len > MAX_FILE_BYTES {
            return Err(EngineError::ResourceExhausted(format!("{} is larger than {}", file.name, memory::human_bytes(MAX_FILE_BYTES))));
        }
        file.bytes.try_reserve(chunk.len()).map_err(|_| {
            EngineError::ResourceExhausted(format!(
                "{}: no memory for {} more bytes after {}",
                file.name,
                chunk.len(),
                memory::human_bytes(file.bytes.len() as u64)
            ))
        })?;
        file.bytes.extend_from_slice(chunk);
        Ok(new_len)
    }

    pub fn finish(mut self, engine: &mut Engine) -> Result<ModelInfo> {
        self.close_file()?;
        engine.load_model(&self.id, self.kind, self.files, &self.options)
    }

    fn close_file(&mut self) -> Result<()> {
        if let Some((file, size)) = self.current.take() {
            if let Some(size) = size {
                if file.bytes.len() as u64 != size {
                    return Err(EngineError::InvalidInput(format!(
                        "{}: received {} bytes of the {size} announced",
                        file.name,
                        file.bytes.len()
                    )));
                }
            }
            self.files.push(file);
        }
        Ok(())
    }
}
