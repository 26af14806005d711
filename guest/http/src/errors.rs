//! Errors over HTTP: OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with a
//! status per cause. Engine errors (the WIT `error` variant) map here, once.

use serde_json::json;

use crate::bindings::llmkg::engine::types::Error as EngineError;
use crate::http::Response;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// OpenAI's `type`, e.g. `invalid_request_error`.
    pub kind: &'static str,
    pub code: Option<&'static str>,
    /// The request field at fault, when there is one.
    pub param: Option<String>,
    pub message: String,
}

impl ApiError {
    fn new(status: u16, kind: &'static str, code: Option<&'static str>, message: impl Into<String>) -> Self {
        ApiError { status, kind, code, param: None, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", None, message)
    }

    /// A request field with a bad value.
    pub fn bad_param(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(400, "invalid_request_error", Some("invalid_value"), message);
        e.param = Some(param.into());
        e
    }

    pub fn unsupported(param: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(400, "invalid_request_error", Some("unsupported_parameter"), message);
        e.param = Some(param.into());
        e
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, "authentication_error", Some("invalid_api_key"), message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "permission_error", Some("insufficient_permissions"), message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "not_found_error", None, message)
    }

    pub fn model_not_found(model: &str, loaded: &[String]) -> Self {
        let mut e = Self::new(
            404,
            "not_found_error",
            Some("model_not_found"),
            format!("the model `{model}` does not exist here; loaded: {}", loaded.join(", ")),
        );
        e.param = Some("model".into());
        e
    }

    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(405, "invalid_request_error", Some("method_not_allowed"), format!("{method} is not allowed on {path}"))
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "invalid_request_error", Some("not_acceptable"), message)
    }

    pub fn too_large(size: u64, limit: u64) -> Self {
        Self::new(
            413,
            "invalid_request_error",
            Some("request_too_large"),
            format!("the request body is at least {size} bytes; this server takes at most {limit} (LLMKG_MAX_BODY)"),
        )
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "invalid_request_error", Some("unsupported_media_type"), message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "unavailable_error", None, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "server_error", None, message)
    }

    pub fn body(&self) -> serde_json::Value {
        json!({ "error": { "message": self.message, "type": self.kind, "param": self.param, "code": self.code } })
    }

    pub fn response(&self) -> Response {
        Response::json(self.status, &self.body())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidInput(m) => ApiError::bad_request(m),
            EngineError::Unsupported(m) => ApiError::new(400, "invalid_request_error", Some("unsupported"), m),
            EngineError::QuerySyntax(m) => ApiError::new(400, "invalid_request_error", Some("query_syntax"), m),
            EngineError::NotFound(m) => ApiError::not_found(m),
            // The server lacks memory for this request now: the client may retry later or smaller.
            EngineError::ResourceExhausted(m) => ApiError::new(503, "unavailable_error", Some("resource_exhausted"), m),
            // A model file on the server is bad: the server's problem, not the request's.
            EngineError::InvalidModel(m) => ApiError::internal(format!("invalid model: {m}")),
            EngineError::Internal(m) => ApiError::internal(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_statuses_and_openai_types() {
        let cases = [
            (EngineError::InvalidInput("x".into()), 400, "invalid_request_error"),
            (EngineError::QuerySyntax("x".into()), 400, "invalid_request_error"),
            (EngineError::Unsupported("x".into()), 400, "invalid_request_error"),
            (EngineError::NotFound("x".into()), 404, "not_found_error"),
            (EngineError::ResourceExhausted("x".into()), 503, "unavailable_error"),
            (EngineError::InvalidModel("x".into()), 500, "server_error"),
            (EngineError::Internal("x".into()), 500, "server_error"),
        ];
        for (engine, status, kind) in cases {
            let e = ApiError::from(engine);
            assert_eq!((e.status, e.kind), (status, kind));
            assert_eq!(e.body()["error"]["type"], kind);
        }
    }
}
