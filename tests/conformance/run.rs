//! Runs one W3C test through the component: imports, queries and updates are calls on the
//! runtime (the component under Wasmtime); only the manifests and the expected files are read
//! natively. Every test starts from an empty store.

use llmkg_e2e::result_text::csv_rows;
use llmkg_host::{Error, ImportOptions, LlmkgRuntime, RdfFormat, ResultsFormat};
use oxigraph::io::RdfParser;
use oxigraph::model::Dataset;
use spargebra::algebra::{Expression, GraphPattern, OrderExpression};

use crate::manifest::{GraphFile, Suite, Test};
use crate::results;

/// How a test ended.
pub enum Outcome {
    Pass,
    Fail(String),
    /// Not run, and why (a feature outside what the component offers or the standard requires).
    NotApplicable(&'static str),
}

/// Which part of a standard a test belongs to (a row of the table).
pub fn category(test: &Test) -> &'static str {
    match test.kind.as_str() {
        k if k.ends_with("PositiveSyntax") || k.ends_with("NegativeSyntax") => "syntax",
        k if k.ends_with("Eval") => "evaluation",
        "PositiveSyntaxTest" | "PositiveSyntaxTest11" | "NegativeSyntaxTest" | "NegativeSyntaxTest11" => "query syntax",
        "PositiveUpdateSyntaxTest11" | "NegativeUpdateSyntaxTest11" | "PositiveUpdateSyntaxTest" | "NegativeUpdateSyntaxTest" => "update syntax",
        "QueryEvaluationTest" | "CSVResultFormatTest" => "query evaluation",
        "UpdateEvaluationTest" => "update evaluation",
        "ProtocolTest" | "ServiceDescriptionTest" => "protocol",
        _ => "other",
    }
}

/// Why a test is not applicable, if it is not.
fn not_applicable(test: &Test) -> Option<&'static str> {
    match test.approval.as_deref() {
        Some("Withdrawn") => return Some("withdrawn by the working group (dawgt:approval)"),
        Some("Rejected") => return Some("rejected by the working group (rdft:approval)"),
        Some("NotApproved") => return Some("not approved by the working group (dawgt:approval)"),
        _ => {}
    }
    match test.manifest_dir.split('/').next().unwrap_or("") {
        "entailment" => return Some("entailment regimes (the store does simple entailment only)"),
        "service" => return Some("SERVICE (federated query: the component has no network access)"),
        "protocol" => return Some("SPARQL protocol (tested over HTTP by tests/http)"),
        "service-description" => return Some("SPARQL service description (an HTTP endpoint feature)"),
        "http-rdf-update" => return Some("Graph Store HTTP Protocol (an HTTP endpoint feature)"),
        _ => {}
    }
    if test.needs_service {
        return Some("SERVICE (federated query: the component has no network access)");
    }
    match test.kind.as_str() {
        "ProtocolTest" => Some("SPARQL protocol (tested over HTTP by tests/http)"),
        "ServiceDescriptionTest" => Some("SPARQL service description (an HTTP endpoint feature)"),
        _ if category(test) == "other" => Some("a test type this harness does not know"),
        _ => None,
    }
}

fn format_of(url: &str) -> Option<RdfFormat> {
    Some(match url.rsplit('.').next()? {
        "ttl" => RdfFormat::Turtle,
        "nt" => RdfFormat::NTriples,
        "nq" => RdfFormat::NQuads,
        "trig" => RdfFormat::Trig,
        "rdf" => RdfFormat::RdfXml,
        "jsonld" => RdfFormat::JsonLd,
        _ => return None,
    })
}

/// What the component said, as text: its error case and message, or the trap.
fn said(e: &Error) -> String {
    match e.guest() {
        Some(g) => {
            let (case, message) = llmkg_host::error::guest_error_parts(g);
            format!("{case}: {message}")
        }
        None => e.to_string(),
    }
}

fn is_syntax_error(e: &Error) -> bool {
    e.guest().is_some_and(|g| llmkg_host::error::guest_error_parts(g).0 == "query-syntax")
}

/// Imports `file` (its own URL as base) into `graph` through the component.
fn import(rt: &mut LlmkgRuntime, suite: &Suite, file: &GraphFile) -> Result<(), String> {
    let format = format_of(&file.file).ok_or_else(|| format!("{}: unknown RDF format", file.file))?;
    let data = suite.read(&file.file)?;
    let options = ImportOptions { base_iri: Some(file.file.clone()), graph: file.graph.clone() };
    rt.kg_import(format, &data, &options).map(|_| ()).map_err(|e| format!("importing {}: {}", file.file, said(&e)))
}

