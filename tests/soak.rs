//! llmkg-soak: drives ONE instance of the component through the host library (`LlmkgRuntime`,
//! the same code `llmkg` and `llmkg serve` run) with a fixed cycle of mixed calls on the default
//! models and the demo graph, and writes a CSV row of memory figures every `--every` calls.
//! `scripts/soak` builds and runs it, then checks the CSV and plots it; the checks live there
//! so that the browser soak (browser-shim/bench/soak.js) is judged by the very same code.
//!
//! A binary in the end-to-end crate rather than an `llmkg soak` subcommand: it is a test of the
//! runtime, not something a user of the CLI does, and it needs the demo graph and the mix
//! (tests/fixtures/soak-mix.json) that live in the repository, not in an installed CLI.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use llmkg_host::models::{models_dir, resolve_or_fetch, ModelSource, DEFAULT_EMBEDDING_MODEL, DEFAULT_TEXT_MODEL};
use llmkg_host::units::{format_size, parse_duration, parse_size};
use llmkg_host::*;
use serde_json::Value;

#[derive(Parser)]
#[command(name = "llmkg-soak", about = "Mixed calls into one component instance; memory every N calls, as CSV.")]
struct Args {
    /// Calls to make (each step of the mix is one call; memory samples are not counted).
    #[arg(long, default_value_t = 10_000, conflicts_with = "duration")]
    calls: u64,
    /// Run for this long instead of a call count (e.g. 30m), ending at the next sample.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Sample memory every N calls; a multiple of the mix's cycle length (20), so every sample
    /// is taken at the same point of the cycle.
    #[arg(long, default_value_t = 100)]
    every: u64,
    /// Tokens per generation (a cancelled stream stops after half of them). Kept short: the
    /// soak is about memory over many calls, not about long outputs.
    #[arg(long, default_value_t = 8)]
    max_tokens: u32,
    /// Where the CSV goes.
    #[arg(long, default_value = "soak.csv")]
    csv: PathBuf,
    /// The mix of calls.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/soak-mix.json"))]
    mix: PathBuf,
    /// The graph imported before the first call.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/demo-kb.ttl"))]
    kb: PathBuf,
    /// Cache of the graph's label index (embedding ~6k labels takes a minute or more), keyed by
    /// the graph file's size and mtime and the embedding model's; `none` embeds every time.
    #[arg(long, default_value_os_t = default_index_cache())]
    index_cache: PathBuf,
    /// Budget for each call; past it the instance traps and is replaced (a restart, which fails
    /// the soak's check) instead of the soak hanging.
    #[arg(long, value_parser = parse_duration, default_value = "120s")]
    timeout: Duration,
    /// Cap on the component's linear memory.
    #[arg(long, value_parser = parse_size, default_value = "2GiB")]
    max_memory: u64,
    /// The component (default: found next to the target dir, or $LLMKG_COMPONENT).
    #[arg(long, env = "LLMKG_COMPONENT")]
    component: Option<PathBuf>,
}

fn default_index_cache() -> PathBuf {
    std::env::home_dir().unwrap_or_default().join(".cache/llmkg/soak")
}

/// One row of the CSV.
struct Sample {
    calls: u64,
    elapsed: Duration,
    memory: MemoryReport,
    rss: u64,
    restarts: u64,
    errors: u64,
    triples: u64,
}

const CSV_HEADER: &str = "calls,elapsed_s,allocated_bytes,peak_allocated_bytes,linear_memory_bytes,model_bytes,rss_bytes,restarts,errors,triples";

impl Sample {
    fn csv(&self) -> String {
        let models: u64 = self.memory.models.iter().map(|m| m.weight_bytes + m.cache_bytes).sum();
        format!(
            "{},{:.3},{},{},{},{},{},{},{},{}",
            self.calls,
            self.elapsed.as_secs_f64(),
            self.memory.allocated_bytes,
            self.memory.peak_allocated_bytes,
            self.memory.linear_memory_bytes,
            models,
            self.rss,
            self.restarts,
            self.errors,
            self.triples
        )
    }
}

/// The process's resident set size, from /proc/self/status (VmRSS, in kB).
fn rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS in /proc/self/status")?;
    let kb: u64 = line.split_whitespace().nth(1).context("VmRSS without a value")?.parse()?;
    Ok(kb * 1024)
}

