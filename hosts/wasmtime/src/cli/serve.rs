//! `serve`, `preinit`, `compose`: the HTTP front composed with the engine, pre-initialized,
//! served. Flags become the front's settings (environment variables) and the server's limits;
//! everything about requests themselves is the front's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use llmkg_host::app::{build_app, locate_front, AppSpec};
use llmkg_host::component::{default_cache_dir, locate_component};
use llmkg_host::compose::{compose, embedded_components, sha256_hex};
use llmkg_host::models::{DEFAULT_EMBEDDING_MODEL, DEFAULT_TEXT_MODEL};
use llmkg_host::preinit::{preinit, GraphSource, PreinitReport, PreinitSpec};
use llmkg_host::serve::{Preopen, ServeConfig, Server};
use llmkg_host::units::{format_size, parse_duration, parse_size};
use llmkg_host::{CompiledComponent, EngineSetup, LoadOptions, ModelKind, WeightConversion};

use super::kg::GraphArgs;
use super::GlobalArgs;

/// Who may change the graph over HTTP.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphWrites {
    /// Open on a loopback address without keys, read-write keys otherwise, off without keys
    /// on other addresses.
    Auto,
    Off,
    /// Only with a read-write API key.
    Keys,
    /// Anyone who can reach the server.
    Open,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on. Anything but a loopback address exposes the server to the network.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Models to serve (repeatable): ids in the model cache or paths. Default: the two defaults.
    #[arg(long, short)]
    pub model: Vec<String>,
    /// Requests executing at once (default: the number of cores).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Requests that may wait for a turn; beyond them the server answers 503 with Retry-After.
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Reuse each instance for up to N requests (default: a fresh instance per request).
    #[arg(long, value_name = "N")]
    pub reuse: Option<u64>,
    /// Do not pre-initialize: every instance loads the models from their files (slow; the
    /// baseline pre-initialization is measured against).
    #[arg(long)]
    pub no_preinit: bool,
    /// Serve this composed component as it is (from `llmkg preinit` or `llmkg compose`).
    #[arg(long, value_name = "APP.wasm")]
    pub app: Option<PathBuf>,
    /// The HTTP front component (default: next to the engine component).
    #[arg(long, value_name = "PATH", env = "LLMKG_FRONT")]
    pub front: Option<PathBuf>,
    /// An API key with read-write rights, sent by clients as `Authorization: Bearer KEY`.
    #[arg(long, value_name = "KEY", env = "LLMKG_API_KEY", hide_env_values = true)]
    pub api_key: Vec<String>,
    /// An API key that may read but not change the graph.
    #[arg(long, value_name = "KEY", env = "LLMKG_READ_API_KEY", hide_env_values = true)]
    pub read_api_key: Vec<String>,
    /// A file of API keys, one per line: `KEY` (read-write) or `read:KEY`; `#` comments.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = GraphWrites::Auto)]
    pub graph_writes: GraphWrites,
    /// Origins browsers may call from (repeatable; `*` for any). Default: CORS off.
    #[arg(long, value_name = "ORIGIN")]
    pub cors_origin: Vec<String>,
    /// Largest request body; bigger ones get 413 before they are read (default 16MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_body: Option<u64>,
    /// Largest max_tokens a request may ask for, and the default (default 2048).
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// Rows one SPARQL query may return (default 10000).
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u32>,
    /// How long shutdown waits for running requests and streams.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub drain: Duration,
    /// Cap every generation's KV cache at N tokens (default: 4096).
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub context_length: u32,
    /// Once this many graph changes were committed after the snapshot being served, build a new
    /// one in the background and switch to it (each fresh instance replays the changes since
    /// its snapshot). 0: never.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub rebuild_after: u64,
}

#[derive(Args, Debug)]
pub struct PreinitArgs {
    /// Models to load into the snapshot (repeatable). Default: the two defaults.
    #[arg(long, short)]
    pub model: Vec<String>,
    /// An RDF file to put into the snapshot's graph (read-only deployments).
    #[arg(long, value_name = "FILE", conflicts_with = "with_data_dir")]
    pub kg: Option<PathBuf>,
    /// Put the data directory's graph (--data-dir) into the snapshot, at its last change.
    #[arg(long)]
    pub with_data_dir: bool,
    /// Write only the pre-initialized engine, not composed with the HTTP front.
    #[arg(long)]
    pub engine_only: bool,
    #[arg(long, value_name = "PATH", env = "LLMKG_FRONT")]
    pub front: Option<PathBuf>,
    #[arg(long, short, value_name = "OUT.wasm")]
    pub output: PathBuf,
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub context_length: u32,
}

