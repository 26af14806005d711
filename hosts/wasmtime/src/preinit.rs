//! Pre-initialized engines: the engine component with models (and a graph) already in its
//! linear memory, so an instance starts ready instead of loading ~100 MB per start. Edge hosts
//! (`wasmtime serve`, wasmCloud, `llmkg serve` by default) start a fresh instance per request;
//! with a pre-initialized engine that costs microseconds, the memory image mapped
//! copy-on-write from the compiled file and shared by every instance.
//!
//! How: Wasmtime's own pre-initializer (`wasmtime-wizer`, the version of this host's Wasmtime)
//! instruments the engine so its memory and globals can be read out, this host instantiates it
//! like any other engine and loads models and the graph through the ordinary WIT calls (the
//! same streamed upload as `llmkg chat`), then wizer writes the state back as data segments.
//!
//! Nothing an instance must not share is frozen into the snapshot:
//! - printed: the instance's stdout/stderr go to an in-memory pipe of this host, and WASI keeps
//!   that state in the host, not in the guest's memory;
//! - opened: the instance gets no preopened directories, environment or arguments, so no file
//!   or socket handle can exist in it; every resource (upload, stream) is dropped before the
//!   snapshot, which also means no WIT resource handle is in it;
//! - random: `introspect.prepare-snapshot` is the last call, and makes every instance made from
//!   the snapshot reseed the random generator that blank-node ids come from on its first call
//!   (tested: two instances of one snapshot create different blank nodes). std's hash-table
//!   keys are drawn once per thread and stay the snapshot's (costing only hash-flooding
//!   resistance, as in any pre-initialized Rust program); sampling is seeded per request.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use wasmtime::component::{Instance, Lift, WasmList};
use wasmtime::Store;
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::component::{CompiledComponent, EngineSetup};
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::models::ModelSource;
use crate::runtime::{HostState, LlmkgRuntime, LoadOptions, ModelInfo, RdfFormat, RuntimeOptions};

/// A graph to put into the snapshot.
#[derive(Debug, Clone)]
pub enum GraphSource {
    None,
    /// An RDF file imported as it is (a read-only graph for deployments without a data dir).
    File { path: PathBuf, format: RdfFormat },
    /// A data directory's graph at its latest change; served instances replay what comes after.
    DataDir(PathBuf),
}

pub struct PreinitSpec<'a> {
    /// The engine component (`llmkg_component.wasm`).
    pub engine: &'a [u8],
    pub models: &'a [ModelSource],
    pub load_options: LoadOptions,
    pub graph: GraphSource,
    pub max_memory: Option<u64>,
    /// Where the instrumented engine's compiled code is cached (it is the same for every
    /// snapshot of one engine build).
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct PreinitReport {
    pub models: Vec<ModelInfo>,
    pub triples: u64,
    /// The data directory's change the snapshot includes (0 without one).
    pub log_position: u64,
    pub indexed_labels: u64,
    pub linear_memory_bytes: u64,
    /// Instrumenting and compiling the engine, loading, snapshotting.
    pub instrument_time: Duration,
    pub load_time: Duration,
    pub snapshot_time: Duration,
}

/// The engine with `spec`'s models and graph in memory, as a new component.
pub fn preinit(spec: &PreinitSpec, mut progress: impl FnMut(&str)) -> Result<(Vec<u8>, PreinitReport)> {
    let started = Instant::now();
    let wizer = Wizer::new();
    progress("instrumenting the engine");
    let (cx, instrumented) = wizer.instrument_component(spec.engine).map_err(|e| Error::Preinit(format!("instrumenting the engine: {e:#}")))?;
    let compiled = CompiledComponent::from_bytes(
        &instrumented,
        std::path::Path::new("llmkg_component.wasm (instrumented)"),
        spec.cache_dir.as_deref(),
        &EngineSetup::cli(),
        Instant::now(),
    )?;
    let mut rt = LlmkgRuntime::new(&compiled, RuntimeOptions { max_memory: spec.max_memory, timeout: None })?;
    let instrument_time = started.elapsed();

    let loading = Instant::now();
    let mut models = Vec::new();
    // Embedding models first: their f32 file is freed after conversion, and the text model's
    // pieces then fill that hole instead of growing linear memory (which never shrinks, and
    // all of which the snapshot holds).
    let mut order: Vec<&ModelSource> = spec.models.iter().collect();
    order.sort_by_key(|m| m.kind != crate::ModelKind::Embedding);
    for source in order {
        progress(&format!("loading {}", source.id));
        models.push(rt.load_model(&source.id, source.kind, &source.files, &spec.load_options, |_, _, _| {})?);
    }
    match &spec.graph {
        GraphSource::None => {}
        GraphSource::File { path, format } => {
            progress(&format!("importing {}", path.display()));
            let data = std::fs::read(path).map_err(|source| Error::Io { path: path.clone(), source })?;
            // As `llmkg kg import`: relative IRIs resolve against the file's own URL.
            let base_iri = crate::file_url::file_url(path).map_err(|source| Error::Io { path: path.clone(), source })?;
            rt.kg_import(*format, &data, &crate::ImportOptions { base_iri: Some(base_iri), graph: None })?;
        }
        GraphSource::DataDir(path) => {
            progress(&format!("loading the graph of {}", path.display()));
            DataDir::new(path.clone()).load_into(&mut rt)?;
        }
    }
    if let Err(e) = warm_up(&mut rt, &models) {
        // Only an optimisation (a model with a tiny context cannot take the warm-up prompt).
        progress(&format!("warm-up skipped: {e}"));
    }
    rt.kg_record_changes(false)?;
    let stats = rt.kg_stats()?;
    if stats.pending > 0 && stats.embedding_model.is_some() {
        // A search brings the label index up to date: instances then start with it.
        progress(&format!("embedding {} entity labels for semantic search", stats.pending));
        rt.kg_search("index", 1)?;
    }
    let stats = rt.kg_stats()?;
    let log_position = rt.kg_log_position()?;
    let linear_memory_bytes = rt.memory_stats()?.linear_memory_bytes;
    rt.prepare_snapshot()?;
    let load_time = loading.elapsed();

    progress("writing the snapshot");
    let snapshotting = Instant::now();
    let (store, instance) = rt.store_and_instance();
    let mut state = SyncInstance { store, instance, error: None };
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|e| Error::Preinit(format!("starting a runtime: {e}")))?;
    let snapshot = runtime
        .block_on(wizer.snapshot_component(&cx, &mut state))
        .map_err(|e| Error::Preinit(format!("snapshotting: {e:#}")))?;
    if let Some(e) = state.error {
        return Err(Error::Preinit(format!("reading the instance's state: {e}")));
    }
    let report = PreinitReport {
        models,
        triples: stats.triples,
        log_position,
        indexed_labels: stats.indexed,
        linear_memory_bytes,
        instrument_time,
        load_time,
        snapshot_time: snapshotting.elapsed(),
    };
    Ok((snapshot, report))
}

