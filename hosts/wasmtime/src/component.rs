//! Finding the component, compiling it once, and caching the machine code.
//!
//! Compiling the component with Cranelift takes seconds; deserializing a cached compile takes about
//! a millisecond. The cache key covers everything that makes a compiled artifact incompatible, so a
//! stale file is never even opened; a file that still fails to load is recompiled and overwritten.

use std::fs;
use std::hash::Hasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, OptLevel, Strategy};

use crate::error::Error;

/// Where the component lands relative to a Cargo target directory.
const COMPONENT_IN_TARGET: &str = "wasm32-wasip2/component/llmkg_component.wasm";

/// How many compiled artifacts to keep: every component rebuild leaves a new one behind.
const CACHE_KEEP: usize = 6;

/// The epoch clock: one tick every 10 ms, so a timeout of N ms is N/10 ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The component's path: `explicit` (e.g. `--component`), else `$LLMKG_COMPONENT`, else
/// `<ancestor of the running executable>/wasm32-wasip2/component/llmkg_component.wasm`
/// (the CLI sits in `$CARGO_TARGET_DIR/release/`, tests in `$CARGO_TARGET_DIR/release/deps/`).
pub fn locate_component(explicit: Option<&Path>) -> Result<PathBuf, Error> {
    let env = std::env::var_os("LLMKG_COMPONENT").map(PathBuf::from);
    let exe = std::env::current_exe().ok();
    locate_component_from(explicit, env.as_deref(), exe.as_deref())
}

fn locate_component_from(
    explicit: Option<&Path>,
    env: Option<&Path>,
    exe: Option<&Path>,
) -> Result<PathBuf, Error> {
    // A path someone named must exist: silently falling back would run a different component.
    if let Some(path) = explicit.or(env) {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(Error::ComponentNotFound {
                searched: vec![path.to_path_buf()],
            })
        };
    }
    let mut searched = Vec::new();
    for dir in exe.into_iter().flat_map(Path::ancestors).skip(1) {
        let candidate = dir.join(COMPONENT_IN_TARGET);
        if candidate.is_file() {
            return Ok(candidate);
        }
        searched.push(candidate);
    }
    Err(Error::ComponentNotFound { searched })
}

/// The one engine configuration every host uses; [`CONFIG_FINGERPRINT`] must describe it.
pub fn engine_config() -> Config {
    let mut config = Config::new();
    config
        .strategy(Strategy::Cranelift)
        .cranelift_opt_level(OptLevel::Speed)
        .wasm_component_model(true)
        .wasm_simd(true)
        .wasm_relaxed_simd(true)
        // Calls can run for seconds: epochs let the host stop them (see `timeout`).
        .epoch_interruption(true);
    // For profiling the guest with `perf`: /tmp/perf-<pid>.map names its compiled functions
    // (a component built without `strip=symbols` gives readable names); `LLMKG_PERFMAP=jitdump`
    // writes a jitdump instead, which `perf inject --jit` turns into annotatable code.
    // Compiled code is the same either way.
    match std::env::var("LLMKG_PERFMAP").as_deref() {
        Ok("jitdump") => {
            config.profiler(wasmtime::ProfilingStrategy::JitDump);
        }
        Ok(_) => {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        Err(_) => {}
    }
    config
}

/// Bump this string whenever [`engine_config`] changes, so old artifacts stop matching.
pub const CONFIG_FINGERPRINT: &str =
    "cranelift;opt=speed;component-model;simd;relaxed-simd;epoch-interruption;v1";

/// Bytes of written memory a pooled slot keeps resident between instances (see `serve`).
const KEEP_RESIDENT: usize = 128 << 20;

/// How an [`Engine`] is set up, and the fingerprint its cached artifacts are filed under.
#[derive(Clone)]
pub struct EngineSetup {
    pub config: Config,
    pub fingerprint: String,
}

impl EngineSetup {
    /// One instance at a time, called synchronously: the CLI, tests, benches, pre-initialization.
    pub fn cli() -> Self {
        EngineSetup { config: engine_config(), fingerprint: CONFIG_FINGERPRINT.into() }
    }

    /// Many short-lived instances, called from async code (`llmkg serve`): instances come from a
    /// pooling allocator and memories start as copy-on-write mappings of the compiled file's
    /// data image, so a pre-initialized component with its models in memory instantiates in
    /// microseconds and every instance shares the weight pages.
    pub fn serve(instances: u32, max_memory: u64, image_bytes: u64) -> Self {
        let mut config = engine_config();
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        // The composed component has two instances' worth of memories (engine, front) and a
        // handful of core instances per component instance.
        pool.total_component_instances(instances)
            .total_core_instances(instances * 8)
            .total_memories(instances * 2)
            .total_tables(instances * 8)
            .max_memory_size(usize::try_from(max_memory).unwrap_or(usize::MAX))
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(1 << 20)
            // When an instance ends, the pages it wrote are put back (found with Linux's
            // PAGEMAP_SCAN, reset with memcpy) instead of the whole memory being decommitted,
            // and slots go to the module that used them last: the next instance takes no page
            // faults on the weights it reads. (Wasmtime 48 scans for at most 32 dirty regions
            // and decommits what lies past them, so scratch memory high in the heap still
            // faults: about 2k faults, ~25 ms, per embeddings request; docs/BENCHMARKS.md.)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .max_unused_warm_slots(0)
            .table_keep_resident(1 << 20)
            .async_stack_keep_resident(2 << 20)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config
            .allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            // A pre-initialized snapshot is sparse (weights, then gaps): without this Wasmtime
            // would quietly copy it into each instance instead of mapping it.
            .memory_guaranteed_dense_image_size(image_bytes);
        EngineSetup {
            config,
            fingerprint: format!("{CONFIG_FINGERPRINT};serve;pool={instances};mem={max_memory};image={image_bytes};resident={KEEP_RESIDENT}"),
        }
    }
}

/// Everything a compiled artifact depends on. Two artifacts are interchangeable iff their keys match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKeyInputs {
    pub wasmtime_version: String,
    pub config_fingerprint: String,
    /// Target triple plus the CPU features Cranelift may use, e.g. `x86_64-unknown-linux-gnu+avx2+fma`.
    pub target_cpu: String,
    /// Hex sha256 of the component's bytes.
    pub component_sha256: String,
    /// Wasmtime's own hash of the engine's compile settings (triple, ISA flags, tunables, features).
    pub engine_compat: String,
}

