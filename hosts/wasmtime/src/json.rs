//! The WIT records as JSON: fields in snake_case, enum cases spelled as in the WIT (`end-of-text`).
//! One mapping, shared by the CLI's `--json` and any other host that reports in JSON.

use serde_json::{json, Value};

use crate::error::guest_error_parts;
use crate::{
    BuildReport, Completion, FinishReason, GuestError, MemoryReport, ModelInfo, ModelKind,
    ModelMemory,
};

pub fn model_kind_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::TextGeneration => "text-generation",
        ModelKind::Embedding => "embedding",
    }
}

pub fn finish_reason_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::EndOfText => "end-of-text",
        FinishReason::StopString => "stop-string",
        FinishReason::Length => "length",
        FinishReason::ContextFull => "context-full",
    }
}

pub fn model_info(m: &ModelInfo) -> Value {
    json!({
        "id": m.id,
        "kind": model_kind_name(m.kind),
        "architecture": m.architecture,
        "parameters": m.parameters,
        "quantization": m.quantization,
        "source_quantization": m.source_quantization,
        "weight_bytes": m.weight_bytes,
        "context_length": m.context_length,
        "embedding_length": m.embedding_length,
        "vocab_size": m.vocab_size,
    })
}

pub fn model_memory(m: &ModelMemory) -> Value {
    json!({ "id": m.id, "weight_bytes": m.weight_bytes, "cache_bytes": m.cache_bytes })
}

pub fn memory_stats(s: &MemoryReport) -> Value {
    json!({
        "linear_memory_bytes": s.linear_memory_bytes,
        "allocated_bytes": s.allocated_bytes,
        "peak_allocated_bytes": s.peak_allocated_bytes,
        "models": s.models.iter().map(model_memory).collect::<Vec<_>>(),
    })
}

pub fn build_info(b: &BuildReport) -> Value {
    json!({
        "engine_version": b.engine_version,
        "target": b.target,
        "simd128": b.simd128,
        "relaxed_simd": b.relaxed_simd,
    })
}

pub fn completion(c: &Completion) -> Value {
    json!({
        "text": c.text,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "finish_reason": finish_reason_name(c.finish_reason),
    })
}

/// `{"error": "invalid-input", "message": "..."}`.
pub fn guest_error(e: &GuestError) -> Value {
    let (case, message) = guest_error_parts(e);
    json!({ "error": case, "message": message })
}
