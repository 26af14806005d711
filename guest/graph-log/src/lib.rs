//! llmkg-graph-log: the knowledge graph's data directory as a snapshot plus a log of changes.
//!
//! ```text
//! DATA/graph.nq                 snapshot: N-Quads of every graph, first line `# llmkg-snapshot position=P`
//! DATA/log/00000000000000000042.patch
//!                               change 42: `# llmkg-change position=42 sha256=<hex>` + patch text
//! ```
//!
//! A change costs what it changed: one small file, written to a temporary name, synced, and
//! published with a hard link, which fails if the name exists. So two writers can never both
//! commit change N (the loser replays N and tries again: optimistic concurrency, serializable),
//! and a reader never sees half a change. Readers load the snapshot and replay the changes after
//! its position, in order; a missing or damaged change stops the replay there, reported, never
//! silently used. The patch text is the engine's (`knowledge.take-changes`); this crate never
//! parses RDF. It uses only `std::fs`, so the same code runs natively (the CLI, `llmkg serve`)
//! and inside the HTTP front component, where the data directory is a WASI preopen.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

pub const SNAPSHOT_FILE: &str = "graph.nq";
pub const LOG_DIR: &str = "log";
const SNAPSHOT_HEADER: &str = "# llmkg-snapshot position=";
const CHANGE_HEADER: &str = "# llmkg-change position=";
const PATCH_SUFFIX: &str = ".patch";

/// The snapshot: N-Quads (header line included; it is an N-Quads comment) and the position of
/// the last change folded into it.
pub struct Snapshot {
    pub position: u64,
    pub nquads: Vec<u8>,
}

/// One committed change.
pub struct Change {
    pub position: u64,
    /// Patch text, the header line included (a comment to the engine's patch parser).
    pub patch: Vec<u8>,
}

/// The changes after a position, and why the replay stopped early, if it did.
pub struct Replay {
    pub changes: Vec<Change>,
    /// E.g. "change 43 is damaged (checksum mismatch); it and the 2 after it were not applied".
    pub problem: Option<String>,
}

#[derive(Debug)]
pub enum PublishError {
    /// Another writer committed a change at this position first.
    Conflict(u64),
    Io(io::Error),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Conflict(p) => write!(f, "change {p} was committed by another writer first"),
            PublishError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PublishError {}

pub struct GraphLog {
    dir: PathBuf,
}

fn change_name(position: u64) -> String {
    format!("{position:020}{PATCH_SUFFIX}")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Unique within this process; with the nanosecond clock, unique enough across processes for a
/// temporary name (a clash only makes `create_new` fail and the write retry).
fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!(".tmp-{nanos}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn with_path(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Makes a rename or link durable. Directories cannot always be opened for syncing (WASI
/// preopens, some file systems); the data itself was synced already.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl GraphLog {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        GraphLog { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.join(LOG_DIR)
    }

    /// The snapshot, if there is one. A snapshot without a header (written before the log
    /// existed) is at position 0.
    pub fn read_snapshot(&self) -> io::Result<Option<Snapshot>> {
        let path = self.dir.join(SNAPSHOT_FILE);
        let nquads = match fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(with_path(&path)(e)),
        };
        let first = nquads.split(|&b| b == b'\n').next().unwrap_or_default();
        let position = std::str::from_utf8(first)
            .ok()
            .and_then(|line| line.strip_prefix(SNAPSHOT_HEADER))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(0);
        Ok(Some(Snapshot { position, nquads }))
    }

