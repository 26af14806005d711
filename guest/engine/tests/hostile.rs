//! The hostile corpus (llmkg_engine::testing::hostile) against the engine natively: every case
//! ends in a typed error or a correct result, quickly, and a good request works right after.
//! The same cases run through the component in tests/hostile.rs, where the stack is small.

use std::time::{Duration, Instant};

use llmkg_engine::knowledge::{budget, shape};
use llmkg_engine::memory::CountingAllocator;
use llmkg_engine::testing::hostile;
use llmkg_engine::text::chat_template::ChatTemplate;
use llmkg_engine::*;

// The evaluation budget is enforced from the counting allocator, as in the component.
#[global_allocator]
static ALLOCATOR: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

const GOOD_QUERY: &str = "SELECT ?o WHERE { <http://example.org/a> <http://example.org/b> ?o }";

fn engine() -> Engine {
    let mut e = Engine::new();
    e.kg_import(RdfFormat::NTriples, b"<http://example.org/a> <http://example.org/b> \"c\" .\n", &ImportOptions::default()).unwrap();
    e
}

fn assert_good_query_works(e: &mut Engine, after: &str) {
    match e.kg_query(GOOD_QUERY, 0) {
        Ok(QueryResult::Solutions(s)) => assert_eq!(s.rows.len(), 1, "after {after}"),
        other => panic!("after {after}: the good query gave {other:?}"),
    }
}

fn is_typed(e: &EngineError) -> bool {
    !matches!(e, EngineError::Internal(_))
}

#[test]
fn deep_and_long_sparql_shapes_end_in_a_result_or_a_typed_error() {
    // The limits are measured for the optimised component (a 512 KiB wasm stack); unoptimised
    // native frames are several times larger, so this test gives itself a larger stack.
    let run = std::thread::Builder::new().stack_size(64 << 20).spawn(sparql_shapes).unwrap();
    run.join().unwrap();
}

fn sparql_shapes() {
    let mut e = engine();
    for depth in hostile::DEPTHS {
        for (name, sparql) in hostile::sparql_shapes(depth) {
            let started = Instant::now();
            let outcome = if sparql.starts_with("INSERT") { e.kg_update(&sparql, &[], &[]).map(|_| ()) } else { e.kg_query(&sparql, 10).map(|_| ()) };
            let took = started.elapsed();
            match &outcome {
                Ok(()) => assert!(depth <= 1_000, "{name} at depth {depth} was accepted"),
                Err(err) => {
                    assert!(is_typed(err), "{name} at depth {depth}: {err}");
                    assert!(depth > 10, "{name} at depth {depth} is shallow and should work: {err}");
                    if depth >= 10_000 {
                        let text = err.to_string();
                        let names_limit = text.contains(&shape::MAX_NESTING.to_string()) || text.contains(&shape::MAX_TREE_DEPTH.to_string());
                        assert!(names_limit, "{name} at depth {depth}: the error names no limit: {text}");
                    }
                }
            }
            assert!(took < Duration::from_secs(10), "{name} at depth {depth} took {took:?}");
            assert_good_query_works(&mut e, &format!("{name} at depth {depth}"));
        }
    }
}