/// The component's whole store, as a dataset. Read as the engine reads its own snapshots (the
/// grammar only): an IRI from a Turtle local name may hold characters RFC 3987 leaves out.
fn store(rt: &mut LlmkgRuntime) -> Result<Dataset, String> {
    let nquads = rt.kg_export(RdfFormat::NQuads).map_err(|e| format!("export: {}", said(&e)))?;
    RdfParser::from_format(oxigraph::io::RdfFormat::NQuads)
        .lenient()
        .for_slice(&nquads)
        .collect::<Result<Dataset, _>>()
        .map_err(|e| format!("the exported N-Quads do not parse: {e}"))
}

/// The text of the query or update, with the file's own URL as base, as the W3C harnesses
/// resolve it (a BASE before the text means exactly that; a BASE inside resolves against it).
fn request_text(suite: &Suite, url: &str) -> Result<String, String> {
    let bytes = suite.read(url)?;
    let text = String::from_utf8(bytes).map_err(|e| format!("{url}: {e}"))?;
    Ok(format!("BASE <{url}>\n{text}"))
}

pub fn run(rt: &mut LlmkgRuntime, suite: &Suite, test: &Test) -> Outcome {
    if let Some(why) = not_applicable(test) {
        return Outcome::NotApplicable(why);
    }
    if let Err(e) = rt.kg_restore(b"", 0) {
        return Outcome::Fail(format!("clearing the store: {}", said(&e)));
    }
    let outcome = match category(test) {
        "syntax" | "evaluation" => rdf_test(rt, suite, test),
        "query syntax" => query_syntax(rt, suite, test),
        "update syntax" => update_syntax(rt, suite, test),
        "query evaluation" => query_evaluation(rt, suite, test),
        "update evaluation" => update_evaluation(rt, suite, test),
        _ => unreachable!("filtered by not_applicable"),
    };
    match outcome {
        Ok(()) => Outcome::Pass,
        Err(why) => Outcome::Fail(why),
    }
}

fn action(test: &Test) -> Result<&str, String> {
    test.action.as_deref().ok_or_else(|| "the manifest gives no action".to_string())
}

/// RDF syntax (positive, negative) and evaluation tests: import the document, then compare
/// what the store holds with the expected N-Triples / N-Quads.
fn rdf_test(rt: &mut LlmkgRuntime, suite: &Suite, test: &Test) -> Result<(), String> {
    let url = action(test)?;
    let file = GraphFile { file: url.to_string(), graph: None };
    let imported = import(rt, suite, &file);
    let negative = test.kind.contains("Negative");
    match (imported, negative) {
        (Err(e), false) => Err(e),
        (Ok(()), true) => Err("the import succeeded; the document is invalid".into()),
        (Err(_), true) => Ok(()),
        (Ok(()), false) if test.kind.ends_with("Eval") => {
            let result = test.result.as_deref().ok_or("the manifest gives no result")?;
            let want = results::parse_dataset(&suite.read(result)?, result, None)?;
            match results::compare_datasets(store(rt)?, want) {
                None => Ok(()),
                Some(diff) => Err(diff),
            }
        }
        (Ok(()), false) => Ok(()),
    }
}

fn query_syntax(rt: &mut LlmkgRuntime, suite: &Suite, test: &Test) -> Result<(), String> {
    let text = request_text(suite, action(test)?)?;
    let outcome = rt.kg_query_serialized(&text, &[], &[], ResultsFormat::Json, RdfFormat::NTriples, 0);
    syntax_outcome(outcome.map(|_| ()), test.kind.starts_with("Negative"))
}

fn update_syntax(rt: &mut LlmkgRuntime, suite: &Suite, test: &Test) -> Result<(), String> {
    let text = request_text(suite, action(test)?)?;
    let outcome = rt.kg_update(&text, &[], &[]);
    syntax_outcome(outcome.map(|_| ()), test.kind.starts_with("Negative"))
}

/// Accepted is anything but a syntax error: a valid request may still fail to run on an empty
/// store (CREATE of an existing graph, a LOAD without network).
fn syntax_outcome(outcome: Result<(), Error>, negative: bool) -> Result<(), String> {
    match (outcome, negative) {
        (Ok(()), false) => Ok(()),
        (Err(e), false) if !is_syntax_error(&e) && e.guest().is_some() => Ok(()),
        (Err(e), false) => Err(format!("refused: {}", said(&e))),
        (Err(e), true) if is_syntax_error(&e) => Ok(()),
        (Err(e), true) => Err(format!("not refused as a syntax error: {}", said(&e))),
        (Ok(()), true) => Err("accepted; the request is invalid".into()),
    }
}