    /// Replaces the snapshot atomically (temporary file, sync, rename).
    pub fn write_snapshot(&self, position: u64, nquads: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir).map_err(with_path(&self.dir))?;
        let target = self.dir.join(SNAPSHOT_FILE);
        let temp = self.dir.join(temp_name());
        let result = (|| {
            let mut file = File::create(&temp)?;
            file.write_all(format!("{SNAPSHOT_HEADER}{position}\n").as_bytes())?;
            file.write_all(nquads)?;
            file.sync_all()?;
            fs::rename(&temp, &target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result.map_err(with_path(&target))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Positions of the committed changes, ascending.
    pub fn positions(&self) -> io::Result<Vec<u64>> {
        let dir = self.log_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(with_path(&dir)(e)),
        };
        let mut positions = Vec::new();
        for entry in entries {
            let name = entry.map_err(with_path(&dir))?.file_name();
            if let Some(p) = name.to_str().and_then(|n| n.strip_suffix(PATCH_SUFFIX)).and_then(|n| n.parse::<u64>().ok()) {
                positions.push(p);
            }
        }
        positions.sort_unstable();
        Ok(positions)
    }

    /// The last committed change (0: none), whichever of snapshot and log is further.
    pub fn latest_position(&self) -> io::Result<u64> {
        let logged = self.positions()?.last().copied().unwrap_or(0);
        let snapshot = self.read_snapshot()?.map_or(0, |s| s.position);
        Ok(logged.max(snapshot))
    }

    /// The changes after `position`, in order: contiguous, each checked against its checksum.
    pub fn changes_after(&self, position: u64) -> io::Result<Replay> {
        let later: Vec<u64> = self.positions()?.into_iter().filter(|&p| p > position).collect();
        let mut changes = Vec::with_capacity(later.len());
        for (expected, (i, &p)) in (position + 1..).zip(later.iter().enumerate()) {
            let left = later.len() - i - 1;
            if p != expected {
                return Ok(Replay {
                    changes,
                    problem: Some(format!("change {expected} is missing; the {} change(s) from {p} on were not applied", left + 1)),
                });
            }
            let path = self.log_dir().join(change_name(p));
            let patch = match fs::read(&path) {
                Ok(data) => data,
                // Pruned under us (a newer snapshot was written): the caller starts over.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Ok(Replay { changes, problem: Some(format!("change {p} was removed while reading (compacted)")) })
                }
                Err(e) => return Err(with_path(&path)(e)),
            };
            if let Err(why) = verify(&patch, p) {
                return Ok(Replay {
                    changes,
                    problem: Some(format!("change {p} ({}) is damaged ({why}); it and the {left} after it were not applied", path.display())),
                });
            }
            changes.push(Change { position: p, patch });
        }
        Ok(Replay { changes, problem: None })
    }

    /// Commits `patch` as change `position`, durably. Fails with [`PublishError::Conflict`] when
    /// another writer committed that position first.
    pub fn publish(&self, position: u64, patch: &[u8]) -> Result<(), PublishError> {
        let dir = self.log_dir();
        fs::create_dir_all(&dir).map_err(|e| PublishError::Io(with_path(&dir)(e)))?;
        let target = dir.join(change_name(position));
        if target.exists() {
            return Err(PublishError::Conflict(position));
        }
        let temp = dir.join(temp_name());
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
            file.write_all(format!("{CHANGE_HEADER}{position} sha256={}\n", sha256_hex(patch)).as_bytes())?;
            file.write_all(patch)?;
            file.sync_all()
        })();
        let linked = written.and_then(|()| fs::hard_link(&temp, &target));
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                sync_dir(&dir);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(PublishError::Conflict(position)),
            Err(e) => Err(PublishError::Io(with_path(&target)(e))),
        }
    }

    /// Removes the changes at or before `position` (folded into a snapshot already) and
    /// temporary files left by writers that died. Returns how many changes went.
    pub fn prune(&self, position: u64) -> io::Result<usize> {
        let dir = self.log_dir();
        let mut removed = 0;
        for p in self.positions()?.into_iter().filter(|&p| p <= position) {
            fs::remove_file(dir.join(change_name(p))).map_err(with_path(&dir))?;
            removed += 1;
        }
        if let Ok(entries) = fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let old = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok()).is_some_and(|age| age.as_secs() > 3600);
                if name.to_string_lossy().starts_with(".tmp-") && old {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
        sync_dir(&dir);
        Ok(removed)
    }

    /// Bytes held by changes after the snapshot (what a replay reads).
    pub fn pending_bytes(&self, after: u64) -> io::Result<u64> {
        let dir = self.log_dir();
        let mut total = 0;
        for p in self.positions()?.into_iter().filter(|&p| p > after) {
            total += fs::metadata(dir.join(change_name(p))).map(|m| m.len()).unwrap_or(0);
        }
        Ok(total)
    }
}

