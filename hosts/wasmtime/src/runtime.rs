//! One live instance of the component, with limits, a timeout, and typed calls that mirror the WIT.
//!
//! Every call goes through one private `guest` wrapper: a WIT error becomes [`Error::Guest`]; a trap
//! (panic, out of memory, timeout) throws the store away, starts a fresh instance, restores into it
//! what the runtime knows how to restore (the models it loaded from files, the data directory's
//! graph and index as of the last committed change) and becomes [`Error::Trap`], so one bad
//! request never leaves the runtime unusable, nor loses committed data. This is the one place
//! trap recovery lives; the CLI and `llmkg serve` rely on it.

use std::fs::File;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wasmtime::component::{Instance, Linker, ResourceAny, ResourceTable};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::component::{CompiledComponent, EPOCH_TICK};
use crate::error::{Error, Result};

/// Generated from `wit/llmkg.wit`; nothing is marshalled by hand.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "engine",
    });
}

pub use bindings::exports::llmkg::engine::inference::{
    ChatMessage, ChatRequest, Completion, FinishReason, GenerateRequest, Sampling, ScoreReport, TokenScore,
};
pub use bindings::exports::llmkg::engine::introspect::{BuildReport, MemoryReport, ModelMemory};
pub use bindings::exports::llmkg::engine::models::{LoadOptions, ModelFile, WeightConversion};
pub use bindings::exports::llmkg::engine::knowledge::{
    Answer, AskOptions, ChangeReport, Fact, FactObject, GraphStats, GroundingFact, ImportOptions, Literal, QueryResult,
    RdfFormat, ResultsFormat, SearchHit, SerializedResults, Solutions, Term, Triple,
};

/// No base IRI (relative IRIs are an error), into the default graph.
impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { base_iri: None, graph: None }
    }
}
pub use bindings::llmkg::engine::types::{Error as GuestError, ModelInfo, ModelKind};

/// Model files are streamed into the component in chunks of this size, so the host never holds a
/// whole model and the guest can account memory as it goes.
pub const UPLOAD_CHUNK: usize = 4 << 20;

/// Keep at most this much of the guest's stderr; it only ever holds panic messages.
const STDERR_CAPACITY: usize = 1 << 20;

/// Limits applied to every instance.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Cap on the component's linear memory, in bytes. Growing past it fails inside the guest
    /// (an allocation error it reports), it does not trap. `None`: wasm32's own 4 GiB.
    pub max_memory: Option<u64>,
    /// Wall-clock budget for one runtime method (a whole load, a whole stream). Past it the guest
    /// is interrupted, which is a trap: the instance is replaced.
    pub timeout: Option<Duration>,
}

/// What a [`wasmtime::Store`] holds for the component: WASI (no env, args, files or network) and limits.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// The guest's stderr, kept so a panic message can be put into the trap error.
    stderr: MemoryOutputPipe,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A live instance of the llmkg component. Not `Sync`: one call at a time; make one per thread.
pub struct LlmkgRuntime {
    compiled: CompiledComponent,
    pre: bindings::EnginePre<HostState>,
    options: RuntimeOptions,
    store: Store<HostState>,
    world: bindings::Engine,
    instance: Instance,
    restarts: u64,
    /// Models loaded from files, in load order, to load again after a trap.
    loaded: Vec<(String, ModelKind, Vec<PathBuf>, LoadOptions)>,
    /// The data directory whose graph this runtime holds (see [`DataDir::load_into`]).
    data_dir: Option<PathBuf>,
    /// A restore is running: a trap during it must not start another.
    restoring: bool,
}

impl LlmkgRuntime {
    /// Instantiates `compiled` with `options`.
    pub fn new(compiled: &CompiledComponent, options: RuntimeOptions) -> Result<Self> {
        let mut linker = Linker::<HostState>::new(&compiled.engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(Error::Wasmtime)?;
        let pre = linker
            .instantiate_pre(&compiled.component)
            .and_then(bindings::EnginePre::new)
            .map_err(Error::Wasmtime)?;
        let (store, world, instance) = instantiate(compiled, &pre, &options)?;
        Ok(Self {
            compiled: compiled.clone(),
            pre,
            options,
            store,
            world,
            instance,
            restarts: 0,
            loaded: Vec::new(),
            data_dir: None,
            restoring: false,
        })
    }

    /// Locates and loads the component (see [`CompiledComponent::locate_and_load`]), then instantiates it.
    pub fn open(component: Option<&Path>, options: RuntimeOptions) -> Result<Self> {
        Self::new(&CompiledComponent::locate_and_load(component)?, options)
    }

    pub fn options(&self) -> &RuntimeOptions {
        &self.options
    }

    /// Applies to calls made from now on.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.options.timeout = timeout;
    }

