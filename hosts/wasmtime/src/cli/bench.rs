//! `bench`: the component under Wasmtime and the same engine native, measured in one run, with
//! the wasm/native ratio for each figure (absolute figures drift on a shared machine; the
//! ratio taken in one run does not).

use anyhow::Result;
use clap::Args;
use llmkg_host::bench::{measure, BenchPlan, ComponentBackend, Figures, NativeBackend};
use serde_json::json;

use super::{print_json, GlobalArgs};

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
}

pub fn run(global: &GlobalArgs, args: BenchArgs) -> Result<()> {
    // candle sizes its worker pool from this on first use; set it before anything runs.
    std::env::set_var("RAYON_NUM_THREADS", args.native_threads.to_string());
    let text = global.resolve_model(&args.model)?;
    let embedding = global.resolve_model(&args.embedding_model)?;
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

    let rows: [(&str, fn(&Figures) -> f64, bool); 4] = [
        ("decode tok/s", |f| f.decode_tokens_per_s, true),
        ("prefill tok/s", |f| f.prefill_tokens_per_s, true),
        ("first token ms", |f| f.first_token_ms, false),
        ("embed 1 sentence ms", |f| f.embed_one_sentence_ms, false),
    ];
    if global.json {
        let figures = |f: &Figures| {
            json!({
                "decode_tokens_per_s": f.decode_tokens_per_s,
                "prefill_tokens_per_s": f.prefill_tokens_per_s,
                "first_token_ms": f.first_token_ms,
                "embed_one_sentence_ms": f.embed_one_sentence_ms,
                "prefill_prompt_tokens": f.prefill_prompt_tokens,
                "decode_tokens": f.decode_tokens,
            })
        };
        print_json(&json!({
            "model": text.id,
            "embedding_model": embedding.id,
            "runs": args.runs,
            "native_threads": args.native_threads,
            "component": figures(&wasm),
            "native": figures(&native),
            "wasm_over_native": rows.iter().map(|(name, get, _)| (name.to_string(), json!(get(&wasm) / get(&native)))).collect::<serde_json::Map<_, _>>(),
        }));
        return Ok(());
    }
    println!(
        "{} ({}-token prompt, {} decoded tokens), median of {} runs, one thread",
        text.id, wasm.prefill_prompt_tokens, wasm.decode_tokens, args.runs
    );
    println!("{:<22}{:>14}{:>14}{:>14}", "", "component", "native", "wasm/native");
    for (name, get, higher_is_better) in rows {
        let (w, n) = (get(&wasm), get(&native));
        let note = if higher_is_better { "(higher is better)" } else { "(lower is better)" };
        println!("{name:<22}{w:>14.2}{n:>14.2}{:>14.2}  {note}", w / n);
    }
    Ok(())
}
