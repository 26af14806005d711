//! llmkg-component: exports the llmkg engine as the `llmkg:engine` WIT world. Glue only:
//! each export converts WIT records to engine types, calls the engine, converts back.

use std::cell::RefCell;

use llmkg_engine as engine;
use llmkg_engine::memory::CountingAllocator;

wit_bindgen::generate!({ path: "../../wit", world: "engine" });

use exports::llmkg::engine::inference::{self, GuestTokenStream};
use exports::llmkg::engine::introspect;
use exports::llmkg::engine::models::{self, GuestModelUpload};
use llmkg::engine::types::{Error, ModelInfo, ModelKind};

#[global_allocator]
static ALLOCATOR: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

thread_local! {
    static ENGINE: RefCell<engine::Engine> = RefCell::new(engine::Engine::new());
}

fn with_engine<T>(f: impl FnOnce(&mut engine::Engine) -> T) -> T {
    ENGINE.with(|e| f(&mut e.borrow_mut()))
}

struct Component;
export!(Component);

impl From<engine::EngineError> for Error {
    fn from(e: engine::EngineError) -> Self {
        use engine::EngineError as E;
        match e {
            E::InvalidModel(m) => Error::InvalidModel(m),
            E::Unsupported(m) => Error::Unsupported(m),
            E::InvalidInput(m) => Error::InvalidInput(m),
            E::NotFound(m) => Error::NotFound(m),
            E::ResourceExhausted(m) => Error::ResourceExhausted(m),
            E::QuerySyntax(m) => Error::QuerySyntax(m),
            E::Internal(m) => Error::Internal(m),
        }
    }
}

fn kind_in(k: ModelKind) -> engine::ModelKind {
    match k {
        ModelKind::TextGeneration => engine::ModelKind::TextGeneration,
        ModelKind::Embedding => engine::ModelKind::Embedding,
    }
}

fn info_out(i: engine::ModelInfo) -> ModelInfo {
    ModelInfo {
        id: i.id,
        kind: match i.kind {
            engine::ModelKind::TextGeneration => ModelKind::TextGeneration,
            engine::ModelKind::Embedding => ModelKind::Embedding,
        },
        architecture: i.architecture,
        parameters: i.parameters,
        quantization: i.quantization,
        source_quantization: i.source_quantization,
        weight_bytes: i.weight_bytes,
        context_length: i.context_length,
        embedding_length: i.embedding_length,
        vocab_size: i.vocab_size,
    }
}

fn options_in(o: models::LoadOptions) -> engine::LoadOptions {
    use models::WeightConversion as W;
    engine::LoadOptions {
        conversion: match o.conversion {
            W::Auto => engine::WeightConversion::Auto,
            W::Keep => engine::WeightConversion::Keep,
            W::Q8 => engine::WeightConversion::Q8_0,
            W::Q4 => engine::WeightConversion::Q4_0,
            W::F16 => engine::WeightConversion::F16,
        },
        context_length: o.context_length,
    }
}

impl models::Guest for Component {
    type ModelUpload = Upload;

    fn load_model(id: String, kind: ModelKind, files: Vec<models::ModelFile>, options: models::LoadOptions) -> Result<ModelInfo, Error> {
        let files = files.into_iter().map(|f| engine::ModelFile { name: f.name, bytes: f.bytes }).collect();
        with_engine(|e| e.load_model(&id, kind_in(kind), files, &options_in(options)))
            .map(info_out)
            .map_err(Error::from)
    }

    fn unload_model(id: String) -> Result<(), Error> {
        with_engine(|e| e.unload_model(&id)).map_err(Error::from)
    }

    fn list_models() -> Vec<ModelInfo> {
        with_engine(|e| e.list_models()).into_iter().map(info_out).collect()
    }
}

/// `model-upload`: the engine's `ModelUpload`, taken out on `finish`.
struct Upload(RefCell<Option<engine::ModelUpload>>);

impl Upload {
    fn with<T>(&self, f: impl FnOnce(&mut engine::ModelUpload) -> engine::Result<T>) -> Result<T, Error> {
        match self.0.borrow_mut().as_mut() {
            Some(u) => f(u).map_err(Error::from),
            None => Err(Error::InvalidInput("this upload has already finished".into())),
        }
    }
}

impl GuestModelUpload for Upload {
    fn new(id: String, kind: ModelKind, options: models::LoadOptions) -> Self {
        Upload(RefCell::new(Some(engine::ModelUpload::new(&id, kind_in(kind), options_in(options)))))
    }

    fn begin_file(&self, name: String, size: Option<u64>) -> Result<(), Error> {
        self.with(|u| u.begin_file(&name, size))
    }

