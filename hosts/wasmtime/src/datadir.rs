//! Where the CLI keeps the knowledge graph between runs: `graph.nq` (every graph, N-Quads) and
//! `index.bin` (the label embeddings, so labels are not re-embedded on each start). Each file is
//! replaced atomically (written to a temporary file, synced, renamed), so a process killed
//! mid-write leaves the previous state intact.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::runtime::{LlmkgRuntime, RdfFormat};

pub const GRAPH_FILE: &str = "graph.nq";
pub const INDEX_FILE: &str = "index.bin";

/// `$LLMKG_DATA`, else `$XDG_DATA_HOME/llmkg`, else `~/.local/share/llmkg`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LLMKG_DATA") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(dir).join("llmkg");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".local/share/llmkg")
}

pub struct DataDir {
    pub path: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

impl DataDir {
    pub fn new(path: PathBuf) -> Self {
        DataDir { path }
    }

    /// Loads the saved graph and index (if any) into the component. Returns the triple count.
    pub fn load_into(&self, rt: &mut LlmkgRuntime) -> Result<u64> {
        let graph = self.path.join(GRAPH_FILE);
        let mut total = 0;
        if graph.exists() {
            let data = fs::read(&graph).map_err(io(&graph))?;
            total = rt.kg_import(RdfFormat::NQuads, &data)?.total;
        }
        let index = self.path.join(INDEX_FILE);
        if index.exists() {
            let data = fs::read(&index).map_err(io(&index))?;
            // A stale or damaged index only costs re-embedding; never fail a load over it.
            let _ = rt.kg_import_index(&data);
        }
        Ok(total)
    }

    /// Saves the graph (all graphs, N-Quads) atomically.
    pub fn save_graph(&self, rt: &mut LlmkgRuntime) -> Result<()> {
        let data = rt.kg_export(RdfFormat::NQuads)?;
        self.write_atomically(GRAPH_FILE, &data)
    }

    /// Saves the search index atomically.
    pub fn save_index(&self, rt: &mut LlmkgRuntime) -> Result<()> {
        let data = rt.kg_export_index()?;
        self.write_atomically(INDEX_FILE, &data)
    }

    fn write_atomically(&self, name: &str, data: &[u8]) -> Result<()> {
        fs::create_dir_all(&self.path).map_err(io(&self.path))?;
        let target = self.path.join(name);
        let temp = self.path.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut file = File::create(&temp).map_err(io(&temp))?;
        file.write_all(data).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
        drop(file);
        fs::rename(&temp, &target).map_err(io(&target))?;
        // Make the rename itself durable.
        if let Ok(dir) = File::open(&self.path) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temp_files() {
        let dir = std::env::temp_dir().join(format!("llmkg-datadir-{}", std::process::id()));
        let d = DataDir::new(dir.clone());
        d.write_atomically("x", b"one").unwrap();
        d.write_atomically("x", b"two").unwrap();
        assert_eq!(fs::read(dir.join("x")).unwrap(), b"two");
        let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(dir).unwrap();
    }
}
