//! A scripted stand-in for the llmkg component: same WIT world, no models. Prompts choose what
//! happens, so host tests can provoke traps, endless loops and allocation failures on purpose:
//!
//! - `panic`: panics (a trap). `spin`: loops forever (only the host's timeout ends it).
//! - `alloc N`: allocates N bytes the infallible way (aborts, so traps, when memory cannot grow).
//! - `try-alloc N`: allocates N bytes fallibly and reports `resource-exhausted` on failure.
//! - `fail`: returns an `invalid-input` error.
//! - anything else: echoes the prompt back, one word per token; a streamed word `boom` panics.
//!
//! Live resource counts are reported by `memory-stats` as models `live-uploads` and
//! `live-token-streams` (in `cache-bytes`), so tests can check the host drops its handles.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

wit_bindgen::generate!({ path: "../../../../wit", world: "engine" });

use exports::llmkg::engine::inference::{
    self, ChatRequest, Completion, FinishReason, GenerateRequest,
};
use exports::llmkg::engine::introspect::{self, BuildReport, MemoryReport, ModelMemory};
use exports::llmkg::engine::models::{self, LoadOptions, ModelFile};
use llmkg::engine::types::{Error, ModelInfo, ModelKind};

static LIVE_UPLOADS: AtomicU64 = AtomicU64::new(0);
static LIVE_STREAMS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static MODELS: RefCell<Vec<ModelInfo>> = const { RefCell::new(Vec::new()) };
}

struct Stub;
export!(Stub);

/// The model's description records what arrived: `architecture` lists `name:size` per file.
fn model_info(id: String, kind: ModelKind, files: &[(String, u64)]) -> ModelInfo {
    ModelInfo {
        id,
        kind,
        architecture: files
            .iter()
            .map(|(n, s)| format!("{n}:{s}"))
            .collect::<Vec<_>>()
            .join(","),
        parameters: files.len() as u64,
        quantization: "F32".into(),
        source_quantization: "F32".into(),
        weight_bytes: files.iter().map(|(_, s)| s).sum(),
        context_length: 64,
        embedding_length: 2,
        vocab_size: 256,
    }
}

fn register(info: ModelInfo) -> Result<ModelInfo, Error> {
    if info.architecture.contains("bad") {
        return Err(Error::InvalidModel(format!(
            "{}: not a model",
            info.architecture
        )));
    }
    MODELS.with(|m| {
        let mut m = m.borrow_mut();
        m.retain(|x| x.id != info.id);
        m.push(info.clone());
    });
    Ok(info)
}

fn require_model(id: &str) -> Result<(), Error> {
    let known = MODELS.with(|m| m.borrow().iter().any(|x| x.id == id));
    if known {
        Ok(())
    } else {
        Err(Error::NotFound(format!("model `{id}` is not loaded")))
    }
}

/// Runs the scripted behaviours; returns the words to emit otherwise.
fn script(prompt: &str) -> Result<Vec<String>, Error> {
    let mut parts = prompt.split_whitespace();
    match (
        parts.next(),
        parts.next().and_then(|n| n.parse::<usize>().ok()),
    ) {
        (Some("panic"), _) => panic!("the stub was asked to panic"),
        (Some("spin"), _) => {
            let mut i = 0u64;
            loop {
                i = std::hint::black_box(i.wrapping_add(1));
            }
        }
        (Some("alloc"), Some(n)) => {
            let v = std::hint::black_box(vec![1u8; n]);
            Ok(vec![format!("allocated {}", v.len())])
        }
        (Some("try-alloc"), Some(n)) => {
            let mut v: Vec<u8> = Vec::new();
            v.try_reserve_exact(n)
                .map_err(|_| Error::ResourceExhausted(format!("cannot allocate {n} bytes")))?;
            Ok(vec![format!("allocated {n}")])
        }
        (Some("fail"), _) => Err(Error::InvalidInput("the stub was asked to fail".into())),
        _ => Ok(prompt.split_whitespace().map(str::to_string).collect()),
    }
}

fn completion(prompt: &str, words: &[String]) -> Completion {
    Completion {
        text: words.join(" "),
        prompt_tokens: prompt.split_whitespace().count() as u32,
        completion_tokens: words.len() as u32,
        finish_reason: FinishReason::EndOfText,
    }
}

