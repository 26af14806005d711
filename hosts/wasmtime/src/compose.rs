//! One deployable component from two: the HTTP front (`guest/http`, exports
//! `wasi:http/incoming-handler`, imports the engine's interfaces) with the engine component
//! plugged into its imports, as `wac plug` does (same library). The engine is embedded as it
//! is, byte for byte: [`embedded_components`] shows it.

use sha2::{Digest, Sha256};
use wac_graph::types::Package;
use wac_graph::{plug, CompositionGraph, EncodeOptions};

use crate::error::{Error, Result};

fn failed(what: &str) -> impl Fn(anyhow::Error) -> Error + '_ {
    move |e| Error::Compose { what: what.into(), reason: format!("{e:#}") }
}

/// The front with `engine` plugged in: the front's exports are the result's exports, and what
/// either imports from the host (WASI) is the result's imports.
pub fn compose(front: &[u8], engine: &[u8]) -> Result<Vec<u8>> {
    let mut graph = CompositionGraph::new();
    let front = Package::from_bytes("llmkg:http", None, front.to_vec(), graph.types_mut()).map_err(failed("reading the HTTP front"))?;
    let front = graph.register_package(front).map_err(|e| failed("registering the HTTP front")(e.into()))?;
    let engine = Package::from_bytes("llmkg:engine", None, engine.to_vec(), graph.types_mut()).map_err(failed("reading the engine"))?;
    let engine = graph.register_package(engine).map_err(|e| failed("registering the engine")(e.into()))?;
    plug(&mut graph, vec![engine], front).map_err(|e| failed("plugging the engine into the HTTP front")(e.into()))?;
    graph.encode(EncodeOptions::default()).map_err(|e| failed("encoding the composition")(e.into()))
}

/// sha256 (hex) of every component embedded in `composed`, outermost first.
pub fn embedded_components(composed: &[u8]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(composed) {
        let payload = payload.map_err(|e| Error::Compose { what: "reading the composition".into(), reason: e.to_string() })?;
        if let wasmparser::Payload::ComponentSection { unchecked_range, .. } = payload {
            out.push(sha256_hex(&composed[unchecked_range.start as usize..unchecked_range.end as usize]));
        }
    }
    Ok(out)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
