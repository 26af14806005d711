//! The front's settings, from environment variables (the one configuration channel every
//! wasi:http host offers: `llmkg serve` sets them from its flags, `wasmtime serve --env`,
//! wasmCloud config). Unset means the safe default; a malformed value is an error naming the
//! variable, answered as a 500 on every request rather than silently ignored.

/// Who may change the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphWrites {
    /// Nobody: SPARQL UPDATE, fact changes and imports are refused (403).
    Off,
    /// Holders of a read-write key.
    Keys,
    /// Anyone who may call the server (`llmkg serve` on a loopback address without keys).
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rights {
    Read,
    ReadWrite,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// API keys and what each may do; empty: no key is needed.
    pub keys: Vec<(String, Rights)>,
    pub graph_writes: GraphWrites,
    /// The data directory (a path the host maps in) holding the graph's snapshot and change
    /// log; none: the graph is the instance's own and writes are refused (they would be lost).
    pub data_dir: Option<String>,
    /// Origins that may call from a browser; empty: CORS off. `*`: any.
    pub cors_origins: Vec<String>,
    /// Request bodies larger than this are refused (413) before they are read.
    pub max_body: u64,
    /// The largest `max_tokens` a request may ask for (and the default when it asks none).
    pub max_tokens: u32,
    /// Rows (solutions, triples) one query may return.
    pub max_rows: u32,
    /// Texts in one embeddings request.
    pub max_inputs: usize,
    /// Models to load into an instance that has none (`id=PATH;id=PATH`): a `.gguf` file is a
    /// text model, a directory an embedding model. Pre-initialized components need none.
    pub models: Vec<(String, String)>,
}

pub const DEFAULT_MAX_BODY: u64 = 16 << 20;
pub const DEFAULT_MAX_TOKENS: u32 = 2048;
pub const DEFAULT_MAX_ROWS: u32 = 10_000;
pub const DEFAULT_MAX_INPUTS: usize = 2048;