fn chat_prompt(request: &ChatRequest) -> String {
    request
        .messages
        .last()
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

impl models::Guest for Stub {
    type ModelUpload = Upload;

    fn load_model(
        id: String,
        kind: ModelKind,
        files: Vec<ModelFile>,
        _options: LoadOptions,
    ) -> Result<ModelInfo, Error> {
        let files: Vec<(String, u64)> = files
            .iter()
            .map(|f| (f.name.clone(), f.bytes.len() as u64))
            .collect();
        register(model_info(id, kind, &files))
    }

    fn unload_model(id: String) -> Result<(), Error> {
        require_model(&id)?;
        MODELS.with(|m| m.borrow_mut().retain(|x| x.id != id));
        Ok(())
    }

    fn list_models() -> Vec<ModelInfo> {
        MODELS.with(|m| m.borrow().clone())
    }
}

pub struct Upload {
    id: String,
    kind: ModelKind,
    /// (name, declared size, bytes received)
    files: RefCell<Vec<(String, Option<u64>, u64)>>,
}

impl Drop for Upload {
    fn drop(&mut self) {
        LIVE_UPLOADS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl models::GuestModelUpload for Upload {
    fn new(id: String, kind: ModelKind, _options: LoadOptions) -> Self {
        LIVE_UPLOADS.fetch_add(1, Ordering::Relaxed);
        Upload {
            id,
            kind,
            files: RefCell::new(Vec::new()),
        }
    }

    fn begin_file(&self, name: String, size: Option<u64>) -> Result<(), Error> {
        self.files.borrow_mut().push((name, size, 0));
        Ok(())
    }

    fn write(&self, chunk: Vec<u8>) -> Result<u64, Error> {
        let mut files = self.files.borrow_mut();
        let current = files
            .last_mut()
            .ok_or_else(|| Error::InvalidInput("write before begin-file".into()))?;
        current.2 += chunk.len() as u64;
        Ok(current.2)
    }

    fn finish(&self) -> Result<ModelInfo, Error> {
        let files = self.files.borrow();
        for (name, size, got) in files.iter() {
            if size.is_some_and(|s| s != *got) {
                return Err(Error::InvalidModel(format!(
                    "{name}: declared {size:?} bytes, got {got}"
                )));
            }
        }
        let files: Vec<(String, u64)> = files.iter().map(|(n, _, got)| (n.clone(), *got)).collect();
        register(model_info(self.id.clone(), self.kind, &files))
    }
}

pub struct Stream {
    prompt: String,
    words: Vec<String>,
    emitted: RefCell<usize>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        LIVE_STREAMS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl inference::GuestTokenStream for Stream {
    fn next(&self) -> Result<Option<String>, Error> {
        let mut emitted = self.emitted.borrow_mut();
        let Some(word) = self.words.get(*emitted) else {
            return Ok(None);
        };
        if word == "boom" {
            panic!("the stub's stream hit `boom`");
        }
        *emitted += 1;
        Ok(Some(if *emitted == 1 {
            word.clone()
        } else {
            format!(" {word}")
        }))
    }

    fn completion(&self) -> Completion {
        completion(&self.prompt, &self.words[..*self.emitted.borrow()])
    }
}

fn start_stream(model: &str, prompt: String) -> Result<inference::TokenStream, Error> {
    require_model(model)?;
    let words = script(&prompt)?;
    LIVE_STREAMS.fetch_add(1, Ordering::Relaxed);
    Ok(inference::TokenStream::new(Stream {
        prompt,
        words,
        emitted: RefCell::new(0),
    }))
}

impl inference::Guest for Stub {
    type TokenStream = Stream;

    fn generate(request: GenerateRequest) -> Result<Completion, Error> {
        require_model(&request.model)?;
        let words = script(&request.prompt)?;
        Ok(completion(&request.prompt, &words))
    }

    fn stream(request: GenerateRequest) -> Result<inference::TokenStream, Error> {
        start_stream(&request.model, request.prompt)
    }

    fn chat(request: ChatRequest) -> Result<Completion, Error> {
        require_model(&request.model)?;
        let prompt = chat_prompt(&request);
        let words = script(&prompt)?;
        Ok(completion(&prompt, &words))
    }

    fn stream_chat(request: ChatRequest) -> Result<inference::TokenStream, Error> {
        let prompt = chat_prompt(&request);
        start_stream(&request.model, prompt)
    }

    fn embed(model: String, texts: Vec<String>) -> Result<Vec<Vec<f32>>, Error> {
        require_model(&model)?;
        Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
    }

    fn embed_counted(model: String, texts: Vec<String>) -> Result<inference::Embeddings, Error> {
        let vectors = <Stub as inference::Guest>::embed(model, texts)?;
        let tokens = vectors.len() as u64;
        Ok(inference::Embeddings { vectors, tokens })
    }

    fn tokenize(model: String, text: String, _add_special_tokens: bool) -> Result<Vec<u32>, Error> {
        require_model(&model)?;
        Ok(text.bytes().map(u32::from).collect())
    }

    fn score(model: String, _text: String) -> Result<inference::ScoreReport, Error> {
        require_model(&model)?;
        Err(Error::Unsupported("the stub guest has no language model to score with".into()))
    }

    fn detokenize(model: String, tokens: Vec<u32>) -> Result<String, Error> {
        require_model(&model)?;
        let bytes: Vec<u8> = tokens.iter().map(|&t| t as u8).collect();
        String::from_utf8(bytes).map_err(|e| Error::InvalidInput(e.to_string()))
    }
}

impl introspect::Guest for Stub {
    fn memory_stats() -> MemoryReport {
        let pages = core::arch::wasm32::memory_size(0) as u64;
        let live = |id: &str, n: &AtomicU64| ModelMemory {
            id: id.into(),
            weight_bytes: 0,
            cache_bytes: n.load(Ordering::Relaxed),
        };
        MemoryReport {
            linear_memory_bytes: pages * 65536,
            allocated_bytes: 0,
            peak_allocated_bytes: 0,
            models: vec![
                live("live-uploads", &LIVE_UPLOADS),
                live("live-token-streams", &LIVE_STREAMS),
            ],
        }
    }

    fn prepare_snapshot() {}

    fn build_info() -> BuildReport {
        BuildReport {
            engine_version: "stub".into(),
            target: "wasm32-wasip2".into(),
            simd128: cfg!(target_feature = "simd128"),
            relaxed_simd: false,
        }
    }
}

/// The stub holds no graph: every knowledge call says so (the real graph is tested end to end).
mod knowledge_stub {
    use super::exports::llmkg::engine::knowledge as kg;
    use super::{Error, Stub};

    fn none<T>() -> Result<T, Error> {
        Err(Error::Unsupported("the stub component has no knowledge graph".into()))
    }

    impl kg::Guest for Stub {
        fn insert(_: Vec<kg::Fact>) -> Result<kg::ChangeReport, Error> {
            none()
        }
        fn remove(_: Vec<kg::Fact>) -> Result<kg::ChangeReport, Error> {
            none()
        }
        fn query(_: String, _: u32) -> Result<kg::QueryResult, Error> {
            none()
        }
        fn import(_: kg::RdfFormat, _: Vec<u8>, _: kg::ImportOptions) -> Result<kg::ChangeReport, Error> {
            none()
        }
        fn export(_: kg::RdfFormat) -> Result<Vec<u8>, Error> {
            none()
        }
        fn search(_: String, _: u32) -> Result<Vec<kg::SearchHit>, Error> {
            none()
        }
        fn match_pattern(_: Option<String>, _: Option<String>, _: Option<kg::FactObject>, _: u32) -> Result<Vec<kg::Triple>, Error> {
            none()
        }
        fn neighbors(_: String, _: u32, _: u32) -> Result<Vec<kg::Triple>, Error> {
            none()
        }
        fn ask(_: String, _: kg::AskOptions) -> Result<kg::Answer, Error> {
            none()
        }
        fn set_embedding_model(_: String) -> Result<(), Error> {
            none()
        }
        fn stats() -> kg::GraphStats {
            kg::GraphStats { triples: 0, entities: 0, indexed: 0, pending: 0, embedding_model: None }
        }
        fn export_index() -> Result<Vec<u8>, Error> {
            none()
        }
        fn import_index(_: Vec<u8>) -> Result<u64, Error> {
            none()
        }
        fn update(_: String, _: Vec<String>, _: Vec<String>) -> Result<kg::ChangeReport, Error> {
            none()
        }
        fn query_serialized(_: String, _: Vec<String>, _: Vec<String>, _: kg::ResultsFormat, _: kg::RdfFormat, _: u32) -> Result<kg::SerializedResults, Error> {
            none()
        }
        fn record_changes(_: bool) {}
        fn take_changes() -> Vec<u8> {
            Vec::new()
        }
        fn apply_changes(_: Vec<u8>, _: bool) -> Result<kg::ChangeReport, Error> {
            none()
        }
        fn restore(_: Vec<u8>, _: u64) -> Result<kg::ChangeReport, Error> {
            none()
        }
        fn log_position() -> u64 {
            0
        }
        fn set_log_position(_: u64) {}
    }
}
