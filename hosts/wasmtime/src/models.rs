//! Turning a `--model` argument into files on disk: a model id in the cache dir, or a path.
//!
//! The host only finds files; it never reads them (the component parses models). The two default
//! models are fetched on first use by `scripts/fetch-models`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::ModelKind;

pub const DEFAULT_TEXT_MODEL: &str = "smollm2-135m-instruct";
pub const DEFAULT_EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

/// The files an embedding model directory must hold (names as the component expects them).
pub const EMBEDDING_FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// A model `scripts/fetch-models` knows how to fetch into the cache dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    pub id: &'static str,
    pub kind: ModelKind,
    /// Paths relative to the cache dir.
    pub files: &'static [&'static str],
    /// The script's `--only` value for this model.
    pub fetch_name: &'static str,
}

pub const KNOWN_MODELS: [KnownModel; 3] = [
    KnownModel {
        id: DEFAULT_TEXT_MODEL,
        kind: ModelKind::TextGeneration,
        files: &["smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"],
        fetch_name: "smollm2",
    },
    KnownModel {
        id: DEFAULT_EMBEDDING_MODEL,
        kind: ModelKind::Embedding,
        files: &[
            "all-minilm-l6-v2/model.safetensors",
            "all-minilm-l6-v2/tokenizer.json",
            "all-minilm-l6-v2/config.json",
        ],
        fetch_name: "minilm",
    },
    KnownModel {
        id: "gemma3-270m",
        kind: ModelKind::TextGeneration,
        files: &["gemma3-270m/gemma-3-270m-q4_k_m.gguf"],
        fetch_name: "gemma3",
    },
];

/// Model files ready to stream into the component.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSource {
    /// The id the model is loaded under (and that requests name).
    pub id: String,
    pub kind: ModelKind,
    pub files: Vec<PathBuf>,
}

impl ModelSource {
    /// Sum of the file sizes (0 for files that cannot be read).
    pub fn size(&self) -> u64 {
        self.files
            .iter()
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}

/// What a `--model` argument resolved to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Ready(ModelSource),
    /// A known model whose files are not in the cache dir yet.
    Missing(KnownModel),
}

/// `$LLMKG_MODELS`, else `~/.cache/llmkg/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LLMKG_MODELS") {
        return PathBuf::from(dir);
    }
    std::env::home_dir()
        .unwrap_or_default()
        .join(".cache/llmkg/models")
}

/// Resolves `spec` without touching the network. A spec that looks like a path (has a `/`, starts
/// with `.`, or ends in `.gguf`) is a path: a `.gguf` file is a text model, a directory holding
/// [`EMBEDDING_FILES`] is an embedding model. Anything else is an id in `dir`.
pub fn resolve(spec: &str, dir: &Path) -> Result<Resolved> {
    let not_found = |reason: String| Error::ModelNotFound {
        spec: spec.into(),
        reason,
    };
    let looks_like_path = spec.contains(std::path::MAIN_SEPARATOR)
        || spec.contains('/')
        || spec.starts_with('.')
        || spec.ends_with(".gguf");
    if looks_like_path {
        let path = Path::new(spec);
        return from_path(path).map(Resolved::Ready).ok_or_else(|| {
            not_found(format!(
                "{} is neither a .gguf file nor a directory with {}",
                path.display(),
                EMBEDDING_FILES.join(", ")
            ))
        });
    }
    if let Some(known) = KNOWN_MODELS.iter().find(|m| m.id == spec) {
        let files: Vec<PathBuf> = known.files.iter().map(|f| dir.join(f)).collect();
        return Ok(if files.iter().all(|f| f.is_file()) {
            Resolved::Ready(ModelSource {
                id: known.id.into(),
                kind: known.kind,
                files,
            })
        } else {
            Resolved::Missing(*known)
        });
    }
    // Any other model someone put into the cache dir under its own directory.
    from_dir(&dir.join(spec), spec).map(Resolved::Ready).ok_or_else(|| {
        let ids: Vec<String> = list(dir).into_iter().map(|m| m.id).collect();
        not_found(format!(
            "no such id in {} (ids: {}); or pass a path to a .gguf file or an embedding model directory",
            dir.display(),
            ids.join(", ")
        ))
    })
}

/// A model given by path; its id is the file stem (`.gguf`) or the directory name.
fn from_path(path: &Path) -> Option<ModelSource> {
    let name = path.file_name()?.to_string_lossy();
    if path.is_file() && name.ends_with(".gguf") {
        let id = name.trim_end_matches(".gguf").to_string();
        return Some(ModelSource {
            id,
            kind: ModelKind::TextGeneration,
            files: vec![path.into()],
        });
    }
    from_dir(path, &name)
}

