//! The graph's own routes (semantic search, grounded ask, neighbours, stats, fact changes,
//! import/export), and how every instance sees every committed write.
//!
//! With a data directory (`LLMKG_DATA`), the graph is a snapshot plus a change log
//! (`llmkg-graph-log`). Before it reads, an instance replays the changes committed after its
//! own position (instances made from a pre-initialized snapshot start at the snapshot's). A
//! write runs on the instance, is taken from the engine as a patch and published as the next
//! change; if another instance committed that position first, the write is undone, the newer
//! change replayed and the write run again. So writes are serializable across instances and
//! processes, and durable once answered.

use std::cell::Cell;

use serde::Deserialize;
use serde_json::{json, Value};

use llmkg_graph_log::{GraphLog, PublishError};

use crate::auth;
use crate::bindings::llmkg::engine::inference::Sampling;
use crate::bindings::llmkg::engine::knowledge::{
    self, AskOptions, ChangeReport, Fact, FactObject, ImportOptions, Literal, RdfFormat, Term, Triple,
};
use crate::bindings::llmkg::engine::types::Error as EngineError;
use crate::config::{Config, Rights};
use crate::errors::ApiError;
use crate::http::{negotiate, Request, Response};
use crate::models;
use crate::openai::usage;
use crate::sparql::GRAPHS;

/// A write that keeps losing the race for the next position gives up after this many tries.
const WRITE_ATTEMPTS: usize = 16;

thread_local! {
    /// Whether this instance has looked at the data directory's snapshot yet.
    static STARTED: Cell<bool> = const { Cell::new(false) };
}

fn log_error(what: &str) -> impl Fn(std::io::Error) -> ApiError + '_ {
    move |e| ApiError::internal(format!("{what}: {e}"))
}

fn data_log(config: &Config) -> Option<GraphLog> {
    config.data_dir.as_ref().map(GraphLog::new)
}

/// Brings this instance's graph up to the last committed change.
pub fn sync(config: &Config) -> Result<(), ApiError> {
    let Some(log) = data_log(config) else { return Ok(()) };
    let mut position = knowledge::log_position();
    if !STARTED.replace(true) || log.changes_after(position).map_err(log_error("reading the change log"))?.problem.is_some() {
        // An instance that did not start from a snapshot of this data directory (nothing at
        // position 0), or one whose next changes were compacted away, loads the snapshot.
        if let Some(snapshot) = log.read_snapshot().map_err(log_error("reading the graph snapshot"))? {
            if snapshot.position > position || (position == 0 && knowledge::stats().triples == 0) {
                knowledge::restore(&snapshot.nquads, snapshot.position)?;
                position = snapshot.position;
            }
        }
    }
    let replay = log.changes_after(position).map_err(log_error("reading the change log"))?;
    for change in replay.changes {
        knowledge::apply_changes(&change.patch, false)?;
        knowledge::set_log_position(change.position);
    }
    if let Some(problem) = replay.problem {
        // Stale reads would be silent: refuse, and say where the log is damaged.
        return Err(ApiError::internal(format!("the graph's change log cannot be replayed: {problem}; run `llmkg kg repair` on the data directory")));
    }
    Ok(())
}

/// Runs a graph write and commits its change to the log (see the module comment).
pub fn write(config: &Config, op: impl Fn() -> Result<ChangeReport, EngineError>) -> Result<ChangeReport, ApiError> {
    let log = data_log(config).ok_or_else(|| ApiError::forbidden("graph writes need a data directory (LLMKG_DATA)"))?;
    for _ in 0..WRITE_ATTEMPTS {
        sync(config)?;
        knowledge::record_changes(true);
        let result = op();
        let patch = knowledge::take_changes();
        knowledge::record_changes(false);
        let report = result?;
        if patch.is_empty() {
            return Ok(report);
        }
        let position = knowledge::log_position() + 1;
        match log.publish(position, &patch) {
            Ok(()) => {
                knowledge::set_log_position(position);
                return Ok(report);
            }
            Err(PublishError::Conflict(_)) => {
                knowledge::apply_changes(&patch, true)?;
            }
            Err(PublishError::Io(e)) => {
                knowledge::apply_changes(&patch, true)?;
                return Err(ApiError::internal(format!("the change could not be committed ({e}); the graph was not changed")));
            }
        }
    }
    Err(ApiError::unavailable("other writers kept committing first; the graph was not changed, try again"))
}

fn term_json(t: &Term) -> Value {
    match t {
        Term::Iri(i) => json!({ "type": "uri", "value": i }),
        Term::BlankNode(b) => json!({ "type": "bnode", "value": b }),
        Term::Literal(l) => match &l.language {
            Some(lang) => json!({ "type": "literal", "value": l.value, "xml:lang": lang }),
            None => json!({ "type": "literal", "value": l.value, "datatype": l.datatype }),
        },
    }
}

