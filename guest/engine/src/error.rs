//! The one error type of the engine. Its variants are the WIT `error` variants, so the component
//! glue maps them one to one; every message says what was wrong and where.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Error)]
pub enum EngineError {
    #[error("invalid model: {0}")]
    InvalidModel(String),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("resource exhausted: {0}")]
    ResourceExhausted(String),
    #[error("query syntax: {0}")]
    QuerySyntax(String),
    #[error("internal: {0}")]
    Internal(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl EngineError {
    /// Wraps a candle error raised while computing (not while validating input): a bug or an
    /// exhausted resource, never the caller's fault.
    pub fn compute(context: &str, err: candle_core::Error) -> Self {
        EngineError::Internal(format!("{context}: {err}"))
    }
}

/// `?` on candle results inside model code, with the context added by the caller where useful.
impl From<candle_core::Error> for EngineError {
    fn from(err: candle_core::Error) -> Self {
        EngineError::Internal(err.to_string())
    }
}
