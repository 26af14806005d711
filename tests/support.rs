//! Helpers for the end-to-end tests: a runtime over the built component, the real models, fixtures.

use std::path::PathBuf;

use llmkg_host::models::{models_dir, resolve_or_fetch, DEFAULT_EMBEDDING_MODEL, DEFAULT_TEXT_MODEL};
use llmkg_host::*;

pub const SMOLLM2: &str = DEFAULT_TEXT_MODEL;
pub const MINILM: &str = DEFAULT_EMBEDDING_MODEL;
pub const GEMMA3: &str = "gemma3-270m";

pub fn runtime_with(max_memory: Option<u64>) -> LlmkgRuntime {
    LlmkgRuntime::open(None, RuntimeOptions { max_memory, timeout: None }).expect("open the component")
}

pub fn runtime() -> LlmkgRuntime {
    runtime_with(None)
}

pub fn auto() -> LoadOptions {
    LoadOptions { conversion: WeightConversion::Auto, context_length: None }
}

pub fn model_files(id: &str) -> Vec<PathBuf> {
    resolve_or_fetch(id, &models_dir(), true).expect("default model (run scripts/fetch-models)").files
}

pub fn load_smollm2(rt: &mut LlmkgRuntime) -> ModelInfo {
    rt.load_model(SMOLLM2, ModelKind::TextGeneration, &model_files(SMOLLM2), &auto(), |_, _, _| {}).unwrap()
}

pub fn load_gemma3(rt: &mut LlmkgRuntime) -> ModelInfo {
    rt.load_model(GEMMA3, ModelKind::TextGeneration, &model_files(GEMMA3), &auto(), |_, _, _| {}).unwrap()
}

pub fn load_minilm(rt: &mut LlmkgRuntime) -> ModelInfo {
    rt.load_model(MINILM, ModelKind::Embedding, &model_files(MINILM), &auto(), |_, _, _| {}).unwrap()
}

pub fn fixture(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

pub fn user(content: &str) -> Vec<ChatMessage> {
    vec![
        ChatMessage { role: "system".into(), content: "You are a helpful assistant.".into() },
        ChatMessage { role: "user".into(), content: content.into() },
    ]
}

pub fn chat_request(model: &str, messages: Vec<ChatMessage>, max_tokens: u32) -> ChatRequest {
    ChatRequest { model: model.into(), messages, max_tokens, sampling: None, stop: vec![] }
}

pub fn generate_request(model: &str, prompt: &str, max_tokens: u32) -> GenerateRequest {
    GenerateRequest { model: model.into(), prompt: prompt.into(), max_tokens, sampling: None, stop: vec![] }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// The WIT error case of a failed call, e.g. "invalid-input", with its message.
pub fn guest_error(err: &Error) -> (String, String) {
    match err.guest() {
        Some(e) => {
            let (case, message) = llmkg_host::error::guest_error_parts(e);
            (case.to_string(), message.to_string())
        }
        None => panic!("expected an error value from the component, got: {err}"),
    }
}

/// A tiny llama-family GGUF (random weights) written by the engine's test helper.
pub fn tiny_gguf(architecture: &'static str) -> Vec<u8> {
    llmkg_engine::testing::TinyLlama { architecture, ..Default::default() }.gguf()
}

/// After an error: the instance is alive (no trap), a good load and a generation succeed.
pub fn assert_still_usable(rt: &mut LlmkgRuntime) {
    assert_eq!(rt.restarts(), 0, "the component trapped");
    let file = ModelFile { name: "tiny.gguf".into(), bytes: tiny_gguf("llama") };
    rt.load_model_bytes("tiny-check", ModelKind::TextGeneration, &[file], &auto()).expect("a good load after the error");
    let c = rt.generate(&generate_request("tiny-check", "the", 4)).expect("a generation after the error");
    assert!(c.completion_tokens >= 1);
    rt.unload_model("tiny-check").unwrap();
}

/// SPARQL results as text (CSV, TSV, JSON), normalized for comparison as the W3C harnesses
/// compare them: by variable name, blank nodes renamed in order of appearance.
pub mod result_text {
    use std::collections::HashMap;

    /// Renames blank nodes `_:x` / bnode values in order of first appearance.
    #[derive(Default)]
    pub struct Blanks(HashMap<String, String>);

    impl Blanks {
        pub fn name(&mut self, label: &str) -> String {
            let n = self.0.len();
            self.0.entry(label.to_string()).or_insert_with(|| format!("b{n}")).clone()
        }
    }

    pub type Rows = Vec<Vec<(String, String)>>;

    /// Rows as sorted (variable, cell) pairs: `cell` maps one raw cell to its normal form.
    pub fn by_name(header: &[String], lines: &[Vec<String>], mut cell: impl FnMut(&str) -> String) -> Rows {
        lines
            .iter()
            .map(|cells| {
                let mut row: Vec<(String, String)> = header.iter().cloned().zip(cells.iter().map(|c| cell(c))).filter(|(_, c)| !c.is_empty()).collect();
                row.sort();
                row
            })
            .collect()
    }

    /// RFC 4180 fields of one CSV record.
    pub fn csv_fields(line: &str) -> Vec<String> {
        let (mut fields, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', _) => quoted = !quoted,
                (',', false) => fields.push(std::mem::take(&mut field)),
                _ => field.push(c),
            }
        }
        fields.push(field);
        fields
    }

    pub fn csv_rows(text: &str) -> Rows {
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty()).map(csv_fields);
        let header = lines.next().unwrap_or_default();
        let body: Vec<Vec<String>> = lines.collect();
        let mut blanks = Blanks::default();
        by_name(&header, &body, |c| if let Some(label) = c.strip_prefix("_:") { format!("_:{}", blanks.name(label)) } else { c.to_string() })
    }
}

/// The `llmkg` CLI built beside the test binaries (by `scripts/build`).
pub fn llmkg_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.ancestors()
        .map(|d| d.join("llmkg"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("the llmkg binary was not found above {} (run scripts/build)", exe.display()))
}
