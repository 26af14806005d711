//! What a write changed, exactly, and the patch text that carries it between instances.
//!
//! Every write to the store goes through a [`ChangeSet`]: quads really added (absent before)
//! and really removed (present before), in order, so a failed write can be undone and a
//! finished one can be recorded. Hosts that keep the graph as a log (the HTTP front, the CLI's
//! data directory) take the recorded changes as a patch and apply it elsewhere: replaying a
//! patch gives the same quads, blank-node labels included, whatever state-dependent update
//! produced it.
//!
//! Patch text: one change per line, `D ` or `A ` followed by an N-Quads statement (the row
//! syntax of RDF Patch); removals first, then additions; `#` lines are comments.

use std::collections::HashSet;

use oxigraph::io::{RdfFormat, RdfParser, RdfSerializer};
use oxigraph::model::Quad;

use crate::error::{EngineError, Result};

/// One applied mutation, kept so a failing write can be rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    Added(Quad),
    Removed(Quad),
}

/// The mutations of one write, in the order they were applied.
#[derive(Debug, Default)]
pub struct ChangeSet {
    pub mutations: Vec<Mutation>,
}

/// The net change of the writes since recording started or was last taken: `added` and
/// `removed` are disjoint; every removed quad existed before, no added one did.
#[derive(Debug, Default)]
pub struct Journal {
    pub recording: bool,
    added: HashSet<Quad>,
    removed: HashSet<Quad>,
}

impl Journal {
    /// Starts (or stops) recording; whatever was recorded and not taken is dropped.
    pub fn set_recording(&mut self, on: bool) {
        *self = Journal { recording: on, ..Default::default() };
    }

    /// Folds a committed write into the net change.
    pub fn record(&mut self, change: &ChangeSet) {
        if !self.recording {
            return;
        }
        for m in &change.mutations {
            match m {
                Mutation::Added(q) => {
                    if !self.removed.remove(q) {
                        self.added.insert(q.clone());
                    }
                }
                Mutation::Removed(q) => {
                    if !self.added.remove(q) {
                        self.removed.insert(q.clone());
                    }
                }
            }
        }
    }

    /// The net change as patch text, and an empty journal (still recording).
    pub fn take(&mut self) -> Vec<u8> {
        let removed = std::mem::take(&mut self.removed);
        let added = std::mem::take(&mut self.added);
        patch_text(removed.iter(), added.iter())
    }
}

/// Patch text for the given removals and additions, each group sorted so equal changes give
/// equal bytes.
pub fn patch_text<'a>(removed: impl Iterator<Item = &'a Quad>, added: impl Iterator<Item = &'a Quad>) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, quads) in [("D ", removed.collect::<Vec<_>>()), ("A ", added.collect::<Vec<_>>())] {
        let mut lines: Vec<Vec<u8>> = quads.into_iter().map(nquads_line).collect();
        lines.sort();
        for line in lines {
            out.extend_from_slice(tag.as_bytes());
            out.extend_from_slice(&line);
        }
    }
    out
}

/// One quad as an N-Quads statement with its newline.
fn nquads_line(quad: &Quad) -> Vec<u8> {
    let mut serializer = RdfSerializer::from_format(RdfFormat::NQuads).for_writer(Vec::new());
    // Writing to a Vec cannot fail, and every quad the store holds has an N-Quads form.
    let _ = serializer.serialize_quad(quad);
    serializer.finish().unwrap_or_default()
}

/// A reader for N-Quads this engine wrote itself (snapshots, patch lines): the grammar only, no
/// IRI validation. The terms were validated when they first came in, and some the Turtle grammar
/// admits fail a strict N-Quads read: a local name may hold U+E0000..U+E0FFF, which RFC 3987
/// (oxiri's check) leaves out of IRIs but the N-Triples IRIREF production allows.
pub fn own_nquads() -> RdfParser {
    RdfParser::from_format(RdfFormat::NQuads).lenient()
}

/// Checks that every quad `change` adds reads back from its N-Quads form as the same quad, so
/// nothing is committed to a log that a later replay could not load. Some terms a Turtle parser
/// accepts have no faithful N-Quads form; such a write is refused, naming the term.
pub fn check_storable<'a>(added: impl Iterator<Item = &'a Quad>) -> Result<()> {
    for quad in added {
        let line = nquads_line(quad);
        let back = own_nquads().for_slice(&line).next();
        match back {
            Some(Ok(q)) if &q == quad => {}
            Some(Ok(q)) => {
                return Err(EngineError::InvalidInput(format!(
                    "the quad {quad} cannot be stored faithfully: written as N-Quads it reads back as {q}; nothing was changed"
                )))
            }
            Some(Err(e)) => {
                return Err(EngineError::InvalidInput(format!(
                    "the quad {quad} cannot be stored: its N-Quads form does not read back ({e}); nothing was changed"
                )))
            }
            None => return Err(EngineError::Internal(format!("the quad {quad} wrote no N-Quads"))),
        }
    }
    Ok(())
}

