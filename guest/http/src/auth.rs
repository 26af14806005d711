//! Who may do what: API keys sent as `Authorization: Bearer KEY` (as OpenAI clients do), each
//! with read or read-write rights, and the rule for graph writes.

use subtle::ConstantTimeEq;

use crate::config::{Config, GraphWrites, Rights};
use crate::errors::ApiError;
use crate::http::Request;

/// What the caller may do, or 401. Without configured keys everyone may read.
pub fn check(config: &Config, request: &Request) -> Result<Rights, ApiError> {
    if config.keys.is_empty() {
        return Ok(if config.graph_writes == GraphWrites::Open { Rights::ReadWrite } else { Rights::Read });
    }
    let Some(header) = request.header("authorization") else {
        return Err(ApiError::unauthorized("this server needs an API key: send `Authorization: Bearer <key>`"));
    };
    let Some(key) = header.strip_prefix("Bearer ").or_else(|| header.strip_prefix("bearer ")) else {
        return Err(ApiError::unauthorized("the Authorization header must be `Bearer <key>`"));
    };
    let key = key.trim().as_bytes();
    // Every configured key is compared, in constant time, so timing says nothing about which
    // prefix matched.
    let mut found = None;
    for (candidate, rights) in &config.keys {
        if bool::from(candidate.as_bytes().ct_eq(key)) {
            found = Some(*rights);
        }
    }
    found.ok_or_else(|| ApiError::unauthorized("the API key is not valid"))
}

/// Graph writes (SPARQL UPDATE, fact changes, imports) need write rights, and a place to last.
pub fn may_write(config: &Config, rights: Rights) -> Result<(), ApiError> {
    match config.graph_writes {
        GraphWrites::Off => Err(ApiError::forbidden(
            "graph writes are off on this server (no read-write API key is configured; LLMKG_GRAPH_WRITES)",
        )),
        GraphWrites::Keys | GraphWrites::Open if rights == Rights::Read => {
            Err(ApiError::forbidden("this API key may read but not change the graph"))
        }
        _ if config.data_dir.is_none() => Err(ApiError::forbidden(
            "graph writes need a data directory (LLMKG_DATA): without one a change would live only in this instance",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_env(&|name| vars.get(name).cloned()).unwrap()
    }

    fn bearer(key: &str) -> Request {
        Request::fake("GET", "/v1/models", "", &[("Authorization", &format!("Bearer {key}"))])
    }

    #[test]
    fn keys_are_checked_and_carry_their_rights() {
        let c = config(&[("LLMKG_API_KEYS", "read:reader-key-1,writer-key-2"), ("LLMKG_DATA", "/data")]);
        assert_eq!(check(&c, &Request::fake("GET", "/v1/models", "", &[])).unwrap_err().status, 401);
        assert_eq!(check(&c, &bearer("wrong-key-3")).unwrap_err().status, 401);
        let read = check(&c, &bearer("reader-key-1")).unwrap();
        assert_eq!(read, Rights::Read);
        assert_eq!(may_write(&c, read).unwrap_err().status, 403);
        let write = check(&c, &bearer("writer-key-2")).unwrap();
        assert!(may_write(&c, write).is_ok());
    }

    #[test]
    fn without_keys_writes_are_off_unless_opened_and_need_a_data_dir() {
        let c = config(&[]);
        assert_eq!(may_write(&c, check(&c, &bearer("x")).unwrap()).unwrap_err().status, 403);
        let open = config(&[("LLMKG_GRAPH_WRITES", "open")]);
        let e = may_write(&open, check(&open, &bearer("x")).unwrap()).unwrap_err();
        assert!(e.message.contains("LLMKG_DATA"), "{}", e.message);
        let open = config(&[("LLMKG_GRAPH_WRITES", "open"), ("LLMKG_DATA", "/data")]);
        assert!(may_write(&open, check(&open, &Request::fake("POST", "/sparql", "", &[])).unwrap()).is_ok());
    }
}
