//! SPARQL 1.1 in the component against expected results computed by an independent engine
//! (rdflib, cross-checked with pyoxigraph): tests/fixtures/sparql/{graph.ttl,cases.json},
//! made by scripts/make-sparql-fixture.py.

use llmkg_e2e::*;
use llmkg_host::*;
use serde_json::{json, Value};

const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";

fn term_json(t: &Term) -> Value {
    match t {
        Term::Iri(i) => json!({ "type": "iri", "value": i }),
        Term::BlankNode(b) => json!({ "type": "bnode", "value": b }),
        Term::Literal(l) => match &l.language {
            Some(lang) => json!({ "type": "literal", "value": l.value, "datatype": l.datatype, "lang": lang }),
            None => json!({ "type": "literal", "value": l.value, "datatype": l.datatype }),
        },
    }
}

/// Canonical N-Triples for one term (plain strings without ^^xsd:string).
fn nt(t: &Term) -> String {
    match t {
        Term::Iri(i) => format!("<{i}>"),
        Term::BlankNode(b) => format!("_:{b}"),
        Term::Literal(l) => {
            let escaped = l.value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('\r', "\\r");
            match &l.language {
                Some(lang) => format!("\"{escaped}\"@{lang}"),
                None if l.datatype == XSD_STRING => format!("\"{escaped}\""),
                None => format!("\"{escaped}\"^^<{}>", l.datatype),
            }
        }
    }
}

fn fresh_graph() -> LlmkgRuntime {
    let mut rt = runtime();
    let graph = std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sparql/graph.ttl")).unwrap();
    rt.kg_import(RdfFormat::Turtle, &graph, &ImportOptions::default()).unwrap();
    rt
}

fn solutions_json(s: &Solutions) -> (Vec<String>, Vec<Value>) {
    let rows = s.rows.iter().map(|r| Value::Array(r.iter().map(|t| t.as_ref().map(term_json).unwrap_or(Value::Null)).collect())).collect();
    (s.variables.clone(), rows)
}

fn check_select(name: &str, result: &QueryResult, expected: &Value, ordered: bool) {
    let QueryResult::Solutions(s) = result else { panic!("{name}: expected solutions, got {result:?}") };
    let (variables, mut rows) = solutions_json(s);
    let want_vars: Vec<String> = expected["variables"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(variables, want_vars, "{name}: variables");
    let mut want: Vec<Value> = expected["rows"].as_array().unwrap().clone();
    if !ordered {
        rows.sort_by_key(|r| r.to_string());
        want.sort_by_key(|r| r.to_string());
    }
    assert_eq!(rows, want, "{name}: rows");
    assert!(!s.truncated);
}

#[test]
fn sparql_results_equal_the_reference_engines() {
    let fixture = fixture("sparql/cases.json");
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 15);
    let mut kinds = std::collections::BTreeMap::new();
    let mut rt = fresh_graph();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let kind = case["kind"].as_str().unwrap();
        let ordered = case["ordered"].as_bool().unwrap_or(false);
        *kinds.entry(kind.to_string()).or_insert(0) += 1;
        let query = case["query"].as_str().unwrap();
        match kind {
            "select" => check_select(name, &rt.kg_query(query, 0).unwrap(), &case["expected"], ordered),
            "ask" => match rt.kg_query(query, 0).unwrap() {
                QueryResult::Boolean(b) => assert_eq!(json!(b), case["expected"], "{name}"),
                other => panic!("{name}: expected a boolean, got {other:?}"),
            },
            "construct" => match rt.kg_query(query, 0).unwrap() {
                QueryResult::Triples(triples) => {
                    let mut got: Vec<String> =
                        triples.iter().map(|t| format!("{} {} {} .", nt(&t.subject), nt(&t.predicate), nt(&t.object))).collect();
                    got.sort();
                    got.dedup();
                    let mut want: Vec<String> = case["expected"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect();
                    want.sort();
                    assert_eq!(got, want, "{name}");
                }
                other => panic!("{name}: expected triples, got {other:?}"),
            },
            "update" => {
                let mut fresh = fresh_graph();
                assert!(matches!(fresh.kg_query(query, 0).unwrap(), QueryResult::Updated(_)), "{name}");
                let then = case["then"].as_str().unwrap();
                check_select(name, &fresh.kg_query(then, 0).unwrap(), &case["expected"], ordered);
            }
            other => panic!("{name}: unknown kind {other}"),
        }
    }
    eprintln!("checked {kinds:?}");
}

#[test]
fn the_row_limit_truncates_and_says_so() {
    let mut rt = fresh_graph();
    match rt.kg_query("SELECT ?s ?p ?o WHERE { ?s ?p ?o }", 5).unwrap() {
        QueryResult::Solutions(s) => {
            assert_eq!(s.rows.len(), 5);
            assert!(s.truncated);
        }
        other => panic!("{other:?}"),
    }
}