fn triple_json(t: &Triple) -> Value {
    json!({ "subject": term_json(&t.subject), "predicate": term_json(&t.predicate), "object": term_json(&t.object) })
}

#[derive(Deserialize)]
struct SearchBody {
    #[serde(alias = "text")]
    query: String,
    k: Option<u32>,
}

pub fn search(config: &Config, request: &mut Request) -> Result<Response, ApiError> {
    let body: SearchBody = request.json(config.max_body)?;
    let k = body.k.unwrap_or(5);
    if k == 0 || k > 1000 {
        return Err(ApiError::bad_param("k", format!("k is {k}; expected 1 to 1000")));
    }
    models::embedding_model(config, None)?;
    sync(config)?;
    let hits = knowledge::search(&body.query, k)?;
    let hits: Vec<Value> = hits.iter().map(|h| json!({ "iri": h.iri, "label": h.label, "score": h.score })).collect();
    Ok(Response::json(200, &json!({ "object": "list", "data": hits })))
}

#[derive(Deserialize)]
struct AskBody {
    question: String,
    model: Option<String>,
    entities: Option<u32>,
    hops: Option<u32>,
    max_facts: Option<u32>,
    max_tokens: Option<u32>,
    temperature: Option<f32>,
    seed: Option<u64>,
}

pub fn ask(config: &Config, request: &mut Request) -> Result<Response, ApiError> {
    let body: AskBody = request.json(config.max_body)?;
    if body.question.trim().is_empty() {
        return Err(ApiError::bad_param("question", "question is empty"));
    }
    let defaults = (8, 1, 8, 96);
    let max_tokens = body.max_tokens.unwrap_or(defaults.3);
    if max_tokens == 0 || max_tokens > config.max_tokens {
        return Err(ApiError::bad_param("max_tokens", format!("max_tokens is {max_tokens}; expected 1 to {} (LLMKG_MAX_TOKENS)", config.max_tokens)));
    }
    let model = models::text_model(config, body.model.as_deref())?;
    models::embedding_model(config, None)?;
    let sampling = body.temperature.filter(|t| *t > 0.0).map(|temperature| Sampling {
        temperature,
        top_p: 1.0,
        top_k: 0,
        repeat_penalty: 1.0,
        seed: body.seed.unwrap_or_else(wasip2::random::random::get_random_u64),
    });
    let options = AskOptions {
        model: model.clone(),
        entities: body.entities.unwrap_or(defaults.0).clamp(1, 64),
        hops: body.hops.unwrap_or(defaults.1).clamp(1, 3),
        max_facts: body.max_facts.unwrap_or(defaults.2).clamp(1, 64),
        max_tokens,
        sampling,
    };
    sync(config)?;
    let answer = knowledge::ask(&body.question, &options)?;
    let facts: Vec<Value> = answer
        .facts
        .iter()
        .map(|f| {
            let mut v = triple_json(&f.triple);
            v["sentence"] = json!(f.sentence);
            v["score"] = json!(f.score);
            v["confidence"] = json!(f.confidence);
            v["source"] = json!(f.source);
            v
        })
        .collect();
    let value = json!({
        "object": "graph.answer",
        "model": model,
        "answer": answer.text,
        "facts": facts,
        "finish_reason": crate::openai::finish_reason(answer.completion.finish_reason),
        "usage": usage(&answer.completion),
    });
    let (name, usage_value) = crate::openai::usage_header(&answer.completion);
    Ok(Response::json(200, &value).header(&name, usage_value))
}

pub fn neighbors(config: &Config, request: &mut Request) -> Result<Response, ApiError> {
    let params = request.query_params();
    let get = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let entity = get("entity").ok_or_else(|| ApiError::bad_param("entity", "GET /v1/graph/neighbors needs ?entity=NAME_OR_IRI"))?;
    let number = |name: &str, default: u32, max: u32| -> Result<u32, ApiError> {
        match get(name) {
            None => Ok(default),
            Some(v) => v.parse::<u32>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| ApiError::bad_param(name, format!("{name}={v:?}; expected 1 to {max}"))),
        }
    };
    let hops = number("hops", 1, 3)?;
    let limit = number("limit", 100, config.max_rows)?;
    sync(config)?;
    let triples = knowledge::neighbors(&entity, hops, limit)?;
    Ok(Response::json(200, &json!({ "object": "list", "data": triples.iter().map(triple_json).collect::<Vec<_>>() })))
}

pub fn stats(config: &Config) -> Result<Response, ApiError> {
    sync(config)?;
    let s = knowledge::stats();
    Ok(Response::json(
        200,
        &json!({
            "triples": s.triples,
            "entities": s.entities,
            "indexed": s.indexed,
            "pending": s.pending,
            "embedding_model": s.embedding_model,
            "log_position": knowledge::log_position(),
        }),
    ))
}

