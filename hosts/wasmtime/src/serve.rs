//! `llmkg serve`: the composed component (HTTP front + engine) served over HTTP/1.1 with
//! `wasmtime-wasi-http`, the way `wasmtime serve` does it (pre-instantiate once, a store per
//! request), plus what a production server needs around it:
//!
//! - a fresh instance per request (full isolation; with a pre-initialized engine it starts in
//!   microseconds from a copy-on-write image shared by all instances) or reused instances;
//! - a concurrency limit with a bounded queue (503 with `Retry-After` beyond it);
//! - a deadline per request (`--timeout`, or shorter by the `x-llmkg-timeout` header): past it
//!   the instance is stopped by epoch interruption and the client gets 504;
//! - a memory limit per instance; a trapped instance is counted and thrown away;
//! - graceful shutdown (SIGINT/SIGTERM: stop accepting, let running requests and streams end);
//! - an access log and Prometheus `/metrics`.
//!
//! Everything about requests themselves (routes, auth, limits on bodies and tokens, CORS) is the
//! front's, so it holds under every host; this module never looks into a request body.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::component::CompiledComponent;
use crate::error::{Error, Result};

/// A directory the front sees (the data directory, model files).
#[derive(Debug, Clone)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Requests executing at once.
    pub concurrency: usize,
    /// Requests waiting for a turn beyond those; more get 503.
    pub queue: usize,
    /// Longest a request may run (a stream included).
    pub timeout: Duration,
    /// Cap on each instance's linear memory.
    pub max_memory: u64,
    /// `Some(n)`: an instance serves up to n requests before it is replaced; `None`: a fresh
    /// instance per request.
    pub reuse: Option<u64>,
    /// The front's settings (`LLMKG_*`, see guest/http/src/config.rs).
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    /// Keys that may read `/metrics` (the front's API keys); empty: open.
    pub metrics_keys: Vec<String>,
    pub access_log: bool,
    /// How long shutdown waits for running requests.
    pub drain: Duration,
}

/// What the server is doing: until the component is ready it answers 503.
enum Phase {
    Preparing(String),
    /// The compiled component is kept for its epoch clock, which drives deadlines and yields.
    Ready { pre: Arc<ProxyPre<ServeState>>, _compiled: CompiledComponent },
    Failed(String),
}

/// A reused instance and how many requests it served.
struct Idle {
    store: Store<ServeState>,
    proxy: wasmtime_wasi_http::p2::bindings::Proxy,
    uses: u64,
}

pub struct Server {
    config: ServeConfig,
    phase: RwLock<Phase>,
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    in_flight: AtomicUsize,
    shutting_down: AtomicBool,
    /// Tells open connections to close once their current response is sent.
    shutdown: tokio::sync::watch::Sender<bool>,
    /// Connections open now (shutdown waits for them: a response may still be sending).
    connections: AtomicUsize,
    idle: Mutex<Vec<Idle>>,
    pub metrics: Metrics,
}

pub struct ServeState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    hooks: NoOutgoingHttp,
    /// When this store's current request must end; the epoch callback checks it.
    deadline: Instant,
}

