//! SPARQL 1.1 Update with exact changes: each operation's quads are worked out (spareval, the
//! evaluator oxigraph itself uses, finds the DELETE/INSERT WHERE solutions and instantiates
//! the templates) and then applied one by one through the graph's [`ChangeSet`], so the graph
//! knows precisely what an update removed and added. Oxigraph's own `update` cannot say that,
//! and a log of changes (rather than of update texts) is what makes replay exact: `NOW()`,
//! `RAND()`, `UUID()` and fresh blank nodes are evaluated once, by the writer.

use std::collections::HashMap;

use oxigraph::model::{
    BlankNode, GraphName, GraphNameRef, NamedNodeRef, NamedOrBlankNode, NamedOrBlankNodeRef, Quad, Term, TermRef,
};
use oxigraph::store::{StorageError, Store};
use spareval::{DeleteInsertQuad, InternalQuad, QueryEvaluator, QueryableDataset};
use spargebra::algebra::GraphTarget;
use spargebra::term::{GroundQuad, GroundTerm, Quad as UpdateQuad, Term as UpdateTerm};
use spargebra::GraphUpdateOperation;

use super::budget::Budget;
use super::changes::ChangeSet;
use super::KnowledgeGraph;
use crate::error::{EngineError, Result};

const UPDATING: &str = "SPARQL update";

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::InvalidInput(format!("SPARQL update: {e}"))
}