impl CacheKeyInputs {
    /// The inputs for compiling `component_bytes` with `engine` on this machine.
    pub fn for_engine(engine: &Engine, component_bytes: &[u8]) -> Self {
        let mut compat = Sha256Hasher::default();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut compat);
        Self {
            wasmtime_version: env!("LLMKG_WASMTIME_VERSION").to_string(),
            config_fingerprint: CONFIG_FINGERPRINT.to_string(),
            target_cpu: target_cpu(),
            component_sha256: hex(&Sha256::digest(component_bytes)),
            engine_compat: hex(&compat.0.finalize()),
        }
    }

    /// Hex sha256 over all inputs, each length-prefixed so no two input sets collide by concatenation.
    pub fn key(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            &self.wasmtime_version,
            &self.config_fingerprint,
            &self.target_cpu,
            &self.component_sha256,
            &self.engine_compat,
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hex(&hasher.finalize())
    }
}

/// Feeds `std::hash::Hash` output into sha256, to fold wasmtime's compatibility hash into the key.
#[derive(Default)]
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        unreachable!("only the sha256 digest is used")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The host triple and the CPU features detected at run time that Cranelift can target.
pub fn target_cpu() -> String {
    let mut out = env!("LLMKG_HOST_TARGET").to_string();
    for feature in cpu_features() {
        out.push('+');
        out.push_str(feature);
    }
    out
}

#[cfg(target_arch = "x86_64")]
fn cpu_features() -> Vec<&'static str> {
    macro_rules! detect {
        ($($f:tt),*) => { [$(($f, std::is_x86_feature_detected!($f))),*] };
    }
    let all = detect!(
        "sse3",
        "ssse3",
        "sse4.1",
        "sse4.2",
        "popcnt",
        "avx",
        "avx2",
        "fma",
        "bmi1",
        "bmi2",
        "lzcnt",
        "avx512f",
        "avx512dq",
        "avx512vl",
        "avx512bitalg",
        "avx512vbmi",
        "avx512vnni",
        "avxvnni",
        "cmpxchg16b"
    );
    all.into_iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| f)
        .collect()
}

#[cfg(target_arch = "aarch64")]
fn cpu_features() -> Vec<&'static str> {
    macro_rules! detect {
        ($($f:tt),*) => { [$(($f, std::arch::is_aarch64_feature_detected!($f))),*] };
    }
    let all = detect!("neon", "lse", "fp16", "paca", "bti");
    all.into_iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| f)
        .collect()
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cpu_features() -> Vec<&'static str> {
    Vec::new()
}

/// `$LLMKG_CACHE_DIR`, else `~/.cache/llmkg/compiled`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LLMKG_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    std::env::home_dir().map(|home| home.join(".cache/llmkg/compiled"))
}

/// How the compiled component was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Deserialized from the cache file.
    Hit,
    /// Compiled and written to the cache file.
    Miss,
    /// The cache file existed but did not load (corrupt, truncated, incompatible): recompiled and
    /// rewritten. Holds why it was rejected.
    Rejected(String),
    /// No cache directory, or it is not writable: compiled in memory only. Holds why.
    Disabled(String),
}

