# Shared settings for the scripts (sourced, not run).
# One target dir for the component (wasm32-wasip2) and the native crates, so builds are incremental.
LLMKG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LLMKG_ROOT/target}"
export LLMKG_COMPONENT="${LLMKG_COMPONENT:-$CARGO_TARGET_DIR/wasm32-wasip2/component/llmkg_component.wasm}"
# The same engine built without SIMD128 (the fallback for runtimes that lack it), in a target dir
# of its own: its rustflags differ, and sharing one dir would make each build invalidate the other.
export LLMKG_NOSIMD_TARGET_DIR="${LLMKG_NOSIMD_TARGET_DIR:-$CARGO_TARGET_DIR-nosimd}"
export LLMKG_COMPONENT_NOSIMD="${LLMKG_COMPONENT_NOSIMD:-$LLMKG_NOSIMD_TARGET_DIR/wasm32-wasip2/component/llmkg_component.wasm}"
export LLMKG_FRONT="${LLMKG_FRONT:-$CARGO_TARGET_DIR/wasm32-wasip2/component/llmkg_http.wasm}"
export LLMKG_FETCH_SCRIPT="$LLMKG_ROOT/scripts/fetch-models"
LLMKG_BIN="$CARGO_TARGET_DIR/release/llmkg"