/// The front makes no outgoing HTTP requests; the default hooks refuse none of the others.
struct NoOutgoingHttp;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = std::result::Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn std::future::Future<
                Output = std::result::Result<
                    (
                        hyper::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn std::future::Future<Output = std::result::Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl WasiView for ServeState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for ServeState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

type BodyError = wasmtime_wasi_http::Error;
type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BodyError>;

fn full(status: u16, headers: &[(&str, String)], body: String) -> hyper::Response<ResponseBody> {
    let mut builder = hyper::Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(Full::new(Bytes::from(body)).map_err(|never: Infallible| match never {}).boxed_unsync())
        .unwrap_or_else(|_| hyper::Response::new(http_body_util::Empty::new().map_err(|never: Infallible| match never {}).boxed_unsync()))
}

/// An error answered by the host itself (the front never saw the request), in the front's
/// OpenAI shape.
fn host_error(status: u16, kind: &str, message: &str, retry_after: Option<u32>) -> hyper::Response<ResponseBody> {
    let body = serde_json::json!({ "error": { "message": message, "type": kind, "param": null, "code": null } }).to_string();
    let mut headers = vec![("content-type", "application/json".to_string())];
    if let Some(s) = retry_after {
        headers.push(("retry-after", s.to_string()));
    }
    full(status, &headers, body)
}

/// `x-llmkg-timeout`: `500ms`, `2s`, or seconds as a number.
fn requested_timeout(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Some(ms) = v.strip_suffix("ms") {
        return ms.trim().parse::<u64>().ok().map(Duration::from_millis);
    }
    let secs = v.strip_suffix('s').unwrap_or(v).trim().parse::<f64>().ok()?;
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

fn route_label(path: &str) -> &'static str {
    match path {
        "/v1/chat/completions" => "chat",
        "/v1/completions" => "completions",
        "/v1/embeddings" => "embeddings",
        "/health" => "health",
        "/sparql" => "sparql",
        p if p.starts_with("/v1/models") => "models",
        p if p.starts_with("/v1/graph/") => "graph",
        _ => "other",
    }
}

impl Server {
    pub fn new(config: ServeConfig) -> Arc<Self> {
        Arc::new(Server {
            permits: Arc::new(Semaphore::new(config.concurrency.max(1))),
            config,
            phase: RwLock::new(Phase::Preparing("starting".into())),
            waiting: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            shutdown: tokio::sync::watch::channel(false).0,
            connections: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
            metrics: Metrics::default(),
        })
    }

    /// What the server answers while it prepares the component (shown by `/health` and every
    /// request's 503).
    pub fn set_preparing(&self, what: impl Into<String>) {
        *self.phase.write().unwrap_or_else(|e| e.into_inner()) = Phase::Preparing(what.into());
    }

    pub fn set_failed(&self, why: impl Into<String>) {
        *self.phase.write().unwrap_or_else(|e| e.into_inner()) = Phase::Failed(why.into());
    }

    /// Links the compiled component (it must export `wasi:http/incoming-handler`) and starts
    /// answering with it. The server keeps it (its epoch clock drives deadlines).
    pub fn set_ready(&self, compiled: CompiledComponent) -> Result<()> {
        let mut linker = Linker::<ServeState>::new(&compiled.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(Error::Wasmtime)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(Error::Wasmtime)?;
        let pre = linker.instantiate_pre(&compiled.component).map_err(Error::Wasmtime)?;
        let pre = ProxyPre::new(pre).map_err(|e| Error::Compose {
            what: "serving the component".into(),
            reason: format!("it does not export wasi:http/incoming-handler ({e:#}); serve a composition from `llmkg compose` or `llmkg preinit`"),
        })?;
        *self.phase.write().unwrap_or_else(|e| e.into_inner()) = Phase::Ready { pre: Arc::new(pre), _compiled: compiled };
        Ok(())
    }

    fn new_store(&self, pre: &ProxyPre<ServeState>, deadline: Instant) -> Result<Store<ServeState>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stderr();
        for (k, v) in &self.config.env {
            wasi.env(k, v);
        }
        for dir in &self.config.preopens {
            let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
            wasi.preopened_dir(&dir.host, &dir.guest, perms).map_err(|e| Error::Io {
                path: dir.host.clone(),
                source: std::io::Error::other(format!("{e:#}")),
            })?;
        }
        let limits = StoreLimitsBuilder::new().memory_size(usize::try_from(self.config.max_memory).unwrap_or(usize::MAX)).trap_on_grow_failure(false).build();
        let state = ServeState { wasi: wasi.build(), http: WasiHttpCtx::new(), table: ResourceTable::new(), limits, hooks: NoOutgoingHttp, deadline };
        let mut store = Store::new(pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        // Every epoch tick the guest yields (other requests run) unless its deadline passed.
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Err(wasmtime::Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }

    /// Serves until SIGINT/SIGTERM, then drains running requests.
    pub async fn run(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        let shutdown = shutdown_signal();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((socket, remote)) = accepted else { continue };
                    let _ = socket.set_nodelay(true);
                    let server = self.clone();
                    let mut stop = self.shutdown.subscribe();
                    self.connections.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let handler = server.clone();
                        let service = hyper::service::service_fn(move |req| {
                            let server = handler.clone();
                            async move { Ok::<_, Infallible>(server.handle(req, remote).await) }
                        });
                        let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(socket), service);
                        tokio::pin!(conn);
                        tokio::select! {
                            _ = conn.as_mut() => {}
                            // Shutting down: finish the response in progress (a stream
                            // included), then close instead of waiting for the next request.
                            _ = stop.changed() => {
                                conn.as_mut().graceful_shutdown();
                                let _ = conn.as_mut().await;
                            }
                        }
                        server.connections.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        self.shutting_down.store(true, Ordering::SeqCst);
        drop(listener);
        let _ = self.shutdown.send(true);
        let stop = Instant::now() + self.config.drain;
        let running = self.in_flight.load(Ordering::SeqCst);
        if running > 0 && self.config.access_log {
            eprintln!("llmkg serve: shutting down; waiting up to {:?} for {running} running request(s)", self.config.drain);
        }
        while (self.in_flight.load(Ordering::SeqCst) > 0 || self.connections.load(Ordering::SeqCst) > 0) && Instant::now() < stop {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn handle(self: Arc<Self>, req: hyper::Request<Incoming>, remote: SocketAddr) -> hyper::Response<ResponseBody> {
        let start = Instant::now();
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let route = route_label(&path);
        let log = RequestLog { server: self.clone(), start, remote, method, path: path.clone(), route };
        if path == "/metrics" && req.method() == hyper::Method::GET {
            return log.finish_now(self.metrics_response(&req));
        }
        let pre = match &*self.phase.read().unwrap_or_else(|e| e.into_inner()) {
            Phase::Ready { pre, .. } => pre.clone(),
            Phase::Preparing(what) => {
                return log.finish_now(host_error(503, "unavailable_error", &format!("the server is starting: {what}"), Some(5)));
            }
            Phase::Failed(why) => return log.finish_now(host_error(503, "unavailable_error", &format!("the server could not start: {why}"), None)),
        };
        if self.shutting_down.load(Ordering::SeqCst) {
            return log.finish_now(host_error(503, "unavailable_error", "the server is shutting down", Some(1)));
        }
        let timeout = match req.headers().get("x-llmkg-timeout").and_then(|v| v.to_str().ok()) {
            Some(v) => match requested_timeout(v) {
                Some(t) => t.min(self.config.timeout),
                None => return log.finish_now(host_error(400, "invalid_request_error", &format!("x-llmkg-timeout {v:?}: expected e.g. 500ms, 2s or 1.5"), None)),
            },
            None => self.config.timeout,
        };
        let deadline = start + timeout;

        // A turn: at once, or after waiting in the bounded queue.
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.config.queue {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    self.metrics.rejected.fetch_add(1, Ordering::Relaxed);
                    return log.finish_now(host_error(
                        503,
                        "unavailable_error",
                        &format!("the server is busy: {} requests running and {} waiting", self.config.concurrency, self.config.queue),
                        Some(1),
                    ));
                }
                let waited = tokio::time::timeout_at(deadline.into(), self.permits.clone().acquire_owned()).await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                match waited {
                    Ok(Ok(p)) => p,
                    _ => {
                        self.metrics.deadlines.fetch_add(1, Ordering::Relaxed);
                        return log.finish_now(host_error(504, "timeout_error", &format!("the request waited its whole deadline ({timeout:?}) for a turn"), None));
                    }
                }
            }
        };
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(self.clone());

        let reused = if self.config.reuse.is_some() { self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() } else { None };
        let (mut store, proxy, uses) = match reused {
            Some(idle) => (idle.store, Some(idle.proxy), idle.uses),
            None => match self.new_store(&pre, deadline) {
                Ok(store) => (store, None, 0),
                Err(e) => return log.finish_now(host_error(500, "server_error", &format!("starting an instance: {e}"), None)),
            },
        };
        store.data_mut().deadline = deadline;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let incoming = store.data_mut().http().new_incoming_request(Scheme::Http, req);
        let out = store.data_mut().http().new_response_outparam(sender);
        let (incoming, out) = match (incoming, out) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => return log.finish_now(host_error(500, "server_error", &format!("passing the request in: {e:#}"), None)),
        };
        let server = self.clone();
        let queued = start.elapsed();
        // Microseconds the instance took to start (0: reused), for the Server-Timing header.
        let instance_micros = Arc::new(AtomicU64::new(0));
        let instance_micros_task = instance_micros.clone();
        let task = tokio::spawn(async move {
            let _permit = permit;
            let _guard = guard;
            let proxy = match proxy {
                Some(p) => p,
                None => {
                    let started = Instant::now();
                    let proxy = pre.instantiate_async(&mut store).await?;
                    let took = started.elapsed();
                    instance_micros_task.store(took.as_micros().max(1) as u64, Ordering::Relaxed);
                    server.metrics.instance_start.observe(took);
                    server.metrics.instances.fetch_add(1, Ordering::Relaxed);
                    proxy
                }
            };
            proxy.wasi_http_incoming_handler().call_handle(&mut store, incoming, out).await?;
            if let Some(max) = server.config.reuse {
                if uses + 1 < max {
                    server.idle.lock().unwrap_or_else(|e| e.into_inner()).push(Idle { store, proxy, uses: uses + 1 });
                }
            }
            Ok::<(), wasmtime::Error>(())
        });
        match receiver.await {
            Ok(Ok(response)) => {
                let (mut parts, body) = response.into_parts();
                // Server-Timing (a standard header browsers' dev tools show): the wait for a
                // turn and the instance start, in milliseconds.
                let timing = format!(
                    "queue;dur={:.3}, instance;dur={:.3}",
                    queued.as_secs_f64() * 1e3,
                    instance_micros.load(Ordering::Relaxed) as f64 / 1e3
                );
                if let Ok(v) = hyper::header::HeaderValue::from_str(&timing) {
                    parts.headers.insert("server-timing", v);
                }
                let usage = parts.headers.get("x-llmkg-usage").and_then(|v| v.to_str().ok()).and_then(parse_usage);
                let status = parts.status.as_u16();
                let expected = parts.headers.get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
                let tracked = Tracked { inner: body, log: Some(log), status, bytes: 0, expected, usage };
                hyper::Response::from_parts(parts, tracked.boxed_unsync())
            }
            Ok(Err(code)) => log.finish_now(host_error(500, "server_error", &format!("the component failed the request: {code:?}"), None)),
            Err(_) => {
                // The component never answered: it trapped or ran out of time.
                let outcome = task.await;
                let error = match outcome {
                    Ok(Err(e)) => e,
                    Ok(Ok(())) => return log.finish_now(host_error(500, "server_error", "the component ended without answering", None)),
                    Err(e) => wasmtime::Error::msg(e.to_string()),
                };
                if error.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
                    self.metrics.deadlines.fetch_add(1, Ordering::Relaxed);
                    log.finish_now(host_error(504, "timeout_error", &format!("the request ran past its deadline ({timeout:?}) and was stopped"), None))
                } else {
                    self.metrics.restarts.fetch_add(1, Ordering::Relaxed);
                    let root = error.root_cause().to_string();
                    log.finish_now(host_error(500, "server_error", &format!("the component trapped ({root}); the instance was discarded"), None))
                }
            }
        }
    }

    fn metrics_response(&self, req: &hyper::Request<Incoming>) -> hyper::Response<ResponseBody> {
        if !self.config.metrics_keys.is_empty() {
            let key = req.headers().get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default();
            let known = self.config.metrics_keys.iter().fold(false, |found, k| found | bool::from(k.as_bytes().ct_eq(key.trim().as_bytes())));
            if !known {
                return host_error(401, "authentication_error", "/metrics needs an API key: send `Authorization: Bearer <key>`", None);
            }
        }
        let text = self.metrics.render(self.waiting.load(Ordering::SeqCst), self.in_flight.load(Ordering::SeqCst));
        full(200, &[("content-type", "text/plain; version=0.0.4".into())], text)
    }
}