struct Soak {
    rt: LlmkgRuntime,
    text: ModelSource,
    embedding: ModelSource,
    max_tokens: u32,
    load: LoadOptions,
}

/// `variant[key]` as a string with `{c}` replaced by the cycle number.
fn arg(variant: &Value, key: &str, cycle: u64) -> Result<String> {
    let v = variant.get(key).with_context(|| format!("the mix: a step without `{key}`: {variant}"))?;
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Ok(s.replace("{c}", &cycle.to_string()))
}

impl Soak {
    fn source(&self, kind: &str) -> Result<&ModelSource> {
        match kind {
            "text-generation" => Ok(&self.text),
            "embedding" => Ok(&self.embedding),
            other => bail!("the mix: unknown model kind {other}"),
        }
    }

    fn load(&mut self, kind: &str) -> Result<()> {
        let source = self.source(kind)?.clone();
        self.rt.load_model(&source.id, source.kind, &source.files, &self.load, |_, _, _| {})?;
        Ok(())
    }

    fn generate_request(&self, variant: &Value, cycle: u64, max_tokens: u32) -> Result<GenerateRequest> {
        let sampling = match variant.get("temperature").and_then(Value::as_f64) {
            Some(t) => Some(Sampling { temperature: t as f32, top_p: 0.9, top_k: 40, repeat_penalty: 1.1, seed: arg(variant, "seed", cycle)?.parse()? }),
            None => None,
        };
        Ok(GenerateRequest { model: self.text.id.clone(), prompt: arg(variant, "prompt", cycle)?, max_tokens, sampling, stop: vec![] })
    }

    fn chat_request(&self, variant: &Value, cycle: u64) -> Result<ChatRequest> {
        let messages = vec![
            ChatMessage { role: "system".into(), content: "You are a helpful assistant.".into() },
            ChatMessage { role: "user".into(), content: arg(variant, "message", cycle)? },
        ];
        Ok(ChatRequest { model: self.text.id.clone(), messages, max_tokens: self.max_tokens, sampling: None, stop: vec![] })
    }

    fn fact(variant: &Value, cycle: u64) -> Result<Fact> {
        Ok(Fact {
            subject: arg(variant, "subject", cycle)?,
            predicate: arg(variant, "predicate", cycle)?,
            object: FactObject::Entity(arg(variant, "object", cycle)?),
            confidence: variant.get("confidence").and_then(Value::as_f64).map(|c| c as f32),
            source: variant.get("source").map(|_| arg(variant, "source", cycle)).transpose()?,
        })
    }

