//! Requests and replies as the routes see them, whatever carried them (wasi:http, or the plain
//! `http-handler` export; `transport` moves them): the request (head, and a body read up to a
//! cap before anything is buffered), replies (whole, or a source of server-sent events), CORS,
//! content negotiation and form/query parsing.

use std::io::Read;

use wasip2::http::types::{IncomingBody, IncomingRequest, Method};

use crate::config::Config;
use crate::errors::ApiError;

/// Where a request's body comes from.
enum BodySource {
    /// Not read yet: read (up to the cap) when a route asks for it.
    Wasi(IncomingRequest),
    /// Given whole by the host.
    Bytes(Vec<u8>),
    Taken,
}

pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    headers: Vec<(String, String)>,
    body: BodySource,
}

fn split_target(target: &str) -> (String, String) {
    match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.to_string(), String::new()),
    }
}

impl Request {
    /// A request given whole (the plain `http-handler` export).
    pub fn from_parts(method: &str, path_with_query: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> Self {
        let (path, query) = split_target(if path_with_query.is_empty() { "/" } else { path_with_query });
        let headers = headers.into_iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect();
        Request { method: method.to_ascii_uppercase(), path, query, headers, body: BodySource::Bytes(body) }
    }

    pub fn from_wasi(incoming: IncomingRequest) -> Self {
        let method = match incoming.method() {
            Method::Get => "GET".into(),
            Method::Head => "HEAD".into(),
            Method::Post => "POST".into(),
            Method::Put => "PUT".into(),
            Method::Delete => "DELETE".into(),
            Method::Connect => "CONNECT".into(),
            Method::Options => "OPTIONS".into(),
            Method::Trace => "TRACE".into(),
            Method::Patch => "PATCH".into(),
            Method::Other(m) => m.to_ascii_uppercase(),
        };
        let target = incoming.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = split_target(&target);
        let headers = incoming
            .headers()
            .entries()
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
            .collect();
        Request { method, path, query, headers, body: BodySource::Wasi(incoming) }
    }

    /// A request built in a test: no body.
    #[cfg(test)]
    pub fn fake(method: &str, path: &str, query: &str, headers: &[(&str, &str)]) -> Self {
        Request {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.to_string())).collect(),
            body: BodySource::Taken,
        }
    }

    /// The first value of a header (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The media type of the body, lower case, without parameters.
    pub fn content_type(&self) -> String {
        self.header("content-type").unwrap_or_default().split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
    }

    /// The whole body, refused with 413 once it passes `limit` bytes: a declared length over
    /// the limit is refused before a byte is read, and a body without one is read only up to it.
    pub fn body(&mut self, limit: u64) -> Result<Vec<u8>, ApiError> {
        if let Some(length) = self.header("content-length").and_then(|l| l.trim().parse::<u64>().ok()) {
            if length > limit {
                return Err(ApiError::too_large(length, limit));
            }
        }
        let incoming = match std::mem::replace(&mut self.body, BodySource::Taken) {
            BodySource::Taken => return Ok(Vec::new()),
            BodySource::Bytes(bytes) if bytes.len() as u64 > limit => return Err(ApiError::too_large(bytes.len() as u64, limit)),
            BodySource::Bytes(bytes) => return Ok(bytes),
            BodySource::Wasi(incoming) => incoming,
        };
        let body = incoming.consume().map_err(|()| ApiError::bad_request("the request body was already read"))?;
        let mut data = Vec::new();
        {
            let mut stream = body.stream().map_err(|()| ApiError::bad_request("the request body cannot be read"))?;
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                let n = Read::read(&mut stream, &mut chunk).map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
                if n == 0 {
                    break;
                }
                if data.len() as u64 + n as u64 > limit {
                    return Err(ApiError::too_large(data.len() as u64 + n as u64, limit));
                }
                data.extend_from_slice(&chunk[..n]);
            }
        }
        let _ = IncomingBody::finish(body);
        Ok(data)
    }

    /// The body as JSON of type `T`; errors name what was wrong.
    pub fn json<T: serde::de::DeserializeOwned>(&mut self, limit: u64) -> Result<T, ApiError> {
        let body = self.body(limit)?;
        if body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty; expected a JSON object"));
        }
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON for this route: {e}")))
    }

    /// Query-string parameters, decoded, in order.
    pub fn query_params(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes()).into_owned().collect()
    }
}

