//! Shared helpers for the engine's tests on the real models.
#![allow(dead_code)]

use std::path::PathBuf;

use llmkg_engine::*;

pub const SMOLLM2: &str = "smollm2";
pub const MINILM: &str = "minilm";
pub const GEMMA3: &str = "gemma3-270m";

pub fn models_dir() -> PathBuf {
    std::env::var_os("LLMKG_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/llmkg/models"))
}

pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Where the model catalog (data/models.json) puts `id`'s files: `<models dir>/<id>/<name>`.
pub fn catalog_files(id: &str) -> Vec<PathBuf> {
    let catalog: serde_json::Value = serde_json::from_str(include_str!("../../../../data/models.json")).unwrap();
    let model = catalog["models"].as_array().unwrap().iter().find(|m| m["id"] == id);
    let model = model.unwrap_or_else(|| panic!("{id} is not in data/models.json"));
    let names = model["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap());
    names.map(|name| models_dir().join(id).join(name)).collect()
}

fn read(path: PathBuf) -> ModelFile {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-models)", path.display()));
    ModelFile { name: path.file_name().unwrap().to_string_lossy().into_owned(), bytes }
}

pub fn smollm2_file() -> ModelFile {
    read(catalog_files("smollm2-135m-instruct").remove(0))
}

pub fn engine_with_smollm2() -> Engine {
    let mut engine = Engine::new();
    engine.load_model(SMOLLM2, ModelKind::TextGeneration, vec![smollm2_file()], &LoadOptions::default()).unwrap();
    engine
}

pub fn gemma3_file() -> ModelFile {
    read(catalog_files(GEMMA3).remove(0))
}

pub fn engine_with_gemma3() -> Engine {
    let mut engine = Engine::new();
    engine.load_model(GEMMA3, ModelKind::TextGeneration, vec![gemma3_file()], &LoadOptions::default()).unwrap();
    engine
}

pub fn minilm_files() -> Vec<ModelFile> {
    catalog_files("all-minilm-l6-v2").into_iter().map(read).collect()
}

pub fn engine_with_minilm() -> Engine {
    let mut engine = Engine::new();
    engine.load_model(MINILM, ModelKind::Embedding, minilm_files(), &LoadOptions::default()).unwrap();
    engine
}

pub fn json(name: &str) -> serde_json::Value {
    let path = fixtures_dir().join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

pub fn tokenizer_fixture() -> serde_json::Value {
    json("smollm2_tokenizer.json")
}

pub fn embedding_fixture() -> serde_json::Value {
    json("minilm_embeddings.json")
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}
