//! What every subcommand shares: global flags, opening the runtime, loading a model with progress.

pub mod bench;
pub mod embed;
pub mod generate;
pub mod kg;
pub mod models;
pub mod quantize;
pub mod score;
pub mod serve;
pub mod stats;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use llmkg_host::models::{models_dir, resolve_or_fetch, ModelSource};
use llmkg_host::units::{format_size, parse_duration, parse_size};
use llmkg_host::{json, LlmkgRuntime, LoadOptions, ModelInfo, RuntimeOptions, WeightConversion};

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Print one JSON object (per result) on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Cap on the component's linear memory, e.g. 512MiB, 2G.
    #[arg(long, global = true, value_name = "SIZE", value_parser = parse_size, default_value = "2GiB")]
    pub max_memory: u64,
    /// Budget for each operation (a load, a generation), e.g. 30, 30s, 500ms. Default: none.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// The component to run (default: found next to this executable's target dir).
    #[arg(long, global = true, value_name = "PATH", env = "LLMKG_COMPONENT")]
    pub component: Option<PathBuf>,
    /// No progress, notes or stats on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
}

impl GlobalArgs {
    /// Notes on stderr: not with --quiet, and not with --json (whose reader wants only the object).
    pub fn notes(&self) -> bool {
        !self.quiet && !self.json
    }

    /// Loads (or compiles and caches) the component and starts an instance with the global limits.
    pub fn open_runtime(&self) -> Result<LlmkgRuntime> {
        let options = RuntimeOptions {
            max_memory: Some(self.max_memory),
            timeout: self.timeout,
        };
        Ok(LlmkgRuntime::open(self.component.as_deref(), options)?)
    }

    /// A `--model` argument as files on disk, fetching a default model on first use.
    pub fn resolve_model(&self, spec: &str) -> Result<ModelSource> {
        Ok(resolve_or_fetch(spec, &models_dir(), self.quiet)?)
    }
}

/// `--conversion`: what to do with weight blocks that have no SIMD kernel.
#[derive(ValueEnum, Debug, Clone, Copy, Default)]
pub enum Conversion {
    /// Keep block types with a SIMD kernel (in the component Q4_0/Q4_1/Q4_K, Q5_0/Q5_1/Q5_K, Q8_0), convert the rest to Q8_0.
    #[default]
    Auto,
    Keep,
    #[value(name = "q8_0")]
    Q8_0,
    #[value(name = "q4_0")]
    Q4_0,
    F16,
    /// f32 weights and f32 matmuls: the reference path (about 4x the memory of Q8_0).
    Dequantize,
}

impl From<Conversion> for WeightConversion {
    fn from(c: Conversion) -> Self {
        match c {
            Conversion::Auto => WeightConversion::Auto,
            Conversion::Keep => WeightConversion::Keep,
            Conversion::Q8_0 => WeightConversion::Q8,
            Conversion::Q4_0 => WeightConversion::Q4,
            Conversion::F16 => WeightConversion::F16,
            Conversion::Dequantize => WeightConversion::Dequantize,
        }
    }
}

/// Streams a model into the runtime with a progress bar (bytes) on a terminal, and a one-line
/// note after. Returns what the component says it loaded and how long it took.
pub fn load_model(
    rt: &mut LlmkgRuntime,
    global: &GlobalArgs,
    source: &ModelSource,
    options: &LoadOptions,
) -> Result<(ModelInfo, Duration)> {
    let bar = if global.notes() && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(source.size()).with_style(
            ProgressStyle::with_template("{spinner} {msg} [{wide_bar}] {bytes}/{total_bytes}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        // Ticks keep the bar alive while the component converts weights after the last byte.
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    } else {
        ProgressBar::hidden()
    };
    bar.set_message(format!("loading {}", source.id));
    let start = Instant::now();
    let loaded = rt.load_model(
        &source.id,
        source.kind,
        &source.files,
        options,
        |_, done, total| {
            bar.set_position(done);
            if done == total {
                // The component may still convert weights after the last byte arrives.
                bar.set_message(format!("preparing {}", source.id));
            }
        },
    );
    bar.finish_and_clear();
    let info = loaded?;
    let elapsed = start.elapsed();
    if global.notes() {
        eprintln!(
            "loaded {} in {} ms ({})",
            info.id,
            elapsed.as_millis(),
            describe_model(&info)
        );
    }
    Ok((info, elapsed))
}

/// `llama, 134.5M params, Q8_0 (file: Q4_1), 138.2 MiB`.
pub fn describe_model(m: &ModelInfo) -> String {
    let quant = if m.source_quantization.is_empty() || m.source_quantization == m.quantization {
        m.quantization.clone()
    } else {
        format!("{} (file: {})", m.quantization, m.source_quantization)
    };
    format!(
        "{}, {}, {:.1}M params, {}, {}",
        json::model_kind_name(m.kind),
        m.architecture,
        m.parameters as f64 / 1e6,
        quant,
        format_size(m.weight_bytes)
    )
}

pub fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("JSON values serialize")
    );
}

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
