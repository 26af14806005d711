//! Query answers, ours and expected, in one shape, compared as the W3C rules say: solutions as a
//! multiset (in order only where the query has ORDER BY, and then only by its sort keys, since
//! ties may come in any order), blank nodes up to a consistent renaming, graphs and datasets up
//! to isomorphism (oxrdf's canonicalization).

use std::collections::{BTreeSet, HashMap};

use oxigraph::io::{RdfFormat, RdfParser};
use oxigraph::model::dataset::CanonicalizationAlgorithm;
use oxigraph::model::{BlankNode, Dataset, Graph, Literal, NamedNode, NamedOrBlankNode, Term, Triple};
use oxigraph::sparql::results::{QueryResultsFormat, QueryResultsParser, ReaderQueryResultsParserOutput};

const RS: &str = "http://www.w3.org/2001/sw/DataAccess/tests/result-set#";
const RDF_TYPE: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type";
const XSD_STRING: &str = "http://www.w3.org/2001/XMLSchema#string";
const RDF_LANG_STRING: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString";

/// One solution: (variable, value) pairs, unbound variables absent.
pub type Row = Vec<(String, Term)>;

#[derive(Debug)]
pub enum Answer {
    Boolean(bool),
    Solutions { variables: BTreeSet<String>, rows: Vec<Row> },
    Graph(Graph),
}

/// A term the component returned, as an RDF term.
pub fn term(t: &llmkg_host::Term) -> Term {
    match t {
        llmkg_host::Term::Iri(i) => NamedNode::new_unchecked(i.clone()).into(),
        llmkg_host::Term::BlankNode(b) => BlankNode::new_unchecked(b.clone()).into(),
        llmkg_host::Term::Literal(l) => match &l.language {
            Some(lang) => Literal::new_language_tagged_literal_unchecked(l.value.clone(), lang.clone()).into(),
            None if l.datatype == XSD_STRING || l.datatype.is_empty() => Literal::new_simple_literal(l.value.clone()).into(),
            None if l.datatype == RDF_LANG_STRING => Literal::new_simple_literal(l.value.clone()).into(),
            None => Literal::new_typed_literal(l.value.clone(), NamedNode::new_unchecked(l.datatype.clone())).into(),
        },
    }
}

fn subject(t: &llmkg_host::Term) -> NamedOrBlankNode {
    match term(t) {
        Term::NamedNode(n) => n.into(),
        Term::BlankNode(b) => b.into(),
        other => panic!("a literal as subject: {other}"),
    }
}

/// What the component answered.
pub fn ours(result: llmkg_host::QueryResult) -> Result<Answer, String> {
    Ok(match result {
        llmkg_host::QueryResult::Boolean(b) => Answer::Boolean(b),
        llmkg_host::QueryResult::Solutions(s) => {
            if s.truncated {
                return Err("the component truncated the solutions".into());
            }
            let rows = s
                .rows
                .iter()
                .map(|r| s.variables.iter().zip(r).filter_map(|(v, t)| t.as_ref().map(|t| (v.clone(), term(t)))).collect())
                .collect();
            Answer::Solutions { variables: s.variables.into_iter().collect(), rows }
        }
        llmkg_host::QueryResult::Triples(ts) => Answer::Graph(
            ts.iter()
                .map(|t| {
                    let llmkg_host::Term::Iri(p) = &t.predicate else { panic!("a predicate that is not an IRI: {:?}", t.predicate) };
                    Triple::new(subject(&t.subject), NamedNode::new_unchecked(p.clone()), term(&t.object))
                })
                .collect(),
        ),
        llmkg_host::QueryResult::Updated(_) => return Err("the query ran as an update".into()),
    })
}

pub fn rdf_format(url: &str) -> Option<RdfFormat> {
    RdfFormat::from_extension(url.rsplit('.').next()?)
}

