//! The W3C SPARQL 1.1 Update evaluation tests (from rdflib's source package on PyPI, fetched by
//! `scripts/fetch-w3c-suites`) against the engine's own update evaluation, the one that records
//! exactly what each update changed. Each test loads its starting dataset, runs its request and
//! compares the resulting dataset (blank nodes canonicalized) with the expected one; tests that
//! expect an error must get one and leave the dataset as it was.
//!
//! Without the suites (`$LLMKG_W3C` or `~/.cache/llmkg/w3c`), the test fails and says how to
//! fetch them: scripts/test fetches them first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use llmkg_engine::knowledge::KnowledgeGraph;
use llmkg_engine::{ImportOptions, RdfFormat};
use oxigraph::io::{RdfFormat as OxFormat, RdfParser, RdfSerializer};
use oxigraph::model::dataset::CanonicalizationAlgorithm;
use oxigraph::model::{Dataset, GraphName, NamedNode, Quad, Term};
use oxigraph::sparql::{QueryResults, SparqlEvaluator};
use oxigraph::store::Store;

/// The update test manifests of the SPARQL 1.1 suite.
const MANIFESTS: [&str; 11] = ["add", "basic-update", "clear", "copy", "delete", "delete-data", "delete-insert", "delete-where", "drop", "move", "update-silent"];

/// Tests whose expectation the engine does not meet, each with why (kept short and checked: a
/// test listed here that starts passing fails this harness, so the list cannot go stale).
const KNOWN: &[(&str, &str)] = &[];

