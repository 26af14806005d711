//! The W3C SPARQL 1.1 result-format tests (`sparql11/csv-tsv-res`, `sparql11/json-res` in the
//! rdflib 7.6.0 sdist, fetched by `scripts/fetch-w3c-suites`) through the component's own
//! serializers - the ones `llmkg query --format` and the HTTP `/sparql` route use.
//!
//! Results are compared as the W3C harnesses do: solutions by variable name (spargebra orders the
//! columns of `SELECT *` alphabetically, the expected files by appearance), blank nodes up to a
//! consistent renaming, `"x"^^xsd:string` as `"x"` (one term in RDF 1.1); CSV cells as text.

use std::path::PathBuf;

use llmkg_e2e::result_text::{by_name, csv_rows, Blanks, Rows};
use llmkg_e2e::*;
use llmkg_host::{ImportOptions, RdfFormat, ResultsFormat};

/// Cases whose output differs because the store rewrites literals it reads (oxigraph keeps
/// the value, not the lexical form or a derived datatype): each with the reason. A listed case
/// that starts passing fails this test, so the list cannot go stale.
const KNOWN: &[(&str, &str)] = &[
    ("csv03", "\"1.0E6\"^^xsd:double comes back as 1000000 (the store keeps the value, not the lexical form)"),
    ("tsv03", "\"-3\"^^xsd:negativeInteger comes back as -3 (xsd:integer) and \"1.0E6\"^^xsd:double as \"1000000\""),
];

const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";

fn suite() -> PathBuf {
    let root = std::env::var_os("LLMKG_W3C").map(PathBuf::from).unwrap_or_else(|| std::env::home_dir().unwrap().join(".cache/llmkg/w3c"));
    let dir = root.join("rdflib-7.6.0/sparql11");
    assert!(dir.is_dir(), "the W3C suites are not in {}: run scripts/fetch-w3c-suites", dir.display());
    dir
}

fn tsv_rows(text: &str) -> Rows {
    let mut lines = text.lines().filter(|l| !l.is_empty()).map(|l| l.split('\t').map(str::to_string).collect::<Vec<_>>());
    let header: Vec<String> = lines.next().unwrap_or_default().iter().map(|v| v.trim_start_matches('?').to_string()).collect();
    let body: Vec<Vec<String>> = lines.collect();
    let mut blanks = Blanks::default();
    let string_suffix = format!("^^<{XSD_STRING}>");
    by_name(&header, &body, |c| match c.strip_prefix("_:") {
        Some(label) => format!("_:{}", blanks.name(label)),
        None => c.strip_suffix(string_suffix.as_str()).unwrap_or(c).to_string(),
    })
}

fn json_rows(text: &str) -> (Option<bool>, Vec<String>, Rows) {
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("JSON results do not parse: {e}\n{text}"));
    if let Some(b) = v["boolean"].as_bool() {
        return (Some(b), Vec::new(), Vec::new());
    }
    let mut vars: Vec<String> = v["head"]["vars"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    vars.sort();
    let mut blanks = Blanks::default();
    let rows = v["results"]["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let mut row: Vec<(String, String)> = b
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, term)| {
                    let value = term["value"].as_str().unwrap();
                    let cell = match term["type"].as_str().unwrap() {
                        "bnode" => format!("_:{}", blanks.name(value)),
                        "uri" => format!("<{value}>"),
                        _ => {
                            let datatype = term["datatype"].as_str().filter(|d| *d != XSD_STRING);
                            match (term["xml:lang"].as_str(), datatype) {
                                (Some(lang), _) => format!("{value:?}@{lang}"),
                                (None, Some(d)) => format!("{value:?}^^<{d}>"),
                                (None, None) => format!("{value:?}"),
                            }
                        }
                    };
                    (name.clone(), cell)
                })
                .collect();
            row.sort();
            row
        })
        .collect();
    (None, vars, rows)
}

#[test]
fn the_w3c_result_format_tests_pass_through_the_components_serializers() {
    let dir = suite();
    // (name, directory, query, data, expected, format), as the two manifests list them.
    let cases = [
        ("csv01", "csv-tsv-res", "csvtsv01.rq", "data.ttl", "csvtsv01.csv", ResultsFormat::Csv),
        ("csv02", "csv-tsv-res", "csvtsv02.rq", "data.ttl", "csvtsv02.csv", ResultsFormat::Csv),
        ("csv03", "csv-tsv-res", "csvtsv01.rq", "data2.ttl", "csvtsv03.csv", ResultsFormat::Csv),
        ("tsv01", "csv-tsv-res", "csvtsv01.rq", "data.ttl", "csvtsv01.tsv", ResultsFormat::Tsv),
        ("tsv02", "csv-tsv-res", "csvtsv02.rq", "data.ttl", "csvtsv02.tsv", ResultsFormat::Tsv),
        ("tsv03", "csv-tsv-res", "csvtsv01.rq", "data2.ttl", "csvtsv03.tsv", ResultsFormat::Tsv),
        ("jsonres01", "json-res", "jsonres01.rq", "data.ttl", "jsonres01.srj", ResultsFormat::Json),
        ("jsonres02", "json-res", "jsonres02.rq", "data.ttl", "jsonres02.srj", ResultsFormat::Json),
        ("jsonres03", "json-res", "jsonres03.rq", "data.ttl", "jsonres03.srj", ResultsFormat::Json),
        ("jsonres04", "json-res", "jsonres04.rq", "data.ttl", "jsonres04.srj", ResultsFormat::Json),
    ];
    let mut failed = Vec::new();
    for (name, sub, query, data, expected, format) in cases {
        let read = |f: &str| std::fs::read_to_string(dir.join(sub).join(f)).unwrap_or_else(|e| panic!("{sub}/{f}: {e}"));
        let mut rt = runtime();
        rt.kg_import(RdfFormat::Turtle, read(data).as_bytes(), &ImportOptions::default()).unwrap();
        let out = rt.kg_query_serialized(&read(query), &[], &[], format, RdfFormat::Turtle, 0).unwrap();
        let got = String::from_utf8(out.data).unwrap();
        let want = read(expected);
        let same = match format {
            ResultsFormat::Csv => csv_rows(&got) == csv_rows(&want),
            ResultsFormat::Tsv => tsv_rows(&got) == tsv_rows(&want),
            _ => json_rows(&got) == json_rows(&want),
        };
        assert_eq!(rt.restarts(), 0);
        if !same {
            eprintln!("{name}: differs\n--- ours\n{got}\n--- expected\n{want}");
            failed.push(name);
        }
    }
    let known: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
    eprintln!("{} of {} pass; known differences: {KNOWN:?}", cases.len() - failed.len(), cases.len());
    assert_eq!(failed, known, "failing cases (left) against the known list (right)");
}
