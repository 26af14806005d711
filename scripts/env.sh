# Shared settings for the scripts (sourced, not run).
# One target dir for the component (wasm32-wasip2) and the native crates, so builds are incremental.
LLMKG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LLMKG_ROOT/target}"
export LLMKG_COMPONENT="${LLMKG_COMPONENT:-$CARGO_TARGET_DIR/wasm32-wasip2/component/llmkg_component.wasm}"
export LLMKG_FRONT="${LLMKG_FRONT:-$CARGO_TARGET_DIR/wasm32-wasip2/component/llmkg_http.wasm}"
export LLMKG_FETCH_SCRIPT="$LLMKG_ROOT/scripts/fetch-models"
LLMKG_BIN="$CARGO_TARGET_DIR/release/llmkg"