#[derive(Args, Debug)]
pub struct ComposeArgs {
    #[arg(long, value_name = "PATH", env = "LLMKG_FRONT")]
    pub front: Option<PathBuf>,
    #[arg(long, short, value_name = "OUT.wasm")]
    pub output: PathBuf,
}

fn model_sources(global: &GlobalArgs, specs: &[String]) -> Result<Vec<llmkg_host::models::ModelSource>> {
    let defaults = [DEFAULT_TEXT_MODEL.to_string(), DEFAULT_EMBEDDING_MODEL.to_string()];
    let specs = if specs.is_empty() { &defaults[..] } else { specs };
    specs.iter().map(|s| global.resolve_model(s)).collect()
}

fn load_options(context_length: u32) -> LoadOptions {
    LoadOptions { conversion: WeightConversion::Auto, context_length: Some(context_length) }
}

fn describe_preinit(r: &PreinitReport) -> String {
    let models: Vec<&str> = r.models.iter().map(|m| m.id.as_str()).collect();
    format!(
        "models {} and {} triples (change {}, {} labels indexed) in {} of linear memory; load {:.1}s, snapshot {:.1}s",
        models.join(", "),
        r.triples,
        r.log_position,
        r.indexed_labels,
        format_size(r.linear_memory_bytes),
        r.load_time.as_secs_f64(),
        r.snapshot_time.as_secs_f64()
    )
}

pub fn run_compose(global: &GlobalArgs, args: ComposeArgs) -> Result<()> {
    let engine_path = locate_component(global.component.as_deref())?;
    let front_path = locate_front(args.front.as_deref(), &engine_path)?;
    let engine = std::fs::read(&engine_path).with_context(|| format!("reading {}", engine_path.display()))?;
    let front = std::fs::read(&front_path).with_context(|| format!("reading {}", front_path.display()))?;
    let app = compose(&front, &engine)?;
    std::fs::write(&args.output, &app).with_context(|| format!("writing {}", args.output.display()))?;
    let inside = embedded_components(&app)?;
    let engine_sha = sha256_hex(&engine);
    let identical = inside.contains(&engine_sha);
    if global.json {
        super::print_json(&serde_json::json!({
            "output": args.output, "bytes": app.len(), "engine_sha256": engine_sha,
            "embedded_sha256": inside, "engine_byte_identical": identical,
        }));
    } else {
        println!("wrote {} ({})", args.output.display(), format_size(app.len() as u64));
        println!("engine {} sha256 {engine_sha}: {}", engine_path.display(), if identical { "embedded byte for byte" } else { "NOT found byte for byte" });
    }
    if !identical {
        bail!("the composition does not hold the engine byte for byte");
    }
    Ok(())
}

pub fn run_preinit(global: &GlobalArgs, graph: &GraphArgs, args: PreinitArgs) -> Result<()> {
    let engine_path = locate_component(global.component.as_deref())?;
    let engine = std::fs::read(&engine_path).with_context(|| format!("reading {}", engine_path.display()))?;
    let models = model_sources(global, &args.model)?;
    let graph_source = match (&args.kg, args.with_data_dir) {
        (Some(path), _) => GraphSource::File { path: path.clone(), format: super::kg::Format::of_file(path)?.into() },
        (None, true) => GraphSource::DataDir(graph.data_dir()),
        (None, false) => GraphSource::None,
    };
    let spec = PreinitSpec {
        engine: &engine,
        models: &models,
        load_options: load_options(args.context_length),
        graph: graph_source,
        max_memory: Some(global.max_memory),
        cache_dir: default_cache_dir(),
    };
    let started = Instant::now();
    let notes = global.notes();
    let (snapshot, report) = preinit(&spec, |step| {
        if notes {
            eprintln!("preinit: {step}");
        }
    })?;
    let out = if args.engine_only {
        snapshot
    } else {
        let front_path = locate_front(args.front.as_deref(), &engine_path)?;
        let front = std::fs::read(&front_path).with_context(|| format!("reading {}", front_path.display()))?;
        compose(&front, &snapshot)?
    };
    std::fs::write(&args.output, &out).with_context(|| format!("writing {}", args.output.display()))?;
    if global.json {
        super::print_json(&serde_json::json!({
            "output": args.output, "bytes": out.len(),
            "models": report.models.iter().map(|m| &m.id).collect::<Vec<_>>(),
            "triples": report.triples, "log_position": report.log_position, "indexed_labels": report.indexed_labels,
            "linear_memory_bytes": report.linear_memory_bytes,
            "load_ms": report.load_time.as_millis(), "snapshot_ms": report.snapshot_time.as_millis(),
        }));
    } else {
        println!("wrote {} ({}) in {:.1}s: {}", args.output.display(), format_size(out.len() as u64), started.elapsed().as_secs_f64(), describe_preinit(&report));
    }
    Ok(())
}

