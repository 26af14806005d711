//! `score`: how likely the model finds a text (perplexity, per-token log-probabilities); the
//! way to check that a conversion or a kernel costs no quality.

use anyhow::{Context, Result};
use clap::Args;
use llmkg_host::models::DEFAULT_TEXT_MODEL;
use llmkg_host::LoadOptions;
use serde_json::json;

use super::{load_model, millis, Conversion, GlobalArgs};

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// The text to score; with --file, a path to read it from.
    pub text: String,
    /// Read the text from the file TEXT names.
    #[arg(long)]
    pub file: bool,
    /// A model id in the model cache, a .gguf file, or a model directory.
    #[arg(long, short, default_value = DEFAULT_TEXT_MODEL)]
    pub model: String,
    /// Weight blocks: keep those with a SIMD kernel (auto), or force one type (dequantize is
    /// the f32 reference path).
    #[arg(long, value_enum, default_value_t)]
    pub conversion: Conversion,
}

pub fn run(global: &GlobalArgs, args: ScoreArgs) -> Result<()> {
    let text = if args.file { std::fs::read_to_string(&args.text).with_context(|| format!("reading {}", args.text))? } else { args.text.clone() };
    let source = global.resolve_model(&args.model)?;
    let mut rt = global.open_runtime()?;
    let options = LoadOptions { conversion: args.conversion.into(), context_length: None };
    let (info, load_time) = load_model(&mut rt, global, &source, &options)?;
    let start = std::time::Instant::now();
    let report = rt.score(&info.id, &text)?;
    let elapsed = start.elapsed();
    let mean_logprob = report.tokens.iter().map(|t| t.logprob as f64).sum::<f64>() / report.tokens.len().max(1) as f64;
    if global.json {
        let tokens: Vec<_> = report.tokens.iter().map(|t| json!({"token": t.token, "logprob": t.logprob, "top_token": t.top_token})).collect();
        println!(
            "{}",
            json!({"model": info.id, "quantization": info.quantization, "load_ms": millis(load_time), "score_ms": millis(elapsed),
                   "perplexity": report.perplexity, "mean_logprob": mean_logprob, "tokens": tokens})
        );
        return Ok(());
    }
    let greedy = report.tokens.iter().filter(|t| t.top_token == t.token).count();
    println!(
        "perplexity {:.4} over {} tokens (mean log-prob {mean_logprob:.4}; the greedy pick was the text's token at {greedy} of them) [{}, {:.2} s]",
        report.perplexity,
        report.tokens.len(),
        info.quantization,
        elapsed.as_secs_f64()
    );
    Ok(())
}
