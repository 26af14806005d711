//! `quantize`: re-quantize a GGUF model to one block type (the rules are the engine's,
//! `llmkg_engine::quantize`, run natively here as `bench` runs the engine natively), then score
//! the source and the output with the component on the same text, so the cost in quality is
//! measured, not assumed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use llmkg_engine::quantize::{quantize, QuantizeOptions};
use llmkg_engine::testing::GgmlDType;
use llmkg_engine::text::weights::dtype_name;
use llmkg_host::models::ModelSource;
use llmkg_host::units::format_size;
use llmkg_host::{LoadOptions, ModelKind, WeightConversion};
use serde_json::json;

use super::{load_model, GlobalArgs};

/// The committed evaluation text (about 1,000 tokens of plain English prose).
const EVAL_TEXT: &str = include_str!("../../../../data/eval-text.txt");

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum QuantType {
    #[value(name = "q4_0")]
    Q4_0,
    #[value(name = "q4_1")]
    Q4_1,
    #[value(name = "q5_0")]
    Q5_0,
    #[value(name = "q5_1")]
    Q5_1,
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_k")]
    Q4K,
    #[value(name = "q5_k")]
    Q5K,
    #[value(name = "q6_k")]
    Q6K,
    F16,
}

impl From<QuantType> for GgmlDType {
    fn from(t: QuantType) -> Self {
        match t {
            QuantType::Q4_0 => GgmlDType::Q4_0,
            QuantType::Q4_1 => GgmlDType::Q4_1,
            QuantType::Q5_0 => GgmlDType::Q5_0,
            QuantType::Q5_1 => GgmlDType::Q5_1,
            QuantType::Q8_0 => GgmlDType::Q8_0,
            QuantType::Q4K => GgmlDType::Q4K,
            QuantType::Q5K => GgmlDType::Q5K,
            QuantType::Q6K => GgmlDType::Q6K,
            QuantType::F16 => GgmlDType::F16,
        }
    }
}

#[derive(Args, Debug)]
pub struct QuantizeArgs {
    /// The source: a .gguf file or a model id in the model cache.
    pub input: String,
    /// Where to write the quantized GGUF.
    pub output: PathBuf,
    /// The block type for the matrices (1-D tensors stay as they are).
    #[arg(long = "type", value_enum)]
    pub quant_type: QuantType,
    /// Keep the output projection, and attn_v / ffn_down in some layers, at Q6_K, as llama.cpp's
    /// `_M` types do (only with a 4- or 5-bit type).
    #[arg(long)]
    pub mix: bool,
    /// Score source and output on this text file (default: the committed data/eval-text.txt).
    #[arg(long, value_name = "FILE")]
    pub eval: Option<PathBuf>,
    /// Skip the perplexity comparison (just write the file).
    #[arg(long)]
    pub no_eval: bool,
}

pub fn run(global: &GlobalArgs, args: QuantizeArgs) -> Result<()> {
    let source = global.resolve_model(&args.input)?;
    let [path] = source.files.as_slice() else { bail!("{}: quantize takes one .gguf file", args.input) };
    if source.kind != ModelKind::TextGeneration {
        bail!("{}: quantize takes a GGUF language model", args.input);
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let options = QuantizeOptions { target: args.quant_type.into(), mix: args.mix };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if global.notes() {
        eprintln!("quantizing {} ({}) to {}{}", path.display(), format_size(bytes.len() as u64), dtype_name(options.target), if args.mix { " (mix)" } else { "" });
    }
    let started = std::time::Instant::now();
    let out = quantize(&name, &bytes, options).map_err(|e| anyhow::anyhow!("{e}"))?;
    let quantize_time = started.elapsed();
    std::fs::write(&args.output, &out.gguf).with_context(|| format!("writing {}", args.output.display()))?;

    // Tensors by (from, to), and every tensor whose type is not the one asked for, with why.
    let mut by_type: BTreeMap<(String, String), (usize, u64, u64)> = BTreeMap::new();
    for t in &out.tensors {
        let e = by_type.entry((dtype_name(t.from), dtype_name(t.to))).or_default();
        e.0 += 1;
        e.1 += t.bytes_before;
        e.2 += t.bytes_after;
    }
    let mut reasons: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in &out.tensors {
        if let Some(r) = &t.reason {
            reasons.entry(r.as_str()).or_default().push(t.name.as_str());
        }
    }

    let perplexity = if args.no_eval {
        None
    } else {
        let text = match &args.eval {
            Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
            None => EVAL_TEXT.to_string(),
        };
        let mut rt = global.open_runtime()?;
        let mut score = |model: &ModelSource| -> Result<(f64, usize)> {
            let (info, _) = load_model(&mut rt, global, model, &LoadOptions { conversion: WeightConversion::Auto, context_length: None })?;
            let report = rt.score(&info.id, &text)?;
            rt.unload_model(&info.id)?;
            Ok((report.perplexity, report.tokens.len()))
        };
        let before = score(&source)?;
        let written = ModelSource { id: format!("{}-{}", source.id, dtype_name(options.target).to_lowercase()), kind: ModelKind::TextGeneration, files: vec![args.output.clone()] };
        let after = score(&written)?;
        Some((before, after))
    };

    let size_before = bytes.len() as u64;
    let size_after = out.gguf.len() as u64;
    if global.json {
        let tensors: Vec<_> = by_type
            .iter()
            .map(|((from, to), (n, b, a))| json!({"from": from, "to": to, "tensors": n, "bytes_before": b, "bytes_after": a}))
            .collect();
        let kept: Vec<_> = reasons.iter().map(|(why, names)| json!({"reason": why, "tensors": names})).collect();
        let eval = perplexity.map(|((p0, n), (p1, _))| json!({"tokens": n, "source": p0, "output": p1, "delta_percent": (p1 / p0 - 1.0) * 100.0}));
        println!(
            "{}",
            json!({"input": path, "output": args.output, "type": dtype_name(options.target), "mix": args.mix,
                   "bytes_before": size_before, "bytes_after": size_after, "quantize_ms": quantize_time.as_millis() as u64,
                   "tensors": tensors, "not_as_asked": kept, "perplexity": eval})
        );
        return Ok(());
    }
    println!("{:<8} {:<8} {:>8} {:>12} {:>12}", "from", "to", "tensors", "before", "after");
    for ((from, to), (n, b, a)) in &by_type {
        println!("{from:<8} {to:<8} {n:>8} {:>12} {:>12}", format_size(*b), format_size(*a));
    }
    println!(
        "file: {} -> {} ({:.1}%), written to {} in {:.1} s",
        format_size(size_before),
        format_size(size_after),
        size_after as f64 / size_before as f64 * 100.0,
        args.output.display(),
        quantize_time.as_secs_f64()
    );
    for (why, names) in &reasons {
        let shown: Vec<&str> = names.iter().take(3).copied().collect();
        let more = if names.len() > 3 { format!(" and {} more", names.len() - 3) } else { String::new() };
        println!("not {}: {} tensor(s) ({}{more}): {why}", dtype_name(options.target), names.len(), shown.join(", "));
    }
    if let Some(((p0, n), (p1, _))) = perplexity {
        println!("perplexity over {n} tokens: source {p0:.4}, output {p1:.4} ({:+.2}%)", (p1 / p0 - 1.0) * 100.0);
    }
    Ok(())
}