fn size(name: &str, value: &str) -> Result<u64, String> {
    let v = value.trim();
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => v.split_at(i),
        None => (v, ""),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{name}={value:?} is not a size (bytes, or e.g. 16MiB)"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{name}={value:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("{name}={value:?} is too large"))
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, String> {
    value.trim().parse().map_err(|_| format!("{name}={value:?} is not a number"))
}

impl Config {
    pub fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let mut keys = Vec::new();
        if let Some(list) = var("LLMKG_API_KEYS") {
            for entry in list.split([',', '\n']).map(str::trim).filter(|e| !e.is_empty()) {
                let (rights, key) = if let Some(k) = entry.strip_prefix("read:") {
                    (Rights::Read, k)
                } else if let Some(k) = entry.strip_prefix("write:") {
                    (Rights::ReadWrite, k)
                } else {
                    (Rights::ReadWrite, entry)
                };
                if key.len() < 8 {
                    return Err("LLMKG_API_KEYS: every key must be at least 8 characters".into());
                }
                keys.push((key.to_string(), rights));
            }
        }
        let graph_writes = match var("LLMKG_GRAPH_WRITES").as_deref().map(str::trim) {
            None | Some("") => {
                if keys.is_empty() {
                    GraphWrites::Off
                } else {
                    GraphWrites::Keys
                }
            }
            Some("off") => GraphWrites::Off,
            Some("keys") => GraphWrites::Keys,
            Some("open") => GraphWrites::Open,
            Some(other) => return Err(format!("LLMKG_GRAPH_WRITES={other:?}: expected off, keys or open")),
        };
        if graph_writes == GraphWrites::Keys && !keys.iter().any(|(_, r)| *r == Rights::ReadWrite) {
            return Err("LLMKG_GRAPH_WRITES=keys but LLMKG_API_KEYS has no read-write key".into());
        }
        let cors_origins = var("LLMKG_CORS_ORIGINS")
            .map(|v| v.split(',').map(|o| o.trim().trim_end_matches('/').to_string()).filter(|o| !o.is_empty()).collect())
            .unwrap_or_default();
        let mut models = Vec::new();
        if let Some(list) = var("LLMKG_MODELS") {
            for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                let (id, path) = entry.split_once('=').ok_or_else(|| format!("LLMKG_MODELS: {entry:?} is not id=PATH"))?;
                models.push((id.trim().to_string(), path.trim().to_string()));
            }
        }
        Ok(Config {
            keys,
            graph_writes,
            data_dir: var("LLMKG_DATA").filter(|d| !d.trim().is_empty()),
            cors_origins,
            max_body: var("LLMKG_MAX_BODY").map(|v| size("LLMKG_MAX_BODY", &v)).transpose()?.unwrap_or(DEFAULT_MAX_BODY),
            max_tokens: var("LLMKG_MAX_TOKENS").map(|v| number("LLMKG_MAX_TOKENS", &v)).transpose()?.unwrap_or(DEFAULT_MAX_TOKENS),
            max_rows: var("LLMKG_MAX_ROWS").map(|v| number("LLMKG_MAX_ROWS", &v)).transpose()?.unwrap_or(DEFAULT_MAX_ROWS),
            max_inputs: var("LLMKG_MAX_INPUTS").map(|v| number("LLMKG_MAX_INPUTS", &v)).transpose()?.unwrap_or(DEFAULT_MAX_INPUTS),
            models,
        })
    }

    pub fn cors_allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.cors_origins.iter().any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_env(&|name| vars.get(name).cloned())
    }

    #[test]
    fn without_settings_nothing_is_open_that_writes() {
        let c = config(&[]).unwrap();
        assert!(c.keys.is_empty());
        assert_eq!(c.graph_writes, GraphWrites::Off);
        assert!(c.cors_origins.is_empty() && !c.cors_allows("http://localhost:3000"));
        assert_eq!((c.max_body, c.max_tokens), (DEFAULT_MAX_BODY, DEFAULT_MAX_TOKENS));
    }

    #[test]
    fn keys_carry_rights_and_turn_key_writes_on() {
        let c = config(&[("LLMKG_API_KEYS", "read:reader-key-1, writer-key-2,write:writer-key-3")]).unwrap();
        assert_eq!(
            c.keys,
            [("reader-key-1".into(), Rights::Read), ("writer-key-2".into(), Rights::ReadWrite), ("writer-key-3".into(), Rights::ReadWrite)]
        );
        assert_eq!(c.graph_writes, GraphWrites::Keys);
        let e = config(&[("LLMKG_API_KEYS", "read:reader-key-1"), ("LLMKG_GRAPH_WRITES", "keys")]).unwrap_err();
        assert!(e.contains("no read-write key"), "{e}");
        assert!(config(&[("LLMKG_API_KEYS", "short")]).unwrap_err().contains("at least 8"));
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert!(config(&[("LLMKG_MAX_BODY", "lots")]).unwrap_err().contains("LLMKG_MAX_BODY"));
        assert!(config(&[("LLMKG_GRAPH_WRITES", "yes")]).unwrap_err().contains("LLMKG_GRAPH_WRITES"));
        assert!(config(&[("LLMKG_MODELS", "nopath")]).unwrap_err().contains("LLMKG_MODELS"));
        assert_eq!(config(&[("LLMKG_MAX_BODY", "2MiB")]).unwrap().max_body, 2 << 20);
    }

    #[test]
    fn cors_origins_match_exactly_or_by_star() {
        let c = config(&[("LLMKG_CORS_ORIGINS", "https://app.example/, http://localhost:3000")]).unwrap();
        assert!(c.cors_allows("https://app.example"));
        assert!(!c.cors_allows("https://evil.example"));
        assert!(config(&[("LLMKG_CORS_ORIGINS", "*")]).unwrap().cors_allows("https://any.example"));
    }
}
