//! The W3C RDF and SPARQL test suites (from rdflib's source package on PyPI, fetched by
//! `scripts/fetch-w3c-suites`) run through the component: Turtle, N-Triples, N-Quads, TriG and
//! RDF/XML (syntax and evaluation), SPARQL 1.1 (query and update syntax, query and update
//! evaluation, result formats) and SPARQL 1.0 (the DAWG data-r2 suite).
//!
//! The test fails on any trap and on any difference from `known-failures.tsv` (a listed test
//! that starts passing fails too, so the list cannot go stale). `scripts/conformance` runs it
//! with `LLMKG_CONFORMANCE_DOC` set, which also writes the table in docs/CONFORMANCE.md
//! (`LLMKG_CONFORMANCE_TRACE=1` names each test before it runs, to find one that hangs).

mod manifest;
mod results;
mod run;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use llmkg_host::{LlmkgRuntime, RuntimeOptions};

use manifest::{suite, suites_root, Suite, Test};
use run::Outcome;

/// (directory, title, official base URL, top manifests).
const SUITES: &[(&str, &str, &str, &[&str])] = &[
    ("turtle", "Turtle", "http://www.w3.org/2013/TurtleTests/", &["manifest.ttl"]),
    ("ntriples", "N-Triples", "http://www.w3.org/2013/N-TriplesTests/", &["manifest.ttl"]),
    ("nquads", "N-Quads", "http://www.w3.org/2013/N-QuadsTests/", &["manifest.ttl"]),
    ("trig", "TriG", "http://www.w3.org/2013/TriGTests/", &["manifest.ttl"]),
    ("rdf-xml", "RDF/XML", "http://www.w3.org/2013/RDFXMLTests/", &["manifest.ttl"]),
    ("sparql11", "SPARQL 1.1", "http://www.w3.org/2009/sparql/docs/tests/data-sparql11/", &["manifest-all.ttl"]),
    ("dawg-data-r2", "SPARQL 1.0 (DAWG)", "http://www.w3.org/2001/sw/DataAccess/tests/data-r2/", &["manifest-evaluation.ttl", "manifest-syntax.ttl"]),
];

const KNOWN_FAILURES: &str = include_str!("known-failures.tsv");

/// One listed failure: its class ("ours" or "oxigraph") and why.
struct Known {
    class: String,
    reason: String,
}

fn known() -> BTreeMap<String, Known> {
    KNOWN_FAILURES
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (id, class, reason) = (f.next().unwrap(), f.next().unwrap_or(""), f.next().unwrap_or(""));
            assert!(matches!(class, "ours" | "oxigraph"), "known-failures.tsv: {id}: class {class:?} is neither ours nor oxigraph");
            (id.to_string(), Known { class: class.to_string(), reason: reason.to_string() })
        })
        .collect()
}

/// A short stable name: the suite and the test IRI relative to the suite's base.
fn test_id(suite: &Suite, test: &Test) -> String {
    let relative = test.iri.strip_prefix(suite.base).unwrap_or(&test.iri).replace("manifest.ttl#", "#").replace("manifest#", "#").replace("/#", "#");
    let sep = if relative.starts_with('#') { "" } else { "/" };
    format!("{}{sep}{relative}", suite.name)
}

struct Record {
    suite: &'static str,
    category: &'static str,
    id: String,
    outcome: Outcome,
}

#[test]
fn the_w3c_rdf_and_sparql_suites_pass_through_the_component_except_the_known_failures() {
    let root = suites_root();
    let started = Instant::now();
    // One instance for all the tests (each starts from an emptied store); a trap is counted and
    // the runtime goes on with a fresh instance.
    let options = RuntimeOptions { max_memory: None, timeout: Some(Duration::from_secs(30)) };
    let mut rt = LlmkgRuntime::open(None, options).expect("open the component (run scripts/build)");
    let mut records = Vec::new();
    let mut traps = Vec::new();
    for (dir, title, base, manifests) in SUITES {
        let suite = suite(&root, dir, base, manifests);
        for test in manifest::tests(&suite) {
            let id = test_id(&suite, &test);
            let restarts = rt.restarts();
            let t = Instant::now();
            if std::env::var_os("LLMKG_CONFORMANCE_TRACE").is_some() {
                eprintln!("{id} ...");
            }
            let mut outcome = run::run(&mut rt, &suite, &test);
            if t.elapsed() > Duration::from_secs(2) {
                eprintln!("slow: {id} took {:.1?}", t.elapsed());
            }
            if rt.restarts() != restarts {
                traps.push(id.clone());
                outcome = Outcome::Fail(format!("TRAP; {}", match outcome {
                    Outcome::Fail(why) => why,
                    _ => String::new(),
                }));
            }
            records.push(Record { suite: title, category: run::category(&test), id, outcome });
        }
    }
    let elapsed = started.elapsed();

    let known = known();
    let failed: BTreeSet<&str> = records.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_))).map(|r| r.id.as_str()).collect();
    let listed: BTreeSet<&str> = known.keys().map(String::as_str).collect();
    let new_failures: Vec<&Record> = records.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_)) && !listed.contains(r.id.as_str())).collect();
    let now_passing: Vec<&&str> = listed.difference(&failed).collect();

    let table = table(&records);
    eprintln!("{table}\n{} tests in {elapsed:.1?}, {} traps", records.len(), traps.len());
    for r in &new_failures {
        if let Outcome::Fail(why) = &r.outcome {
            eprintln!("NEW FAILURE {}: {why}", r.id);
        }
    }
    if let Some(path) = std::env::var_os("LLMKG_CONFORMANCE_DOC") {
        let path = if path == "1" { PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/CONFORMANCE.md") } else { PathBuf::from(path) };
        write_doc(&path, &table, &records, &known, traps.len());
        eprintln!("wrote {}", path.display());
    }
    assert!(traps.is_empty(), "the component trapped in {traps:?}");
    assert!(new_failures.is_empty(), "{} failures are not in tests/conformance/known-failures.tsv: {:?}", new_failures.len(), new_failures.iter().map(|r| &r.id).collect::<Vec<_>>());
    assert!(now_passing.is_empty(), "listed in known-failures.tsv but passing now (remove them): {now_passing:?}");
}

