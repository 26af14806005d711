//! The two ways requests reach the routes: `wasi:http/incoming-handler` (responses written to
//! the host's output stream as they are made, so a client sees tokens as they are decoded, and
//! a client that goes away stops the generation) and the plain `http-handler` export (the
//! request given whole, a stream's events pulled one `next` at a time).

use std::cell::RefCell;
use std::io::Write;

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasip2::io::streams::OutputStream;

use crate::bindings::exports::llmkg::engine::http_handler::{self as plain, GuestBodyStream};
use crate::http::{EventSource, Reply, Request, Response};

struct Front;

// Natively (unit tests) there is nothing to export to, and the export names would not link.
#[cfg(target_arch = "wasm32")]
wasip2::http::proxy::export!(Front);
#[cfg(target_arch = "wasm32")]
crate::bindings::export!(Front with_types_in crate::bindings);

impl wasip2::exports::http::incoming_handler::Guest for Front {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let mut request = Request::from_wasi(request);
        let (reply, cors) = crate::respond(&mut request);
        match reply {
            Reply::Whole(response) => send(out, response, &cors),
            Reply::Events(source) => relay(out, source, &cors),
        }
    }
}

fn fields(headers: &[(String, String)]) -> Fields {
    let fields = Fields::new();
    for (name, value) in headers {
        // A header the host forbids is skipped rather than failing the whole response.
        let _ = fields.append(name, value.as_bytes());
    }
    fields
}

fn start(out: ResponseOutparam, status: u16, headers: &[(String, String)]) -> Option<(OutgoingBody, OutputStream)> {
    let response = OutgoingResponse::new(fields(headers));
    let _ = response.set_status_code(status);
    let body = response.body().ok()?;
    ResponseOutparam::set(out, Ok(response));
    let stream = body.write().ok()?;
    Some((body, stream))
}

fn send(out: ResponseOutparam, response: Response, extra: &[(String, String)]) {
    let mut headers = response.headers;
    headers.extend_from_slice(extra);
    headers.push(("content-length".into(), response.body.len().to_string()));
    if let Some((body, mut stream)) = start(out, response.status, &headers) {
        let _ = stream.write_all(&response.body);
        let _ = stream.flush();
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}

const EVENT_HEADERS: [(&str, &str); 2] = [("content-type", "text/event-stream"), ("cache-control", "no-cache")];

fn event_headers(extra: &[(String, String)]) -> Vec<(String, String)> {
    EVENT_HEADERS.iter().map(|(n, v)| (n.to_string(), v.to_string())).chain(extra.iter().cloned()).collect()
}

/// Writes events as the source makes them; a write that fails means the client has gone, and
/// dropping the source then ends the generation.
fn relay(out: ResponseOutparam, mut source: Box<dyn EventSource>, extra: &[(String, String)]) {
    let Some((body, mut stream)) = start(out, 200, &event_headers(extra)) else { return };
    while let Some(data) = source.next_event() {
        let event = format!("data: {data}\n\n");
        if stream.write_all(event.as_bytes()).is_err() || stream.flush().is_err() {
            return;
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(body, Some(fields(&source.trailers())));
}

/// A stream's events for the plain export.
pub struct PlainEvents(RefCell<Box<dyn EventSource>>);

impl GuestBodyStream for PlainEvents {
    fn next(&self) -> Option<Vec<u8>> {
        self.0.borrow_mut().next_event().map(|data| format!("data: {data}\n\n").into_bytes())
    }
}

impl plain::Guest for Front {
    type BodyStream = PlainEvents;

    fn handle(request: plain::Request) -> plain::Response {
        let mut request = Request::from_parts(&request.method, &request.path_with_query, request.headers, request.body);
        let (reply, cors) = crate::respond(&mut request);
        match reply {
            Reply::Whole(response) => {
                let mut headers = response.headers;
                headers.extend(cors);
                plain::Response { status: response.status, headers, body: plain::Body::Bytes(response.body) }
            }
            Reply::Events(source) => plain::Response {
                status: 200,
                headers: event_headers(&cors),
                body: plain::Body::Stream(plain::BodyStream::new(PlainEvents(RefCell::new(source)))),
            },
        }
    }

    fn body_limit() -> u64 {
        crate::config().map(|c| c.max_body).unwrap_or(crate::config::DEFAULT_MAX_BODY)
    }
}
