//! llmkg-engine: the language-model runtime inside the llmkg component (model loading,
//! tokenizers, llama-family generation, BERT embeddings, sampling, memory accounting).
//! Pure Rust with no WIT: it builds natively (tests, benches) and for wasm32-wasip2.

pub mod embed;
pub mod engine;
pub mod error;
pub mod gguf;
mod grounding;
pub mod knowledge;
pub mod memory;
pub mod quantize;
pub mod testing;
pub mod text;
pub mod types;

pub use engine::{build_info, Engine, ModelUpload};
pub use error::{EngineError, Result};
pub use text::Generation;
pub use types::*;
