//! llmkg-http: the one HTTP front of llmkg, a `wasi:http/incoming-handler` component that
//! imports the engine's WIT interfaces. `llmkg compose` plugs the engine component into it, and
//! the result runs under `llmkg serve`, `wasmtime serve`, wasmCloud and any other wasi:http host.
//!
//! Routes (docs/SERVE.md has them all): the OpenAI-compatible API (`/v1/chat/completions`,
//! `/v1/completions`, `/v1/embeddings`, `/v1/models`, `/health`), the SPARQL 1.1 Protocol
//! (`/sparql`) and the graph's own calls (`/v1/graph/...`). Every rule about who may do what,
//! how big a request may be and which origins may call lives here, once, so it holds under
//! every host; settings come from the environment (`config`).

// Natively only the unit tests run; the handler is reached from the wasm export alone.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod auth;
mod config;
mod errors;
mod graph;
mod http;
mod models;
mod openai;
mod sparql;

/// The engine's interfaces, as imported from the composed engine component.
#[allow(clippy::all, dead_code)]
pub(crate) mod bindings {
    wit_bindgen::generate!({ path: "../../wit", world: "engine-client" });
}

use std::cell::OnceCell;

use wasip2::http::types::{IncomingRequest, ResponseOutparam};

use config::Config;
use errors::ApiError;
use http::{Request, Response};

struct Front;

// Natively (unit tests) there is nothing to export to, and the export names would not link.
#[cfg(target_arch = "wasm32")]
wasip2::http::proxy::export!(Front);

thread_local! {
    /// Read once per instance: the environment does not change while an instance lives.
    static CONFIG: OnceCell<Result<Config, String>> = const { OnceCell::new() };
}

impl wasip2::exports::http::incoming_handler::Guest for Front {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let mut request = Request::new(request);
        let config = CONFIG.with(|c| c.get_or_init(|| Config::from_env(&|name| std::env::var(name).ok())).clone());
        let config = match config {
            Ok(config) => config,
            Err(why) => {
                let error = ApiError::internal(format!("the server is misconfigured: {why}"));
                return http::send(out, error.response(), &[]);
            }
        };
        let cors = http::cors_headers(&config, &request);
        if request.method == "OPTIONS" {
            return http::send(out, http::preflight(&config, &request), &cors);
        }
        match route(&config, &mut request, out, &cors) {
            Ok(()) => {}
            Err((out, error)) => http::send(out, error.response(), &cors),
        }
    }
}

/// Where each request goes. A handler either answers through `out` itself (streams) or returns
/// a response; errors come back with `out` so they can still be answered.
fn route(config: &Config, request: &mut Request, out: ResponseOutparam, cors: &[(String, String)]) -> Result<(), (ResponseOutparam, ApiError)> {
    let path = request.path.clone();
    let method = request.method.clone();
    if path == "/health" {
        return reply(out, cors, models::health(config));
    }
    let rights = match auth::check(config, request) {
        Ok(rights) => rights,
        Err(e) => return Err((out, e)),
    };
    let result: Result<Response, ApiError> = match (method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") => return openai::chat(config, request, out, cors),
        ("POST", "/v1/completions") => return openai::completion(config, request, out, cors),
        ("POST", "/v1/embeddings") => openai::embeddings(config, request),
        ("GET", "/v1/models") => openai::list_models(config),
        ("GET", p) if p.starts_with("/v1/models/") => openai::get_model(config, &p["/v1/models/".len()..]),
        ("GET" | "POST", "/sparql") => sparql::handle(config, request, rights),
        ("POST", "/v1/graph/search") => graph::search(config, request),
        ("POST", "/v1/graph/ask") => graph::ask(config, request),
        ("GET", "/v1/graph/neighbors") => graph::neighbors(config, request),
        ("GET", "/v1/graph/stats") => graph::stats(config),
        ("POST", "/v1/graph/facts") => graph::insert(config, request, rights),
        ("DELETE", "/v1/graph/facts") => graph::remove(config, request, rights),
        ("POST", "/v1/graph/import") => graph::import(config, request, rights),
        ("GET", "/v1/graph/export") => graph::export(config, request),
        (_, p) if is_known(p) => Err(ApiError::method_not_allowed(&method, p)),
        (_, p) => Err(ApiError::not_found(format!("no route {method} {p}; see /v1/models, /v1/chat/completions, /sparql, /v1/graph/..."))),
    };
    match result {
        Ok(response) => reply(out, cors, Ok(response)),
        Err(e) => Err((out, e)),
    }
}

fn reply(out: ResponseOutparam, cors: &[(String, String)], result: Result<Response, ApiError>) -> Result<(), (ResponseOutparam, ApiError)> {
    match result {
        Ok(response) => {
            http::send(out, response, cors);
            Ok(())
        }
        Err(e) => Err((out, e)),
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
