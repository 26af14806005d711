//! llmkg-host: runs the llmkg WebAssembly component natively under Wasmtime, with memory limits,
//! timeouts, trap recovery and a compiled-code cache; the `llmkg` CLI is a thin layer over it.
//!
//! ```no_run
//! use llmkg_host::{models, LlmkgRuntime, LoadOptions, RuntimeOptions, WeightConversion};
//! let mut rt = LlmkgRuntime::open(None, RuntimeOptions::default())?;
//! let source = models::resolve_or_fetch(models::DEFAULT_TEXT_MODEL, &models::models_dir(), false)?;
//! let options = LoadOptions { conversion: WeightConversion::Auto, context_length: None };
//! rt.load_model(&source.id, source.kind, &source.files, &options, |_, _, _| {})?;
//! # Ok::<(), llmkg_host::Error>(())
//! ```

pub mod app;
pub mod bench;
pub mod component;
pub mod compose;
pub mod datadir;
pub mod error;
pub mod json;
pub mod file_url;
pub mod models;
pub mod preinit;
pub mod runtime;
pub mod serve;
pub mod units;

pub use component::{locate_component, CacheOutcome, CompiledComponent, EngineSetup, LoadReport};
pub use error::{Error, Result};
pub use runtime::{
    BuildReport, ChatMessage, ChatRequest, Completion, FinishReason, GenerateRequest, GuestError,
    LlmkgRuntime, LoadOptions, MemoryReport, ModelFile, ModelInfo, ModelKind, ModelMemory,
    RuntimeOptions, Sampling, WeightConversion,
};
pub use runtime::{
    Answer, AskOptions, ChangeReport, Fact, FactObject, GraphStats, GroundingFact, ImportOptions, Literal, QueryResult,
    RdfFormat, ResultsFormat, SearchHit, SerializedResults, Solutions, Term, Triple,
};
