//! The component under Wasmtime and the same engine native, side by side in one criterion run:
//! decode, prefill (34-token prompt), first token, one-sentence embedding, a batch of 32.
//! `cargo bench -p llmkg-benches` (models from scripts/fetch-models; one thread natively).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llmkg_host::bench::{Backend, ComponentBackend, NativeBackend, DECODE_PROMPT, EMBED_BATCH, EMBED_SENTENCE, PREFILL_PROMPT};
use llmkg_host::models::{models_dir, resolve_or_fetch, DEFAULT_EMBEDDING_MODEL, DEFAULT_TEXT_MODEL};
use llmkg_host::{LlmkgRuntime, ModelKind, RuntimeOptions};

const DECODE_TOKENS: u32 = 64;

fn backends() -> Vec<Box<dyn Backend>> {
    let text = resolve_or_fetch(DEFAULT_TEXT_MODEL, &models_dir(), true).expect("text model");
    let embed = resolve_or_fetch(DEFAULT_EMBEDDING_MODEL, &models_dir(), true).expect("embedding model");
    let runtime = LlmkgRuntime::open(None, RuntimeOptions::default()).expect("component");
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(ComponentBackend(runtime)), Box::new(NativeBackend::default())];
    for b in backends.iter_mut() {
        b.load(&text.id, ModelKind::TextGeneration, &text.files).unwrap();
        b.load(&embed.id, ModelKind::Embedding, &embed.files).unwrap();
    }
    backends
}

fn bench(c: &mut Criterion) {
    // One thread natively too: the component is single-threaded.
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let mut backends = backends();
    let sentence = vec![EMBED_SENTENCE.to_string()];

    let mut group = c.benchmark_group("decode");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    for b in backends.iter_mut() {
        let decoded = b.timed_generation(DEFAULT_TEXT_MODEL, DECODE_PROMPT, DECODE_TOKENS).unwrap().completion_tokens;
        group.throughput(Throughput::Elements(decoded.saturating_sub(1) as u64));
        group.bench_function(BenchmarkId::from_parameter(b.name()), |bench| {
            bench.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let t = b.timed_generation(DEFAULT_TEXT_MODEL, DECODE_PROMPT, DECODE_TOKENS).unwrap();
                        t.total - t.first_token
                    })
                    .sum()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("prefill-34-tokens (first token)");
    group.sample_size(10);
    for b in backends.iter_mut() {
        let prompt_tokens = b.timed_generation(DEFAULT_TEXT_MODEL, PREFILL_PROMPT, 1).unwrap().prompt_tokens;
        group.throughput(Throughput::Elements(prompt_tokens as u64));
        group.bench_function(BenchmarkId::from_parameter(b.name()), |bench| {
            bench.iter_custom(|iters| {
                (0..iters).map(|_| b.timed_generation(DEFAULT_TEXT_MODEL, PREFILL_PROMPT, 1).unwrap().first_token).sum()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("embed-one-sentence");
    group.sample_size(20);
    for b in backends.iter_mut() {
        group.bench_function(BenchmarkId::from_parameter(b.name()), |bench| {
            bench.iter(|| b.embed(DEFAULT_EMBEDDING_MODEL, &sentence).unwrap())
        });
    }
    group.finish();

    let batch: Vec<String> = EMBED_BATCH.iter().map(|s| s.to_string()).collect();
    let mut group = c.benchmark_group("embed-batch-32");
    group.sample_size(10).throughput(Throughput::Elements(batch.len() as u64));
    for b in backends.iter_mut() {
        group.bench_function(BenchmarkId::from_parameter(b.name()), |bench| {
            bench.iter(|| b.embed(DEFAULT_EMBEDDING_MODEL, &batch).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
