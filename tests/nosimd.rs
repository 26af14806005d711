//! The engine component built without SIMD128 (scripts/build, `$LLMKG_COMPONENT_NOSIMD`) holds
//! no SIMD instruction: it validates with the SIMD proposals switched off, and the SIMD build
//! (the check's control) does not.

use std::path::{Path, PathBuf};

use llmkg_host::locate_component;
use wasmparser::{Validator, WasmFeatures};

const COMPONENT_IN_TARGET: &str = "wasm32-wasip2/component/llmkg_component.wasm";

/// `$LLMKG_COMPONENT_NOSIMD`, else `<target dir>-nosimd/...` beside the target dir this test
/// runs from (scripts/env.sh names it so).
fn nosimd_component() -> PathBuf {
    if let Some(p) = std::env::var_os("LLMKG_COMPONENT_NOSIMD") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let searched: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .map(|dir| PathBuf::from(format!("{}-nosimd", dir.display())).join(COMPONENT_IN_TARGET))
        .collect();
    searched.iter().find(|p| p.is_file()).cloned().unwrap_or_else(|| {
        panic!("the no-SIMD component is missing (build it with scripts/build); looked at {searched:#?}")
    })
}

fn validate_without_simd(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let features = WasmFeatures::default().difference(WasmFeatures::SIMD | WasmFeatures::RELAXED_SIMD);
    Validator::new_with_features(features).validate_all(&bytes).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn the_no_simd_component_validates_with_simd_switched_off() {
    let path = nosimd_component();
    if let Err(e) = validate_without_simd(&path) {
        panic!("{} uses SIMD: {e}", path.display());
    }
}

#[test]
fn the_simd_component_does_not_validate_with_simd_switched_off() {
    let path = locate_component(None).unwrap();
    let err = validate_without_simd(&path).expect_err("the SIMD build validated without SIMD");
    assert!(err.contains("SIMD"), "{err}");
}