    pub fn compiled(&self) -> &CompiledComponent {
        &self.compiled
    }

    /// How many times a trap made the runtime start a fresh instance.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Streams `files` into the component's `model-upload` in [`UPLOAD_CHUNK`] pieces. Each file is
    /// passed under its file name. `progress(file_name, bytes_done, bytes_total)` counts bytes over
    /// all files and is called after every chunk.
    pub fn load_model(
        &mut self,
        id: &str,
        kind: ModelKind,
        files: &[PathBuf],
        options: &LoadOptions,
        mut progress: impl FnMut(&str, u64, u64),
    ) -> Result<ModelInfo> {
        let mut opened = Vec::with_capacity(files.len());
        for path in files {
            let io = |source| Error::Io {
                path: path.clone(),
                source,
            };
            let file = File::open(path).map_err(io)?;
            let size = file.metadata().map_err(io)?.len();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            opened.push((path, name, file, size));
        }
        let total: u64 = opened.iter().map(|f| f.3).sum();

        self.arm_deadline();
        let upload = self.guest(|w, s| {
            w.llmkg_engine_models()
                .model_upload()
                .call_constructor(s, id, kind, *options)
                .map(Ok)
        })?;
        let mut done = 0u64;
        let mut buf = vec![0u8; UPLOAD_CHUNK];
        let result = (|| {
            for (path, name, file, size) in &mut opened {
                self.guest(|w, s| {
                    w.llmkg_engine_models().model_upload().call_begin_file(
                        s,
                        upload,
                        name,
                        Some(*size),
                    )
                })?;
                progress(name, done, total);
                loop {
                    let n = read_full(file, &mut buf).map_err(|source| Error::Io {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    if n == 0 {
                        break;
                    }
                    self.guest(|w, s| {
                        w.llmkg_engine_models()
                            .model_upload()
                            .call_write(s, upload, &buf[..n])
                    })?;
                    done += n as u64;
                    progress(name, done, total);
                }
            }
            self.guest(|w, s| {
                w.llmkg_engine_models()
                    .model_upload()
                    .call_finish(s, upload)
            })
        })();
        self.drop_resource(upload, &result)?;
        if result.is_ok() && !self.restoring {
            self.loaded.retain(|(known, ..)| known != id);
            self.loaded.push((id.to_string(), kind, files.to_vec(), *options));
        }
        result
    }

    /// Remembers the data directory whose graph this runtime holds, so a restart loads it again.
    pub fn remember_data_dir(&mut self, path: PathBuf) {
        self.data_dir = Some(path);
    }

    /// Loads a model from whole files already in memory (`load-model`). The bytes are then held
    /// twice, here and in the guest: prefer [`load_model`](Self::load_model) for big files.
    pub fn load_model_bytes(
        &mut self,
        id: &str,
        kind: ModelKind,
        files: &[ModelFile],
        options: &LoadOptions,
    ) -> Result<ModelInfo> {
        self.arm_deadline();
        self.guest(|w, s| {
            w.llmkg_engine_models()
                .call_load_model(s, id, kind, files, *options)
        })
    }

    pub fn unload_model(&mut self, id: &str) -> Result<()> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_models().call_unload_model(s, id))?;
        self.loaded.retain(|(known, ..)| known != id);
        Ok(())
    }