    /// Runs one step; an error value, a trap or an answer that makes no sense is an `Err`.
    fn call(&mut self, call: &str, variant: &Value, cycle: u64) -> Result<()> {
        let half = (self.max_tokens / 2).max(1);
        match call {
            "generate" => {
                let c = self.rt.generate(&self.generate_request(variant, cycle, self.max_tokens)?)?;
                if c.completion_tokens == 0 {
                    bail!("generate: no tokens");
                }
            }
            "stream-cancel" | "stream-chat-cancel" => {
                let mut pieces = 0;
                let stop = |_: &str| {
                    pieces += 1;
                    if pieces >= half { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
                };
                let c = if call == "stream-cancel" {
                    // Asked for twice the tokens it is allowed to take: the cancel is what ends it.
                    let request = self.generate_request(variant, cycle, self.max_tokens * 2)?;
                    self.rt.stream_until(&request, stop)?
                } else {
                    let mut request = self.chat_request(variant, cycle)?;
                    request.max_tokens = self.max_tokens * 2;
                    self.rt.stream_chat_until(&request, stop)?
                };
                if c.finish_reason != FinishReason::Length && c.completion_tokens < half {
                    // It ended by itself before the cancel (end of text): fine, but say so.
                    eprintln!("note: cycle {cycle}: {call} ended after {} tokens, before the cancel", c.completion_tokens);
                }
            }
            "chat" => {
                let c = self.rt.chat(&self.chat_request(variant, cycle)?)?;
                if c.completion_tokens == 0 {
                    bail!("chat: no tokens");
                }
            }
            "embed" => {
                let texts: Vec<String> = variant["texts"]
                    .as_array()
                    .context("the mix: embed without texts")?
                    .iter()
                    .map(|t| t.as_str().unwrap_or_default().replace("{c}", &cycle.to_string()))
                    .collect();
                let v = self.rt.embed(&self.embedding.id, &texts)?;
                if v.len() != texts.len() || v.iter().any(|v| v.len() != 384) {
                    bail!("embed: {} vectors for {} texts", v.len(), texts.len());
                }
            }
            "search" => {
                let k = variant["k"].as_u64().unwrap_or(5) as u32;
                let hits = self.rt.kg_search(&arg(variant, "text", cycle)?, k)?;
                if hits.len() != k as usize {
                    bail!("search: {} hits, asked for {k}", hits.len());
                }
            }
            "ask" => {
                let options = AskOptions { model: self.text.id.clone(), entities: 3, hops: 1, max_facts: 6, max_tokens: self.max_tokens, sampling: None };
                let a = self.rt.kg_ask(&arg(variant, "question", cycle)?, &options)?;
                if a.facts.is_empty() {
                    bail!("ask: no facts retrieved");
                }
            }
            "query" => {
                self.rt.kg_query(&arg(variant, "sparql", cycle)?, 100)?;
            }
            "insert" | "remove" => {
                let fact = Self::fact(variant, cycle)?;
                let r = if call == "insert" { self.rt.kg_insert(&[fact])? } else { self.rt.kg_remove(&[fact])? };
                if r.changed == 0 {
                    bail!("{call}: nothing changed");
                }
            }
            "unload" => {
                let id = self.source(&arg(variant, "model", cycle)?)?.id.clone();
                self.rt.unload_model(&id)?;
            }
            "reload" => self.load(&arg(variant, "model", cycle)?)?,
            other => bail!("the mix: unknown call {other}"),
        }
        Ok(())
    }
}

/// The index cache's file name: what the vectors depend on (the graph file and the embedding
/// model). Not the engine build: the soak measures memory, not ranking, so vectors from an older
/// build serve; delete the cache to embed again.
fn index_cache_file(dir: &Path, kb: &Path, embedding: &ModelSource) -> Result<PathBuf> {
    let mut key = String::new();
    for path in std::iter::once(kb).chain(embedding.files.iter().map(PathBuf::as_path)) {
        let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
        let mtime = meta.modified()?.duration_since(std::time::UNIX_EPOCH)?.as_secs();
        key.push_str(&format!("{}-{}-{mtime};", path.file_name().unwrap_or_default().to_string_lossy(), meta.len()));
    }
    // FNV-1a: a short stable name, not a security boundary.
    let hash = key.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    Ok(dir.join(format!("index-{}-{hash:016x}.bin", embedding.id)))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mix: Value = serde_json::from_slice(&std::fs::read(&args.mix).with_context(|| args.mix.display().to_string())?)?;
    let cycle: Vec<(String, Vec<Value>)> = mix["cycle"]
        .as_array()
        .context("the mix has no `cycle`")?
        .iter()
        .map(|s| (s["call"].as_str().unwrap_or_default().to_string(), s["variants"].as_array().cloned().unwrap_or_default()))
        .collect();
    let len = cycle.len() as u64;
    if len == 0 || cycle.iter().any(|(_, v)| v.is_empty()) {
        bail!("{}: every step needs at least one variant", args.mix.display());
    }
    if args.every == 0 || args.every % len != 0 {
        bail!("--every {} is not a multiple of the cycle length {len}", args.every);
    }

    // Setup, not counted: the models, the demo graph and its label index.
    let started = Instant::now();
    let options = RuntimeOptions { max_memory: Some(args.max_memory), timeout: Some(args.timeout) };
    let rt = LlmkgRuntime::open(args.component.as_deref(), options)?;
    let text = resolve_or_fetch(DEFAULT_TEXT_MODEL, &models_dir(), false)?;
    let embedding = resolve_or_fetch(DEFAULT_EMBEDDING_MODEL, &models_dir(), false)?;
    let load = LoadOptions { conversion: WeightConversion::Auto, context_length: None };
    let mut soak = Soak { rt, text, embedding, max_tokens: args.max_tokens.max(2), load };
    soak.load("text-generation")?;
    soak.load("embedding")?;
    let kb = std::fs::read(&args.kb).with_context(|| args.kb.display().to_string())?;
    let imported = soak.rt.kg_import(RdfFormat::Turtle, &kb, &ImportOptions { base_iri: None, graph: None })?;
    let cache = (args.index_cache.as_os_str() != "none").then(|| index_cache_file(&args.index_cache, &args.kb, &soak.embedding)).transpose()?;
    let cached = cache.as_ref().and_then(|c| std::fs::read(c).ok());
    if let Some(bytes) = &cached {
        soak.rt.kg_import_index(bytes)?;
    }
    let t = Instant::now();
    soak.rt.kg_search("warm up the label index", 1)?;
    if let (Some(path), None) = (&cache, &cached) {
        std::fs::create_dir_all(&args.index_cache)?;
        std::fs::write(path, soak.rt.kg_export_index()?)?;
    }
    eprintln!(
        "soak: setup {:.1} s ({} triples; label index {} in {:.1} s); {} calls, a sample every {}, {} tokens per generation",
        started.elapsed().as_secs_f64(),
        imported.total,
        if cached.is_some() { "from the cache, checked" } else { "embedded" },
        t.elapsed().as_secs_f64(),
        args.duration.map(|d| format!("{} s of", d.as_secs())).unwrap_or_else(|| args.calls.to_string()),
        args.every,
        soak.max_tokens,
    );

    let mut out = BufWriter::new(File::create(&args.csv).with_context(|| args.csv.display().to_string())?);
    writeln!(out, "{CSV_HEADER}")?;
    let bar = match args.duration {
        Some(d) => ProgressBar::new(d.as_secs()).with_style(ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} s  {msg}")?),
        None => ProgressBar::new(args.calls).with_style(ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {pos}/{len} calls ({per_sec}, eta {eta})  {msg}")?),
    };
    bar.enable_steady_tick(Duration::from_secs(1));

    let start = Instant::now();
    let mut errors = 0u64;
    // Count, total and slowest time per kind of call: the slowest shows pauses (a graph store
    // rebuild lands on the removal that triggers it).
    let mut time_by_call: BTreeMap<String, (u64, Duration, Duration)> = BTreeMap::new();
    let mut calls = 0u64;
    loop {
        let sample = Sample {
            calls,
            elapsed: start.elapsed(),
            memory: soak.rt.memory_stats()?,
            rss: rss_bytes()?,
            restarts: soak.rt.restarts(),
            errors,
            triples: soak.rt.kg_stats()?.triples,
        };
        writeln!(out, "{}", sample.csv())?;
        out.flush()?;
        bar.set_message(format!("allocated {}, RSS {}", format_size(sample.memory.allocated_bytes), format_size(sample.rss)));
        let done = match args.duration {
            Some(d) => start.elapsed() >= d,
            None => calls >= args.calls,
        };
        if done {
            break;
        }
        for _ in 0..args.every {
            let c = calls / len;
            let (call, variants) = &cycle[(calls % len) as usize];
            let variant = &variants[(c % variants.len() as u64) as usize];
            let t = Instant::now();
            if let Err(e) = soak.call(call, variant, c) {
                errors += 1;
                bar.suspend(|| eprintln!("soak: call {calls} ({call}, cycle {c}) failed: {e:#}"));
            }
            let took = t.elapsed();
            let entry = time_by_call.entry(call.clone()).or_default();
            entry.0 += 1;
            entry.1 += took;
            entry.2 = entry.2.max(took);
            calls += 1;
        }
        bar.set_position(match args.duration {
            Some(_) => start.elapsed().as_secs(),
            None => calls,
        });
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    eprintln!("soak: {calls} calls in {elapsed:.1} s ({:.2} calls/s), {errors} failed, {} restarts", calls as f64 / elapsed, soak.rt.restarts());
    let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
    let times: Vec<String> = time_by_call.iter().map(|(k, (n, total, max))| format!("{k} {:.1} ms (slowest {:.1})", ms(total) / *n as f64, ms(max))).collect();
    eprintln!("soak: mean time per call: {}", times.join(", "));
    eprintln!("soak: wrote {}", args.csv.display());
    Ok(())
}
