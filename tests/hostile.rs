//! The hostile corpus (llmkg_engine::testing::hostile) through the component under Wasmtime,
//! where the wasm stack is small and a trap kills the instance: every case ends within 10 s in
//! a typed error (or a correct result for shallow shapes), never in a trap, and the same
//! instance answers a good query right after.

use std::time::{Duration, Instant};

use llmkg_e2e::*;
use llmkg_engine::testing::{hostile, TinyLlama};
use llmkg_host::*;

const GOOD_QUERY: &str = "SELECT ?o WHERE { <http://example.org/a> <http://example.org/b> ?o }";

fn fresh() -> LlmkgRuntime {
    let mut rt = runtime();
    rt.kg_import(RdfFormat::NTriples, b"<http://example.org/a> <http://example.org/b> \"c\" .\n", &ImportOptions::default()).unwrap();
    rt
}

fn assert_alive(rt: &mut LlmkgRuntime, after: &str) {
    assert_eq!(rt.restarts(), 0, "the component trapped on {after}");
    match rt.kg_query(GOOD_QUERY, 0) {
        Ok(QueryResult::Solutions(s)) => assert_eq!(s.rows.len(), 1, "after {after}"),
        other => panic!("after {after}: the good query gave {other:?}"),
    }
}

/// A typed error from the component (not a trap, not `internal`).
fn assert_typed(outcome: &Error, what: &str) -> (String, String) {
    assert!(!outcome.is_trap(), "{what} trapped: {outcome}");
    let (case, message) = guest_error(outcome);
    assert_ne!(case, "internal", "{what}: {message}");
    (case, message)
}

#[test]
fn deep_and_long_sparql_shapes_never_trap() {
    let mut rt = fresh();
    for depth in hostile::DEPTHS {
        for (name, sparql) in hostile::sparql_shapes(depth) {
            let what = format!("{name} at depth {depth}");
            let started = Instant::now();
            let outcome = if sparql.starts_with("INSERT") { rt.kg_update(&sparql, &[], &[]).map(|_| ()) } else { rt.kg_query(&sparql, 10).map(|_| ()) };
            let took = started.elapsed();
            match &outcome {
                Ok(()) => assert!(depth <= 1_000, "{what} was accepted"),
                Err(e) => {
                    let (_, message) = assert_typed(e, &what);
                    assert!(depth > 10, "{what} is shallow and should work: {message}");
                }
            }
            assert!(took < Duration::from_secs(10), "{what} took {took:?}");
            assert_alive(&mut rt, &what);
        }
    }
}

#[test]
fn a_cartesian_count_over_the_demo_graph_is_resource_exhausted_not_a_deadline() {
    let mut rt = runtime();
    let demo = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/demo-kb.ttl")).unwrap();
    let before = rt.kg_import(RdfFormat::Turtle, &demo, &ImportOptions::default()).unwrap().total;
    // A deadline above the budget: if the budget failed, the host would kill the instance.
    rt.set_timeout(Some(Duration::from_secs(20)));
    for sparql in [hostile::CARTESIAN_COUNT, hostile::CARTESIAN_DELETE] {
        let started = Instant::now();
        let e = rt.kg_query(sparql, 0).unwrap_err();
        let took = started.elapsed();
        let (case, message) = assert_typed(&e, sparql);
        assert_eq!(case, "resource-exhausted", "{message}");
        assert!(message.contains("budget"), "{message}");
        assert!(took < Duration::from_secs(10), "{sparql} took {took:?}");
        assert_eq!(rt.kg_stats().unwrap().triples, before, "the graph changed");
    }
    assert_eq!(rt.restarts(), 0);
}