    pub fn list_models(&mut self) -> Result<Vec<ModelInfo>> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_models().call_list_models(s).map(Ok))
    }

    pub fn generate(&mut self, request: &GenerateRequest) -> Result<Completion> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_inference().call_generate(s, request))
    }

    pub fn chat(&mut self, request: &ChatRequest) -> Result<Completion> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_inference().call_chat(s, request))
    }

    /// Generates, calling `on_piece` with each piece of text as it is decoded; returns the whole
    /// completion at the end.
    pub fn stream(
        &mut self,
        request: &GenerateRequest,
        mut on_piece: impl FnMut(&str),
    ) -> Result<Completion> {
        self.stream_until(request, |piece| {
            on_piece(piece);
            ControlFlow::Continue(())
        })
    }

    /// [`stream`](Self::stream) that `on_piece` can end early with `ControlFlow::Break`: the
    /// token stream is then dropped (the guest decodes nothing more, its KV cache is freed) and
    /// the completion so far is returned, e.g. when the client went away.
    pub fn stream_until(
        &mut self,
        request: &GenerateRequest,
        on_piece: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Completion> {
        self.arm_deadline();
        let stream = self.guest(|w, s| w.llmkg_engine_inference().call_stream(s, request))?;
        self.drain(stream, on_piece)
    }

    /// [`stream`](Self::stream) for a chat: the component renders the model's chat template.
    pub fn stream_chat(
        &mut self,
        request: &ChatRequest,
        mut on_piece: impl FnMut(&str),
    ) -> Result<Completion> {
        self.stream_chat_until(request, |piece| {
            on_piece(piece);
            ControlFlow::Continue(())
        })
    }

    /// [`stream_chat`](Self::stream_chat) that `on_piece` can end early (see [`stream_until`](Self::stream_until)).
    pub fn stream_chat_until(
        &mut self,
        request: &ChatRequest,
        on_piece: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Completion> {
        self.arm_deadline();
        let stream = self.guest(|w, s| w.llmkg_engine_inference().call_stream_chat(s, request))?;
        self.drain(stream, on_piece)
    }

    /// Sentence embeddings, one L2-normalised vector per text.
    pub fn embed(&mut self, model: &str, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_inference().call_embed(s, model, texts))
    }

    pub fn tokenize(
        &mut self,
        model: &str,
        text: &str,
        add_special_tokens: bool,
    ) -> Result<Vec<u32>> {
        self.arm_deadline();
        self.guest(|w, s| {
            w.llmkg_engine_inference()
                .call_tokenize(s, model, text, add_special_tokens)
        })
    }

    /// Teacher-forced per-token log-probabilities and perplexity of `text`.
    pub fn score(&mut self, model: &str, text: &str) -> Result<ScoreReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_inference().call_score(s, model, text))
    }

    pub fn detokenize(&mut self, model: &str, tokens: &[u32]) -> Result<String> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_inference().call_detokenize(s, model, tokens))
    }

    pub fn kg_insert(&mut self, facts: &[Fact]) -> Result<ChangeReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_insert(s, facts))
    }

    pub fn kg_remove(&mut self, facts: &[Fact]) -> Result<ChangeReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_remove(s, facts))
    }

    /// SPARQL 1.1 query or update; `row_limit` 0 means no cap.
    pub fn kg_query(&mut self, sparql: &str, row_limit: u32) -> Result<QueryResult> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_query(s, sparql, row_limit))
    }

    /// A SPARQL update only; a query is refused.
    pub fn kg_update(&mut self, sparql: &str, using_graphs: &[String], using_named_graphs: &[String]) -> Result<ChangeReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_update(s, sparql, using_graphs, using_named_graphs))
    }

    /// A SPARQL query only, its results serialized by the engine (`results` for solutions and
    /// booleans, `graph` for CONSTRUCT/DESCRIBE).
    pub fn kg_query_serialized(
        &mut self,
        sparql: &str,
        default_graphs: &[String],
        named_graphs: &[String],
        results: ResultsFormat,
        graph: RdfFormat,
        row_limit: u32,
    ) -> Result<SerializedResults> {
        self.arm_deadline();
        self.guest(|w, s| {
            w.llmkg_engine_knowledge().call_query_serialized(s, sparql, default_graphs, named_graphs, results, graph, row_limit)
        })
    }

    pub fn kg_record_changes(&mut self, on: bool) -> Result<()> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_record_changes(s, on).map(Ok))
    }

    /// The net change since recording started or was last taken, as patch text.
    pub fn kg_take_changes(&mut self) -> Result<Vec<u8>> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_take_changes(s).map(Ok))
    }

    pub fn kg_apply_changes(&mut self, patch: &[u8], reverse: bool) -> Result<ChangeReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_apply_changes(s, patch, reverse))
    }

    /// Replaces the graph with an N-Quads snapshot (blank-node labels kept) at `position`.
    pub fn kg_restore(&mut self, nquads: &[u8], position: u64) -> Result<ChangeReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_restore(s, nquads, position))
    }

    pub fn kg_log_position(&mut self) -> Result<u64> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_log_position(s).map(Ok))
    }

    pub fn kg_set_log_position(&mut self, position: u64) -> Result<()> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_set_log_position(s, position).map(Ok))
    }

    pub fn kg_import(&mut self, format: RdfFormat, data: &[u8], options: &ImportOptions) -> Result<ChangeReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_import(s, format, data, options))
    }

    pub fn kg_export(&mut self, format: RdfFormat) -> Result<Vec<u8>> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_export(s, format))
    }

    pub fn kg_search(&mut self, text: &str, k: u32) -> Result<Vec<SearchHit>> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_search(s, text, k))
    }

    pub fn kg_match(&mut self, subject: Option<&str>, predicate: Option<&str>, object: Option<&FactObject>, limit: u32) -> Result<Vec<Triple>> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_match_pattern(s, subject, predicate, object, limit))
    }

    pub fn kg_neighbors(&mut self, entity: &str, hops: u32, limit: u32) -> Result<Vec<Triple>> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_neighbors(s, entity, hops, limit))
    }

    pub fn kg_ask(&mut self, question: &str, options: &AskOptions) -> Result<Answer> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_ask(s, question, options))
    }

    pub fn kg_set_embedding_model(&mut self, model: &str) -> Result<()> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_set_embedding_model(s, model))
    }

    pub fn kg_stats(&mut self) -> Result<GraphStats> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_stats(s).map(Ok))
    }

    pub fn kg_export_index(&mut self) -> Result<Vec<u8>> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_export_index(s))
    }

    pub fn kg_import_index(&mut self, data: &[u8]) -> Result<u64> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_knowledge().call_import_index(s, data))
    }

    pub fn memory_stats(&mut self) -> Result<MemoryReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_introspect().call_memory_stats(s).map(Ok))
    }

    /// See `introspect.prepare-snapshot`: the last call before a pre-initializer snapshots.
    pub fn prepare_snapshot(&mut self) -> Result<()> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_introspect().call_prepare_snapshot(s).map(Ok))
    }

    pub fn build_info(&mut self) -> Result<BuildReport> {
        self.arm_deadline();
        self.guest(|w, s| w.llmkg_engine_introspect().call_build_info(s).map(Ok))
    }

    /// The raw store and instance, for tools that work on the instance itself (the
    /// pre-initializer reads its memory through the exports wizer instrumented it with).
    pub(crate) fn store_and_instance(&mut self) -> (&mut Store<HostState>, Instance) {
        (&mut self.store, self.instance)
    }

    /// Pulls pieces from a `token-stream` until it ends or `on_piece` breaks, then asks it for
    /// the completion (so far).
    fn drain(&mut self, stream: ResourceAny, mut on_piece: impl FnMut(&str) -> ControlFlow<()>) -> Result<Completion> {
        let result = (|| {
            while let Some(piece) = self.guest(|w, s| {
                w.llmkg_engine_inference()
                    .token_stream()
                    .call_next(s, stream)
            })? {
                if on_piece(&piece).is_break() {
                    break;
                }
            }
            self.guest(|w, s| {
                w.llmkg_engine_inference()
                    .token_stream()
                    .call_completion(s, stream)
                    .map(Ok)
            })
        })();
        self.drop_resource(stream, &result)?;
        result
    }

    /// Drops a guest resource unless a trap already took the whole instance with it.
    fn drop_resource<T>(&mut self, resource: ResourceAny, outcome: &Result<T>) -> Result<()> {
        if matches!(outcome, Err(Error::Trap { .. })) {
            return Ok(());
        }
        self.guest(|_, s| resource.resource_drop(s).map(Ok))
    }

    /// The deadline counts from here: a method's calls into the guest share one budget.
    fn arm_deadline(&mut self) {
        let ticks = match self.options.timeout {
            Some(t) => (t.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64,
            // Far enough never to arrive, small enough that `epoch + ticks` cannot overflow.
            None => u64::MAX / 2,
        };
        self.store.set_epoch_deadline(ticks);
    }

    /// Runs one call into the guest and sorts its outcome into our error type.
    fn guest<T>(
        &mut self,
        call: impl FnOnce(
            &bindings::Engine,
            &mut Store<HostState>,
        ) -> wasmtime::Result<std::result::Result<T, GuestError>>,
    ) -> Result<T> {
        let stderr_before = self.store.data().stderr.contents().len();
        match call(&self.world, &mut self.store) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(guest)) => Err(Error::Guest(guest)),
            Err(trap) => {
                let stderr = self.store.data().stderr.contents();
                let stderr = String::from_utf8_lossy(&stderr[stderr_before.min(stderr.len())..])
                    .into_owned();
                let mut error = Error::trap(trap, self.options.timeout, stderr);
                let restored = self.restart()?;
                if let Error::Trap { recovered, .. } = &mut error {
                    *recovered = restored;
                }
                Err(error)
            }
        }
    }

    /// Replaces the dead instance with a fresh one in a fresh store and restores into it the
    /// models and the data directory's graph. Returns what was restored (for the error), or
    /// None when nothing could be (a trap during the restore leaves the instance empty).
    fn restart(&mut self) -> Result<Option<String>> {
        let (store, world, instance) = instantiate(&self.compiled, &self.pre, &self.options)?;
        self.store = store;
        self.world = world;
        self.instance = instance;
        self.restarts += 1;
        if self.restoring {
            return Ok(None);
        }
        self.restoring = true;
        let restored = self.restore();
        self.restoring = false;
        Ok(restored.ok().flatten())
    }

    fn restore(&mut self) -> Result<Option<String>> {
        let mut what = Vec::new();
        for (id, kind, files, options) in self.loaded.clone() {
            let timeout = self.options.timeout;
            self.options.timeout = None;
            let loaded = self.load_model(&id, kind, &files, &options, |_, _, _| {});
            self.options.timeout = timeout;
            loaded?;
            what.push(id);
        }
        let mut described = if what.is_empty() { String::new() } else { format!("the models {} were loaded again", what.join(", ")) };
        if let Some(path) = self.data_dir.clone() {
            crate::datadir::DataDir::new(path.clone()).load_into(self)?;
            let position = self.kg_log_position()?;
            if !described.is_empty() {
                described.push_str(" and ");
            }
            described.push_str(&format!("the graph of {} is as of its last committed change ({position})", path.display()));
        }
        Ok((!described.is_empty()).then_some(described))
    }
}