/// Per suite and part: pass, fail, n/a, and the pass rate among the applicable tests.
fn table(records: &[Record]) -> String {
    let mut rows: Vec<((&str, &str), [usize; 3])> = Vec::new();
    for r in records {
        let key = (r.suite, r.category);
        let i = rows.iter().position(|(k, _)| *k == key).unwrap_or_else(|| {
            rows.push((key, [0; 3]));
            rows.len() - 1
        });
        let slot = match r.outcome {
            Outcome::Pass => 0,
            Outcome::Fail(_) => 1,
            Outcome::NotApplicable(_) => 2,
        };
        rows[i].1[slot] += 1;
    }
    let mut out = String::from("| Suite | Part | Pass | Fail | n/a | Pass rate (of applicable) |\n|---|---|---:|---:|---:|---:|\n");
    let mut total = [0usize; 3];
    for ((suite, category), [pass, fail, na]) in &rows {
        out.push_str(&format!("| {suite} | {category} | {pass} | {fail} | {na} | {} |\n", rate(*pass, *fail)));
        total[0] += pass;
        total[1] += fail;
        total[2] += na;
    }
    out.push_str(&format!("| **all** | | **{}** | **{}** | **{}** | **{}** |\n", total[0], total[1], total[2], rate(total[0], total[1])));
    out
}

fn rate(pass: usize, fail: usize) -> String {
    if pass + fail == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * pass as f64 / (pass + fail) as f64)
    }
}

const BEGIN: &str = "<!-- BEGIN GENERATED by scripts/conformance: edit tests/conformance/known-failures.tsv, not this part -->";
const END: &str = "<!-- END GENERATED -->";

/// Replaces the generated part of the doc (between the markers), keeping the rest as written.
fn write_doc(path: &std::path::Path, table: &str, records: &[Record], known: &BTreeMap<String, Known>, traps: usize) {
    let mut g = format!("{BEGIN}\n\n{table}\nTraps: {traps}.\n\n");
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for r in records {
        if let Outcome::NotApplicable(why) = r.outcome {
            *reasons.entry(why).or_default() += 1;
        }
    }
    g.push_str("### Not applicable\n\n| Tests | Why |\n|---:|---|\n");
    for (why, n) in &reasons {
        g.push_str(&format!("| {n} | {why} |\n"));
    }
    for class in ["ours", "oxigraph"] {
        let title = if class == "ours" { "ours (llmkg's code)" } else { "oxigraph (upstream; see the reproductions below)" };
        g.push_str(&format!("\n### Failures: {title}\n\n| Test | Why | What the harness saw |\n|---|---|---|\n"));
        let mut any = false;
        for r in records {
            if let (Outcome::Fail(saw), Some(k)) = (&r.outcome, known.get(&r.id)) {
                if k.class == class {
                    any = true;
                    let saw: String = saw.lines().next().unwrap_or("").chars().take(160).collect();
                    g.push_str(&format!("| `{}` | {} | {} |\n", r.id, k.reason, saw.replace('|', "\\|")));
                }
            }
        }
        if !any {
            g.push_str("| (none) | | |\n");
        }
    }
    let unlisted: Vec<&Record> = records.iter().filter(|r| matches!(r.outcome, Outcome::Fail(_)) && !known.contains_key(&r.id)).collect();
    if !unlisted.is_empty() {
        g.push_str("\n### Failures not yet classified (the test fails until they are listed)\n\n");
        for r in unlisted {
            if let Outcome::Fail(why) = &r.outcome {
                let why: String = why.lines().next().unwrap_or("").chars().take(160).collect();
                g.push_str(&format!("- `{}`: {}\n", r.id, why.replace('|', "\\|")));
            }
        }
    }
    g.push('\n');
    g.push_str(END);
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let text = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{g}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("# Conformance\n\n{g}\n"),
    };
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