    fn write(&self, chunk: Vec<u8>) -> Result<u64, Error> {
        self.with(|u| u.write(&chunk))
    }

    fn finish(&self) -> Result<ModelInfo, Error> {
        let upload = self.0.borrow_mut().take().ok_or_else(|| Error::InvalidInput("this upload has already finished".into()))?;
        with_engine(|e| upload.finish(e)).map(info_out).map_err(Error::from)
    }
}

fn sampling_in(s: Option<inference::Sampling>) -> Option<engine::Sampling> {
    s.map(|s| engine::Sampling {
        temperature: s.temperature,
        top_p: s.top_p,
        top_k: s.top_k,
        repeat_penalty: s.repeat_penalty,
        seed: s.seed,
    })
}

fn generate_in(r: inference::GenerateRequest) -> engine::GenerateRequest {
    engine::GenerateRequest {
        model: r.model,
        prompt: r.prompt,
        max_tokens: r.max_tokens,
        sampling: sampling_in(r.sampling),
        stop: r.stop,
    }
}

fn chat_in(r: inference::ChatRequest) -> engine::ChatRequest {
    engine::ChatRequest {
        model: r.model,
        messages: r.messages.into_iter().map(|m| engine::ChatMessage { role: m.role, content: m.content }).collect(),
        max_tokens: r.max_tokens,
        sampling: sampling_in(r.sampling),
        stop: r.stop,
    }
}

fn completion_out(c: engine::Completion) -> inference::Completion {
    use inference::FinishReason as F;
    inference::Completion {
        text: c.text,
        prompt_tokens: c.prompt_tokens,
        completion_tokens: c.completion_tokens,
        finish_reason: match c.finish_reason {
            engine::FinishReason::EndOfText => F::EndOfText,
            engine::FinishReason::StopString => F::StopString,
            engine::FinishReason::Length => F::Length,
            engine::FinishReason::ContextFull => F::ContextFull,
        },
    }
}

/// `token-stream`: a generation in progress.
struct Stream(RefCell<engine::Generation>);

impl GuestTokenStream for Stream {
    fn next(&self) -> Result<Option<String>, Error> {
        self.0.borrow_mut().next_piece().map_err(Error::from)
    }

    fn completion(&self) -> inference::Completion {
        completion_out(self.0.borrow().completion())
    }
}

impl inference::Guest for Component {
    type TokenStream = Stream;

    fn generate(request: inference::GenerateRequest) -> Result<inference::Completion, Error> {
        with_engine(|e| e.generate(&generate_in(request))).map(completion_out).map_err(Error::from)
    }

    fn stream(request: inference::GenerateRequest) -> Result<inference::TokenStream, Error> {
        let generation = with_engine(|e| e.stream(&generate_in(request)))?;
        Ok(inference::TokenStream::new(Stream(RefCell::new(generation))))
    }

    fn chat(request: inference::ChatRequest) -> Result<inference::Completion, Error> {
        with_engine(|e| e.chat(&chat_in(request))).map(completion_out).map_err(Error::from)
    }

    fn stream_chat(request: inference::ChatRequest) -> Result<inference::TokenStream, Error> {
        let generation = with_engine(|e| e.stream_chat(&chat_in(request)))?;
        Ok(inference::TokenStream::new(Stream(RefCell::new(generation))))
    }

    fn embed(model: String, texts: Vec<String>) -> Result<Vec<Vec<f32>>, Error> {
        with_engine(|e| e.embed(&model, &texts)).map_err(Error::from)
    }

    fn tokenize(model: String, text: String, add_special_tokens: bool) -> Result<Vec<u32>, Error> {
        with_engine(|e| e.tokenize(&model, &text, add_special_tokens)).map_err(Error::from)
    }

    fn detokenize(model: String, tokens: Vec<u32>) -> Result<String, Error> {
        with_engine(|e| e.detokenize(&model, &tokens)).map_err(Error::from)
    }
}

impl introspect::Guest for Component {
    fn memory_stats() -> introspect::MemoryReport {
        let s = with_engine(|e| e.memory_stats());
        introspect::MemoryReport {
            linear_memory_bytes: s.linear_memory_bytes,
            allocated_bytes: s.allocated_bytes,
            peak_allocated_bytes: s.peak_allocated_bytes,
            models: s
                .models
                .into_iter()
                .map(|m| introspect::ModelMemory { id: m.id, weight_bytes: m.weight_bytes, cache_bytes: m.cache_bytes })
                .collect(),
        }
    }

    fn build_info() -> introspect::BuildReport {
        let b = engine::build_info();
        introspect::BuildReport { engine_version: b.engine_version, target: b.target, simd128: b.simd128, relaxed_simd: b.relaxed_simd }
    }
}
