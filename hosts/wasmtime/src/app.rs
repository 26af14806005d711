//! The deployable component: the HTTP front composed with the engine, the engine
//! pre-initialized with models (and a graph) unless told otherwise. Built once per set of
//! inputs and kept in a cache, so `llmkg serve` restarts in seconds.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::compose::{compose, sha256_hex};
use crate::datadir::DataDir;
use crate::error::{Error, Result};
use crate::models::ModelSource;
use crate::preinit::{preinit, GraphSource, PreinitReport, PreinitSpec};
use crate::runtime::LoadOptions;

/// The front's file name next to the engine's in a Cargo target directory.
pub const FRONT_FILE: &str = "llmkg_http.wasm";

/// Built apps kept in the cache (each holds the models: ~200 MB for the defaults).
const APPS_KEPT: usize = 3;

/// The HTTP front: `explicit` (`--front`), else `$LLMKG_FRONT`, else next to the engine.
pub fn locate_front(explicit: Option<&Path>, engine: &Path) -> Result<PathBuf> {
    let env = std::env::var_os("LLMKG_FRONT").map(PathBuf::from);
    let path = explicit.map(Path::to_path_buf).or(env).unwrap_or_else(|| engine.with_file_name(FRONT_FILE));
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::ComponentNotFound { searched: vec![path] })
    }
}

pub struct AppSpec {
    pub engine: PathBuf,
    pub front: PathBuf,
    /// Pre-initialize the engine with `models` and `graph`; otherwise the plain engine is
    /// composed and instances load models from files (`LLMKG_MODELS`).
    pub preinit: bool,
    pub models: Vec<ModelSource>,
    pub graph: GraphSource,
    pub load_options: LoadOptions,
    pub max_memory: Option<u64>,
    /// Built apps and compiled code are kept here; none: built each time, into a temp file.
    pub cache_dir: Option<PathBuf>,
}

pub struct BuiltApp {
    pub path: PathBuf,
    /// Found in the cache (no pre-initialization ran).
    pub cached: bool,
    pub preinit: Option<PreinitReport>,
    /// sha256 of the engine component composed in (unchanged unless pre-initialized).
    pub engine_sha256: String,
}

fn file_identity(path: &Path) -> String {
    let meta = fs::metadata(path).ok();
    let size = meta.as_ref().map_or(0, |m| m.len());
    let mtime = meta.and_then(|m| m.modified().ok()).and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    format!("{}:{size}:{mtime}", path.display())
}

/// Everything the app depends on, hashed: component bytes, model files (path, size, mtime),
/// the graph (file identity, or the data directory's snapshot and last change), load options.
fn cache_key(spec: &AppSpec, engine: &[u8], front: &[u8]) -> Result<String> {
    let mut h = Sha256::new();
    let mut part = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    part(env!("CARGO_PKG_VERSION"));
    part(&sha256_hex(engine));
    part(&sha256_hex(front));
    part(if spec.preinit { "preinit" } else { "plain" });
    if spec.preinit {
        for m in &spec.models {
            part(&m.id);
            for f in &m.files {
                part(&file_identity(f));
            }
        }
        part(&format!("{:?}", spec.load_options));
        match &spec.graph {
            GraphSource::None => part("no graph"),
            GraphSource::File { path, format } => part(&format!("{}:{format:?}", file_identity(path))),
            GraphSource::DataDir(dir) => {
                let latest = DataDir::new(dir.clone()).latest_position()?;
                part(&format!("{}:{latest}:{}", dir.display(), file_identity(&dir.join(crate::datadir::GRAPH_FILE))));
            }
        }
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|source| Error::Io { path: path.into(), source })
}

/// Builds the app (or finds it in the cache).
pub fn build_app(spec: &AppSpec, mut progress: impl FnMut(&str)) -> Result<BuiltApp> {
    let engine = read(&spec.engine)?;
    let front = read(&spec.front)?;
    let key = cache_key(spec, &engine, &front)?;
    let dir = spec.cache_dir.clone().unwrap_or_else(std::env::temp_dir).join("apps");
    fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    let path = dir.join(format!("{key}.wasm"));
    if spec.cache_dir.is_some() && path.is_file() {
        // The composed engine's hash is not kept: the cache key already pins the inputs.
        return Ok(BuiltApp { path, cached: true, preinit: None, engine_sha256: sha256_hex(&engine) });
    }
    let (engine_inside, report) = if spec.preinit {
        let preinit_spec = PreinitSpec {
            engine: &engine,
            models: &spec.models,
            load_options: spec.load_options,
            graph: spec.graph.clone(),
            max_memory: spec.max_memory,
            cache_dir: spec.cache_dir.as_ref().map(|d| d.join("compiled")),
        };
        let (snapshot, report) = preinit(&preinit_spec, &mut progress)?;
        (snapshot, Some(report))
    } else {
        (engine, None)
    };
    progress("composing the HTTP front with the engine");
    let app = compose(&front, &engine_inside)?;
    let temp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = fs::File::create(&temp)?;
        f.write_all(&app)?;
        f.sync_all()?;
        fs::rename(&temp, &path)
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&temp);
        return Err(Error::Io { path, source });
    }
    crate::component::prune_newest(&dir, "wasm", APPS_KEPT);
    Ok(BuiltApp { path, cached: false, preinit: report, engine_sha256: sha256_hex(&engine_inside) })
}
