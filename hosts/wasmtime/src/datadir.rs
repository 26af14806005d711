//! Where the knowledge graph is kept between runs: a snapshot (`graph.nq`) plus a log of
//! changes (`log/`, see `llmkg-graph-log`), and the label index (`index.bin`, so labels are not
//! re-embedded on each start). A change costs what it changed: one small file, published
//! atomically, fsynced; a killed process leaves the last committed change. The snapshot is
//! rewritten (compacted) only when the log has grown past a fraction of it. The HTTP front
//! reads and writes the same layout, so the CLI and `llmkg serve` share a data directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use llmkg_graph_log::{GraphLog, PublishError};

use crate::error::{Error, Result};
use crate::runtime::{LlmkgRuntime, RdfFormat};

pub const GRAPH_FILE: &str = llmkg_graph_log::SNAPSHOT_FILE;
pub const INDEX_FILE: &str = "index.bin";

/// The log is folded into a new snapshot once it holds more than this, and more than a quarter
/// of the snapshot's size: replays stay short, and a change rarely rewrites the graph.
const COMPACT_AFTER_BYTES: u64 = 1 << 20;

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
    log: GraphLog,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

/// What `commit` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// Nothing changed since the last commit.
    Nothing,
    /// The change was committed as this log position.
    Logged(u64),
}

impl DataDir {
    pub fn new(path: PathBuf) -> Self {
        let log = GraphLog::new(&path);
        DataDir { path, log }
    }

    /// Loads the snapshot and replays the changes after it into the component, imports the
    /// saved index, and starts recording changes for [`commit`](Self::commit). Returns the
    /// triple count. A damaged or missing change is an error naming it (see `kg repair`).
    pub fn load_into(&self, rt: &mut LlmkgRuntime) -> Result<u64> {
        let mut total = 0;
        let mut position = 0;
        if let Some(snapshot) = self.log.read_snapshot().map_err(io(&self.path))? {
            total = rt.kg_restore(&snapshot.nquads, snapshot.position)?.total;
            position = snapshot.position;
        }
        let replay = self.log.changes_after(position).map_err(io(&self.path))?;
        for change in replay.changes {
            total = rt.kg_apply_changes(&change.patch, false)?.total;
            rt.kg_set_log_position(change.position)?;
        }
        if let Some(problem) = replay.problem {
            return Err(Error::DataDir { path: self.path.clone(), problem });
        }
        let index = self.path.join(INDEX_FILE);
        if index.exists() {
            let data = fs::read(&index).map_err(io(&index))?;
            // A stale or damaged index only costs re-embedding; never fail a load over it.
            let _ = rt.kg_import_index(&data);
        }
        rt.kg_record_changes(true)?;
        rt.remember_data_dir(self.path.clone());
        Ok(total)
    }

    /// Commits what the component changed since loading (or the last commit) as the next
    /// change in the log, then compacts if the log has grown large. If another writer (a
    /// server on the same directory) committed meanwhile, the change is undone and this fails:
    /// the command can simply be run again.
    pub fn commit(&self, rt: &mut LlmkgRuntime) -> Result<Commit> {
        let patch = rt.kg_take_changes()?;
        if patch.is_empty() {
            return Ok(Commit::Nothing);
        }
        let position = rt.kg_log_position()? + 1;
        match self.log.publish(position, &patch) {
            Ok(()) => {}
            Err(e) => {
                rt.kg_apply_changes(&patch, true)?;
                let problem = match e {
                    PublishError::Conflict(p) => format!("another writer committed change {p} while this command ran; nothing was changed, run it again"),
                    PublishError::Io(e) => format!("the change could not be written ({e}); nothing was changed"),
                };
                return Err(Error::DataDir { path: self.path.clone(), problem });
            }
        }
        rt.kg_set_log_position(position)?;
        self.compact_if_large(rt, position)?;
        Ok(Commit::Logged(position))
    }

    /// Folds the log into a new snapshot when it holds more than [`COMPACT_AFTER_BYTES`] and
    /// a quarter of the snapshot. Servers on the same directory notice on their next request
    /// (their next change is gone) and load the new snapshot.
    fn compact_if_large(&self, rt: &mut LlmkgRuntime, position: u64) -> Result<()> {
        let snapshot_position = self.log.read_snapshot().map_err(io(&self.path))?.map_or(0, |s| s.position);
        let pending = self.log.pending_bytes(snapshot_position).map_err(io(&self.path))?;
        let snapshot_bytes = fs::metadata(self.path.join(GRAPH_FILE)).map(|m| m.len()).unwrap_or(0);
        if pending > COMPACT_AFTER_BYTES && pending > snapshot_bytes / 4 {
            self.compact(rt, position)?;
        }
        Ok(())
    }

    /// Writes the graph as the snapshot at `position` and drops the changes it holds.
    pub fn compact(&self, rt: &mut LlmkgRuntime, position: u64) -> Result<()> {
        let nquads = rt.kg_export(RdfFormat::NQuads)?;
        self.log.write_snapshot(position, &nquads).map_err(io(&self.path))?;
        self.log.prune(position).map_err(io(&self.path))?;
        Ok(())
    }

    /// The change log's last position (0: nothing committed yet).
    pub fn latest_position(&self) -> Result<u64> {
        self.log.latest_position().map_err(io(&self.path))
    }

    /// Sets aside (into `log/damaged-<position>/`) the first change that cannot be replayed and
    /// every change after it, so the directory loads again at the last good change. Returns
    /// what was moved and why.
    pub fn repair(&self) -> Result<Option<(String, Vec<PathBuf>)>> {
        let position = self.log.read_snapshot().map_err(io(&self.path))?.map_or(0, |s| s.position);
        let replay = self.log.changes_after(position).map_err(io(&self.path))?;
        let Some(problem) = replay.problem else { return Ok(None) };
        let good = replay.changes.last().map_or(position, |c| c.position);
        let log_dir = self.path.join(llmkg_graph_log::LOG_DIR);
        let aside = log_dir.join(format!("damaged-{}", good + 1));
        fs::create_dir_all(&aside).map_err(io(&aside))?;
        let mut moved = Vec::new();
        for p in self.log.positions().map_err(io(&self.path))?.into_iter().filter(|&p| p > good) {
            let name = format!("{p:020}.patch");
            fs::rename(log_dir.join(&name), aside.join(&name)).map_err(io(&log_dir))?;
            moved.push(aside.join(name));
        }
        Ok(Some((problem, moved)))
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
