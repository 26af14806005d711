//! `bench`: the component under Wasmtime and the same engine native, measured in one run, with
//! the wasm/native ratio for each figure (absolute figures drift on a shared machine; the
//! ratio taken in one run does not). With `--llama-bench`, llama.cpp's own benchmark runs on the
//! same GGUF in the same run, as the native bar for prefill and decode.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;
use llmkg_host::bench::{measure, median, BenchPlan, ComponentBackend, Figures, NativeBackend};
use serde_json::{json, Value};

use super::{print_json, GlobalArgs};

/// Tokens llama-bench generates per decode test (its `-n`; it decodes from an empty context).
pub const LLAMA_BENCH_GEN_TOKENS: u32 = 64;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Text model: an id in the model cache or a .gguf path.
    #[arg(long, default_value = llmkg_host::models::DEFAULT_TEXT_MODEL)]
    pub model: String,
    /// Embedding model: an id in the model cache or a directory.
    #[arg(long, default_value = llmkg_host::models::DEFAULT_EMBEDDING_MODEL)]
    pub embedding_model: String,
    /// Measured runs per figure (the median is reported), after one warm-up.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Tokens to decode per decode run.
    #[arg(long, default_value_t = 128)]
    pub decode_tokens: u32,
    /// Threads for the native engine (the component always runs on one).
    #[arg(long, default_value_t = 1)]
    pub native_threads: usize,
    /// Also measure llama.cpp in this run: the `llama-bench` binary at PATH runs on the same
    /// GGUF with one thread (a prompt as long as the component's prefill prompt, 64 generated
    /// tokens, --runs repetitions after its warm-up); its prefill and decode tok/s (median of its
    /// samples) are reported beside the others, with the component/llama.cpp ratio.
    /// `scripts/bench-llama-cpp --print-binary` builds one and prints its path.
    #[arg(long, value_name = "PATH")]
    pub llama_bench: Option<PathBuf>,
    /// Also write every figure as JSON (the object `--json` prints) to PATH; the text table is
    /// still printed. `scripts/bench-chart` draws a chart from that file.
    #[arg(long, value_name = "PATH")]
    pub json_file: Option<PathBuf>,
}

/// A figure: its name, how to read it from the engine's figures and from llama.cpp's (for the
/// figures llama-bench measures), whether higher is better.
type Row = (&'static str, fn(&Figures) -> f64, Option<fn(&LlamaCppFigures) -> f64>, bool);

/// Prefill and decode as llama-bench measured them.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaCppFigures {
    /// Median of llama-bench's per-repetition samples (its mean when it gives none).
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
    /// llama-bench's own mean (`avg_ts`).
    pub prefill_mean: f64,
    pub decode_mean: f64,
    pub prefill_prompt_tokens: u32,
    pub decode_tokens: u32,
    pub build_commit: String,
    pub build_number: i64,
    pub cpu: String,
}

/// Reads `llama-bench -o json` output: one object per test, a prompt-only test (`n_gen` 0) for
/// prefill and a generation-only test (`n_prompt` 0) for decode.
pub fn parse_llama_bench(text: &str) -> Result<LlamaCppFigures> {
    let tests: Vec<Value> = serde_json::from_str(text).context("llama-bench output is not a JSON array")?;
    let field = |t: &Value, name: &str| t.get(name).and_then(Value::as_u64).unwrap_or(0) as u32;
    let speed = |t: &Value| -> Result<(f64, f64)> {
        let mean = t.get("avg_ts").and_then(Value::as_f64).context("a llama-bench test without avg_ts")?;
        let samples: Vec<f64> =
            t.get("samples_ts").and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
        Ok((if samples.is_empty() { mean } else { median(samples) }, mean))
    };
    let prefill = tests.iter().find(|t| field(t, "n_prompt") > 0 && field(t, "n_gen") == 0);
    let decode = tests.iter().find(|t| field(t, "n_gen") > 0 && field(t, "n_prompt") == 0);
    let (Some(prefill), Some(decode)) = (prefill, decode) else {
        bail!("llama-bench output lacks a prompt-only test or a generation-only test");
    };
    let ((prefill_tokens_per_s, prefill_mean), (decode_tokens_per_s, decode_mean)) = (speed(prefill)?, speed(decode)?);
    let text_field = |name: &str| prefill.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(LlamaCppFigures {
        prefill_tokens_per_s,
        decode_tokens_per_s,
        prefill_mean,
        decode_mean,
        prefill_prompt_tokens: field(prefill, "n_prompt"),
        decode_tokens: field(decode, "n_gen"),
        build_commit: text_field("build_commit"),
        build_number: prefill.get("build_number").and_then(Value::as_i64).unwrap_or(0),
        cpu: text_field("cpu_info"),
    })
}