/// Runs each model once (greedy, so nothing random) before the snapshot, so the allocator's
/// free lists already hold the scratch memory a request needs inside the snapshot's memory:
/// a fresh instance then reuses those pages instead of growing its memory and faulting in
/// new ones on every request.
fn warm_up(rt: &mut LlmkgRuntime, models: &[ModelInfo]) -> Result<()> {
    for m in models {
        match m.kind {
            crate::ModelKind::Embedding => {
                let batch: Vec<String> = (0..32).map(|i| format!("warm-up sentence number {i} for the embedding model's scratch memory")).collect();
                rt.embed(&m.id, &batch)?;
            }
            crate::ModelKind::TextGeneration => {
                let request = crate::GenerateRequest {
                    model: m.id.clone(),
                    prompt: "Warm-up: a prompt of a few dozen tokens, like a short chat turn with its template, to size the prefill scratch.".into(),
                    max_tokens: 16,
                    sampling: None,
                    stop: vec![],
                };
                rt.generate(&request)?;
            }
        }
    }
    Ok(())
}

/// What wizer needs from the instance (its memory and globals, read through the functions it
/// instrumented the engine with), called synchronously on this host's store.
struct SyncInstance<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
    /// The first failure: wizer's interface returns no errors, so they are kept here.
    error: Option<String>,
}

impl SyncInstance<'_> {
    fn call<R: Lift + Default + 'static, T>(&mut self, instance: &str, func: &str, use_ret: impl FnOnce(&mut Store<HostState>, R) -> T) -> Option<T> {
        let result = (|| {
            let (_, iface) = self.instance.get_export(&mut *self.store, None, instance).ok_or_else(|| format!("no export {instance}"))?;
            let (_, index) = self.instance.get_export(&mut *self.store, Some(&iface), func).ok_or_else(|| format!("no export {instance}#{func}"))?;
            let typed = self.instance.get_typed_func::<(), (R,)>(&mut *self.store, index).map_err(|e| format!("{instance}#{func}: {e:#}"))?;
            let (ret,) = typed.call(&mut *self.store, ()).map_err(|e| format!("{instance}#{func}: {e:#}"))?;
            Ok::<R, String>(ret)
        })();
        match result {
            Ok(ret) => Some(use_ret(self.store, ret)),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }
}

impl ComponentInstanceState for SyncInstance<'_> {
    async fn call_func_ret_list_u8(&mut self, instance: &str, func: &str, contents: impl FnOnce(&[u8]) + Send) {
        let result = (|| {
            let (_, iface) = self.instance.get_export(&mut *self.store, None, instance).ok_or_else(|| format!("no export {instance}"))?;
            let (_, index) = self.instance.get_export(&mut *self.store, Some(&iface), func).ok_or_else(|| format!("no export {instance}#{func}"))?;
            let typed = self.instance.get_typed_func::<(), (WasmList<u8>,)>(&mut *self.store, index).map_err(|e| format!("{instance}#{func}: {e:#}"))?;
            let (list,) = typed.call(&mut *self.store, ()).map_err(|e| format!("{instance}#{func}: {e:#}"))?;
            Ok::<_, String>(list)
        })();
        match result {
            Ok(list) => contents(list.as_le_slice(&*self.store)),
            Err(e) => {
                self.error.get_or_insert(e);
                contents(&[]);
            }
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, r: i32| r).unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, r: i64| r).unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, r: f32| r.to_bits()).unwrap_or_default()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, r: f64| r.to_bits()).unwrap_or_default()
    }
}