pub fn parse_graph(data: &[u8], url: &str) -> Result<Graph, String> {
    let format = rdf_format(url).ok_or_else(|| format!("{url}: not an RDF file"))?;
    let parser = RdfParser::from_format(format).with_base_iri(url).map_err(|e| e.to_string())?;
    parser.for_slice(data).map(|q| q.map(Triple::from).map_err(|e| format!("{url}: {e}"))).collect()
}

/// An expected dataset. Read leniently: the expected files are the reference, and a few hold
/// IRIs that oxiri refuses though Turtle admits them (U+E0000..U+E0FFF in local names).
pub fn parse_dataset(data: &[u8], url: &str, graph: Option<&str>) -> Result<Dataset, String> {
    let format = rdf_format(url).ok_or_else(|| format!("{url}: not an RDF file"))?;
    let mut parser = RdfParser::from_format(format).with_base_iri(url).map_err(|e| e.to_string())?.lenient();
    if let Some(g) = graph {
        parser = parser.with_default_graph(NamedNode::new(g).map_err(|e| e.to_string())?);
    }
    parser.for_slice(data).map(|q| q.map_err(|e| format!("{url}: {e}"))).collect()
}

/// The expected answer in `data` (the file at `url`): a SPARQL results file, or an RDF graph that
/// is a result set (`rs:ResultSet`, for SELECT and ASK) or the graph a CONSTRUCT should build.
/// Also says whether the file fixes an order (`rs:index`, or a results file, which is a sequence).
pub fn expected(data: &[u8], url: &str, graph_query: bool) -> Result<(Answer, bool), String> {
    let extension = url.rsplit('.').next().unwrap_or("");
    if let Some(format) = QueryResultsFormat::from_extension(extension).filter(|f| *f != QueryResultsFormat::Csv) {
        return match QueryResultsParser::from_format(format).for_reader(data).map_err(|e| format!("{url}: {e}"))? {
            ReaderQueryResultsParserOutput::Boolean(b) => Ok((Answer::Boolean(b), false)),
            ReaderQueryResultsParserOutput::Solutions(solutions) => {
                let variables = solutions.variables().iter().map(|v| v.as_str().to_string()).collect();
                let mut rows = Vec::new();
                for s in solutions {
                    let s = s.map_err(|e| format!("{url}: {e}"))?;
                    rows.push(s.iter().map(|(v, t)| (v.as_str().to_string(), t.clone())).collect());
                }
                Ok((Answer::Solutions { variables, rows }, true))
            }
        };
    }
    let graph = parse_graph(data, url)?;
    if graph_query {
        return Ok((Answer::Graph(graph), false));
    }
    result_set(&graph).ok_or_else(|| format!("{url}: no rs:ResultSet in the expected graph"))
}

/// A result set written in the DAWG result-set vocabulary.
fn result_set(g: &Graph) -> Option<(Answer, bool)> {
    let rs = |local: &str| NamedNode::new_unchecked(format!("{RS}{local}"));
    let set = g.subjects_for_predicate_object(&NamedNode::new_unchecked(RDF_TYPE), &rs("ResultSet")).next()?.into_owned();
    if let Some(Term::Literal(b)) = g.object_for_subject_predicate(&set, &rs("boolean")).map(|t| t.into_owned()) {
        return Some((Answer::Boolean(b.value() == "true"), false));
    }
    let variables = g
        .objects_for_subject_predicate(&set, &rs("resultVariable"))
        .filter_map(|t| match t.into_owned() {
            Term::Literal(l) => Some(l.value().to_string()),
            _ => None,
        })
        .collect();
    let mut indexed = Vec::new();
    let mut ordered = false;
    for solution in g.objects_for_subject_predicate(&set, &rs("solution")) {
        let solution: NamedOrBlankNode = match solution.into_owned() {
            Term::BlankNode(b) => b.into(),
            Term::NamedNode(n) => n.into(),
            _ => continue,
        };
        let index = g.object_for_subject_predicate(&solution, &rs("index")).and_then(|t| match t.into_owned() {
            Term::Literal(l) => l.value().parse::<i64>().ok(),
            _ => None,
        });
        ordered |= index.is_some();
        let mut row = Row::new();
        for binding in g.objects_for_subject_predicate(&solution, &rs("binding")) {
            let binding: NamedOrBlankNode = match binding.into_owned() {
                Term::BlankNode(b) => b.into(),
                Term::NamedNode(n) => n.into(),
                _ => continue,
            };
            let variable = g.object_for_subject_predicate(&binding, &rs("variable")).map(|t| t.into_owned());
            let value = g.object_for_subject_predicate(&binding, &rs("value")).map(|t| t.into_owned());
            if let (Some(Term::Literal(v)), Some(value)) = (variable, value) {
                row.push((v.value().to_string(), value));
            }
        }
        indexed.push((index.unwrap_or(0), row));
    }
    indexed.sort_by_key(|(i, _)| *i);
    Some((Answer::Solutions { variables, rows: indexed.into_iter().map(|(_, r)| r).collect() }, ordered))
}

