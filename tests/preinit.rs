//! Pre-initialized and composed components, through the host library: a snapshot starts with
//! its model and graph in memory, instances made from one snapshot still draw their own random
//! blank-node ids, and a composition holds the engine byte for byte.

use std::path::PathBuf;
use std::time::Instant;

use llmkg_host::compose::{compose, embedded_components, sha256_hex};
use llmkg_host::models::ModelSource;
use llmkg_host::preinit::{preinit, GraphSource, PreinitSpec};
use llmkg_host::*;
use llmkg_e2e::{auto, generate_request, tiny_gguf};

fn engine_bytes() -> Vec<u8> {
    std::fs::read(locate_component(None).expect("the engine component (scripts/build)")).unwrap()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmkg-preinit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An engine snapshot holding a tiny model and a small graph with a blank node.
fn snapshot(dir: &std::path::Path) -> Vec<u8> {
    let model = dir.join("tiny.gguf");
    std::fs::write(&model, tiny_gguf("llama")).unwrap();
    let graph = dir.join("kb.ttl");
    std::fs::write(&graph, "<urn:x> <urn:p> [ <urn:q> 1 ] .\n<urn:a> <urn:b> <urn:c> .\n").unwrap();
    let models = [ModelSource { id: "tiny".into(), kind: ModelKind::TextGeneration, files: vec![model] }];
    let engine = engine_bytes();
    let spec = PreinitSpec {
        engine: &engine,
        models: &models,
        load_options: auto(),
        graph: GraphSource::File { path: graph, format: RdfFormat::Turtle },
        max_memory: None,
        cache_dir: None,
    };
    let (bytes, report) = preinit(&spec, |_| {}).expect("pre-initialize");
    assert_eq!(report.models.len(), 1);
    assert_eq!(report.triples, 3);
    bytes
}

fn instance(compiled: &CompiledComponent) -> LlmkgRuntime {
    LlmkgRuntime::new(compiled, RuntimeOptions::default()).unwrap()
}

#[test]
fn a_snapshot_starts_with_its_model_and_graph_and_instances_draw_their_own_blank_nodes() {
    let dir = temp("snapshot");
    let bytes = snapshot(&dir);
    let path = dir.join("engine-preinit.wasm");
    std::fs::write(&path, &bytes).unwrap();
    let compiled = CompiledComponent::from_bytes(&bytes, &path, None, &EngineSetup::cli(), Instant::now()).unwrap();

    let mut first = instance(&compiled);
    let models = first.list_models().unwrap();
    assert_eq!(models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["tiny"], "no load needed");
    assert!(first.generate(&generate_request("tiny", "the", 4)).unwrap().completion_tokens >= 1);
    assert_eq!(first.kg_stats().unwrap().triples, 3);

    // Two instances of one snapshot, each making a fresh blank node: if the snapshot's random
    // state were shared, both would get the same id.
    let mut second = instance(&compiled);
    let fresh = |rt: &mut LlmkgRuntime| -> String {
        rt.kg_query("INSERT DATA { <urn:new> <urn:p> [ <urn:q> 2 ] }", 0).unwrap();
        let QueryResult::Solutions(s) = rt.kg_query("SELECT ?b WHERE { <urn:new> <urn:p> ?b }", 0).unwrap() else { panic!() };
        match &s.rows[0][0] {
            Some(Term::BlankNode(b)) => b.clone(),
            other => panic!("{other:?}"),
        }
    };
    let (a, b) = (fresh(&mut first), fresh(&mut second));
    assert_ne!(a, b, "instances of one snapshot drew the same blank-node id");
    // The blank node frozen in the snapshot is the same in both (it is data, not randomness).
    let frozen = |rt: &mut LlmkgRuntime| format!("{:?}", rt.kg_query("SELECT ?b WHERE { <urn:x> <urn:p> ?b }", 0).unwrap());
    assert_eq!(frozen(&mut first), frozen(&mut second));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_composition_holds_the_engine_byte_for_byte() {
    let engine = engine_bytes();
    let front_path = app::locate_front(None, &locate_component(None).unwrap()).expect("the HTTP front (scripts/build)");
    let front = std::fs::read(front_path).unwrap();
    let composed = compose(&front, &engine).unwrap();
    let inside = embedded_components(&composed).unwrap();
    assert!(inside.contains(&sha256_hex(&engine)), "engine {} not among {inside:?}", sha256_hex(&engine));
    assert!(inside.contains(&sha256_hex(&front)));
    // And the composition is a wasi:http proxy the serve host can link.
    let server = serve::Server::new(serve::ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        concurrency: 1,
        queue: 1,
        timeout: std::time::Duration::from_secs(5),
        max_memory: 1 << 30,
        reuse: None,
        env: vec![],
        preopens: vec![],
        metrics_keys: vec![],
        access_log: false,
        drain: std::time::Duration::from_secs(1),
    });
    let dir = temp("compose");
    let path = dir.join("app.wasm");
    std::fs::write(&path, &composed).unwrap();
    let compiled = CompiledComponent::load_with(&path, None, &EngineSetup::serve(4, 1 << 30, 256 << 20)).unwrap();
    server.set_ready(compiled).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
