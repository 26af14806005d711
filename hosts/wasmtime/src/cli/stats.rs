//! `stats`: what the component is, what it holds, and what loading cost.

use anyhow::Result;
use clap::Args;
use llmkg_host::units::format_size;
use llmkg_host::{json, CacheOutcome, LoadOptions, LoadReport, MemoryReport};
use serde_json::json;

use super::{describe_model, load_model, millis, print_json, Conversion, GlobalArgs};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Load this model first (repeatable): an id in the model cache or a path.
    #[arg(long, short)]
    pub model: Vec<String>,
    /// After loading, unload this model id (shows that its memory is handed back).
    #[arg(long, value_name = "ID")]
    pub unload: Option<String>,
    #[arg(long, value_enum, default_value_t)]
    pub conversion: Conversion,
    #[arg(long, value_name = "N")]
    pub context_length: Option<u32>,
}

pub fn run(global: &GlobalArgs, args: StatsArgs) -> Result<()> {
    let sources = args
        .model
        .iter()
        .map(|spec| global.resolve_model(spec))
        .collect::<Result<Vec<_>>>()?;
    let mut rt = global.open_runtime()?;
    let options = LoadOptions {
        conversion: args.conversion.into(),
        context_length: args.context_length,
    };
    let mut loads = Vec::new();
    for source in &sources {
        let (info, time) = load_model(&mut rt, global, source, &options)?;
        loads.push(json!({ "id": info.id, "load_ms": millis(time) }));
    }
    let before_unload = match &args.unload {
        Some(id) => {
            let before = rt.memory_stats()?;
            rt.unload_model(id)?;
            Some(before)
        }
        None => None,
    };
    let build = rt.build_info()?;
    let memory = rt.memory_stats()?;
    let models = rt.list_models()?;
    let component = &rt.compiled().report;

    if global.json {
        print_json(&json!({
            "component": component_json(component),
            "build_info": json::build_info(&build),
            "memory_stats": json::memory_stats(&memory),
            "models": models.iter().map(json::model_info).collect::<Vec<_>>(),
            "loads": loads,
            "unloaded": args.unload,
            "memory_stats_before_unload": before_unload.as_ref().map(json::memory_stats),
            "max_memory_bytes": global.max_memory,
        }));
        return Ok(());
    }

    println!(
        "component  {} ({})",
        component.path.display(),
        describe_cache(component)
    );
    println!(
        "engine     {} for {}, simd128 {}, relaxed-simd {}",
        build.engine_version,
        build.target,
        on_off(build.simd128),
        on_off(build.relaxed_simd)
    );
    if let Some(before) = &before_unload {
        println!(
            "before unloading {}:",
            args.unload.as_deref().unwrap_or_default()
        );
        print_memory(before, global.max_memory);
        println!("after:");
    }
    print_memory(&memory, global.max_memory);
    if models.is_empty() {
        println!("models     none loaded (load some with --model ID|PATH)");
    }
    for m in &models {
        println!(
            "model      {}: {}, context {}, embedding {}, vocab {}",
            m.id,
            describe_model(m),
            m.context_length,
            m.embedding_length,
            m.vocab_size
        );
    }
    Ok(())
}

fn print_memory(memory: &MemoryReport, limit: u64) {
    println!(
        "memory     linear {} of {} allowed, allocated {} (peak {})",
        format_size(memory.linear_memory_bytes),
        format_size(limit),
        format_size(memory.allocated_bytes),
        format_size(memory.peak_allocated_bytes)
    );
    for m in &memory.models {
        println!(
            "  {:<24} weights {:>10}  cache {:>10}",
            m.id,
            format_size(m.weight_bytes),
            format_size(m.cache_bytes)
        );
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "OFF"
    }
}

fn describe_cache(report: &LoadReport) -> String {
    let ms = report.load_time.as_millis();
    match &report.outcome {
        CacheOutcome::Hit => format!("compiled code from cache, {ms} ms"),
        CacheOutcome::Miss => format!("compiled in {ms} ms, cached"),
        CacheOutcome::Rejected(why) => {
            format!("cache file rejected ({why}); recompiled in {ms} ms")
        }
        CacheOutcome::Disabled(why) => format!("compiled in {ms} ms, not cached: {why}"),
    }
}

fn component_json(report: &LoadReport) -> serde_json::Value {
    let (cache, reason) = match &report.outcome {
        CacheOutcome::Hit => ("hit", None),
        CacheOutcome::Miss => ("miss", None),
        CacheOutcome::Rejected(why) => ("rejected", Some(why)),
        CacheOutcome::Disabled(why) => ("disabled", Some(why)),
    };
    json!({
        "path": report.path,
        "cache": cache,
        "cache_reason": reason,
        "cache_file": report.cache_file,
        "load_ms": millis(report.load_time),
    })
}