/// What loading the component cost, for `stats` and benchmarks.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub path: PathBuf,
    pub cache_file: Option<PathBuf>,
    pub outcome: CacheOutcome,
    /// Wall time from reading the component file to a usable `Component`.
    pub load_time: Duration,
}

/// A compiled component, its engine and the engine's epoch clock. Cheap to clone: every
/// [`LlmkgRuntime`](crate::LlmkgRuntime) made from it shares the machine code.
#[derive(Clone)]
pub struct CompiledComponent {
    pub engine: Engine,
    pub component: Component,
    pub report: LoadReport,
    _ticker: Arc<EpochTicker>,
}

impl CompiledComponent {
    /// Locates the component (see [`locate_component`]) and loads it through the default cache.
    pub fn locate_and_load(explicit: Option<&Path>) -> Result<Self, Error> {
        let path = locate_component(explicit)?;
        Self::load(&path, default_cache_dir().as_deref())
    }

    /// Loads the component at `path`, through the cache in `cache_dir` when given.
    pub fn load(path: &Path, cache_dir: Option<&Path>) -> Result<Self, Error> {
        Self::load_with(path, cache_dir, &EngineSetup::cli())
    }

    /// [`load`](Self::load) with an engine set up for another use (see [`EngineSetup`]).
    pub fn load_with(path: &Path, cache_dir: Option<&Path>, setup: &EngineSetup) -> Result<Self, Error> {
        let start = Instant::now();
        let bytes = fs::read(path).map_err(|source| Error::Io {
            path: path.into(),
            source,
        })?;
        Self::from_bytes(&bytes, path, cache_dir, setup, start)
    }

    /// Compiles (or finds in the cache) a component given as bytes; `path` only names it.
    pub fn from_bytes(bytes: &[u8], path: &Path, cache_dir: Option<&Path>, setup: &EngineSetup, start: Instant) -> Result<Self, Error> {
        let engine = Engine::new(&setup.config).map_err(Error::Wasmtime)?;
        let (component, cache_file, outcome) = match cache_dir {
            None => (
                compile(&engine, bytes)?,
                None,
                CacheOutcome::Disabled("no cache directory".into()),
            ),
            Some(dir) => {
                let mut inputs = CacheKeyInputs::for_engine(&engine, bytes);
                inputs.config_fingerprint = setup.fingerprint.clone();
                let file = dir.join(format!("{}.cwasm", inputs.key()));
                let (component, outcome) = load_cached(&engine, bytes, &file)?;
                (component, Some(file), outcome)
            }
        };
        let report = LoadReport {
            path: path.into(),
            cache_file,
            outcome,
            load_time: start.elapsed(),
        };
        let ticker = Arc::new(EpochTicker::start(engine.clone()));
        Ok(Self {
            engine,
            component,
            report,
            _ticker: ticker,
        })
    }
}

fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, Error> {
    // `new` also accepts the text format, which the tests use for a tiny component.
    Component::new(engine, bytes).map_err(Error::Wasmtime)
}

fn load_cached(
    engine: &Engine,
    bytes: &[u8],
    file: &Path,
) -> Result<(Component, CacheOutcome), Error> {
    let mut rejected = None;
    if file.is_file() {
        // SAFETY: the file is one this crate wrote with `Component::serialize` under a key that covers
        // wasmtime's version and settings; wasmtime re-checks its header and rejects foreign files.
        // Files are only ever replaced by rename, so the mapped file never changes underneath us.
        match unsafe { Component::deserialize_file(engine, file) } {
            Ok(component) => return Ok((component, CacheOutcome::Hit)),
            Err(e) => rejected = Some(format!("{e:#}")),
        }
    }
    let component = compile(engine, bytes)?;
    let outcome = match write_cache(&component, file) {
        Ok(()) => rejected.map_or(CacheOutcome::Miss, CacheOutcome::Rejected),
        Err(e) => CacheOutcome::Disabled(format!("cannot write {}: {e:#}", file.display())),
    };
    // Freshly written: map it, as a hit would, so instances share the file's pages (a compile
    // in memory would give each instance's data image its own copy).
    if outcome == CacheOutcome::Miss {
        // SAFETY: as above; the file was written and renamed into place just now.
        if let Ok(mapped) = unsafe { Component::deserialize_file(engine, file) } {
            return Ok((mapped, outcome));
        }
    }
    Ok((component, outcome))
}

/// Writes to a temporary file and renames it into place, so readers never see half a file.
fn write_cache(component: &Component, file: &Path) -> anyhow::Result<()> {
    let dir = file.parent().expect("cache file has a directory");
    fs::create_dir_all(dir)?;
    let serialized = component.serialize()?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut out = fs::File::create(&tmp)?;
        out.write_all(&serialized)?;
        out.sync_all()?;
        fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    prune_cache(dir, CACHE_KEEP);
    Ok(())
}