/// Decrements the running-request count when a request's instance is done.
struct InFlight(Arc<Server>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn parse_usage(v: &str) -> Option<(u64, u64)> {
    let mut prompt = None;
    let mut completion = None;
    for part in v.split(',') {
        match part.trim().split_once('=') {
            Some(("prompt", n)) => prompt = n.parse().ok(),
            Some(("completion", n)) => completion = n.parse().ok(),
            _ => {}
        }
    }
    Some((prompt?, completion?))
}

/// One request's line in the access log and its share of the metrics, written when its
/// response body ends (or the client goes away).
struct RequestLog {
    server: Arc<Server>,
    start: Instant,
    remote: SocketAddr,
    method: String,
    path: String,
    route: &'static str,
}

impl RequestLog {
    fn finish_now(self, response: hyper::Response<ResponseBody>) -> hyper::Response<ResponseBody> {
        self.finish(response.status().as_u16(), 0, None, true);
        response
    }

    fn finish(self, status: u16, bytes: u64, usage: Option<(u64, u64)>, complete: bool) {
        let elapsed = self.start.elapsed();
        let m = &self.server.metrics;
        m.record(self.route, status, elapsed);
        if let Some((prompt, completion)) = usage {
            m.prompt_tokens.fetch_add(prompt, Ordering::Relaxed);
            m.completion_tokens.fetch_add(completion, Ordering::Relaxed);
            m.note_completion_tokens(completion);
        }
        if self.server.config.access_log {
            let tokens = usage.map(|(p, c)| format!(" tokens={p}+{c}")).unwrap_or_default();
            let cut = if complete { "" } else { " (client went away)" };
            eprintln!(
                "{} \"{} {}\" {status} {bytes}B {:.1}ms{tokens}{cut}",
                self.remote,
                self.method,
                self.path,
                elapsed.as_secs_f64() * 1e3
            );
        }
    }
}

/// The component's response body, passed through while counting bytes and reading the usage
/// the front puts in its trailers after a stream.
struct Tracked {
    inner: HyperOutgoingBody,
    log: Option<RequestLog>,
    status: u16,
    bytes: u64,
    /// The declared length, when there is one (hyper stops polling once it is reached).
    expected: Option<u64>,
    usage: Option<(u64, u64)>,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<std::result::Result<Frame<Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                    if self.inner.is_end_stream() || self.expected == Some(self.bytes) {
                        self.end(true);
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    if let Some(u) = trailers.get("x-llmkg-usage").and_then(|v| v.to_str().ok()).and_then(parse_usage) {
                        self.usage = Some(u);
                    }
                    // Trailers are the last frame.
                    self.end(true);
                }
            }
            Poll::Ready(None) => self.end(true),
            Poll::Ready(Some(Err(_))) => self.end(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Tracked {
    fn end(&mut self, complete: bool) {
        if let Some(log) = self.log.take() {
            log.finish(self.status, self.bytes, self.usage, complete);
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // hyper stops polling a body it knows is complete (by its length).
        let complete = self.inner.is_end_stream() || self.expected == Some(self.bytes);
        self.end(complete);
    }
}

/// Latency histogram bounds, seconds.
const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, name: &str, labels: &str, out: &mut String) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            out.push_str(&format!("{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}\n"));
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}\n"));
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        out.push_str(&format!("{name}_sum{braces} {}\n", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6));
        out.push_str(&format!("{name}_count{braces} {cumulative}\n"));
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<HashMap<(&'static str, u16), u64>>,
    latency: Mutex<HashMap<&'static str, Arc<Histogram>>>,
    pub instance_start: Histogram,
    pub instances: AtomicU64,
    pub restarts: AtomicU64,
    pub deadlines: AtomicU64,
    pub rejected: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub completion_tokens: AtomicU64,
    /// (when, completion tokens) of recent requests, for the tokens/s gauge.
    recent: Mutex<Vec<(Instant, u64)>>,
}

/// The tokens/s gauge averages over this window.
const RATE_WINDOW: Duration = Duration::from_secs(10);

impl Metrics {
    fn record(&self, route: &'static str, status: u16, elapsed: Duration) {
        *self.requests.lock().unwrap_or_else(|e| e.into_inner()).entry((route, status)).or_default() += 1;
        let histogram = self.latency.lock().unwrap_or_else(|e| e.into_inner()).entry(route).or_default().clone();
        histogram.observe(elapsed);
    }

    fn note_completion_tokens(&self, n: u64) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        recent.retain(|(t, _)| now.duration_since(*t) < RATE_WINDOW);
        recent.push((now, n));
    }

    fn tokens_per_second(&self) -> f64 {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let n: u64 = recent.iter().filter(|(t, _)| now.duration_since(*t) < RATE_WINDOW).map(|(_, n)| n).sum();
        n as f64 / RATE_WINDOW.as_secs_f64()
    }

    /// The Prometheus text exposition format.
    pub fn render(&self, queue_depth: usize, in_flight: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP llmkg_requests_total HTTP requests answered, by route and status.\n# TYPE llmkg_requests_total counter\n");
        let mut requests: Vec<_> = self.requests.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (*k, *v)).collect();
        requests.sort();
        for ((route, status), n) in requests {
            out.push_str(&format!("llmkg_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}\n"));
        }
        out.push_str("# HELP llmkg_request_duration_seconds Time from request to the end of the response body.\n# TYPE llmkg_request_duration_seconds histogram\n");
        let mut latency: Vec<_> = self.latency.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (*k, v.clone())).collect();
        latency.sort_by_key(|(k, _)| *k);
        for (route, h) in latency {
            h.render("llmkg_request_duration_seconds", &format!("route=\"{route}\""), &mut out);
        }
        out.push_str("# HELP llmkg_instance_start_seconds Time to instantiate the component for a request.\n# TYPE llmkg_instance_start_seconds histogram\n");
        self.instance_start.render("llmkg_instance_start_seconds", "", &mut out);
        let gauges: [(&str, &str, &str, String); 9] = [
            ("llmkg_queue_depth", "gauge", "Requests waiting for a turn.", queue_depth.to_string()),
            ("llmkg_requests_in_flight", "gauge", "Requests executing now.", in_flight.to_string()),
            ("llmkg_instances_started_total", "counter", "Component instances started.", self.instances.load(Ordering::Relaxed).to_string()),
            ("llmkg_instance_restarts_total", "counter", "Instances discarded after a trap.", self.restarts.load(Ordering::Relaxed).to_string()),
            ("llmkg_deadline_exceeded_total", "counter", "Requests stopped at their deadline (504).", self.deadlines.load(Ordering::Relaxed).to_string()),
            ("llmkg_rejected_total", "counter", "Requests refused because the queue was full (503).", self.rejected.load(Ordering::Relaxed).to_string()),
            ("llmkg_prompt_tokens_total", "counter", "Prompt tokens processed.", self.prompt_tokens.load(Ordering::Relaxed).to_string()),
            ("llmkg_completion_tokens_total", "counter", "Tokens generated.", self.completion_tokens.load(Ordering::Relaxed).to_string()),
            ("llmkg_completion_tokens_per_second", "gauge", "Tokens generated per second over the last 10 s.", format!("{:.2}", self.tokens_per_second())),
        ];
        for (name, kind, help, value) in gauges {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
        }
        out
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_timeouts_parse_in_the_forms_documented() {
        assert_eq!(requested_timeout("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(requested_timeout("2s"), Some(Duration::from_secs(2)));
        assert_eq!(requested_timeout("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(requested_timeout("soon"), None);
        assert_eq!(requested_timeout("-1"), None);
    }

    #[test]
    fn usage_headers_parse() {
        assert_eq!(parse_usage("prompt=12,completion=30"), Some((12, 30)));
        assert_eq!(parse_usage("prompt=12"), None);
    }

    #[test]
    fn metrics_render_in_prometheus_text_format() {
        let m = Metrics::default();
        m.record("chat", 200, Duration::from_millis(30));
        m.record("chat", 200, Duration::from_millis(300));
        m.record("embeddings", 503, Duration::from_millis(1));
        m.completion_tokens.fetch_add(7, Ordering::Relaxed);
        let text = m.render(3, 2);
        assert!(text.contains("llmkg_requests_total{route=\"chat\",status=\"200\"} 2\n"), "{text}");
        assert!(text.contains("llmkg_request_duration_seconds_bucket{route=\"chat\",le=\"0.05\"} 1\n"), "{text}");
        assert!(text.contains("llmkg_request_duration_seconds_count{route=\"chat\"} 2\n"), "{text}");
        assert!(text.contains("llmkg_queue_depth 3\n") && text.contains("llmkg_requests_in_flight 2\n"), "{text}");
        assert!(text.contains("llmkg_completion_tokens_total 7\n"), "{text}");
    }
}
