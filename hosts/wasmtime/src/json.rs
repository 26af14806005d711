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

pub fn term(t: &crate::Term) -> Value {
    match t {
        crate::Term::Iri(i) => json!({ "type": "iri", "value": i }),
        crate::Term::BlankNode(b) => json!({ "type": "bnode", "value": b }),
        crate::Term::Literal(l) => match &l.language {
            Some(lang) => json!({ "type": "literal", "value": l.value, "datatype": l.datatype, "lang": lang }),
            None => json!({ "type": "literal", "value": l.value, "datatype": l.datatype }),
        },
    }
}

pub fn triple(t: &crate::Triple) -> Value {
    json!({ "subject": term(&t.subject), "predicate": term(&t.predicate), "object": term(&t.object) })
}

pub fn change_report(c: &crate::ChangeReport) -> Value {
    json!({ "changed": c.changed, "total": c.total })
}

pub fn query_result(r: &crate::QueryResult) -> Value {
    match r {
        crate::QueryResult::Boolean(b) => json!({ "boolean": b }),
        crate::QueryResult::Updated(c) => json!({ "updated": change_report(c) }),
        crate::QueryResult::Triples(t) => json!({ "triples": t.iter().map(triple).collect::<Vec<_>>() }),
        crate::QueryResult::Solutions(s) => json!({
            "variables": s.variables,
            "rows": s.rows.iter().map(|row| row.iter().map(|t| t.as_ref().map(term)).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "truncated": s.truncated,
        }),
    }
}

pub fn search_hit(h: &crate::SearchHit) -> Value {
    json!({ "iri": h.iri, "label": h.label, "score": h.score })
}

pub fn answer(a: &crate::Answer) -> Value {
    json!({
        "text": a.text,
        "facts": a.facts.iter().map(|f| json!({
            "sentence": f.sentence,
            "score": f.score,
            "triple": triple(&f.triple),
            "confidence": f.confidence,
            "source": f.source,
        })).collect::<Vec<_>>(),
        "completion": completion(&a.completion),
    })
}

pub fn graph_stats(s: &crate::GraphStats) -> Value {
    json!({
        "triples": s.triples,
        "entities": s.entities,
        "indexed": s.indexed,
        "pending": s.pending,
        "embedding_model": s.embedding_model,
    })
}