#[test]
fn deep_turtle_invalid_utf8_and_a_64_mb_literal_never_trap() {
    let mut rt = fresh();
    for (name, data) in hostile::turtle_shapes(20_000) {
        let started = Instant::now();
        match rt.kg_import(RdfFormat::Turtle, &data, &ImportOptions::default()) {
            Ok(report) => assert!(report.changed >= 20_000, "{name}: {report:?}"),
            Err(e) => {
                assert_typed(&e, name);
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{name}");
        assert_alive(&mut rt, name);
    }
    let e = rt.kg_import(RdfFormat::NTriples, &hostile::invalid_utf8_ntriples(), &ImportOptions::default()).unwrap_err();
    let (case, message) = assert_typed(&e, "invalid UTF-8");
    assert_eq!(case, "invalid-input");
    assert!(message.contains("line 2"), "{message}");
    assert_alive(&mut rt, "invalid UTF-8");

    let started = Instant::now();
    rt.kg_import(RdfFormat::NTriples, &hostile::huge_literal_ntriples(64 << 20), &ImportOptions::default()).expect("a 64 MB literal is valid N-Triples");
    match rt.kg_query("SELECT (STRLEN(?o) AS ?n) WHERE { <http://example.org/s> ?p ?o FILTER(isLiteral(?o) && STRLEN(?o) > 1000) }", 0).unwrap() {
        QueryResult::Solutions(s) => {
            assert_eq!(s.rows.len(), 1);
            assert!(matches!(&s.rows[0][0], Some(Term::Literal(l)) if l.value == (64u64 << 20).to_string()), "{:?}", s.rows);
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10), "the 64 MB literal took {:?}", started.elapsed());
    assert_alive(&mut rt, "a 64 MB literal");
}

#[test]
fn json_nested_100000_deep_is_an_invalid_model() {
    let mut rt = fresh();
    let files = vec![
        ModelFile { name: "config.json".into(), bytes: hostile::nested_json(100_000) },
        ModelFile { name: "tokenizer.json".into(), bytes: hostile::nested_json(100_000) },
        ModelFile { name: "model.safetensors".into(), bytes: vec![0; 16] },
    ];
    let e = rt.load_model_bytes("deep-json", ModelKind::Embedding, &files, &auto()).unwrap_err();
    let (case, message) = assert_typed(&e, "nested JSON");
    assert_eq!(case, "invalid-model");
    assert!(message.contains("config.json"), "{message}");
    assert_alive(&mut rt, "nested JSON");
}

#[test]
fn hostile_chat_templates_are_invalid_input_within_seconds() {
    let mut rt = fresh();
    for (name, source) in hostile::chat_templates() {
        let file = ModelFile { name: "tiny.gguf".into(), bytes: TinyLlama::default().gguf_with_chat_template(Some(source)) };
        rt.load_model_bytes("hostile", ModelKind::TextGeneration, &[file], &auto()).unwrap();
        let started = Instant::now();
        let outcome = rt.chat(&chat_request("hostile", vec![ChatMessage { role: "user".into(), content: "hi".into() }], 1));
        let took = started.elapsed();
        match outcome {
            Err(e) => {
                let (case, message) = assert_typed(&e, name);
                assert_eq!(case, "invalid-input", "{name}: {message}");
                assert!(message.contains("chat template"), "{name}: {message}");
                eprintln!("{name}: {case} in {took:.2?}: {message}");
            }
            // `set` inside a loop is scoped to one iteration: nothing grows.
            Ok(_) if name.contains("doubled") => {}
            Ok(c) => panic!("{name}: rendered and generated {c:?}"),
        }
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        rt.unload_model("hostile").unwrap();
        assert_alive(&mut rt, name);
    }
    assert_still_usable(&mut rt);
}

/// Where the component traps without the shape limits: run against a component built before
/// them (`LLMKG_BASELINE_COMPONENT=path cargo test --release -p llmkg-e2e --test hostile --
/// --ignored --nocapture`), for docs/LIMITS.md.
#[test]
#[ignore]
fn measure_trap_depths() {
    let path = std::env::var_os("LLMKG_BASELINE_COMPONENT").map(std::path::PathBuf::from);
    let mut rt = LlmkgRuntime::open(path.as_deref(), RuntimeOptions { max_memory: None, timeout: Some(Duration::from_secs(30)) }).unwrap();
    rt.kg_import(RdfFormat::NTriples, b"<http://example.org/a> <http://example.org/b> \"c\" .\n", &ImportOptions::default()).unwrap();
    let names: Vec<&str> = hostile::sparql_shapes(1).into_iter().map(|(n, _)| n).collect();
    for (i, name) in names.iter().enumerate() {
        let traps = |rt: &mut LlmkgRuntime, depth: usize| {
            let sparql = hostile::sparql_shapes(depth).swap_remove(i).1;
            let outcome = if sparql.starts_with("INSERT") { rt.kg_update(&sparql, &[], &[]).map(|_| ()) } else { rt.kg_query(&sparql, 10).map(|_| ()) };
            matches!(outcome, Err(e) if e.is_trap())
        };
        // Doubling, then bisection, for the smallest depth that traps.
        let (mut ok, mut bad) = (1usize, 0usize);
        let mut d = 16;
        while d <= 200_000 {
            if traps(&mut rt, d) {
                bad = d;
                break;
            }
            ok = d;
            d *= 2;
        }
        if bad == 0 {
            eprintln!("{name}: no trap up to {ok}");
            continue;
        }
        while bad - ok > bad / 20 + 1 {
            let mid = (ok + bad) / 2;
            if traps(&mut rt, mid) {
                bad = mid;
            } else {
                ok = mid;
            }
        }
        eprintln!("{name}: works at {ok}, traps at {bad}");
    }
}
