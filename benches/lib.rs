//! Criterion benches live in `engine.rs`; `cargo bench -p llmkg-benches`.