#[derive(Deserialize)]
struct FactJson {
    subject: String,
    predicate: String,
    object: String,
    /// The object is text, not an entity.
    #[serde(default)]
    literal: bool,
    datatype: Option<String>,
    language: Option<String>,
    confidence: Option<f32>,
    source: Option<String>,
}

#[derive(Deserialize)]
struct FactsBody {
    facts: Vec<FactJson>,
}

fn facts_in(config: &Config, request: &mut Request) -> Result<Vec<Fact>, ApiError> {
    let body: FactsBody = request.json(config.max_body)?;
    if body.facts.is_empty() {
        return Err(ApiError::bad_param("facts", "facts is empty"));
    }
    Ok(body
        .facts
        .into_iter()
        .map(|f| {
            let object = match (f.literal, f.datatype, f.language) {
                (_, Some(datatype), language) => FactObject::Literal(Literal { value: f.object, datatype, language }),
                (_, None, Some(language)) => FactObject::Literal(Literal {
                    value: f.object,
                    datatype: "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString".into(),
                    language: Some(language),
                }),
                (true, None, None) => FactObject::Text(f.object),
                (false, None, None) => FactObject::Entity(f.object),
            };
            Fact { subject: f.subject, predicate: f.predicate, object, confidence: f.confidence, source: f.source }
        })
        .collect())
}

fn change_json(r: &ChangeReport) -> Response {
    Response::json(200, &json!({ "changed": r.changed, "total": r.total }))
}

pub fn insert(config: &Config, request: &mut Request, rights: Rights) -> Result<Response, ApiError> {
    auth::may_write(config, rights)?;
    let facts = facts_in(config, request)?;
    Ok(change_json(&write(config, || knowledge::insert(&facts))?))
}

pub fn remove(config: &Config, request: &mut Request, rights: Rights) -> Result<Response, ApiError> {
    auth::may_write(config, rights)?;
    let facts = facts_in(config, request)?;
    Ok(change_json(&write(config, || knowledge::remove(&facts))?))
}

pub fn import(config: &Config, request: &mut Request, rights: Rights) -> Result<Response, ApiError> {
    auth::may_write(config, rights)?;
    let media = request.content_type();
    let format = GRAPHS.iter().find(|(m, _)| *m == media).map(|(_, f)| *f).ok_or_else(|| {
        let offered: Vec<&str> = GRAPHS.iter().map(|(m, _)| *m).collect();
        ApiError::unsupported_media_type(format!("POST /v1/graph/import takes {}; got {media:?}", offered.join(", ")))
    })?;
    // `?base=IRI` resolves relative IRIs (a posted document has no URL of its own), `?graph=IRI`
    // loads the default-graph triples into a named graph.
    let mut options = ImportOptions { base_iri: None, graph: None };
    for (name, value) in request.query_params() {
        match name.as_str() {
            "base" => options.base_iri = Some(value),
            "graph" => options.graph = Some(value),
            _ => {}
        }
    }
    let data = request.body(config.max_body)?;
    Ok(change_json(&write(config, || knowledge::import(format, &data, &options))?))
}

pub fn export(config: &Config, request: &mut Request) -> Result<Response, ApiError> {
    let offered: Vec<&str> = GRAPHS.iter().map(|(m, _)| *m).collect();
    let by_name = request.query_params().into_iter().find(|(k, _)| k == "format").map(|(_, v)| v);
    let format: RdfFormat = match by_name.as_deref() {
        Some("turtle") => RdfFormat::Turtle,
        Some("ntriples" | "n-triples") => RdfFormat::NTriples,
        Some("nquads" | "n-quads") => RdfFormat::NQuads,
        Some("trig") => RdfFormat::Trig,
        Some("rdfxml" | "rdf-xml") => RdfFormat::RdfXml,
        Some("jsonld" | "json-ld") => RdfFormat::JsonLd,
        Some(other) => return Err(ApiError::bad_param("format", format!("format {other:?}: expected turtle, ntriples, nquads, trig, rdfxml or jsonld"))),
        None => {
            let media = negotiate(request.header("accept"), &offered).ok_or_else(|| ApiError::not_acceptable(format!("offered: {}", offered.join(", "))))?;
            GRAPHS.iter().find(|(m, _)| *m == media).map(|(_, f)| *f).unwrap_or(RdfFormat::Turtle)
        }
    };
    let media = GRAPHS.iter().find(|(_, f)| *f == format).map(|(m, _)| *m).unwrap_or("text/turtle");
    sync(config)?;
    Ok(Response::bytes(200, media, knowledge::export(format)?))
}
