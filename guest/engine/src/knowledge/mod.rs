//! The knowledge graph: an oxigraph in-memory RDF store (SPARQL 1.1, RDF formats) plus what no
//! RDF store has: plain-string facts mapped into a default namespace, provenance per fact, an
//! embedding index over entity labels (kept in [`index`], filled by the engine, which owns the
//! embedding models), and neighbourhoods verbalised for grounded generation.

pub mod budget;
mod cartesian;
pub mod changes;
pub mod index;
pub mod names;
pub mod results;
pub mod shape;
mod update;
pub mod verbalize;

use std::cell::Cell;
use std::collections::{BTreeSet, HashMap, HashSet};

use oxigraph::io::{RdfFormat as OxFormat, RdfParser, RdfSerializer};
use oxigraph::model::{
    GraphName, GraphNameRef, Literal as OxLiteral, NamedNode, NamedOrBlankNode, Quad, Term as OxTerm,
};
use oxigraph::sparql::{PreparedSparqlQuery, QueryResults, SparqlEvaluator};
use budget::Budget;
use oxigraph::store::Store;

use crate::error::{EngineError, Result};
use crate::types::*;
use changes::{ChangeSet, Journal, Mutation, Patch};
use index::LabelIndex;
use names::{has_scheme, readable, to_iri, NAMESPACE, RDFS_LABEL, RDF_LANG_STRING, RDF_TYPE, XSD_STRING};

const PROVENANCE_GRAPH: &str = "urn:llmkg:graph:provenance";
const RDF_SUBJECT: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#subject";
const RDF_PREDICATE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#predicate";
const RDF_OBJECT: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#object";
const XSD_DOUBLE: &str = "http://www.w3.org/2001/XMLSchema#double";

pub struct KnowledgeGraph {
    store: Store,
    pub index: LabelIndex,
    /// The graph changed since the index was last brought up to date.
    pub index_stale: bool,
    /// Parsed queries by text: applications repeat the same queries, and parsing costs as much
    /// as answering a bound pattern.
    parsed: HashMap<String, spargebra::Query>,
    /// Triples outside the provenance graph, when known. Counting walks the whole quad set
    /// (about 17 ms at 100k triples), so imports and inserts add what they added and only
    /// SPARQL updates and removals count again.
    triples: Cell<Option<u64>>,
    /// The net change of recent writes, for hosts that persist the graph as a log.
    journal: Journal,
    /// Where this graph stands in its host's change log (the host's number; see `set_log_position`).
    log_position: u64,
    /// Quads removed from `store` since it was built. oxigraph's in-memory store is versioned
    /// and never collects: a removed quad stays as a dead version, with every string it named,
    /// for as long as the store lives (~350 bytes a quad in wasm32), so a graph that takes
    /// inserts and removes for weeks would grow without end. See [`Self::compact`].
    dead: u64,
    /// After a compaction was skipped for want of memory: no new try before `dead` passes this.
    compact_deferred: u64,
}

/// The store is rebuilt from its live quads when the dead ones pass 1/16 of the live ones (and
/// at least [`COMPACT_MIN`]): dead versions then cost at most ~6% of the store's memory, and a
/// rebuild, O(live quads), costs at most 16 quad inserts per removal that led to it.
const COMPACT_RATIO: u64 = 16;
const COMPACT_MIN: u64 = 1024;
/// Memory a rebuild needs per live quad (the new store beside the old one), measured in wasm32
/// with margin: checked up front, because running out of memory inside a component traps.
const COMPACT_BYTES_PER_QUAD: u64 = 512;

/// Queries kept parsed; the cache is simply emptied when full.
const PARSED_QUERIES: usize = 64;

fn is_provenance(quad: &Quad) -> bool {
    matches!(&quad.graph_name, GraphName::NamedNode(g) if g.as_str() == PROVENANCE_GRAPH)
}

fn storage(e: impl std::fmt::Display) -> EngineError {
    EngineError::Internal(format!("graph store: {e}"))
}

impl KnowledgeGraph {
    pub fn new() -> Result<Self> {
        Ok(KnowledgeGraph {
            store: Store::new().map_err(storage)?,
            index: LabelIndex::default(),
            index_stale: false,
            parsed: HashMap::new(),
            triples: Cell::new(Some(0)),
            journal: Journal::default(),
            log_position: 0,
            dead: 0,
            compact_deferred: 0,
        })
    }

    /// Triples outside the provenance graph (the cached count, else all quads less the
    /// provenance graph's: `Store::len` only walks the quad set, while iterating the default
    /// graph would decode every term).
    pub fn len(&self) -> Result<u64> {
        if let Some(n) = self.triples.get() {
            return Ok(n);
        }
        let all = self.store.len().map_err(storage)? as u64;
        let graph = NamedNode::new_unchecked(PROVENANCE_GRAPH);
        let mut provenance = 0u64;
        for q in self.store.quads_for_pattern(None, None, None, Some(graph.as_ref().into())) {
            q.map_err(storage)?;
            provenance += 1;
        }
        self.triples.set(Some(all - provenance));
        Ok(all - provenance)
    }

    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    fn report(&mut self, before: u64, total: u64) -> ChangeReport {
        self.triples.set(Some(total));
        if total != before {
            self.index_stale = true;
        }
        ChangeReport { changed: total.abs_diff(before), total }
    }