/// A directory holding one `.gguf`, or the embedding files.
fn from_dir(dir: &Path, id: &str) -> Option<ModelSource> {
    if !dir.is_dir() {
        return None;
    }
    let embedding: Vec<PathBuf> = EMBEDDING_FILES.iter().map(|f| dir.join(f)).collect();
    if embedding.iter().all(|f| f.is_file()) {
        return Some(ModelSource {
            id: id.into(),
            kind: ModelKind::Embedding,
            files: embedding,
        });
    }
    let mut ggufs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    ggufs.sort();
    match ggufs.as_slice() {
        [one] => Some(ModelSource {
            id: id.into(),
            kind: ModelKind::TextGeneration,
            files: vec![one.clone()],
        }),
        _ => None,
    }
}

/// Resolves `spec`, fetching a known model with `scripts/fetch-models` if its files are missing.
/// The script's output goes to stderr (nothing with `quiet`), so stdout stays clean for results.
pub fn resolve_or_fetch(spec: &str, dir: &Path, quiet: bool) -> Result<ModelSource> {
    match resolve(spec, dir)? {
        Resolved::Ready(source) => Ok(source),
        Resolved::Missing(known) => {
            if !quiet {
                eprintln!(
                    "model `{}` is not in {} yet: fetching it (first use)",
                    known.id,
                    dir.display()
                );
            }
            fetch(&known, dir, quiet)?;
            match resolve(spec, dir)? {
                Resolved::Ready(source) => Ok(source),
                Resolved::Missing(_) => Err(Error::Fetch {
                    model: known.id.into(),
                    reason: format!(
                        "the fetch script finished but {} is still incomplete",
                        dir.display()
                    ),
                }),
            }
        }
    }
}

/// `$LLMKG_FETCH_SCRIPT`, else the repo's `scripts/fetch-models` (located at build time).
pub fn fetch_script() -> Option<PathBuf> {
    if let Some(script) = std::env::var_os("LLMKG_FETCH_SCRIPT") {
        return Some(PathBuf::from(script));
    }
    let script = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/fetch-models"
    ));
    script.is_file().then(|| script.to_path_buf())
}

/// Runs `python3 scripts/fetch-models --models-dir DIR --only NAME`.
pub fn fetch(model: &KnownModel, dir: &Path, quiet: bool) -> Result<()> {
    let fail = |reason: String| Error::Fetch {
        model: model.id.into(),
        reason,
    };
    let script = fetch_script().filter(|s| s.is_file()).ok_or_else(|| {
        fail(format!(
            "the fetch script was not found ($LLMKG_FETCH_SCRIPT, or scripts/fetch-models in the source tree); \
             set $LLMKG_FETCH_SCRIPT, or put {} into {} yourself",
            model.files.join(", "),
            dir.display()
        ))
    })?;
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .arg("--models-dir")
        .arg(dir)
        .arg("--only")
        .arg(model.fetch_name);
    if quiet {
        command.arg("--quiet").stdout(Stdio::null());
    } else {
        command.stdout(std::io::stderr());
    }
    let status = command
        .status()
        .map_err(|e| fail(format!("could not run python3 {}: {e}", script.display())))?;
    if !status.success() {
        return Err(fail(format!("{} exited with {status}", script.display())));
    }
    Ok(())
}

/// One model in the cache dir, for `llmkg models`.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedModel {
    pub id: String,
    pub kind: ModelKind,
    pub files: Vec<PathBuf>,
    /// Bytes on disk (of the files present).
    pub size: u64,
    /// All files are there (known models may be listed before they are fetched).
    pub present: bool,
}

