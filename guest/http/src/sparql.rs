//! The SPARQL 1.1 Protocol at `/sparql`: queries by GET or POST (form-encoded, or the query
//! itself as `application/sparql-query`), updates by POST (form-encoded `update=`, or
//! `application/sparql-update`). Results in the format the Accept header asks for; the engine
//! serializes them (the same serializers as `llmkg query --format`).

use serde_json::json;

use crate::auth;
use crate::bindings::llmkg::engine::knowledge::{self, RdfFormat, ResultsFormat};
use crate::config::{Config, Rights};
use crate::errors::ApiError;
use crate::graph;
use crate::http::{negotiate, Request, Response};

/// Media types for solutions and booleans, the first the default.
const RESULTS: [(&str, ResultsFormat); 7] = [
    ("application/sparql-results+json", ResultsFormat::Json),
    ("application/sparql-results+xml", ResultsFormat::Xml),
    ("text/csv", ResultsFormat::Csv),
    ("text/tab-separated-values", ResultsFormat::Tsv),
    ("application/json", ResultsFormat::Json),
    ("application/xml", ResultsFormat::Xml),
    ("text/xml", ResultsFormat::Xml),
];

/// Media types for graphs (CONSTRUCT, DESCRIBE), the first the default.
pub const GRAPHS: [(&str, RdfFormat); 7] = [
    ("text/turtle", RdfFormat::Turtle),
    ("application/n-triples", RdfFormat::NTriples),
    ("application/rdf+xml", RdfFormat::RdfXml),
    ("application/ld+json", RdfFormat::JsonLd),
    ("application/n-quads", RdfFormat::NQuads),
    ("application/trig", RdfFormat::Trig),
    ("text/plain", RdfFormat::NTriples),
];

/// What the request asks for, per the protocol.
#[derive(Debug, PartialEq)]
enum Operation {
    Query { text: String, default_graphs: Vec<String>, named_graphs: Vec<String> },
    Update { text: String, using_graphs: Vec<String>, using_named_graphs: Vec<String> },
}

fn values(params: &[(String, String)], name: &str) -> Vec<String> {
    params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
}

fn one(params: &[(String, String)], name: &str) -> Result<Option<String>, ApiError> {
    let mut found = values(params, name);
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(ApiError::bad_param(name, format!("{n} `{name}` parameters; the protocol allows one"))),
    }
}

fn operation(method: &str, content_type: &str, url_params: &[(String, String)], body: &[u8]) -> Result<Operation, ApiError> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).map_err(|_| ApiError::bad_request("the request body is not UTF-8"));
    let query_from = |params: &[(String, String)], text: String| Operation::Query {
        text,
        default_graphs: values(params, "default-graph-uri"),
        named_graphs: values(params, "named-graph-uri"),
    };
    let update_from = |params: &[(String, String)], text: String| Operation::Update {
        text,
        using_graphs: values(params, "using-graph-uri"),
        using_named_graphs: values(params, "using-named-graph-uri"),
    };
    match (method, content_type) {
        ("GET", _) => {
            if one(url_params, "update")?.is_some() {
                return Err(ApiError::method_not_allowed("GET", "/sparql for an update (POST it)"));
            }
            let q = one(url_params, "query")?.ok_or_else(|| ApiError::bad_param("query", "GET /sparql needs a `query` parameter"))?;
            Ok(query_from(url_params, q))
        }
        ("POST", "application/x-www-form-urlencoded") => {
            let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
            match (one(&form, "query")?, one(&form, "update")?) {
                (Some(q), None) => Ok(query_from(&form, q)),
                (None, Some(u)) => Ok(update_from(&form, u)),
                (Some(_), Some(_)) => Err(ApiError::bad_request("the form has both `query` and `update`; send one")),
                (None, None) => Err(ApiError::bad_request("the form has neither `query` nor `update`")),
            }
        }
        ("POST", "application/sparql-query") => Ok(query_from(url_params, text(body)?)),
        ("POST", "application/sparql-update") => Ok(update_from(url_params, text(body)?)),
        ("POST", other) => Err(ApiError::unsupported_media_type(format!(
            "POST /sparql takes application/x-www-form-urlencoded, application/sparql-query or application/sparql-update, not {other:?}"
        ))),
        (m, _) => Err(ApiError::method_not_allowed(m, "/sparql")),
    }
}