/// Keeps the `keep` most recently written artifacts; older ones belong to old builds.
fn prune_cache(dir: &Path, keep: usize) {
    prune_newest(dir, "cwasm", keep);
}

/// Keeps the `keep` most recently written files ending in `.extension` in `dir`.
pub(crate) fn prune_newest(dir: &Path, extension: &str, keep: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == extension))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, path) in files.into_iter().skip(keep) {
        let _ = fs::remove_file(path);
    }
}

/// Increments the engine's epoch every [`EPOCH_TICK`] until dropped.
struct EpochTicker {
    // Dropping the sender wakes the thread and ends it.
    _stop: mpsc::Sender<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        thread::Builder::new()
            .name("llmkg-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .expect("spawn the epoch ticker thread");
        Self { _stop: stop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> CacheKeyInputs {
        CacheKeyInputs {
            wasmtime_version: "48.0.8".into(),
            config_fingerprint: CONFIG_FINGERPRINT.into(),
            target_cpu: "x86_64-unknown-linux-gnu+avx2".into(),
            component_sha256: "ab".repeat(32),
            engine_compat: "cd".repeat(32),
        }
    }

    #[test]
    fn cache_key_is_stable_for_the_same_inputs() {
        assert_eq!(inputs().key(), inputs().key());
        assert_eq!(inputs().key().len(), 64);
    }

    #[test]
    fn cache_key_changes_when_any_input_changes() {
        let base = inputs().key();
        let changes: [fn(&mut CacheKeyInputs); 5] = [
            |i| i.wasmtime_version = "48.0.9".into(),
            |i| i.config_fingerprint.push_str(";other"),
            |i| i.target_cpu = "x86_64-unknown-linux-gnu+avx2+avx512f".into(),
            |i| i.component_sha256 = "ef".repeat(32),
            |i| i.engine_compat = "01".repeat(32),
        ];
        for change in changes {
            let mut changed = inputs();
            change(&mut changed);
            assert_ne!(changed.key(), base, "{changed:?}");
        }
    }

    #[test]
    fn cache_key_does_not_collide_when_text_moves_between_inputs() {
        let mut a = inputs();
        a.wasmtime_version = "48.0.8x".into();
        a.config_fingerprint = "y".into();
        let mut b = inputs();
        b.wasmtime_version = "48.0.8".into();
        b.config_fingerprint = "xy".into();
        assert_ne!(a.key(), b.key());
    }

    #[test]
    fn cache_key_covers_the_component_bytes() {
        let engine = Engine::new(&engine_config()).unwrap();
        let a = CacheKeyInputs::for_engine(&engine, b"component one");
        let b = CacheKeyInputs::for_engine(&engine, b"component two");
        assert_ne!(a.key(), b.key());
        assert_eq!(
            a.key(),
            CacheKeyInputs::for_engine(&engine, b"component one").key()
        );
        assert!(a.target_cpu.starts_with(env!("LLMKG_HOST_TARGET")));
        assert_ne!(a.wasmtime_version, "unknown");
    }

    #[test]
    fn explicit_component_path_must_exist() {
        let missing = Path::new("/nonexistent/llmkg_component.wasm");
        let err = locate_component_from(Some(missing), None, None).unwrap_err();
        assert!(matches!(err, Error::ComponentNotFound { ref searched } if searched == &[missing]));
        assert!(err.to_string().contains("scripts/build"), "{err}");
    }

    #[test]
    fn component_is_found_next_to_an_ancestor_of_the_executable() {
        let target = temp_dir("locate");
        let component = target.join(COMPONENT_IN_TARGET);
        fs::create_dir_all(component.parent().unwrap()).unwrap();
        fs::write(&component, b"\0asm").unwrap();
        let test_exe = target.join("release/deps/e2e-0123");
        assert_eq!(
            locate_component_from(None, None, Some(&test_exe)).unwrap(),
            component
        );
        let cli_exe = target.join("release/llmkg");
        assert_eq!(
            locate_component_from(None, None, Some(&cli_exe)).unwrap(),
            component
        );
        fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn a_corrupt_cache_file_is_replaced_by_a_fresh_compile() {
        let dir = temp_dir("corrupt");
        let engine = Engine::new(&engine_config()).unwrap();
        // The smallest valid component: compiles in milliseconds.
        let bytes = b"(component)";
        let file = dir.join("x.cwasm");
        fs::write(&file, b"not machine code").unwrap();
        let (_, outcome) = load_cached(&engine, bytes, &file).unwrap();
        assert!(matches!(outcome, CacheOutcome::Rejected(_)), "{outcome:?}");
        let (_, outcome) = load_cached(&engine, bytes, &file).unwrap();
        assert_eq!(outcome, CacheOutcome::Hit);
        fs::remove_dir_all(&dir).unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("llmkg-host-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }
}