fn instantiate(
    compiled: &CompiledComponent,
    pre: &bindings::EnginePre<HostState>,
    options: &RuntimeOptions,
) -> Result<(Store<HostState>, bindings::Engine, Instance)> {
    let mut limits = StoreLimitsBuilder::new().trap_on_grow_failure(false);
    if let Some(max) = options.max_memory {
        limits = limits.memory_size(usize::try_from(max).unwrap_or(usize::MAX));
    }
    let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
    // No env, args, preopens or network: the component gets its inputs only through the WIT calls.
    let wasi = WasiCtxBuilder::new().stderr(stderr.clone()).build();
    let state = HostState {
        wasi,
        table: ResourceTable::new(),
        limits: limits.build(),
        stderr,
    };
    let mut store = Store::new(&compiled.engine, state);
    store.limiter(|state| &mut state.limits);
    // What the guest hands back (an exported graph, a snapshot of its memory) is bounded by its
    // linear memory, which the limit above already caps; Wasmtime's default of 128 MiB per call
    // would refuse a large graph export.
    store.set_hostcall_fuel(usize::try_from(options.max_memory.unwrap_or(4 << 30)).unwrap_or(usize::MAX));
    store.set_epoch_deadline(u64::MAX / 2);
    let instance = pre.instance_pre().instantiate(&mut store).map_err(Error::Wasmtime)?;
    let world = bindings::Engine::new(&mut store, &instance).map_err(Error::Wasmtime)?;
    Ok((store, world, instance))
}

/// Fills `buf` unless the file ends first; returns how many bytes were read.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_can_move_to_another_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<LlmkgRuntime>();
        assert_send::<CompiledComponent>();
    }
}