impl KnowledgeGraph {
    /// Applies every operation of `update` in order (each sees the ones before). On an error
    /// the caller rolls `change` back, so an update is all or nothing.
    pub(super) fn apply_update(&mut self, update: &spargebra::Update, change: &mut ChangeSet) -> Result<()> {
        for op in &update.operations {
            match op {
                GraphUpdateOperation::InsertData { data } => {
                    // Blank nodes in INSERT DATA are fresh for each operation.
                    let mut fresh = HashMap::new();
                    for q in data {
                        self.put(insert_data_quad(q, &mut fresh), change)?;
                    }
                }
                GraphUpdateOperation::DeleteData { data } => {
                    for q in data {
                        self.del(ground_quad(q), change)?;
                    }
                }
                GraphUpdateOperation::DeleteInsert { delete, insert, using, pattern } => {
                    let budget = Budget::new();
                    let evaluator = QueryEvaluator::new().with_cancellation_token(budget.token());
                    let prepared = evaluator.prepare_delete_insert(delete.clone(), insert.clone(), update.base_iri.clone(), using.clone(), pattern);
                    let mutations = {
                        let _armed = budget.arm();
                        let mut mutations = Vec::new();
                        for m in prepared.execute(StoreDataset(&self.store)).map_err(|e| budget.error(UPDATING, e))? {
                            budget.check()?;
                            mutations.push(m.map_err(|e| budget.error(UPDATING, e))?);
                        }
                        mutations
                    };
                    // All deletions, then all insertions, as the standard says.
                    for m in &mutations {
                        if let DeleteInsertQuad::Delete(q) = m {
                            self.del(q.clone(), change)?;
                        }
                    }
                    for m in mutations {
                        if let DeleteInsertQuad::Insert(q) = m {
                            self.put(q, change)?;
                        }
                    }
                }
                GraphUpdateOperation::Load { silent, source, .. } => {
                    if !silent {
                        return Err(EngineError::Unsupported(format!(
                            "SPARQL update: LOAD <{}>: the component has no network access; import the data instead",
                            source.as_str()
                        )));
                    }
                }
                GraphUpdateOperation::Clear { silent, graph } => self.clear(graph, *silent, false, change)?,
                GraphUpdateOperation::Drop { silent, graph } => self.clear(graph, *silent, true, change)?,
                GraphUpdateOperation::Create { silent, graph } => {
                    if self.store.contains_named_graph(graph.as_ref()).map_err(super::storage)? {
                        if !silent {
                            return Err(failed(format!("CREATE GRAPH <{}>: the graph already exists", graph.as_str())));
                        }
                    } else {
                        // An empty named graph holds no quads, so it is not part of any change.
                        self.store.insert_named_graph(graph.as_ref()).map_err(super::storage)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// CLEAR (keeps the named graphs, emptied) or DROP (removes them too).
    fn clear(&mut self, target: &GraphTarget, silent: bool, drop: bool, change: &mut ChangeSet) -> Result<()> {
        let quads: Vec<Quad> = match target {
            GraphTarget::NamedNode(g) => {
                if !self.store.contains_named_graph(g.as_ref()).map_err(super::storage)? {
                    if silent {
                        return Ok(());
                    }
                    let verb = if drop { "DROP" } else { "CLEAR" };
                    return Err(failed(format!("{verb} GRAPH <{}>: the graph does not exist", g.as_str())));
                }
                self.quads(None, None, None, Some(GraphNameRef::NamedNode(g.as_ref())))?
            }
            GraphTarget::DefaultGraph => self.quads(None, None, None, Some(GraphNameRef::DefaultGraph))?,
            GraphTarget::NamedGraphs => {
                let mut all = self.quads(None, None, None, None)?;
                all.retain(|q| !q.graph_name.is_default_graph());
                all
            }
            GraphTarget::AllGraphs => self.quads(None, None, None, None)?,
        };
        for q in quads {
            self.del(q, change)?;
        }
        if drop {
            let names: Vec<NamedOrBlankNode> = match target {
                GraphTarget::NamedNode(g) => vec![g.clone().into()],
                GraphTarget::DefaultGraph => vec![],
                GraphTarget::NamedGraphs | GraphTarget::AllGraphs => {
                    self.store.named_graphs().collect::<std::result::Result<_, _>>().map_err(super::storage)?
                }
            };
            for g in names {
                self.store.remove_named_graph(g.as_ref()).map_err(super::storage)?;
            }
        }
        Ok(())
    }

    fn quads(
        &self,
        s: Option<NamedOrBlankNodeRef<'_>>,
        p: Option<NamedNodeRef<'_>>,
        o: Option<TermRef<'_>>,
        g: Option<GraphNameRef<'_>>,
    ) -> Result<Vec<Quad>> {
        self.store.quads_for_pattern(s, p, o, g).collect::<std::result::Result<_, _>>().map_err(super::storage)
    }
}

fn insert_data_quad(q: &UpdateQuad, fresh: &mut HashMap<BlankNode, BlankNode>) -> Quad {
    let mut bnode = |b: &BlankNode| fresh.entry(b.clone()).or_default().clone();
    let subject: NamedOrBlankNode = match &q.subject {
        NamedOrBlankNode::NamedNode(n) => n.clone().into(),
        NamedOrBlankNode::BlankNode(b) => bnode(b).into(),
    };
    let object: Term = match &q.object {
        UpdateTerm::NamedNode(n) => n.clone().into(),
        UpdateTerm::BlankNode(b) => bnode(b).into(),
        UpdateTerm::Literal(l) => l.clone().into(),
    };
    let graph_name = match &q.graph_name {
        spargebra::term::GraphName::NamedNode(g) => GraphName::NamedNode(g.clone()),
        spargebra::term::GraphName::DefaultGraph => GraphName::DefaultGraph,
    };
    Quad::new(subject, q.predicate.clone(), object, graph_name)
}

fn ground_quad(q: &GroundQuad) -> Quad {
    let object: Term = match &q.object {
        GroundTerm::NamedNode(n) => n.clone().into(),
        GroundTerm::Literal(l) => l.clone().into(),
    };
    let graph_name = match &q.graph_name {
        spargebra::term::GraphName::NamedNode(g) => GraphName::NamedNode(g.clone()),
        spargebra::term::GraphName::DefaultGraph => GraphName::DefaultGraph,
    };
    Quad::new(q.subject.clone(), q.predicate.clone(), object, graph_name)
}

/// The store as spareval sees a dataset. Terms are owned RDF terms: updates are not the hot
/// path (queries go through oxigraph's own encoded evaluation).
struct StoreDataset<'a>(&'a Store);

type QuadResults<'a> = Box<dyn Iterator<Item = std::result::Result<InternalQuad<Term>, StorageError>> + 'a>;

impl<'a> QueryableDataset<'a> for StoreDataset<'a> {
    type InternalTerm = Term;
    type Error = StorageError;

    fn internal_quads_for_pattern(
        &self,
        subject: Option<&Term>,
        predicate: Option<&Term>,
        object: Option<&Term>,
        graph_name: Option<Option<&Term>>,
    ) -> impl Iterator<Item = std::result::Result<InternalQuad<Term>, StorageError>> + use<'a> {
        let nothing = || -> QuadResults<'a> { Box::new(std::iter::empty()) };
        let subject = match subject {
            None => None,
            Some(Term::NamedNode(n)) => Some(NamedOrBlankNodeRef::from(n.as_ref())),
            Some(Term::BlankNode(b)) => Some(b.as_ref().into()),
            Some(_) => return nothing(),
        };
        let predicate = match predicate {
            None => None,
            Some(Term::NamedNode(n)) => Some(n.as_ref()),
            Some(_) => return nothing(),
        };
        // `None`: any named graph, but not the default one.
        let (graph, named_only) = match graph_name {
            None => (None, true),
            Some(None) => (Some(GraphNameRef::DefaultGraph), false),
            Some(Some(Term::NamedNode(n))) => (Some(GraphNameRef::NamedNode(n.as_ref())), false),
            Some(Some(Term::BlankNode(b))) => (Some(GraphNameRef::BlankNode(b.as_ref())), false),
            Some(Some(_)) => return nothing(),
        };
        let quads = self.0.quads_for_pattern(subject, predicate, object.map(Term::as_ref), graph);
        Box::new(quads.filter_map(move |q| match q {
            Err(e) => Some(Err(e)),
            Ok(q) if named_only && q.graph_name.is_default_graph() => None,
            Ok(q) => Some(Ok(InternalQuad {
                subject: q.subject.into(),
                predicate: q.predicate.into(),
                object: q.object,
                graph_name: match q.graph_name {
                    GraphName::NamedNode(n) => Some(n.into()),
                    GraphName::BlankNode(b) => Some(b.into()),
                    GraphName::DefaultGraph => None,
                },
            })),
        })) as QuadResults<'a>
    }

    fn internalize_term(&self, term: Term) -> std::result::Result<Term, StorageError> {
        Ok(term)
    }

    fn externalize_term(&self, term: Term) -> std::result::Result<Term, StorageError> {
        Ok(term)
    }
}