/// Runs llama-bench on `gguf` with one thread; its log (stderr) is shown only if it fails.
fn run_llama_bench(binary: &Path, gguf: &Path, prompt_tokens: u32, runs: usize) -> Result<LlamaCppFigures> {
    let output = Command::new(binary)
        .arg("-m")
        .arg(gguf)
        .args(["-t", "1", "-p", &prompt_tokens.to_string(), "-n", &LLAMA_BENCH_GEN_TOKENS.to_string()])
        .args(["-r", &runs.max(1).to_string(), "-o", "json"])
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    if !output.status.success() {
        bail!("{} failed ({}):\n{}", binary.display(), output.status, String::from_utf8_lossy(&output.stderr).trim_end());
    }
    parse_llama_bench(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("reading the output of {}", binary.display()))
}

/// The CPU model name, for the record (empty where /proc/cpuinfo has none).
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string()))
        .unwrap_or_default()
}

pub fn run(global: &GlobalArgs, args: BenchArgs) -> Result<()> {
    // candle sizes its worker pool from this on first use; set it before anything runs.
    std::env::set_var("RAYON_NUM_THREADS", args.native_threads.to_string());
    let text = global.resolve_model(&args.model)?;
    let embedding = global.resolve_model(&args.embedding_model)?;
    // Checked before the long measurements, not after.
    let llama_bench = match &args.llama_bench {
        Some(binary) => {
            if !binary.is_file() {
                bail!("--llama-bench {}: no such file (scripts/bench-llama-cpp --print-binary builds one)", binary.display());
            }
            let [gguf] = text.files.as_slice() else { bail!("--llama-bench needs a text model in one .gguf file") };
            Some((binary.as_path(), gguf.as_path()))
        }
        None => None,
    };
    let plan = BenchPlan {
        text_model: (&text.id, &text.files),
        embedding_model: (&embedding.id, &embedding.files),
        runs: args.runs,
        decode_tokens: args.decode_tokens,
    };
    if global.notes() {
        eprintln!("measuring the component under Wasmtime ({} runs)...", args.runs);
    }
    let wasm = measure(&mut ComponentBackend(global.open_runtime()?), &plan)?;
    if global.notes() {
        eprintln!("measuring the engine native ({} thread(s))...", args.native_threads);
    }
    let native = measure(&mut NativeBackend::default(), &plan)?;
    let llama = match llama_bench {
        Some((binary, gguf)) => {
            if global.notes() {
                eprintln!("measuring llama.cpp ({}, one thread)...", binary.display());
            }
            Some(run_llama_bench(binary, gguf, wasm.prefill_prompt_tokens, args.runs)?)
        }
        None => None,
    };

    let rows: [Row; 5] = [
        ("decode tok/s", |f| f.decode_tokens_per_s, Some(|l| l.decode_tokens_per_s), true),
        ("prefill tok/s", |f| f.prefill_tokens_per_s, Some(|l| l.prefill_tokens_per_s), true),
        ("first token ms", |f| f.first_token_ms, None, false),
        ("embed 1 sentence ms", |f| f.embed_one_sentence_ms, None, false),
        ("embed 32 sentences/s", |f| f.embed_batch_sentences_per_s, None, true),
    ];
    let figures = |f: &Figures| {
        json!({
            "decode_tokens_per_s": f.decode_tokens_per_s,
            "prefill_tokens_per_s": f.prefill_tokens_per_s,
            "first_token_ms": f.first_token_ms,
            "embed_one_sentence_ms": f.embed_one_sentence_ms,
            "embed_batch_sentences_per_s": f.embed_batch_sentences_per_s,
            "prefill_prompt_tokens": f.prefill_prompt_tokens,
            "decode_tokens": f.decode_tokens,
        })
    };
    let ratios = |over: &dyn Fn(&Row) -> Option<f64>| {
        rows.iter().filter_map(|row| over(row).map(|r| (row.0.to_string(), json!(r)))).collect::<serde_json::Map<_, _>>()
    };
    let mut report = json!({
        "model": text.id,
        "model_files": text.files,
        "embedding_model": embedding.id,
        "runs": args.runs,
        "native_threads": args.native_threads,
        "machine": {
            "cpu": cpu_model(),
            "logical_cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        },
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "component": figures(&wasm),
        "native": figures(&native),
        "wasm_over_native": ratios(&|(_, get, _, _)| Some(get(&wasm) / get(&native))),
    });
    if let Some(l) = &llama {
        report["llama_cpp"] = json!({
            "decode_tokens_per_s": l.decode_tokens_per_s,
            "prefill_tokens_per_s": l.prefill_tokens_per_s,
            "decode_mean_tokens_per_s": l.decode_mean,
            "prefill_mean_tokens_per_s": l.prefill_mean,
            "prefill_prompt_tokens": l.prefill_prompt_tokens,
            "decode_tokens": l.decode_tokens,
            "threads": 1,
            "build_commit": l.build_commit,
            "build_number": l.build_number,
            "cpu": l.cpu,
        });
        report["wasm_over_llama_cpp"] = json!(ratios(&|(_, get, get_l, _)| get_l.map(|g| get(&wasm) / g(l))));
        report["native_over_llama_cpp"] = json!(ratios(&|(_, get, get_l, _)| get_l.map(|g| get(&native) / g(l))));
    }
    if let Some(path) = &args.json_file {
        let text = serde_json::to_string_pretty(&report).expect("JSON values serialize");
        std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))?;
        if global.notes() {
            eprintln!("figures written to {}", path.display());
        }
    }
    if global.json {
        print_json(&report);
        return Ok(());
    }
    println!(
        "{} ({}-token prompt, {} decoded tokens), median of {} runs, one thread",
        text.id, wasm.prefill_prompt_tokens, wasm.decode_tokens, args.runs
    );
    print!("{:<22}{:>12}{:>12}{:>13}", "", "component", "native", "wasm/native");
    if llama.is_some() {
        print!("{:>12}{:>16}", "llama.cpp", "wasm/llama.cpp");
    }
    println!();
    for (name, get, get_llama, higher_is_better) in rows {
        let (w, n) = (get(&wasm), get(&native));
        print!("{name:<22}{w:>12.2}{n:>12.2}{:>13.2}", w / n);
        if let Some(l) = &llama {
            match get_llama {
                Some(g) => print!("{:>12.2}{:>16.2}", g(l), w / g(l)),
                None => print!("{:>12}{:>16}", "-", "-"),
            }
        }
        let note = if higher_is_better { "(higher is better)" } else { "(lower is better)" };
        println!("  {note}");
    }
    if let Some(l) = &llama {
        println!(
            "llama.cpp: llama-bench build {} ({}), {}-token prompt, {} generated tokens from an empty context, one thread",
            l.build_number, l.build_commit, l.prefill_prompt_tokens, l.decode_tokens
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTPUT: &str = r#"[
      {"build_commit": "abc1234", "build_number": 7000, "cpu_info": "Some CPU", "n_prompt": 34, "n_gen": 0,
       "n_threads": 1, "avg_ts": 230.0, "stddev_ts": 5.0, "samples_ts": [220.0, 235.0, 240.0]},
      {"build_commit": "abc1234", "build_number": 7000, "cpu_info": "Some CPU", "n_prompt": 0, "n_gen": 64,
       "n_threads": 1, "avg_ts": 140.0, "stddev_ts": 1.0}
    ]"#;

    #[test]
    fn llama_bench_json_gives_prefill_from_the_prompt_test_and_decode_from_the_generation_test() {
        let f = parse_llama_bench(OUTPUT).unwrap();
        assert_eq!(f.prefill_tokens_per_s, 235.0, "median of the samples");
        assert_eq!(f.prefill_mean, 230.0);
        assert_eq!(f.decode_tokens_per_s, 140.0, "mean when there are no samples");
        assert_eq!((f.prefill_prompt_tokens, f.decode_tokens), (34, 64));
        assert_eq!((f.build_commit.as_str(), f.build_number, f.cpu.as_str()), ("abc1234", 7000, "Some CPU"));
    }

    #[test]
    fn llama_bench_json_without_both_tests_is_an_error() {
        assert!(parse_llama_bench("[]").is_err());
        assert!(parse_llama_bench("not json").is_err());
        let prompt_only = r#"[{"n_prompt": 34, "n_gen": 0, "avg_ts": 1.0}]"#;
        assert!(parse_llama_bench(prompt_only).is_err());
    }
}