/// A whole response, sent at once.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response { status, headers: vec![("content-type".into(), "application/json".into())], body }
    }

    pub fn bytes(status: u16, media_type: &str, body: Vec<u8>) -> Self {
        Response { status, headers: vec![("content-type".into(), media_type.into())], body }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// What a route answers: a whole response, or server-sent events produced one by one.
pub enum Reply {
    Whole(Response),
    Events(Box<dyn EventSource>),
}

/// Server-sent events made as they are asked for (each may decode a token): the wasi:http
/// transport writes them as they come, the plain export hands them out one per `next`.
pub trait EventSource {
    /// The next event's data (what follows `data: `); none at the end. Dropping the source
    /// stops the work behind it.
    fn next_event(&mut self) -> Option<String>;
    /// Trailers after the last event (the usage, for the host's metrics).
    fn trailers(&self) -> Vec<(String, String)>;
}

/// CORS headers for this request: only when origins are configured and this one is allowed.
pub fn cors_headers(config: &Config, request: &Request) -> Vec<(String, String)> {
    let Some(origin) = request.header("origin") else { return Vec::new() };
    if !config.cors_allows(origin) {
        return Vec::new();
    }
    let allowed = if config.cors_origins.iter().any(|o| o == "*") { "*".to_string() } else { origin.to_string() };
    vec![
        ("access-control-allow-origin".into(), allowed),
        ("vary".into(), "Origin".into()),
        ("access-control-expose-headers".into(), "content-type".into()),
    ]
}

/// The answer to a CORS preflight: allowed methods and headers when the origin may call, else
/// a plain 204 without CORS headers (the browser then refuses the call).
pub fn preflight(config: &Config, request: &Request) -> Response {
    let mut response = Response { status: 204, headers: Vec::new(), body: Vec::new() };
    if request.header("origin").is_some_and(|o| config.cors_allows(o)) {
        response.headers.push(("access-control-allow-methods".into(), "GET, POST, DELETE, OPTIONS".into()));
        response.headers.push(("access-control-allow-headers".into(), "authorization, content-type".into()));
        response.headers.push(("access-control-max-age".into(), "600".into()));
    }
    response
}

/// Picks the first of `offered` media types that the Accept header takes, by quality (an
/// absent header or `*/*` takes the first offered). `None`: none is acceptable (406).
pub fn negotiate<'a>(accept: Option<&str>, offered: &[&'a str]) -> Option<&'a str> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else { return offered.first().copied() };
    let mut best: Option<(f32, usize, &'a str)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
            .next()
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        for (i, &candidate) in offered.iter().enumerate() {
            let matches = media == "*/*"
                || media == candidate
                || media.strip_suffix("/*").is_some_and(|major| candidate.starts_with(&format!("{major}/")));
            // Higher quality wins; among equals, an exact match beats a wildcard, then offer order.
            let specific = if media == candidate { 0 } else { 1 };
            if matches {
                let rank = (q, specific * offered.len() + i);
                if best.is_none_or(|(bq, bi, _)| rank.0 > bq || (rank.0 == bq && rank.1 < bi)) {
                    best = Some((q, rank.1, candidate));
                }
            }
        }
    }
    best.map(|(_, _, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_quality_then_specificity_then_offer_order() {
        let offered = ["application/sparql-results+json", "application/sparql-results+xml", "text/csv"];
        assert_eq!(negotiate(None, &offered), Some(offered[0]));
        assert_eq!(negotiate(Some("*/*"), &offered), Some(offered[0]));
        assert_eq!(negotiate(Some("text/csv"), &offered), Some("text/csv"));
        assert_eq!(negotiate(Some("application/sparql-results+xml;q=0.9, text/csv;q=0.5"), &offered), Some(offered[1]));
        assert_eq!(negotiate(Some("text/*, application/sparql-results+xml;q=0.1"), &offered), Some("text/csv"));
        assert_eq!(negotiate(Some("*/*;q=0.1, text/csv"), &offered), Some("text/csv"));
        assert_eq!(negotiate(Some("image/png"), &offered), None);
        assert_eq!(negotiate(Some("text/csv;q=0"), &offered), None);
    }

    #[test]
    fn query_parameters_are_decoded() {
        let r = Request::fake("GET", "/sparql", "query=SELECT%20*%20WHERE%20%7B%7D&default-graph-uri=urn%3Ag+1", &[]);
        assert_eq!(r.query_params(), [("query".into(), "SELECT * WHERE {}".into()), ("default-graph-uri".into(), "urn:g 1".into())]);
    }

    #[test]
    fn a_declared_body_over_the_limit_is_refused_before_reading() {
        let mut r = Request::fake("POST", "/v1/embeddings", "", &[("Content-Length", "1000000000")]);
        let e = r.body(1 << 20).unwrap_err();
        assert_eq!(e.status, 413);
        assert!(e.message.contains("1000000000") && e.message.contains("1048576"), "{}", e.message);
    }
}
