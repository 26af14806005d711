//! Semantic search over the demo knowledge base (data/demo-kb.ttl): paraphrased queries find
//! the intended entity first (tests/fixtures/kb_search_queries.json, checked against
//! sentence-transformers by scripts/check-kb-search.py).

use llmkg_e2e::*;
use llmkg_host::*;

#[test]
fn paraphrased_queries_find_the_intended_entity_first() {
    let mut rt = runtime();
    load_minilm(&mut rt);
    let kb = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/demo-kb.ttl")).unwrap();
    let report = rt.kg_import(RdfFormat::Turtle, &kb, &ImportOptions::default()).unwrap();
    assert!(report.total > 20_000, "{report:?}");
    let fixture = fixture("kb_search_queries.json");
    let queries = fixture["queries"].as_array().unwrap();
    let mut misses = Vec::new();
    for q in queries {
        let text = q["query"].as_str().unwrap();
        let expected = q["expected_iri"].as_str().unwrap();
        let hits = rt.kg_search(text, 3).unwrap();
        if hits.first().map(|h| h.iri.as_str()) != Some(expected) {
            misses.push(format!("{text:?}: wanted {expected}, got {:?}", hits.iter().map(|h| (&h.iri, h.score)).collect::<Vec<_>>()));
        }
    }
    let found = queries.len() - misses.len();
    eprintln!("{found} of {} queries found their entity first; misses: {misses:#?}", queries.len());
    assert!(found * 10 >= queries.len() * 8, "only {found} of {}: {misses:#?}", queries.len());
    let stats = rt.kg_stats().unwrap();
    assert_eq!(stats.pending, 0);
    assert_eq!(stats.indexed, stats.entities);
}