/// `read:KEY` / `KEY` lines of a key file.
fn keys_from_file(path: &std::path::Path) -> Result<Vec<(String, bool)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the API key file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.strip_prefix("read:") {
            Some(k) => (k.trim().to_string(), false),
            None => (l.strip_prefix("write:").unwrap_or(l).trim().to_string(), true),
        })
        .collect())
}

pub fn run_serve(global: &GlobalArgs, graph: &GraphArgs, args: ServeArgs) -> Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let concurrency = args.concurrency.unwrap_or(cores).max(1);
    let data_dir = graph.data_dir();
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating the data directory {}", data_dir.display()))?;

    // Keys: read-write and read-only, from flags, the environment and a file.
    let mut keys: Vec<(String, bool)> = args.api_key.iter().map(|k| (k.clone(), true)).collect();
    keys.extend(args.read_api_key.iter().map(|k| (k.clone(), false)));
    if let Some(file) = &args.api_key_file {
        keys.extend(keys_from_file(file)?);
    }
    if let Some((short, _)) = keys.iter().find(|(k, _)| k.len() < 8) {
        bail!("API keys must be at least 8 characters ({}… is shorter)", short.chars().take(2).collect::<String>());
    }
    let loopback = args.listen.ip().is_loopback();
    let writes = match args.graph_writes {
        GraphWrites::Auto if !keys.is_empty() => {
            if keys.iter().any(|(_, rw)| *rw) {
                "keys"
            } else {
                "off"
            }
        }
        GraphWrites::Auto if loopback => "open",
        GraphWrites::Auto | GraphWrites::Off => "off",
        GraphWrites::Keys => "keys",
        GraphWrites::Open => "open",
    };
    if !loopback && keys.is_empty() && global.notes() {
        eprintln!("llmkg serve: warning: listening on {} without API keys: anyone who can reach it may use the models (graph writes are off)", args.listen);
    }

    let mut env: Vec<(String, String)> = vec![("LLMKG_GRAPH_WRITES".into(), writes.into()), ("LLMKG_DATA".into(), "/data".into())];
    if !keys.is_empty() {
        let list: Vec<String> = keys.iter().map(|(k, rw)| if *rw { format!("write:{k}") } else { format!("read:{k}") }).collect();
        env.push(("LLMKG_API_KEYS".into(), list.join(",")));
    }
    if !args.cors_origin.is_empty() {
        env.push(("LLMKG_CORS_ORIGINS".into(), args.cors_origin.join(",")));
    }
    for (name, value) in [
        ("LLMKG_MAX_BODY", args.max_body.map(|v| v.to_string())),
        ("LLMKG_MAX_TOKENS", args.max_tokens.map(|v| v.to_string())),
        ("LLMKG_MAX_ROWS", args.max_rows.map(|v| v.to_string())),
    ] {
        if let Some(v) = value {
            env.push((name.into(), v));
        }
    }
    let mut preopens = vec![Preopen { host: data_dir.clone(), guest: "/data".into(), writable: true }];
    let models = if args.app.is_some() { Vec::new() } else { model_sources(global, &args.model)? };
    if args.no_preinit {
        // Each instance loads the models itself, from read-only directories mapped in.
        let mut specs = Vec::new();
        for (i, m) in models.iter().enumerate() {
            let guest = format!("/models/{i}");
            let (host, file) = match m.kind {
                ModelKind::TextGeneration => {
                    let f = &m.files[0];
                    (f.parent().map(PathBuf::from).unwrap_or_default(), format!("{guest}/{}", f.file_name().unwrap_or_default().to_string_lossy()))
                }
                ModelKind::Embedding => (m.files[0].parent().map(PathBuf::from).unwrap_or_default(), guest.clone()),
            };
            preopens.push(Preopen { host, guest, writable: false });
            specs.push(format!("{}={file}", m.id));
        }
        env.push(("LLMKG_MODELS".into(), specs.join(";")));
    }

    let config = ServeConfig {
        listen: args.listen,
        concurrency,
        queue: args.queue,
        timeout: global.timeout.unwrap_or(Duration::from_secs(300)),
        max_memory: global.max_memory,
        reuse: args.reuse,
        env,
        preopens,
        metrics_keys: keys.iter().map(|(k, _)| k.clone()).collect(),
        access_log: !global.quiet,
        drain: args.drain,
    };
    let server = Server::new(config.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(cores.max(2)).enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind(args.listen)).with_context(|| format!("listening on {}", args.listen))?;
    let notes = global.notes();
    if notes {
        eprintln!("llmkg serve: listening on http://{} (preparing the component; requests get 503 until it is ready)", args.listen);
    }
    let serving = runtime.spawn(server.clone().run(listener));

    // Build (or find) and compile the app while the listener already answers 503.
    let build = |progress: &dyn Fn(&str)| -> Result<(CompiledComponent, PathBuf, u64)> {
        let engine = locate_component(global.component.as_deref())?;
        let position = llmkg_host::datadir::DataDir::new(data_dir.clone()).latest_position()?;
        let app_path = match &args.app {
            Some(app) => app.clone(),
            None => {
                let spec = AppSpec {
                    front: locate_front(args.front.as_deref(), &engine)?,
                    engine,
                    preinit: !args.no_preinit,
                    models: models.clone(),
                    graph: GraphSource::DataDir(data_dir.clone()),
                    load_options: load_options(args.context_length),
                    max_memory: Some(global.max_memory),
                    cache_dir: default_cache_dir(),
                };
                let built = build_app(&spec, progress)?;
                if let Some(report) = &built.preinit {
                    progress(&format!("pre-initialized {}", describe_preinit(report)));
                }
                built.path
            }
        };
        progress("compiling the component");
        let image = std::fs::metadata(&app_path).map(|m| m.len()).unwrap_or(0);
        let setup = EngineSetup::serve((concurrency * 2 + 2) as u32, global.max_memory, image.next_power_of_two().max(256 << 20));
        let compiled = CompiledComponent::load_with(&app_path, default_cache_dir().as_deref(), &setup)?;
        Ok((compiled, app_path, position))
    };
    let started = Instant::now();
    let prepared = build(&|step: &str| {
        server.set_preparing(step.to_string());
        if notes {
            eprintln!("llmkg serve: {step}");
        }
    })
    .and_then(|(compiled, app_path, position)| {
        server.set_ready(compiled)?;
        if notes {
            let mode = match args.reuse {
                Some(n) => format!("instances reused up to {n} requests"),
                None => "a fresh instance per request".into(),
            };
            eprintln!(
                "llmkg serve: ready in {:.1}s: {} ({}, {mode}, {concurrency} at once, {} queued, graph writes {writes}, data in {})",
                started.elapsed().as_secs_f64(),
                app_path.display(),
                format_size(std::fs::metadata(&app_path).map(|m| m.len()).unwrap_or(0)),
                args.queue,
                data_dir.display()
            );
        }
        Ok(position)
    });
    let mut served_position = match prepared {
        Ok(p) => p,
        Err(e) => {
            server.set_failed(format!("{e:#}"));
            serving.abort();
            return Err(e);
        }
    };
    // Folding changes into a new snapshot: each fresh instance replays what was committed after
    // its snapshot, so after many writes a new one is built (on this thread, while the server
    // keeps answering from the old one) and requests switch to it.
    let rebuilds = args.rebuild_after > 0 && args.app.is_none() && !args.no_preinit;
    while rebuilds && !serving.is_finished() {
        std::thread::sleep(Duration::from_secs(5));
        let latest = llmkg_host::datadir::DataDir::new(data_dir.clone()).latest_position().unwrap_or(served_position);
        if latest < served_position + args.rebuild_after {
            continue;
        }
        let t = Instant::now();
        match build(&|_| {}).and_then(|(compiled, _, position)| server.set_ready(compiled).map(|()| position).map_err(Into::into)) {
            Ok(position) => {
                if notes {
                    eprintln!("llmkg serve: changes {}..{position} folded into a new snapshot in {:.1}s", served_position + 1, t.elapsed().as_secs_f64());
                }
                served_position = position;
            }
            Err(e) => {
                eprintln!("llmkg serve: building a new snapshot failed ({e:#}); still serving the old one");
                served_position = latest;
            }
        }
    }
    runtime.block_on(serving)??;
    if notes {
        eprintln!("llmkg serve: stopped");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_give_rights_per_line() {
        let path = std::env::temp_dir().join(format!("llmkg-keys-{}", std::process::id()));
        std::fs::write(&path, "# keys\nwriter-key-1\nread:reader-key-2\n\nwrite:writer-key-3\n").unwrap();
        let keys = keys_from_file(&path).unwrap();
        assert_eq!(keys, [("writer-key-1".to_string(), true), ("reader-key-2".to_string(), false), ("writer-key-3".to_string(), true)]);
        std::fs::remove_file(path).unwrap();
    }
}
