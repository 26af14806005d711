//! llmkg-http: the one HTTP front of llmkg, a component that imports the engine's WIT
//! interfaces and serves its routes. `llmkg compose` plugs the engine component into it, and
//! the result runs under `llmkg serve`, `wasmtime serve`, wasmCloud and any other wasi:http host
//! (through `wasi:http/incoming-handler`), and in Deno, Bun and Node (the JS shim's fetch
//! handler, through the plain `http-handler` export).
//!
//! Routes (docs/SERVE.md has them all): the OpenAI-compatible API (`/v1/chat/completions`,
//! `/v1/completions`, `/v1/embeddings`, `/v1/models`, `/health`), the SPARQL 1.1 Protocol
//! (`/sparql`) and the graph's own calls (`/v1/graph/...`). Every rule about who may do what,
//! how big a request may be and which origins may call lives here, once, so it holds under
//! every host; settings come from the environment (`config`).

// Natively only the unit tests run; the handlers are reached from the wasm exports alone.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod auth;
mod config;
mod errors;
mod graph;
mod http;
mod models;
mod openai;
mod sparql;
mod transport;

/// The engine's interfaces (imported from the composed engine) and the plain handler export.
#[allow(clippy::all, dead_code)]
pub(crate) mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "http-front" });
}

use std::cell::OnceCell;

use config::Config;
use errors::ApiError;
use http::{Reply, Request};

thread_local! {
    /// Read once per instance: the environment does not change while an instance lives.
    static CONFIG: OnceCell<Result<Config, String>> = const { OnceCell::new() };
}

fn config() -> Result<Config, ApiError> {
    CONFIG
        .with(|c| c.get_or_init(|| Config::from_env(&|name| std::env::var(name).ok())).clone())
        .map_err(|why| ApiError::internal(format!("the server is misconfigured: {why}")))
}

/// One request, whatever carried it: the reply, and the CORS headers to add to it.
pub(crate) fn respond(request: &mut Request) -> (Reply, Vec<(String, String)>) {
    let config = match config() {
        Ok(c) => c,
        Err(e) => return (Reply::Whole(e.response()), Vec::new()),
    };
    let cors = http::cors_headers(&config, request);
    if request.method == "OPTIONS" {
        return (Reply::Whole(http::preflight(&config, request)), cors);
    }
    let reply = route(&config, request).unwrap_or_else(|e| Reply::Whole(e.response()));
    (reply, cors)
}

/// Where each request goes.
fn route(config: &Config, request: &mut Request) -> Result<Reply, ApiError> {
    let path = request.path.clone();
    let method = request.method.clone();
    if path == "/health" {
        return models::health(config).map(Reply::Whole);
    }
    let rights = auth::check(config, request)?;
    let whole = |r: Result<http::Response, ApiError>| r.map(Reply::Whole);
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") => openai::chat(config, request),
        ("POST", "/v1/completions") => openai::completion(config, request),
        ("POST", "/v1/embeddings") => whole(openai::embeddings(config, request)),
        ("GET", "/v1/models") => whole(openai::list_models(config)),
        ("GET", p) if p.starts_with("/v1/models/") => whole(openai::get_model(config, &p["/v1/models/".len()..])),
        ("GET" | "POST", "/sparql") => whole(sparql::handle(config, request, rights)),
        ("POST", "/v1/graph/search") => whole(graph::search(config, request)),
        ("POST", "/v1/graph/ask") => whole(graph::ask(config, request)),
        ("GET", "/v1/graph/neighbors") => whole(graph::neighbors(config, request)),
        ("GET", "/v1/graph/stats") => whole(graph::stats(config)),
        ("POST", "/v1/graph/facts") => whole(graph::insert(config, request, rights)),
        ("DELETE", "/v1/graph/facts") => whole(graph::remove(config, request, rights)),
        ("POST", "/v1/graph/import") => whole(graph::import(config, request, rights)),
        ("GET", "/v1/graph/export") => whole(graph::export(config, request)),
        (_, p) if is_known(p) => Err(ApiError::method_not_allowed(&method, p)),
        (_, p) => Err(ApiError::not_found(format!("no route {method} {p}; see /v1/models, /v1/chat/completions, /sparql, /v1/graph/..."))),
    }
}

fn is_known(path: &str) -> bool {
    matches!(
        path,
        "/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/models"
            | "/sparql"
            | "/v1/graph/search"
            | "/v1/graph/ask"
            | "/v1/graph/neighbors"
            | "/v1/graph/stats"
            | "/v1/graph/facts"
            | "/v1/graph/import"
            | "/v1/graph/export"
    )
}