#[test]
fn a_cartesian_count_over_the_demo_graph_is_stopped_by_the_budget() {
    let mut e = Engine::new();
    let demo = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/demo-kb.ttl")).unwrap();
    let before = e.kg_import(RdfFormat::Turtle, &demo, &ImportOptions::default()).unwrap().total;
    for sparql in [hostile::CARTESIAN_COUNT, hostile::CARTESIAN_DELETE] {
        let started = Instant::now();
        let err = e.kg_query(sparql, 0).unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, EngineError::ResourceExhausted(_)), "{sparql}: {err}");
        assert!(err.to_string().contains("budget"), "{err}");
        assert!(took < budget::EVALUATION_TIME + Duration::from_secs(3), "{sparql} took {took:?}");
        assert_eq!(e.kg_stats().unwrap().triples, before, "the graph changed");
    }
    match e.kg_query("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", 0).unwrap() {
        QueryResult::Solutions(s) => assert_eq!(s.rows.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn deep_turtle_is_a_typed_error_or_imports() {
    let mut e = engine();
    for (name, data) in hostile::turtle_shapes(20_000) {
        let started = Instant::now();
        match e.kg_import(RdfFormat::Turtle, &data, &ImportOptions::default()) {
            Ok(report) => assert!(report.changed >= 20_000, "{name}: {report:?}"),
            Err(err) => assert!(is_typed(&err), "{name}: {err}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{name}");
        assert_good_query_works(&mut e, name);
    }
}

#[test]
fn invalid_utf8_in_ntriples_is_refused_with_its_line() {
    let mut e = engine();
    let before = e.kg_stats().unwrap().triples;
    let err = e.kg_import(RdfFormat::NTriples, &hostile::invalid_utf8_ntriples(), &ImportOptions::default()).unwrap_err();
    assert!(matches!(err, EngineError::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
    assert_eq!(e.kg_stats().unwrap().triples, before);
    assert_good_query_works(&mut e, "invalid UTF-8");
}

#[test]
fn a_64_mb_literal_imports_and_queries() {
    let mut e = engine();
    let started = Instant::now();
    e.kg_import(RdfFormat::NTriples, &hostile::huge_literal_ntriples(64 << 20), &ImportOptions::default()).unwrap();
    let rows = match e.kg_query("SELECT (STRLEN(?o) AS ?n) WHERE { <http://example.org/s> ?p ?o }", 0).unwrap() {
        QueryResult::Solutions(s) => s.rows,
        other => panic!("{other:?}"),
    };
    assert_eq!(rows.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_good_query_works(&mut e, "a 64 MB literal");
}

#[test]
fn json_nested_100000_deep_is_an_invalid_model() {
    let mut e = engine();
    for file in ["config.json", "tokenizer.json"] {
        let valid_config = br#"{"vocab_size":4,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,"hidden_act":"gelu","hidden_dropout_prob":0.0,"max_position_embeddings":16,"type_vocab_size":2,"initializer_range":0.02,"layer_norm_eps":1e-12,"pad_token_id":0}"#;
        let files = vec![
            ModelFile { name: "config.json".into(), bytes: if file == "config.json" { hostile::nested_json(100_000) } else { valid_config.to_vec() } },
            ModelFile { name: "tokenizer.json".into(), bytes: hostile::nested_json(100_000) },
            ModelFile { name: "model.safetensors".into(), bytes: vec![0; 16] },
        ];
        let err = e.load_model("deep", ModelKind::Embedding, files, &LoadOptions::default()).unwrap_err();
        assert!(matches!(err, EngineError::InvalidModel(_)), "{file}: {err}");
        assert!(err.to_string().contains(file), "{file}: {err}");
    }
    assert_good_query_works(&mut e, "deep JSON");
}

#[test]
fn hostile_chat_templates_are_invalid_input_within_seconds() {
    let messages = vec![ChatMessage { role: "user".into(), content: "hi".into() }];
    for (name, source) in hostile::chat_templates() {
        let template = ChatTemplate::new(Some(source), "llama", "<s>".into(), "</s>".into()).unwrap();
        let started = Instant::now();
        let outcome = template.render(&messages);
        let took = started.elapsed();
        match outcome {
            Err(EngineError::InvalidInput(m)) => assert!(m.contains("chat template"), "{name}: {m}"),
            // A template's `set` inside a loop is scoped to one iteration: no growth.
            Ok(text) if name.contains("doubled") => assert!(text.len() < 100, "{name}: {} bytes", text.len()),
            other => panic!("{name}: {other:?}"),
        }
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
    }
    let good = ChatTemplate::new(None, "llama", "<s>".into(), "</s>".into()).unwrap();
    assert!(good.render(&messages).unwrap().contains("hi"));
}