/// A parsed patch: what to remove, then what to add.
#[derive(Debug, Default, PartialEq)]
pub struct Patch {
    pub removed: Vec<Quad>,
    pub added: Vec<Quad>,
}

impl Patch {
    /// Parses patch text; an error names the line. Blank-node labels are kept as written.
    pub fn parse(text: &[u8]) -> Result<Patch> {
        let text = std::str::from_utf8(text).map_err(|e| EngineError::InvalidInput(format!("patch: not UTF-8 at byte {}", e.valid_up_to())))?;
        let mut patch = Patch::default();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (target, statement) = if let Some(rest) = trimmed.strip_prefix("A ") {
                (&mut patch.added, rest)
            } else if let Some(rest) = trimmed.strip_prefix("D ") {
                (&mut patch.removed, rest)
            } else {
                return Err(EngineError::InvalidInput(format!(
                    "patch line {line_no}: expected `A <quad> .` or `D <quad> .`, found {:?}",
                    trimmed.chars().take(40).collect::<String>()
                )));
            };
            let mut quads = own_nquads().for_slice(statement.as_bytes());
            match (quads.next(), quads.next()) {
                (Some(Ok(quad)), None) => target.push(quad),
                (Some(Err(e)), _) => return Err(EngineError::InvalidInput(format!("patch line {line_no}: {e}"))),
                _ => return Err(EngineError::InvalidInput(format!("patch line {line_no}: expected exactly one N-Quads statement"))),
            }
        }
        Ok(patch)
    }

    /// The patch that undoes this one.
    pub fn reversed(self) -> Patch {
        Patch { removed: self.added, added: self.removed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxigraph::model::{BlankNode, GraphName, Literal, NamedNode};

    fn quad(s: &str, o: &str) -> Quad {
        Quad::new(NamedNode::new_unchecked(s), NamedNode::new_unchecked("urn:p"), Literal::new_simple_literal(o), GraphName::DefaultGraph)
    }

    #[test]
    fn the_journal_keeps_the_net_change() {
        let mut journal = Journal::default();
        journal.set_recording(true);
        let (a, b) = (quad("urn:a", "1"), quad("urn:b", "2"));
        journal.record(&ChangeSet { mutations: vec![Mutation::Added(a.clone()), Mutation::Removed(b.clone())] });
        // Adding back what was removed, and removing what was added, cancel out.
        journal.record(&ChangeSet { mutations: vec![Mutation::Added(b.clone()), Mutation::Removed(a)] });
        assert_eq!(journal.take(), b"");
        journal.record(&ChangeSet { mutations: vec![Mutation::Removed(b)] });
        assert_eq!(String::from_utf8(journal.take()).unwrap(), "D <urn:b> <urn:p> \"2\" .\n");
    }

    #[test]
    fn nothing_is_recorded_unless_recording() {
        let mut journal = Journal::default();
        journal.record(&ChangeSet { mutations: vec![Mutation::Added(quad("urn:a", "1"))] });
        assert_eq!(journal.take(), b"");
    }

    #[test]
    fn a_patch_round_trips_with_blank_nodes_graphs_and_escapes() {
        let tricky = Quad::new(
            BlankNode::new_unchecked("b0f3"),
            NamedNode::new_unchecked("urn:p"),
            Literal::new_language_tagged_literal_unchecked("a \"quoted\"\nline \u{E0001}", "en"),
            NamedNode::new_unchecked("urn:g"),
        );
        let removed = quad("urn:x", "gone");
        let text = patch_text([&removed].into_iter(), [&tricky].into_iter());
        let patch = Patch::parse(&text).unwrap();
        assert_eq!(patch, Patch { removed: vec![removed.clone()], added: vec![tricky.clone()] });
        assert_eq!(patch.reversed(), Patch { removed: vec![tricky], added: vec![removed] });
    }

    #[test]
    fn a_bad_patch_line_is_named() {
        let err = Patch::parse(b"# comment\nA <urn:a> <urn:p> \"1\" .\nX <urn:a> <urn:p> \"1\" .\n").unwrap_err();
        assert!(err.to_string().contains("patch line 3"), "{err}");
        let err = Patch::parse(b"A <urn:a> <urn:p> .\n").unwrap_err();
        assert!(err.to_string().contains("patch line 1"), "{err}");
    }
}