/// A row with its variables in order, and its shape: blank nodes all alike.
fn sorted(row: &Row) -> Row {
    let mut r = row.clone();
    r.sort_by(|a, b| a.0.cmp(&b.0));
    r
}

fn shape(row: &Row) -> Vec<(String, String)> {
    row.iter()
        .map(|(v, t)| {
            let t = match t {
                Term::BlankNode(_) => "_:".to_string(),
                other => other.to_string(),
            };
            (v.clone(), t)
        })
        .collect()
}

fn has_blank(row: &Row) -> bool {
    row.iter().any(|(_, t)| t.is_blank_node())
}

/// Whether two multisets of solutions are equal up to a renaming of blank nodes. Rows without
/// blank nodes are compared sorted; the others by a search for a consistent renaming (result
/// sets are small, and rows are only tried against rows of the same shape). Canonicalizing the
/// solutions as a result-set graph would say the same, but its blank nodes are so symmetric that
/// oxrdf's canonicalization takes minutes on a few dozen rows.
fn same_solutions(a: &[Row], b: &[Row]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a, b): (Vec<Row>, Vec<Row>) = (a.iter().map(sorted).collect(), b.iter().map(sorted).collect());
    let mut shapes_a: Vec<_> = a.iter().map(shape).collect();
    let mut shapes_b: Vec<_> = b.iter().map(shape).collect();
    shapes_a.sort();
    shapes_b.sort();
    if shapes_a != shapes_b {
        return false;
    }
    let (blank_a, blank_b): (Vec<&Row>, Vec<&Row>) = (a.iter().filter(|r| has_blank(r)).collect(), b.iter().filter(|r| has_blank(r)).collect());
    let mut used = vec![false; blank_b.len()];
    let mut budget = 1_000_000u32;
    rename(&blank_a, &blank_b, &mut used, &mut HashMap::new(), &mut HashMap::new(), &mut budget)
}

/// Matches `a[0]` to an unused row of `b` under the renaming built so far, then the rest.
fn rename(
    a: &[&Row],
    b: &[&Row],
    used: &mut [bool],
    forward: &mut HashMap<String, String>,
    backward: &mut HashMap<String, String>,
    budget: &mut u32,
) -> bool {
    let Some((row, rest)) = a.split_first() else { return true };
    for (i, candidate) in b.iter().enumerate() {
        if used[i] || shape(row) != shape(candidate) {
            continue;
        }
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let (mut f, mut w) = (forward.clone(), backward.clone());
        let fits = row.iter().zip(candidate.iter()).all(|((_, x), (_, y))| match (x, y) {
            (Term::BlankNode(x), Term::BlankNode(y)) => {
                let (x, y) = (x.as_str().to_string(), y.as_str().to_string());
                let ok = f.get(&x).is_none_or(|m| *m == y) && w.get(&y).is_none_or(|m| *m == x);
                f.insert(x.clone(), y.clone());
                w.insert(y, x);
                ok
            }
            _ => true,
        });
        if fits {
            used[i] = true;
            if rename(rest, b, used, &mut f, &mut w, budget) {
                return true;
            }
            used[i] = false;
        }
    }
    false
}