    /// Adds `quad` unless the store has it; a real addition is noted in `change`.
    fn put(&mut self, quad: Quad, change: &mut ChangeSet) -> Result<()> {
        if !self.store.contains(&quad).map_err(storage)? {
            self.store.insert(&quad).map_err(storage)?;
            change.mutations.push(Mutation::Added(quad));
        }
        Ok(())
    }

    /// Removes `quad` if the store has it; a real removal is noted in `change`.
    fn del(&mut self, quad: Quad, change: &mut ChangeSet) -> Result<()> {
        if self.store.contains(&quad).map_err(storage)? {
            self.store.remove(&quad).map_err(storage)?;
            change.mutations.push(Mutation::Removed(quad));
        }
        Ok(())
    }

    /// Runs one write: on success its change is counted and recorded, on failure it is undone,
    /// so every write is all or nothing.
    fn write<T>(&mut self, run: impl FnOnce(&mut Self, &mut ChangeSet) -> Result<T>) -> Result<(T, ChangeReport)> {
        let before = self.len()?;
        let mut change = ChangeSet::default();
        let outcome = run(self, &mut change).and_then(|value| {
            // What is recorded goes to a log that must replay: refuse what would not.
            if self.journal.recording {
                changes::check_storable(change.mutations.iter().filter_map(|m| match m {
                    Mutation::Added(q) => Some(q),
                    Mutation::Removed(_) => None,
                }))?;
            }
            Ok(value)
        });
        match outcome {
            Ok(value) => Ok((value, self.commit(before, change)?)),
            Err(e) => {
                self.rollback(change)?;
                Err(e)
            }
        }
    }

    fn commit(&mut self, before: u64, change: ChangeSet) -> Result<ChangeReport> {
        let mut total = before as i64;
        for m in &change.mutations {
            match m {
                Mutation::Added(q) if !is_provenance(q) => total += 1,
                Mutation::Removed(q) if !is_provenance(q) => total -= 1,
                _ => {}
            }
        }
        if !change.mutations.is_empty() {
            self.index_stale = true;
        }
        self.dead += change.mutations.iter().filter(|m| matches!(m, Mutation::Removed(_))).count() as u64;
        self.journal.record(&change);
        let total = total.max(0) as u64;
        // Once nothing is left (`CLEAR ALL`, `DROP ALL`), a new store gives all the dead
        // versions back at no cost.
        if total == 0 && self.store.is_empty().map_err(storage)? && self.store.named_graphs().next().is_none() {
            self.store = Store::new().map_err(storage)?;
            self.dead = 0;
        } else if self.dead > COMPACT_MIN.max(total / COMPACT_RATIO).max(self.compact_deferred) {
            self.compact(total)?;
        }
        Ok(self.report(before, total))
    }

    /// Rebuilds the store from its live quads (and empty named graphs), dropping the dead
    /// versions removals left behind. Blank nodes keep their ids. Skipped, and tried again after
    /// twice the removals, when the memory for a second store is not there.
    fn compact(&mut self, live: u64) -> Result<()> {
        if crate::memory::ensure_available(live.saturating_mul(COMPACT_BYTES_PER_QUAD), "compacting the graph store").is_err() {
            self.compact_deferred = self.dead.saturating_mul(2);
            return Ok(());
        }
        let store = Store::new().map_err(storage)?;
        {
            let mut transaction = store.start_transaction().map_err(storage)?;
            for graph in self.store.named_graphs() {
                transaction.insert_named_graph(graph.map_err(storage)?.as_ref());
            }
            for quad in self.store.iter() {
                transaction.insert(&quad.map_err(storage)?);
            }
            transaction.commit().map_err(storage)?;
        }
        self.store = store;
        self.dead = 0;
        self.compact_deferred = 0;
        Ok(())
    }

    fn rollback(&mut self, change: ChangeSet) -> Result<()> {
        for m in change.mutations.into_iter().rev() {
            match m {
                Mutation::Added(q) => self.store.remove(&q).map_err(storage)?,
                Mutation::Removed(q) => self.store.insert(&q).map_err(storage)?,
            }
        }
        Ok(())
    }