/// Checks a change file's header: its position and the sha256 of what follows it.
fn verify(file: &[u8], position: u64) -> Result<(), String> {
    let newline = file.iter().position(|&b| b == b'\n').ok_or("no header line")?;
    let header = std::str::from_utf8(&file[..newline]).map_err(|_| "header is not UTF-8")?;
    let rest = header.strip_prefix(CHANGE_HEADER).ok_or("no llmkg-change header")?;
    let (p, sha) = rest.split_once(" sha256=").ok_or("header has no checksum")?;
    if p.parse::<u64>().ok() != Some(position) {
        return Err(format!("header says position {p}"));
    }
    if sha256_hex(&file[newline + 1..]) != sha.trim() {
        return Err("checksum mismatch".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("llmkg-graph-log-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn changes_replay_in_order_after_the_snapshot() {
        let dir = temp_dir("order");
        let log = GraphLog::new(&dir);
        assert!(log.read_snapshot().unwrap().is_none());
        log.write_snapshot(2, b"<urn:a> <urn:p> <urn:b> .\n").unwrap();
        for p in 1..=4 {
            log.publish(p, format!("A <urn:s{p}> <urn:p> <urn:o> .\n").as_bytes()).unwrap();
        }
        let snapshot = log.read_snapshot().unwrap().unwrap();
        assert_eq!(snapshot.position, 2);
        let replay = log.changes_after(snapshot.position).unwrap();
        assert!(replay.problem.is_none());
        assert_eq!(replay.changes.iter().map(|c| c.position).collect::<Vec<_>>(), [3, 4]);
        assert!(String::from_utf8_lossy(&replay.changes[0].patch).ends_with("A <urn:s3> <urn:p> <urn:o> .\n"));
        assert_eq!(log.latest_position().unwrap(), 4);
        assert_eq!(log.prune(2).unwrap(), 2);
        assert_eq!(log.positions().unwrap(), [3, 4]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_position_can_be_committed_only_once() {
        let dir = temp_dir("conflict");
        let log = GraphLog::new(&dir);
        log.publish(1, b"A <urn:a> <urn:p> \"1\" .\n").unwrap();
        assert!(matches!(log.publish(1, b"A <urn:b> <urn:p> \"2\" .\n"), Err(PublishError::Conflict(1))));
        let replay = log.changes_after(0).unwrap();
        assert_eq!(replay.changes.len(), 1);
        assert!(String::from_utf8_lossy(&replay.changes[0].patch).contains("urn:a"));
        // No temporary files are left behind.
        let names: Vec<String> = fs::read_dir(dir.join(LOG_DIR)).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(names, [change_name(1)]);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_damaged_or_missing_change_stops_the_replay_with_a_reason() {
        let dir = temp_dir("damage");
        let log = GraphLog::new(&dir);
        for p in 1..=3 {
            log.publish(p, format!("A <urn:s{p}> <urn:p> <urn:o> .\n").as_bytes()).unwrap();
        }
        let second = dir.join(LOG_DIR).join(change_name(2));
        let mut bytes = fs::read(&second).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        fs::write(&second, bytes).unwrap();
        let replay = log.changes_after(0).unwrap();
        assert_eq!(replay.changes.len(), 1);
        let problem = replay.problem.unwrap();
        assert!(problem.contains("change 2") && problem.contains("checksum mismatch") && problem.contains("the 1 after it"), "{problem}");

        fs::remove_file(&second).unwrap();
        let problem = log.changes_after(0).unwrap().problem.unwrap();
        assert!(problem.contains("change 2 is missing"), "{problem}");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_torn_write_never_becomes_a_change() {
        let dir = temp_dir("torn");
        let log = GraphLog::new(&dir);
        fs::create_dir_all(dir.join(LOG_DIR)).unwrap();
        // What a writer killed mid-write leaves: a temporary file, never a published name.
        fs::write(dir.join(LOG_DIR).join(".tmp-1-0"), b"# llmkg-change position=1 sha256=00\nA <urn").unwrap();
        let replay = log.changes_after(0).unwrap();
        assert!(replay.changes.is_empty() && replay.problem.is_none());
        log.publish(1, b"A <urn:a> <urn:p> <urn:b> .\n").unwrap();
        assert_eq!(log.changes_after(0).unwrap().changes.len(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_snapshot_without_a_header_is_at_position_zero() {
        let dir = temp_dir("legacy");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(SNAPSHOT_FILE), b"<urn:a> <urn:p> <urn:b> .\n").unwrap();
        assert_eq!(GraphLog::new(&dir).read_snapshot().unwrap().unwrap().position, 0);
        fs::remove_dir_all(dir).unwrap();
    }
}