fn canonical_graph(mut g: Graph) -> Graph {
    g.canonicalize(CanonicalizationAlgorithm::Unstable);
    g
}

pub fn canonical_dataset(mut d: Dataset) -> Dataset {
    d.canonicalize(CanonicalizationAlgorithm::Unstable);
    d
}

/// The values of `keys` in each row, blank nodes made anonymous (their labels are arbitrary).
fn key_sequence(rows: &[Row], keys: &[String]) -> Vec<Vec<Option<String>>> {
    rows.iter()
        .map(|row| {
            keys.iter()
                .map(|k| {
                    row.iter().find(|(v, _)| v == k).map(|(_, t)| match t {
                        Term::BlankNode(_) => "_:".to_string(),
                        other => other.to_string(),
                    })
                })
                .collect()
        })
        .collect()
}

/// `None` when `got` is what `want` says, else what differs. `order_keys`: the query's ORDER BY
/// variables, when every sort key is a plain variable (else order is not checked).
pub fn compare(got: &Answer, want: &Answer, want_ordered: bool, order_keys: Option<&[String]>) -> Option<String> {
    match (got, want) {
        (Answer::Boolean(a), Answer::Boolean(b)) if a == b => None,
        (Answer::Solutions { variables: va, rows: ra }, Answer::Solutions { variables: vb, rows: rb }) => {
            if va != vb {
                return Some(format!("variables {va:?}, expected {vb:?}"));
            }
            if !same_solutions(ra, rb) {
                return Some(format!("solutions differ:\n  got      {}\n  expected {}", show(ra), show(rb)));
            }
            if let (true, Some(keys)) = (want_ordered, order_keys) {
                if key_sequence(ra, keys) != key_sequence(rb, keys) {
                    return Some(format!("same solutions, other order by {keys:?}:\n  got      {}\n  expected {}", show(ra), show(rb)));
                }
            }
            None
        }
        (Answer::Graph(a), Answer::Graph(b)) => {
            if canonical_graph(a.clone()) == canonical_graph(b.clone()) {
                None
            } else {
                Some(format!("graphs differ:\n  got      {a}\n  expected {b}"))
            }
        }
        _ => Some(format!("got {}, expected {}", brief(got), brief(want))),
    }
}

fn brief(a: &Answer) -> String {
    match a {
        Answer::Boolean(b) => format!("boolean {b}"),
        Answer::Solutions { rows, .. } => format!("{} solutions: {}", rows.len(), show(rows)),
        Answer::Graph(g) => format!("a graph of {} triples", g.len()),
    }
}

/// Rows on one line, at most a few of them.
fn show(rows: &[Row]) -> String {
    let mut text: Vec<String> = rows
        .iter()
        .take(6)
        .map(|r| format!("{{{}}}", r.iter().map(|(v, t)| format!("?{v}={t}")).collect::<Vec<_>>().join(" ")))
        .collect();
    if rows.len() > 6 {
        text.push(format!("... ({} in all)", rows.len()));
    }
    if text.is_empty() {
        "(none)".into()
    } else {
        text.join(" ")
    }
}

/// Datasets compared up to isomorphism; `None` when equal, else the quads that differ.
pub fn compare_datasets(got: Dataset, want: Dataset) -> Option<String> {
    let (got, want) = (canonical_dataset(got), canonical_dataset(want));
    if got == want {
        return None;
    }
    let lines = |d: &Dataset| d.iter().map(|q| q.to_string()).collect::<BTreeSet<_>>();
    let (g, w) = (lines(&got), lines(&want));
    let missing: Vec<&String> = w.difference(&g).take(4).collect();
    let extra: Vec<&String> = g.difference(&w).take(4).collect();
    Some(format!("datasets differ: missing {missing:?}, unexpected {extra:?}"))
}
