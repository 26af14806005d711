//! Records the target triple and the locked wasmtime version: both go into the compiled-component
//! cache key, and neither is available to the crate otherwise.
use std::{env, fs, path::Path};

fn main() {
    println!(
        "cargo:rustc-env=LLMKG_HOST_TARGET={}",
        env::var("TARGET").unwrap_or_default()
    );
    let lock = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let version = fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "wasmtime"))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=LLMKG_WASMTIME_VERSION={version}");
}

/// The `version` line that follows `name = "<name>"` in a Cargo.lock.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let needle = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == needle {
            let next = lines.next()?.trim();
            return Some(
                next.strip_prefix("version = \"")?
                    .trim_end_matches('"')
                    .to_string(),
            );
        }
    }
    None
}