    pub fn insert(&mut self, facts: &[Fact]) -> Result<ChangeReport> {
        let quads = facts.iter().enumerate().map(|(i, f)| fact_quads(f, i, &self.store)).collect::<Result<Vec<_>>>()?;
        let ((), report) = self.write(|graph, change| {
            for q in quads.into_iter().flatten() {
                graph.put(q, change)?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    pub fn remove(&mut self, facts: &[Fact]) -> Result<ChangeReport> {
        let terms = facts.iter().enumerate().map(|(i, f)| fact_terms(f, i)).collect::<Result<Vec<_>>>()?;
        let ((), report) = self.write(|graph, change| {
            for (fact, (s, p, o)) in facts.iter().zip(terms) {
                graph.del(Quad::new(s.clone(), p.clone(), o.clone(), GraphName::DefaultGraph), change)?;
                let node = provenance_node(&s, &p, &o);
                let provenance = NamedNode::new_unchecked(PROVENANCE_GRAPH);
                let stale: Vec<Quad> = graph
                    .store
                    .quads_for_pattern(Some(node.as_ref().into()), None, None, Some(provenance.as_ref().into()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(storage)?;
                for q in stale {
                    graph.del(q, change)?;
                }
                // Entities named by plain strings got a label from us; drop it once nothing else
                // mentions them, so removed facts leave no ghost entities behind.
                let subject = match &s {
                    NamedOrBlankNode::NamedNode(n) => Some(n.clone()),
                    _ => None,
                };
                let object = match &o {
                    OxTerm::NamedNode(n) => Some(n.clone()),
                    _ => None,
                };
                for (name, node) in [(fact.subject.as_str(), subject), (object_name(fact), object)] {
                    if let Some(n) = node {
                        if !name.is_empty() && !has_scheme(name) && !graph.is_mentioned(&n)? {
                            graph.remove_labels(&n, change)?;
                        }
                    }
                }
            }
            Ok(())
        })?;
        Ok(report)
    }

    fn is_mentioned(&self, node: &NamedNode) -> Result<bool> {
        let label = NamedNode::new_unchecked(RDFS_LABEL);
        let as_subject = self
            .store
            .quads_for_pattern(Some(node.as_ref().into()), None, None, Some(GraphNameRef::DefaultGraph))
            .filter_map(|q| q.ok())
            .any(|q| q.predicate != label);
        let as_object = self
            .store
            .quads_for_pattern(None, None, Some(node.as_ref().into()), Some(GraphNameRef::DefaultGraph))
            .next()
            .is_some();
        let as_predicate = self
            .store
            .quads_for_pattern(None, Some(node.as_ref()), None, Some(GraphNameRef::DefaultGraph))
            .next()
            .is_some();
        Ok(as_subject || as_object || as_predicate)
    }

    fn remove_labels(&mut self, node: &NamedNode, change: &mut ChangeSet) -> Result<()> {
        let label = NamedNode::new_unchecked(RDFS_LABEL);
        let quads: Vec<Quad> = self
            .store
            .quads_for_pattern(Some(node.as_ref().into()), Some(label.as_ref()), None, Some(GraphNameRef::DefaultGraph))
            .collect::<std::result::Result<_, _>>()
            .map_err(storage)?;
        for q in quads {
            self.del(q, change)?;
        }
        Ok(())
    }

    /// SPARQL 1.1 query or update, under the evaluation [`budget`] and the [`shape`] limits.
    pub fn query(&mut self, sparql: &str, row_limit: u32) -> Result<QueryResult> {
        shape::check(sparql)?;
        let limit = if row_limit == 0 { usize::MAX } else { row_limit as usize };
        let budget = Budget::new();
        match self.prepare_query(sparql, &budget) {
            Ok(prepared) => {
                let _armed = budget.arm();
                let results = prepared.on_store(&self.store).execute().map_err(|e| budget.error(EVALUATING, e))?;
                read_results(results, limit, &budget)
            }
            Err(query_error) => match spargebra::SparqlParser::new().parse_update(sparql) {
                Ok(mut update) => {
                    cartesian::rewrite_update(&mut update);
                    Ok(QueryResult::Updated(self.run_update(&update)?))
                }
                Err(update_error) => {
                    let error = if looks_like_update(sparql) { update_error.to_string() } else { query_error.to_string() };
                    Err(EngineError::QuerySyntax(format!("SPARQL {error}")))
                }
            },
        }
    }

    /// A SPARQL 1.1 update only (a query is refused, as the SPARQL protocol's `update`
    /// parameter requires). `using_graphs` / `using_named_graphs` are the protocol's
    /// `using-graph-uri` / `using-named-graph-uri`: the dataset of every DELETE/INSERT WHERE.
    pub fn update(&mut self, sparql: &str, using_graphs: &[String], using_named_graphs: &[String]) -> Result<ChangeReport> {
        shape::check(sparql)?;
        let mut update = spargebra::SparqlParser::new().parse_update(sparql).map_err(|e| {
            let hint = if looks_like_update(sparql) { "" } else { " (a query was sent as an update)" };
            EngineError::QuerySyntax(format!("SPARQL {e}{hint}"))
        })?;
        cartesian::rewrite_update(&mut update);
        if !using_graphs.is_empty() || !using_named_graphs.is_empty() {
            let dataset = spargebra::algebra::QueryDataset {
                default: using_graphs.iter().map(|g| graph_iri(g, "using-graph-uri")).collect::<Result<_>>()?,
                named: Some(using_named_graphs.iter().map(|g| graph_iri(g, "using-named-graph-uri")).collect::<Result<_>>()?),
            };
            for op in &mut update.operations {
                if let spargebra::GraphUpdateOperation::DeleteInsert { using, .. } = op {
                    if using.is_some() {
                        return Err(EngineError::InvalidInput(
                            "the update has USING clauses and using-graph-uri/using-named-graph-uri were given too; the SPARQL protocol forbids both".into(),
                        ));
                    }
                    *using = Some(dataset.clone());
                }
            }
        }
        self.run_update(&update)
    }

    fn run_update(&mut self, update: &spargebra::Update) -> Result<ChangeReport> {
        let ((), report) = self.write(|graph, change| graph.apply_update(update, change))?;
        Ok(report)
    }

    /// A parsed query (from the cache when the same text came before), to be evaluated under
    /// `budget`.
    fn prepare_query(&mut self, sparql: &str, budget: &Budget) -> std::result::Result<PreparedSparqlQuery, oxigraph::sparql::SparqlSyntaxError> {
        let query = match self.parsed.get(sparql) {
            Some(query) => query.clone(),
            None => {
                let mut query = spargebra::SparqlParser::new().parse_query(sparql)?;
                cartesian::rewrite_query(&mut query);
                if self.parsed.len() >= PARSED_QUERIES {
                    self.parsed.clear();
                }
                self.parsed.insert(sparql.to_string(), query.clone());
                query
            }
        };
        Ok(SparqlEvaluator::new().with_cancellation_token(budget.token()).for_query(query))
    }

    /// A query only (an update is refused), its results serialized: solutions and booleans as
    /// `results`, graphs (CONSTRUCT, DESCRIBE) as `graph`. `default_graphs` / `named_graphs` are
    /// the SPARQL protocol's `default-graph-uri` / `named-graph-uri` (empty: the query's own
    /// FROM clauses, else the whole store).
    pub fn query_serialized(
        &mut self,
        sparql: &str,
        default_graphs: &[String],
        named_graphs: &[String],
        results: ResultsFormat,
        graph: RdfFormat,
        row_limit: u32,
    ) -> Result<SerializedResults> {
        shape::check(sparql)?;
        let budget = Budget::new();
        let mut prepared = self.prepare_query(sparql, &budget).map_err(|e| {
            let hint = if looks_like_update(sparql) { " (an update was sent as a query)" } else { "" };
            EngineError::QuerySyntax(format!("SPARQL {e}{hint}"))
        })?;
        if !default_graphs.is_empty() || !named_graphs.is_empty() {
            let dataset = prepared.dataset_mut();
            dataset.set_default_graph(default_graphs.iter().map(|g| graph_iri(g, "default-graph-uri").map(Into::into)).collect::<Result<_>>()?);
            dataset.set_available_named_graphs(named_graphs.iter().map(|g| graph_iri(g, "named-graph-uri").map(Into::into)).collect::<Result<_>>()?);
        }
        let _armed = budget.arm();
        let solutions = prepared.on_store(&self.store).execute().map_err(|e| budget.error(EVALUATING, e))?;
        let limit = if row_limit == 0 { usize::MAX } else { row_limit as usize };
        results::serialize(solutions, results, graph, limit, &budget)
    }

    /// All or nothing: parsed into one transaction, so a syntax error anywhere leaves the store
    /// as it was. (One pass, as `Store::load_from_slice`, but counting the new triples on the way
    /// so that the report needs no walk over the whole store.) Blank nodes get fresh labels, so
    /// two files never share one by accident.
    pub fn import(&mut self, format: RdfFormat, data: &[u8], options: &ImportOptions) -> Result<ChangeReport> {
        let mut parser = RdfParser::from_format(ox_format(format)).rename_blank_nodes();
        if let Some(base) = &options.base_iri {
            parser = parser
                .with_base_iri(base)
                .map_err(|e| EngineError::InvalidInput(format!("{format:?} import: base IRI {base:?} is not a valid IRI: {e}")))?;
        }
        if let Some(graph) = &options.graph {
            parser = parser.with_default_graph(graph_iri(graph, "import graph")?);
        }
        let before = self.len()?;
        let recording = self.journal.recording;
        let mut change = ChangeSet::default();
        let mut transaction = self.store.start_transaction().map_err(storage)?;
        let mut added = 0u64;
        for quad in parser.for_slice(data) {
            let quad = quad.map_err(|e| {
                let at = e.location().map(|l| format!(" at line {}, column {}", l.start.line + 1, l.start.column + 1));
                EngineError::InvalidInput(format!("{format:?} import{}: {e}; nothing was imported", at.unwrap_or_default()))
            })?;
            if !transaction.contains(&quad).map_err(storage)? {
                if !is_provenance(&quad) {
                    added += 1;
                }
                transaction.insert(&quad);
                if recording {
                    change.mutations.push(Mutation::Added(quad));
                }
            }
        }
        if recording {
            // Dropping the transaction uncommitted leaves the store as it was.
            changes::check_storable(change.mutations.iter().filter_map(|m| match m {
                Mutation::Added(q) => Some(q),
                Mutation::Removed(_) => None,
            }))?;
        }
        transaction.commit().map_err(storage)?;
        self.journal.record(&change);
        Ok(self.report(before, before + added))
    }

    /// Starts or stops recording changes (what was recorded and not taken is dropped).
    pub fn record_changes(&mut self, on: bool) {
        self.journal.set_recording(on);
    }

    /// The net change of the writes since recording started or changes were last taken, as
    /// patch text (see [`changes`]).
    pub fn take_changes(&mut self) -> Vec<u8> {
        self.journal.take()
    }

    /// Applies patch text recorded elsewhere (or undoes it, `reverse`), exactly: blank-node
    /// labels as written. All or nothing: a bad line leaves the graph as it was.
    pub fn apply_changes(&mut self, patch: &[u8], reverse: bool) -> Result<ChangeReport> {
        let mut patch = Patch::parse(patch)?;
        if reverse {
            patch = patch.reversed();
        }
        let ((), report) = self.write(|graph, change| {
            for q in patch.removed {
                graph.del(q, change)?;
            }
            for q in patch.added {
                graph.put(q, change)?;
            }
            Ok(())
        })?;
        Ok(report)
    }

    /// Replaces the graph with an N-Quads snapshot (labels kept) at `position`. Nothing is
    /// recorded: a snapshot is where a log starts, not a change in it.
    pub fn restore(&mut self, nquads: &[u8], position: u64) -> Result<ChangeReport> {
        let before = self.len()?;
        let store = Store::new().map_err(storage)?;
        {
            // A snapshot has no duplicates and the store is empty: no lookups per quad.
            let mut transaction = store.start_transaction().map_err(storage)?;
            for quad in changes::own_nquads().for_slice(nquads) {
                let quad = quad.map_err(|e| {
                    let at = e.location().map(|l| format!(" at line {}", l.start.line + 1));
                    EngineError::InvalidInput(format!("snapshot{}: {e}; the graph was left as it was", at.unwrap_or_default()))
                })?;
                transaction.insert(&quad);
            }
            transaction.commit().map_err(storage)?;
        }
        self.store = store;
        self.dead = 0;
        self.parsed.clear();
        self.log_position = position;
        self.index_stale = true;
        self.triples.set(None);
        let total = self.len()?;
        Ok(ChangeReport { changed: total.abs_diff(before), total })
    }

    /// The host's position in its change log that this graph reflects; the engine only keeps it
    /// (in a pre-initialized snapshot too), so a fresh instance knows which entries to replay.
    pub fn log_position(&self) -> u64 {
        self.log_position
    }

    pub fn set_log_position(&mut self, position: u64) {
        self.log_position = position;
    }

    /// Formats with named graphs hold every graph (provenance too); the others the default graph.
    pub fn export(&self, format: RdfFormat) -> Result<Vec<u8>> {
        let mut serializer = RdfSerializer::from_format(ox_format(format));
        if matches!(format, RdfFormat::Turtle | RdfFormat::TriG) {
            serializer = serializer.with_prefix("kg", NAMESPACE).map_err(storage)?.with_prefix("rdfs", "http://www.w3.org/2000/01/rdf-schema#").map_err(storage)?;
        }
        if format.has_datasets() {
            self.store.dump_to_writer(serializer, Vec::new()).map_err(storage)
        } else {
            self.store.dump_graph_to_writer(GraphNameRef::DefaultGraph, serializer, Vec::new()).map_err(storage)
        }
    }

    /// Every entity (IRI in subject or object position, not used as a predicate) with its label:
    /// its rdfs:label (untagged or English first), else a readable form of the IRI.
    pub fn entities(&self) -> Result<Vec<(String, String)>> {
        let mut labels: HashMap<String, (u8, String)> = HashMap::new();
        let mut predicates: HashSet<String> = HashSet::new();
        for q in self.store.quads_for_pattern(None, None, None, Some(GraphNameRef::DefaultGraph)) {
            let q = q.map_err(storage)?;
            predicates.insert(q.predicate.as_str().to_string());
            if let NamedOrBlankNode::NamedNode(s) = &q.subject {
                let entry = labels.entry(s.as_str().to_string()).or_insert((u8::MAX, String::new()));
                if q.predicate.as_str() == RDFS_LABEL {
                    if let OxTerm::Literal(l) = &q.object {
                        let rank = match l.language() {
                            None => 0,
                            Some(lang) if lang.starts_with("en") => 1,
                            Some(_) => 2,
                        };
                        if rank < entry.0 {
                            *entry = (rank, l.value().to_string());
                        }
                    }
                }
            }
            if let OxTerm::NamedNode(o) = &q.object {
                labels.entry(o.as_str().to_string()).or_insert((u8::MAX, String::new()));
            }
        }
        let mut out: Vec<(String, String)> = labels
            .into_iter()
            .filter(|(iri, _)| !predicates.contains(iri))
            .map(|(iri, (rank, label))| {
                let label = if rank == u8::MAX { readable(&iri) } else { label };
                (iri, label)
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// A readable label for any IRI (its rdfs:label, else from the IRI itself).
    pub fn label(&self, iri: &str) -> String {
        if let Some(l) = self.index.label(iri) {
            return l.to_string();
        }
        let Ok(node) = NamedNode::new(iri) else { return iri.to_string() };
        let label = NamedNode::new_unchecked(RDFS_LABEL);
        self.store
            .quads_for_pattern(Some(node.as_ref().into()), Some(label.as_ref()), None, Some(GraphNameRef::DefaultGraph))
            .filter_map(|q| q.ok())
            .find_map(|q| match q.object {
                OxTerm::Literal(l) => Some(l.value().to_string()),
                _ => None,
            })
            .unwrap_or_else(|| readable(iri))
    }

    /// Triples of the default graph matching the given positions.
    pub fn match_pattern(&self, subject: Option<&str>, predicate: Option<&str>, object: Option<&FactObject>, limit: u32) -> Result<Vec<Triple>> {
        let s = subject.map(|s| iri(s, "subject")).transpose()?;
        let p = predicate.map(|p| iri(p, "predicate")).transpose()?;
        let o: Option<OxTerm> = match object {
            None => None,
            Some(FactObject::Entity(e)) => Some(iri(e, "object")?.into()),
            Some(FactObject::Text(t)) => Some(OxLiteral::new_simple_literal(t.clone()).into()),
            Some(FactObject::Literal(l)) => Some(literal(l, "object")?.into()),
        };
        let limit = if limit == 0 { usize::MAX } else { limit as usize };
        let mut out = Vec::new();
        let quads = self.store.quads_for_pattern(
            s.as_ref().map(|s| s.as_ref().into()),
            p.as_ref().map(|p| p.as_ref()),
            o.as_ref().map(|o| o.as_ref()),
            Some(GraphNameRef::DefaultGraph),
        );
        for q in quads.take(limit) {
            let q = q.map_err(storage)?;
            out.push(Triple { subject: subject_term(&q.subject), predicate: Term::Iri(q.predicate.as_str().to_string()), object: term(&q.object) });
        }
        Ok(out)
    }

    /// Triples around `entity`, both directions, breadth first up to `hops`, at most `limit`.
    /// Labels and types of the visited nodes are left out: they are how entities are named, not
    /// facts about them.
    pub fn neighbors(&self, entity: &str, hops: u32, limit: u32) -> Result<Vec<Triple>> {
        let start = NamedNode::new(to_iri(entity))
            .map_err(|e| EngineError::InvalidInput(format!("entity {entity:?} is not a valid IRI: {e}")))?;
        let limit = if limit == 0 { usize::MAX } else { limit as usize };
        let mut seen_nodes: HashSet<NamedNode> = HashSet::from([start.clone()]);
        let mut frontier = vec![start];
        let mut out: Vec<Triple> = Vec::new();
        let mut seen_triples: HashSet<Triple> = HashSet::new();
        for _ in 0..hops.max(1) {
            let mut next = Vec::new();
            for node in &frontier {
                let outgoing = self.store.quads_for_pattern(Some(node.as_ref().into()), None, None, Some(GraphNameRef::DefaultGraph));
                let incoming = self.store.quads_for_pattern(None, None, Some(node.as_ref().into()), Some(GraphNameRef::DefaultGraph));
                for q in outgoing.chain(incoming) {
                    let q = q.map_err(storage)?;
                    if q.predicate.as_str() == RDFS_LABEL {
                        continue;
                    }
                    let triple = Triple {
                        subject: subject_term(&q.subject),
                        predicate: Term::Iri(q.predicate.as_str().to_string()),
                        object: term(&q.object),
                    };
                    if !seen_triples.insert(triple.clone()) {
                        continue;
                    }
                    out.push(triple);
                    if out.len() >= limit {
                        return Ok(out);
                    }
                    for end in [OxTerm::from(q.subject.clone()), q.object.clone()] {
                        if let OxTerm::NamedNode(n) = end {
                            if q.predicate.as_str() != RDF_TYPE && seen_nodes.insert(n.clone()) {
                                next.push(n);
                            }
                        }
                    }
                }
            }
            frontier = next;
        }
        Ok(out)
    }

    /// Confidence and source recorded for a triple, if any.
    pub fn provenance(&self, triple: &Triple) -> (Option<f32>, Option<String>) {
        let (Term::Iri(s), Term::Iri(p)) = (&triple.subject, &triple.predicate) else { return (None, None) };
        let Some(o) = ox_term(&triple.object) else { return (None, None) };
        let node = provenance_node(&NamedNode::new_unchecked(s.clone()).into(), &NamedNode::new_unchecked(p.clone()), &o);
        let graph = NamedNode::new_unchecked(PROVENANCE_GRAPH);
        let (mut confidence, mut source) = (None, None);
        for q in self.store.quads_for_pattern(Some(node.as_ref().into()), None, None, Some(graph.as_ref().into())).flatten() {
            if let OxTerm::Literal(l) = &q.object {
                match q.predicate.as_str().strip_prefix(NAMESPACE) {
                    Some("confidence") => confidence = l.value().parse().ok(),
                    Some("source") => source = Some(l.value().to_string()),
                    _ => {}
                }
            }
        }
        (confidence, source)
    }

    /// The sentence a model is given for a triple.
    pub fn verbalize(&self, t: &Triple) -> String {
        let name = |term: &Term| match term {
            Term::Iri(iri) => self.label(iri),
            Term::Literal(l) => l.value.clone(),
            Term::BlankNode(b) => format!("_:{b}"),
        };
        let is_type = matches!(&t.predicate, Term::Iri(p) if p == RDF_TYPE);
        verbalize::sentence(&name(&t.subject), &name(&t.predicate), &name(&t.object), is_type)
    }
}

const EVALUATING: &str = "evaluating the SPARQL query";

/// The first keyword after the prologue (PREFIX/BASE declarations) names an update form.
fn looks_like_update(sparql: &str) -> bool {
    let upper = sparql.to_ascii_uppercase();
    let words = upper.split(|c: char| c.is_whitespace() || c == '{' || c == '<');
    for w in words.filter(|w| !w.is_empty()) {
        match w {
            "SELECT" | "ASK" | "CONSTRUCT" | "DESCRIBE" => return false,
            "INSERT" | "DELETE" | "LOAD" | "CLEAR" | "CREATE" | "DROP" | "COPY" | "MOVE" | "ADD" | "WITH" => return true,
            _ => {}
        }
    }
    false
}

fn read_results(results: QueryResults, limit: usize, budget: &Budget) -> Result<QueryResult> {
    let evaluation = |e| budget.error(EVALUATING, e);
    Ok(match results {
        QueryResults::Boolean(b) => QueryResult::Boolean(b),
        QueryResults::Solutions(solutions) => {
            let variables: Vec<String> = solutions.variables().iter().map(|v| v.as_str().to_string()).collect();
            let mut rows = Vec::new();
            let mut truncated = false;
            for solution in solutions {
                budget.check()?;
                let solution = solution.map_err(evaluation)?;
                if rows.len() == limit {
                    truncated = true;
                    break;
                }
                rows.push(variables.iter().map(|v| solution.get(v.as_str()).map(term)).collect());
            }
            QueryResult::Solutions(Solutions { variables, rows, truncated })
        }
        QueryResults::Graph(triples) => {
            let mut out = Vec::new();
            for t in triples {
                budget.check()?;
                let t = t.map_err(evaluation)?;
                if out.len() == limit {
                    break;
                }
                out.push(Triple {
                    subject: subject_term(&t.subject),
                    predicate: Term::Iri(t.predicate.as_str().to_string()),
                    object: term(&t.object),
                });
            }
            QueryResult::Triples(out)
        }
    })
}

fn ox_format(format: RdfFormat) -> OxFormat {
    match format {
        RdfFormat::NTriples => OxFormat::NTriples,
        RdfFormat::NQuads => OxFormat::NQuads,
        RdfFormat::Turtle => OxFormat::Turtle,
        RdfFormat::TriG => OxFormat::TriG,
        RdfFormat::RdfXml => OxFormat::RdfXml,
        RdfFormat::JsonLd => OxFormat::JsonLd { profile: oxigraph::io::JsonLdProfileSet::empty() },
    }
}

pub fn term(t: &OxTerm) -> Term {
    match t {
        OxTerm::NamedNode(n) => Term::Iri(n.as_str().to_string()),
        OxTerm::BlankNode(b) => Term::BlankNode(b.as_str().to_string()),
        OxTerm::Literal(l) => Term::Literal(Literal {
            value: l.value().to_string(),
            datatype: l.datatype().as_str().to_string(),
            language: l.language().map(str::to_string),
        }),
        #[allow(unreachable_patterns)]
        _ => Term::Literal(Literal { value: t.to_string(), datatype: XSD_STRING.into(), language: None }),
    }
}

fn subject_term(s: &NamedOrBlankNode) -> Term {
    match s {
        NamedOrBlankNode::NamedNode(n) => Term::Iri(n.as_str().to_string()),
        NamedOrBlankNode::BlankNode(b) => Term::BlankNode(b.as_str().to_string()),
    }
}

fn ox_term(t: &Term) -> Option<OxTerm> {
    Some(match t {
        Term::Iri(i) => NamedNode::new(i.clone()).ok()?.into(),
        Term::Literal(l) => literal(l, "").ok()?.into(),
        Term::BlankNode(b) => oxigraph::model::BlankNode::new(b.clone()).ok()?.into(),
    })
}

/// A graph name given by IRI (SPARQL protocol parameters): full IRIs only.
fn graph_iri(name: &str, field: &str) -> Result<NamedNode> {
    NamedNode::new(name).map_err(|e| EngineError::InvalidInput(format!("{field} {name:?} is not a valid IRI: {e}")))
}

fn iri(name: &str, field: &str) -> Result<NamedNode> {
    if name.trim().is_empty() {
        return Err(EngineError::InvalidInput(format!("{field} is empty")));
    }
    NamedNode::new(to_iri(name)).map_err(|e| EngineError::InvalidInput(format!("{field} {name:?} is not a valid IRI: {e}")))
}

fn literal(l: &Literal, field: &str) -> Result<OxLiteral> {
    match &l.language {
        Some(lang) => OxLiteral::new_language_tagged_literal(l.value.clone(), lang.clone())
            .map_err(|e| EngineError::InvalidInput(format!("{field}: language tag {lang:?}: {e}"))),
        None if l.datatype.is_empty() || l.datatype == XSD_STRING => Ok(OxLiteral::new_simple_literal(l.value.clone())),
        None if l.datatype == RDF_LANG_STRING => {
            Err(EngineError::InvalidInput(format!("{field}: rdf:langString needs a language")))
        }
        None => {
            let dt = NamedNode::new(l.datatype.clone())
                .map_err(|e| EngineError::InvalidInput(format!("{field}: datatype {:?}: {e}", l.datatype)))?;
            Ok(OxLiteral::new_typed_literal(l.value.clone(), dt))
        }
    }
}

fn object_name(fact: &Fact) -> &str {
    match &fact.object {
        FactObject::Entity(e) => e,
        _ => "",
    }
}

fn fact_terms(fact: &Fact, i: usize) -> Result<(NamedOrBlankNode, NamedNode, OxTerm)> {
    let s = iri(&fact.subject, &format!("facts[{i}].subject"))?;
    let p = iri(&fact.predicate, &format!("facts[{i}].predicate"))?;
    let o: OxTerm = match &fact.object {
        FactObject::Entity(e) => iri(e, &format!("facts[{i}].object"))?.into(),
        FactObject::Text(t) => OxLiteral::new_simple_literal(t.clone()).into(),
        FactObject::Literal(l) => literal(l, &format!("facts[{i}].object"))?.into(),
    };
    Ok((s.into(), p, o))
}

/// The quads for one fact: the triple, labels for entities given as plain names (unless they
/// have one), and provenance when given.
fn fact_quads(fact: &Fact, i: usize, store: &Store) -> Result<Vec<Quad>> {
    if let Some(c) = fact.confidence {
        if !(0.0..=1.0).contains(&c) {
            return Err(EngineError::InvalidInput(format!("facts[{i}].confidence is {c}; expected 0 to 1")));
        }
    }
    let (s, p, o) = fact_terms(fact, i)?;
    let mut quads = vec![Quad::new(s.clone(), p.clone(), o.clone(), GraphName::DefaultGraph)];
    let label = NamedNode::new_unchecked(RDFS_LABEL);
    let mut named: BTreeSet<(String, String)> = BTreeSet::new();
    for name in [fact.subject.as_str(), fact.predicate.as_str(), object_name(fact)] {
        if !name.is_empty() && !has_scheme(name) {
            named.insert((to_iri(name), name.trim().to_string()));
        }
    }
    for (node, name) in named {
        let node = NamedNode::new_unchecked(node);
        let has_label = store
            .quads_for_pattern(Some(node.as_ref().into()), Some(label.as_ref()), None, Some(GraphNameRef::DefaultGraph))
            .next()
            .is_some();
        if !has_label {
            quads.push(Quad::new(node, label.clone(), OxLiteral::new_simple_literal(name), GraphName::DefaultGraph));
        }
    }
    if fact.confidence.is_some() || fact.source.is_some() {
        let node = provenance_node(&s, &p, &o);
        let graph = GraphName::NamedNode(NamedNode::new_unchecked(PROVENANCE_GRAPH));
        let ns = |local: &str| NamedNode::new_unchecked(format!("{NAMESPACE}{local}"));
        let mut add = |pred: NamedNode, obj: OxTerm| quads.push(Quad::new(node.clone(), pred, obj, graph.clone()));
        add(NamedNode::new_unchecked(RDF_SUBJECT), OxTerm::from(s.clone()));
        add(NamedNode::new_unchecked(RDF_PREDICATE), p.clone().into());
        add(NamedNode::new_unchecked(RDF_OBJECT), o.clone());
        if let Some(c) = fact.confidence {
            add(ns("confidence"), OxLiteral::new_typed_literal(c.to_string(), NamedNode::new_unchecked(XSD_DOUBLE)).into());
        }
        if let Some(src) = &fact.source {
            add(ns("source"), OxLiteral::new_simple_literal(src.clone()).into());
        }
    }
    Ok(quads)
}

/// A stable IRI for the statement node that carries a triple's provenance.
fn provenance_node(s: &NamedOrBlankNode, p: &NamedNode, o: &OxTerm) -> NamedNode {
    let text = format!("{s} {p} {o}");
    // FNV-1a: stable across runs and platforms, no dependency.
    let hash = text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    NamedNode::new_unchecked(format!("urn:llmkg:fact:{hash:016x}"))
}