/// The known models (present or not), then any other model directory found in `dir`.
pub fn list(dir: &Path) -> Vec<CachedModel> {
    let mut out: Vec<CachedModel> = KNOWN_MODELS
        .iter()
        .map(|known| {
            let files: Vec<PathBuf> = known.files.iter().map(|f| dir.join(f)).collect();
            let size = files
                .iter()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum();
            let present = files.iter().all(|f| f.is_file());
            CachedModel {
                id: known.id.into(),
                kind: known.kind,
                files,
                size,
                present,
            }
        })
        .collect();
    let mut others: Vec<CachedModel> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let id = entry.file_name().to_string_lossy().into_owned();
            if id.starts_with('.') || KNOWN_MODELS.iter().any(|k| k.id == id) {
                return None;
            }
            let source = from_dir(&entry.path(), &id)?;
            let size = source.size();
            Some(CachedModel {
                id,
                kind: source.kind,
                files: source.files,
                size,
                present: true,
            })
        })
        .collect();
    others.sort_by(|a, b| a.id.cmp(&b.id));
    out.extend(others);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("llmkg-models-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
        fn touch(&self, rel: &str) -> PathBuf {
            let path = self.0.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, b"x").unwrap();
            path
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn ready(r: Resolved) -> ModelSource {
        match r {
            Resolved::Ready(s) => s,
            other => panic!("expected a ready model, got {other:?}"),
        }
    }

    #[test]
    fn default_text_model_id_resolves_to_the_cached_gguf() {
        let dir = TempDir::new("text-id");
        let gguf = dir.touch("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
        let source = ready(resolve(DEFAULT_TEXT_MODEL, &dir.0).unwrap());
        assert_eq!(
            source,
            ModelSource {
                id: DEFAULT_TEXT_MODEL.into(),
                kind: ModelKind::TextGeneration,
                files: vec![gguf]
            }
        );
    }

    #[test]
    fn default_embedding_model_id_resolves_to_its_three_files() {
        let dir = TempDir::new("emb-id");
        for f in EMBEDDING_FILES {
            dir.touch(&format!("all-minilm-l6-v2/{f}"));
        }
        let source = ready(resolve(DEFAULT_EMBEDDING_MODEL, &dir.0).unwrap());
        assert_eq!(source.kind, ModelKind::Embedding);
        assert_eq!(source.files.len(), 3);
        assert!(source.files[0].ends_with("all-minilm-l6-v2/model.safetensors"));
    }

    #[test]
    fn a_known_model_with_a_missing_file_needs_fetching() {
        let dir = TempDir::new("partial");
        dir.touch("all-minilm-l6-v2/model.safetensors");
        assert_eq!(
            resolve(DEFAULT_EMBEDDING_MODEL, &dir.0).unwrap(),
            Resolved::Missing(KNOWN_MODELS[1])
        );
        assert_eq!(
            resolve(DEFAULT_TEXT_MODEL, &dir.0).unwrap(),
            Resolved::Missing(KNOWN_MODELS[0])
        );
    }

    #[test]
    fn a_gguf_path_is_a_text_model_named_after_its_stem() {
        let dir = TempDir::new("gguf-path");
        let gguf = dir.touch("tiny.Q8_0.gguf");
        let source = ready(resolve(gguf.to_str().unwrap(), Path::new("/unused")).unwrap());
        assert_eq!(
            source,
            ModelSource {
                id: "tiny.Q8_0".into(),
                kind: ModelKind::TextGeneration,
                files: vec![gguf]
            }
        );
    }

    #[test]
    fn a_directory_path_with_the_three_files_is_an_embedding_model() {
        let dir = TempDir::new("emb-path");
        for f in EMBEDDING_FILES {
            dir.touch(&format!("my-bert/{f}"));
        }
        let source = ready(
            resolve(
                dir.0.join("my-bert").to_str().unwrap(),
                Path::new("/unused"),
            )
            .unwrap(),
        );
        assert_eq!(source.id, "my-bert");
        assert_eq!(source.kind, ModelKind::Embedding);
    }

    #[test]
    fn a_directory_missing_an_embedding_file_is_rejected_with_the_file_names() {
        let dir = TempDir::new("emb-incomplete");
        dir.touch("my-bert/model.safetensors");
        let err = resolve(
            dir.0.join("my-bert").to_str().unwrap(),
            Path::new("/unused"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn an_unknown_id_lists_the_available_ids() {
        let dir = TempDir::new("unknown");
        let err = resolve("gpt-5", &dir.0).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("gpt-5") && text.contains(DEFAULT_TEXT_MODEL),
            "{text}"
        );
    }

    #[test]
    fn other_model_directories_in_the_cache_resolve_by_id_and_are_listed() {
        let dir = TempDir::new("others");
        let gguf = dir.touch("tinyllama/tinyllama.Q8_0.gguf");
        let source = ready(resolve("tinyllama", &dir.0).unwrap());
        assert_eq!(source.files, vec![gguf]);
        let listed = list(&dir.0);
        let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            [DEFAULT_TEXT_MODEL, DEFAULT_EMBEDDING_MODEL, "gemma3-270m", "tinyllama"]
        );
        assert!(!listed[0].present && listed[3].present);
        assert_eq!(listed[3].size, 1);
    }
}