pub fn handle(config: &Config, request: &mut Request, rights: Rights) -> Result<Response, ApiError> {
    let body = if request.method == "POST" { request.body(config.max_body)? } else { Vec::new() };
    let op = operation(&request.method, &request.content_type(), &request.query_params(), &body)?;
    match op {
        Operation::Query { text, default_graphs, named_graphs } => {
            let accept = request.header("accept");
            let result_types: Vec<&str> = RESULTS.iter().map(|(m, _)| *m).collect();
            let graph_types: Vec<&str> = GRAPHS.iter().map(|(m, _)| *m).collect();
            let results = negotiate(accept, &result_types);
            let graph = negotiate(accept, &graph_types);
            if results.is_none() && graph.is_none() {
                return Err(ApiError::not_acceptable(format!(
                    "no acceptable result format in Accept: {}; offered: {}, {}",
                    accept.unwrap_or_default(),
                    result_types.join(", "),
                    graph_types.join(", ")
                )));
            }
            let results_format = results.and_then(|m| RESULTS.iter().find(|(t, _)| *t == m)).map_or(ResultsFormat::Json, |(_, f)| *f);
            let graph_format = graph.and_then(|m| GRAPHS.iter().find(|(t, _)| *t == m)).map_or(RdfFormat::Turtle, |(_, f)| *f);
            graph::sync(config)?;
            let out = knowledge::query_serialized(&text, &default_graphs, &named_graphs, results_format, graph_format, config.max_rows)?;
            let mut response = Response::bytes(200, &out.media_type, out.data);
            if out.truncated {
                response = response.header("x-llmkg-truncated", format!("more than {} rows (LLMKG_MAX_ROWS)", config.max_rows));
            }
            Ok(response)
        }
        Operation::Update { text, using_graphs, using_named_graphs } => {
            auth::may_write(config, rights)?;
            let report = graph::write(config, || knowledge::update(&text, &using_graphs, &using_named_graphs))?;
            Ok(Response::json(200, &json!({ "changed": report.changed, "total": report.total })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_protocol_form_of_a_query_and_an_update_is_understood() {
        let q = "SELECT * WHERE { ?s ?p ?o }";
        let get = operation("GET", "", &params(&[("query", q), ("default-graph-uri", "urn:g")]), b"").unwrap();
        assert_eq!(get, Operation::Query { text: q.into(), default_graphs: vec!["urn:g".into()], named_graphs: vec![] });
        let form = operation("POST", "application/x-www-form-urlencoded", &[], b"query=SELECT+*+WHERE+%7B+%3Fs+%3Fp+%3Fo+%7D").unwrap();
        assert!(matches!(form, Operation::Query { ref text, .. } if text == q));
        let direct = operation("POST", "application/sparql-query", &params(&[("named-graph-uri", "urn:n")]), q.as_bytes()).unwrap();
        assert_eq!(direct, Operation::Query { text: q.into(), default_graphs: vec![], named_graphs: vec!["urn:n".into()] });
        let u = "INSERT DATA { <urn:a> <urn:b> <urn:c> }";
        let form = operation("POST", "application/x-www-form-urlencoded", &[], format!("update={}&using-graph-uri=urn%3Ag", u.replace(' ', "+")).as_bytes()).unwrap();
        assert_eq!(form, Operation::Update { text: u.into(), using_graphs: vec!["urn:g".into()], using_named_graphs: vec![] });
        assert!(matches!(operation("POST", "application/sparql-update", &[], u.as_bytes()).unwrap(), Operation::Update { .. }));
    }

    #[test]
    fn malformed_protocol_requests_are_refused() {
        assert_eq!(operation("GET", "", &[], b"").unwrap_err().status, 400);
        assert_eq!(operation("GET", "", &params(&[("update", "CLEAR ALL")]), b"").unwrap_err().status, 405);
        assert_eq!(operation("POST", "application/x-www-form-urlencoded", &[], b"query=ASK{}&update=CLEAR+ALL").unwrap_err().status, 400);
        assert_eq!(operation("POST", "text/plain", &[], b"ASK {}").unwrap_err().status, 415);
        assert_eq!(operation("GET", "", &params(&[("query", "ASK {}"), ("query", "ASK {}")]), b"").unwrap_err().status, 400);
    }
}