fn suites() -> PathBuf {
    let root = std::env::var_os("LLMKG_W3C").map(PathBuf::from).unwrap_or_else(|| std::env::home_dir().unwrap().join(".cache/llmkg/w3c"));
    let dir = root.join("rdflib-7.6.0");
    assert!(dir.join("sparql11").is_dir(), "the W3C suites are not in {}: run scripts/fetch-w3c-suites", dir.display());
    dir
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn url_path(url: &str) -> PathBuf {
    PathBuf::from(url.strip_prefix("file://").unwrap_or(url))
}

/// The quads of an RDF file, put into `graph`.
fn quads_of(url: &str, graph: &GraphName) -> Vec<Quad> {
    let path = url_path(url);
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let format = if url.ends_with(".nq") { OxFormat::NQuads } else if url.ends_with(".rdf") { OxFormat::RdfXml } else { OxFormat::Turtle };
    RdfParser::from_format(format)
        .with_base_iri(url)
        .unwrap()
        .for_slice(&data)
        .map(|q| {
            let q = q.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Quad::new(q.subject, q.predicate, q.object, graph.clone())
        })
        .collect()
}

const UT: &str = "http://www.w3.org/2009/sparql/tests/test-update#";
const RDFS_LABEL: &str = "http://www.w3.org/2000/01/rdf-schema#label";

/// The objects of `node`'s `predicate` in the manifest (node is often a blank node, so a SPARQL
/// pattern could not name it).
fn objects(manifest: &Store, node: &Term, predicate: &str) -> Vec<Term> {
    let subject = match node {
        Term::NamedNode(n) => oxigraph::model::NamedOrBlankNodeRef::from(n.as_ref()),
        Term::BlankNode(b) => b.as_ref().into(),
        _ => return Vec::new(),
    };
    let p = NamedNode::new(predicate).unwrap();
    manifest.quads_for_pattern(Some(subject), Some(p.as_ref()), None, None).map(|q| q.unwrap().object).collect()
}

/// Default-graph files and (graph name, file) pairs of an action or a result node.
fn dataset_files(manifest: &Store, node: &Term) -> (Vec<String>, Vec<(String, String)>) {
    let iri = |t: &Term| match t {
        Term::NamedNode(n) => Some(n.as_str().to_string()),
        _ => None,
    };
    let default = objects(manifest, node, &format!("{UT}data")).iter().filter_map(iri).collect();
    let mut named = Vec::new();
    for gd in objects(manifest, node, &format!("{UT}graphData")) {
        let file = objects(manifest, &gd, &format!("{UT}graph")).iter().find_map(iri);
        let label = objects(manifest, &gd, RDFS_LABEL).into_iter().find_map(|t| match t {
            Term::Literal(l) => Some(l.value().to_string()),
            _ => None,
        });
        if let (Some(file), Some(label)) = (file, label) {
            named.push((label, file));
        }
    }
    (default, named)
}

fn dataset(default: &[String], named: &[(String, String)]) -> Vec<Quad> {
    let mut quads: Vec<Quad> = default.iter().flat_map(|f| quads_of(f, &GraphName::DefaultGraph)).collect();
    for (name, file) in named {
        quads.extend(quads_of(file, &NamedNode::new(name.clone()).unwrap().into()));
    }
    quads
}

fn canonical(quads: impl IntoIterator<Item = Quad>) -> Vec<String> {
    let mut d: Dataset = quads.into_iter().collect();
    d.canonicalize(CanonicalizationAlgorithm::Unstable);
    let mut lines: Vec<String> = d.iter().map(|q| q.to_string()).collect();
    lines.sort();
    lines
}

fn engine_quads(g: &KnowledgeGraph) -> Vec<Quad> {
    let nquads = g.export(RdfFormat::NQuads).unwrap();
    RdfParser::from_format(OxFormat::NQuads).for_slice(&nquads).map(Result::unwrap).collect()
}

enum Outcome {
    Pass,
    Fail(String),
}

fn run(manifest: &Store, test: &Term, request_url: &str, action: &Term, result: &Term, expects_failure: bool) -> Outcome {
    let (default, named) = dataset_files(manifest, action);
    let start = dataset(&default, &named);
    let mut g = KnowledgeGraph::new().unwrap();
    if !start.is_empty() {
        let mut nq = RdfSerializer::from_format(OxFormat::NQuads).for_writer(Vec::new());
        for q in &start {
            nq.serialize_quad(q).unwrap();
        }
        if let Err(e) = g.import(RdfFormat::NQuads, &nq.finish().unwrap(), &ImportOptions::default()) {
            return Outcome::Fail(format!("loading the starting dataset: {e}"));
        }
    }
    for (name, _) in &named {
        // A named graph of the starting dataset exists even if its file is empty.
        let _ = g.update(&format!("CREATE SILENT GRAPH <{name}>"), &[], &[]);
    }
    let before = canonical(engine_quads(&g));
    let text = std::fs::read_to_string(url_path(request_url)).unwrap();
    let outcome = g.update(&format!("BASE <{request_url}>\n{text}"), &[], &[]);
    let after = canonical(engine_quads(&g));
    if expects_failure {
        return match outcome {
            Err(_) if after == before => Outcome::Pass,
            Err(_) => Outcome::Fail("failed as expected but changed the dataset".into()),
            Ok(_) => Outcome::Fail(format!("{test}: expected an error, the update succeeded")),
        };
    }
    if let Err(e) = outcome {
        return Outcome::Fail(format!("error: {e}"));
    }
    let (default, named) = dataset_files(manifest, result);
    let expected = canonical(dataset(&default, &named));
    if after == expected {
        Outcome::Pass
    } else {
        let missing: Vec<&String> = expected.iter().filter(|q| !after.contains(q)).take(3).collect();
        let extra: Vec<&String> = after.iter().filter(|q| !expected.contains(q)).take(3).collect();
        Outcome::Fail(format!("dataset differs: missing {missing:?}, extra {extra:?}"))
    }
}

#[test]
fn the_w3c_sparql_update_evaluation_tests_pass() {
    let root = suites().join("sparql11");
    let mut results: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    for name in MANIFESTS {
        let path = root.join(name).join("manifest.ttl");
        let manifest = Store::new().unwrap();
        let data = std::fs::read(&path).unwrap();
        manifest.load_from_reader(RdfParser::from_format(OxFormat::Turtle).with_base_iri(file_url(&path)).unwrap(), data.as_slice()).unwrap();
        let q = "PREFIX mf: <http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#>
                 PREFIX ut: <http://www.w3.org/2009/sparql/tests/test-update#>
                 PREFIX dawgt: <http://www.w3.org/2001/sw/DataAccess/tests/test-dawg#>
                 PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
                 SELECT ?test ?request ?action ?result ?outcome WHERE {
                   ?manifest mf:entries/rdf:rest*/rdf:first ?test .
                   ?test a mf:UpdateEvaluationTest ; mf:action ?action ; mf:result ?result .
                   ?action ut:request ?request .
                   OPTIONAL { ?result ut:result ?outcome }
                   FILTER NOT EXISTS { ?test dawgt:approval dawgt:Withdrawn }
                 }";
        let QueryResults::Solutions(rows) = SparqlEvaluator::new().parse_query(q).unwrap().on_store(&manifest).execute().unwrap() else { panic!() };
        for row in rows {
            let row = row.unwrap();
            let test = row.get("test").unwrap().clone();
            let Some(Term::NamedNode(request)) = row.get("request") else { panic!("{test}: no request") };
            let failure = matches!(row.get("outcome"), Some(Term::NamedNode(n)) if n.as_str().ends_with("#failure"));
            let id = format!("{name}/{}", test.to_string().rsplit('#').next().unwrap_or_default().trim_end_matches('>'));
            let outcome = run(&manifest, &test, request.as_str(), row.get("action").unwrap(), row.get("result").unwrap(), failure);
            results.insert(id, match outcome {
                Outcome::Pass => Ok(()),
                Outcome::Fail(why) => Err(why),
            });
        }
    }
    let passed = results.values().filter(|r| r.is_ok()).count();
    eprintln!("W3C SPARQL 1.1 update evaluation: {passed} of {} pass", results.len());
    let mut unexpected = Vec::new();
    for (id, r) in &results {
        let known = KNOWN.iter().find(|(k, _)| k == id);
        match (r, known) {
            (Err(why), None) => unexpected.push(format!("{id}: {why}")),
            (Ok(()), Some((_, why))) => unexpected.push(format!("{id} passes now; remove it from KNOWN ({why})")),
            _ => {}
        }
    }
    assert!(results.len() >= 90, "only {} update tests were found", results.len());
    assert!(unexpected.is_empty(), "{} unexpected outcomes:\n{}", unexpected.len(), unexpected.join("\n"));
}
