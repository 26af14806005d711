//! Which model a request means, and models loaded into an instance that has none.
//!
//! A pre-initialized component (`llmkg preinit`) starts with its models in memory, so nothing
//! is loaded per request. Otherwise `LLMKG_MODELS` names files the host maps in, and an instance
//! streams them into the engine on its first request (with a fresh instance per request, on
//! every request: the cost pre-initialization removes).

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::json;

use crate::bindings::llmkg::engine::models::{self, LoadOptions, ModelUpload, WeightConversion};
use crate::bindings::llmkg::engine::types::{ModelInfo, ModelKind};
use crate::config::Config;
use crate::errors::ApiError;
use crate::http::Response;

const EMBEDDING_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];
const CHUNK: usize = 4 << 20;

/// The loaded models, after loading those `LLMKG_MODELS` names that are not loaded yet.
pub fn loaded(config: &Config) -> Result<Vec<ModelInfo>, ApiError> {
    let mut infos = models::list_models();
    for (id, path) in &config.models {
        if !infos.iter().any(|m| &m.id == id) {
            infos.push(load(id, Path::new(path))?);
        }
    }
    Ok(infos)
}

fn load(id: &str, path: &Path) -> Result<ModelInfo, ApiError> {
    let unavailable = |why: String| ApiError::unavailable(format!("loading model {id} from {}: {why}", path.display()));
    let (kind, files): (ModelKind, Vec<std::path::PathBuf>) = if path.is_dir() {
        (ModelKind::Embedding, EMBEDDING_FILES.iter().map(|f| path.join(f)).collect())
    } else {
        (ModelKind::TextGeneration, vec![path.to_path_buf()])
    };
    let options = LoadOptions { conversion: WeightConversion::Auto, context_length: None };
    let upload = ModelUpload::new(id, kind, options);
    let mut buf = vec![0u8; CHUNK];
    for file in &files {
        let mut f = File::open(file).map_err(|e| unavailable(format!("{}: {e}", file.display())))?;
        let size = f.metadata().map(|m| m.len()).ok();
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        upload.begin_file(&name, size).map_err(ApiError::from)?;
        loop {
            let n = f.read(&mut buf).map_err(|e| unavailable(format!("{}: {e}", file.display())))?;
            if n == 0 {
                break;
            }
            upload.write(&buf[..n]).map_err(ApiError::from)?;
        }
    }
    upload.finish().map_err(ApiError::from)
}

/// The text-generation model a request names (or the first one, when it names none).
pub fn text_model(config: &Config, requested: Option<&str>) -> Result<String, ApiError> {
    pick(config, requested, ModelKind::TextGeneration, "text-generation")
}

/// The embedding model a request names (or the first one).
pub fn embedding_model(config: &Config, requested: Option<&str>) -> Result<String, ApiError> {
    pick(config, requested, ModelKind::Embedding, "embedding")
}

fn pick(config: &Config, requested: Option<&str>, kind: ModelKind, kind_name: &str) -> Result<String, ApiError> {
    let infos = loaded(config)?;
    let ids: Vec<String> = infos.iter().map(|m| m.id.clone()).collect();
    match requested.filter(|r| !r.is_empty()) {
        Some(id) => match infos.iter().find(|m| m.id == id) {
            Some(m) if m.kind == kind => Ok(m.id.clone()),
            Some(_) => Err(ApiError::bad_param("model", format!("the model `{id}` is not a {kind_name} model"))),
            None => Err(ApiError::model_not_found(id, &ids)),
        },
        None => infos
            .iter()
            .find(|m| m.kind == kind)
            .map(|m| m.id.clone())
            .ok_or_else(|| ApiError::unavailable(format!("no {kind_name} model is loaded (loaded: {})", ids.join(", ")))),
    }
}

/// `/health`: 200 once models are loaded, 503 (with why) when they cannot be.
pub fn health(config: &Config) -> Result<Response, ApiError> {
    let infos = loaded(config)?;
    if infos.is_empty() {
        return Err(ApiError::unavailable("no model is loaded"));
    }
    let ids: Vec<&str> = infos.iter().map(|m| m.id.as_str()).collect();
    Ok(Response::json(200, &json!({ "status": "ok", "models": ids })))
}

pub fn kind_name(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::TextGeneration => "text-generation",
        ModelKind::Embedding => "embedding",
    }
}
