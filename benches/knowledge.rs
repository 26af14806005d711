//! The knowledge graph: the component under Wasmtime beside the same engine native, one run.
//! 100k synthetic triples over 10k labelled entities: bulk load, a subject-bound lookup, a 2-hop
//! SPARQL join, and top-10 semantic search over the 10k labels. `cargo bench --bench knowledge`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llmkg_host::bench::{synthetic_graph, Backend, ComponentBackend, NativeBackend};
use llmkg_host::models::{models_dir, resolve_or_fetch, DEFAULT_EMBEDDING_MODEL};
use llmkg_host::{LlmkgRuntime, ModelKind, RuntimeOptions};

const ENTITIES: usize = 10_000;
const TRIPLES: usize = 100_000;

fn bench(c: &mut Criterion) {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let data = synthetic_graph(ENTITIES, TRIPLES);
    let embed = resolve_or_fetch(DEFAULT_EMBEDDING_MODEL, &models_dir(), true).expect("embedding model");
    let runtime = LlmkgRuntime::open(None, RuntimeOptions::default()).expect("component");
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(ComponentBackend(runtime)), Box::new(NativeBackend::default())];

    let mut group = c.benchmark_group("kg-bulk-load-100k");
    group.sample_size(10).throughput(Throughput::Elements(TRIPLES as u64));
    for b in backends.iter_mut() {
        group.bench_function(BenchmarkId::from_parameter(b.name()), |bench| {
            bench.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    b.kg_query("CLEAR ALL").unwrap();
                    let t = Instant::now();
                    b.kg_import(&data).unwrap();
                    total += t.elapsed();
                }
                total
            })
        });
    }
    group.finish();

    // The graph stays loaded for the rest.
    let mut group = c.benchmark_group("kg-subject-pattern");
    for b in backends.iter_mut() {
        assert!(b.kg_subject("urn:llmkg:e4242").unwrap() > 0);
        group.bench_function(BenchmarkId::from_parameter(b.name()), |bench| bench.iter(|| b.kg_subject("urn:llmkg:e4242").unwrap()));
    }
    group.finish();

    let lookup = "SELECT ?p ?o WHERE { <urn:llmkg:e4242> ?p ?o }";
    let two_hop = "SELECT ?x ?z WHERE { <urn:llmkg:e4242> ?p ?x . ?x <urn:llmkg:p7> ?z }";
    for (name, query) in [("kg-subject-sparql", lookup), ("kg-2-hop-join", two_hop)] {
        let mut group = c.benchmark_group(name);
        for b in backends.iter_mut() {
            eprintln!("{name} on {}: {} rows", b.name(), b.kg_query(query).unwrap());
            group.bench_function(BenchmarkId::from_parameter(b.name()), |bench| bench.iter(|| b.kg_query(query).unwrap()));
        }
        group.finish();
    }

    let mut group = c.benchmark_group("kg-search-top10-of-10k");
    for b in backends.iter_mut() {
        let mut indexed = false;
        group.bench_function(BenchmarkId::from_parameter(b.name()), |bench| {
            // The first search embeds all 10k labels (the index build): done here, once (criterion
            // calls this closure several times), so it is not measured, and skipped when a filter
            // leaves this bench out.
            if !indexed {
                b.load(&embed.id, ModelKind::Embedding, &embed.files).unwrap();
                let t = Instant::now();
                b.kg_search("an old stone bridge", 10).unwrap();
                eprintln!("{}: indexing {ENTITIES} labels took {:.1} s", b.name(), t.elapsed().as_secs_f64());
                indexed = true;
            }
            bench.iter(|| b.kg_search("an old stone bridge", 10).unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