/// The graphs a query's FROM / FROM NAMED name (loaded from the files of those names), whether
/// it builds a graph, and its ORDER BY variables (None without ORDER BY, or when a sort key is
/// an expression).
struct QueryShape {
    from: Vec<GraphFile>,
    graph_query: bool,
    order_keys: Option<Vec<String>>,
}

fn shape(text: &str) -> Result<QueryShape, String> {
    let query = spargebra::SparqlParser::new().parse_query(text).map_err(|e| format!("the query does not parse natively: {e}"))?;
    let (dataset, pattern, graph_query) = match &query {
        spargebra::Query::Select { dataset, pattern, .. } | spargebra::Query::Ask { dataset, pattern, .. } => (dataset, pattern, false),
        spargebra::Query::Construct { dataset, pattern, .. } | spargebra::Query::Describe { dataset, pattern, .. } => (dataset, pattern, true),
    };
    let mut from = Vec::new();
    if let Some(d) = dataset {
        for g in d.default.iter().chain(d.named.iter().flatten()) {
            from.push(GraphFile { file: g.as_str().to_string(), graph: Some(g.as_str().to_string()) });
        }
    }
    Ok(QueryShape { from, graph_query, order_keys: order_keys(pattern) })
}

fn order_keys(mut pattern: &GraphPattern) -> Option<Vec<String>> {
    loop {
        match pattern {
            GraphPattern::Project { inner, .. } | GraphPattern::Distinct { inner } | GraphPattern::Reduced { inner } | GraphPattern::Slice { inner, .. } => pattern = inner,
            GraphPattern::OrderBy { expression, .. } => {
                return expression
                    .iter()
                    .map(|e| match e {
                        OrderExpression::Asc(Expression::Variable(v)) | OrderExpression::Desc(Expression::Variable(v)) => Some(v.as_str().to_string()),
                        _ => None,
                    })
                    .collect();
            }
            _ => return None,
        }
    }
}

fn query_evaluation(rt: &mut LlmkgRuntime, suite: &Suite, test: &Test) -> Result<(), String> {
    let url = action(test)?;
    let text = request_text(suite, url)?;
    let shape = shape(&text)?;
    for file in &test.data {
        import(rt, suite, file)?;
    }
    for file in &shape.from {
        if !test.data.iter().any(|d| d.graph == file.graph) {
            import(rt, suite, file)?;
        }
    }
    let result = test.result.as_deref().ok_or("the manifest gives no result")?;
    let want_data = suite.read(result)?;
    if result.ends_with(".csv") {
        // CSV is lossy (no types, no languages): compared as text, as the W3C rules say.
        let got = rt.kg_query_serialized(&text, &[], &[], ResultsFormat::Csv, RdfFormat::NTriples, 0).map_err(|e| said(&e))?;
        let (got, want) = (String::from_utf8_lossy(&got.data).into_owned(), String::from_utf8_lossy(&want_data).into_owned());
        return if csv_rows(&got) == csv_rows(&want) { Ok(()) } else { Err(format!("CSV differs:\n  got      {got:?}\n  expected {want:?}")) };
    }
    let got = results::ours(rt.kg_query(&text, 0).map_err(|e| said(&e))?)?;
    let (want, ordered) = results::expected(&want_data, result, shape.graph_query)?;
    match results::compare(&got, &want, ordered, shape.order_keys.as_deref()) {
        None => Ok(()),
        Some(diff) => Err(diff),
    }
}

fn update_evaluation(rt: &mut LlmkgRuntime, suite: &Suite, test: &Test) -> Result<(), String> {
    let url = action(test)?;
    for file in &test.data {
        import(rt, suite, file)?;
    }
    // A named graph of the starting dataset exists even when its file is empty.
    for g in test.data.iter().filter_map(|d| d.graph.as_deref()) {
        rt.kg_update(&format!("CREATE SILENT GRAPH <{g}>"), &[], &[]).map_err(|e| said(&e))?;
    }
    let before = store(rt)?;
    let outcome = rt.kg_update(&request_text(suite, url)?, &[], &[]);
    let after = store(rt)?;
    if test.expects_failure {
        return match outcome {
            Err(_) if results::compare_datasets(after, before).is_none() => Ok(()),
            Err(_) => Err("failed as expected, but changed the store".into()),
            Ok(_) => Err("the update succeeded; it should fail".into()),
        };
    }
    outcome.map_err(|e| said(&e))?;
    let mut want = Dataset::new();
    for file in &test.result_data {
        let data = suite.read(&file.file)?;
        want.extend(results::parse_dataset(&data, &file.file, file.graph.as_deref())?.iter().map(|q| q.into_owned()));
    }
    match results::compare_datasets(after, want) {
        None => Ok(()),
        Some(diff) => Err(diff),
    }
}
