//! Reads the W3C test manifests (Turtle, natively, with oxigraph's parser) into plain [`Test`]
//! records. Files are named by their official URLs (the suite's base + the path inside it), as
//! the W3C harnesses name them, so that relative IRIs in the data resolve to what the expected
//! results say; [`Suite::local`] maps a URL back to the file under the extracted suites.

use std::path::{Path, PathBuf};

use oxigraph::io::{RdfFormat, RdfParser};
use oxigraph::model::{NamedNode, NamedOrBlankNodeRef, Term};
use oxigraph::store::Store;

const MF: &str = "http://www.w3.org/2001/sw/DataAccess/tests/test-manifest#";
const QT: &str = "http://www.w3.org/2001/sw/DataAccess/tests/test-query#";
const UT: &str = "http://www.w3.org/2009/sparql/tests/test-update#";
const DAWGT: &str = "http://www.w3.org/2001/sw/DataAccess/tests/test-dawg#";
const RDFT: &str = "http://www.w3.org/ns/rdftest#";
const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const RDFS_LABEL: &str = "http://www.w3.org/2000/01/rdf-schema#label";

/// One suite of the rdflib sdist: its directory, official base URL and top manifests.
pub struct Suite {
    pub name: &'static str,
    pub dir: PathBuf,
    pub base: &'static str,
    pub manifests: &'static [&'static str],
}

impl Suite {
    pub fn url(&self, relative: &str) -> String {
        format!("{}{relative}", self.base)
    }

    /// The local file of an official URL of this suite.
    pub fn local(&self, url: &str) -> Option<PathBuf> {
        let relative = url.strip_prefix(self.base)?;
        let relative = relative.split('#').next().unwrap_or(relative);
        Some(self.dir.join(relative))
    }

    pub fn read(&self, url: &str) -> Result<Vec<u8>, String> {
        let path = self.local(url).ok_or_else(|| format!("{url} is outside the {} suite", self.name))?;
        std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A file and the graph it goes into (None: the default graph).
#[derive(Debug, Clone)]
pub struct GraphFile {
    pub file: String,
    pub graph: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Test {
    /// The test's IRI.
    pub iri: String,
    /// The local name of its type, e.g. `TestTurtleEval`, `QueryEvaluationTest`.
    pub kind: String,
    /// The file under test: the document (RDF tests), query or update.
    pub action: Option<String>,
    /// The starting dataset (query and update evaluation).
    pub data: Vec<GraphFile>,
    /// The expected result file (RDF and query evaluation).
    pub result: Option<String>,
    /// The expected dataset (update evaluation).
    pub result_data: Vec<GraphFile>,
    /// The update must fail (ut:result ut:failure).
    pub expects_failure: bool,
    /// dawgt:approval / rdft:approval, local name (Approved, Withdrawn, Rejected, ...).
    pub approval: Option<String>,
    /// qt:serviceData is given: the test needs SERVICE endpoints.
    pub needs_service: bool,
    /// The manifest's directory, relative to the suite (e.g. `aggregates`).
    pub manifest_dir: String,
}

/// Every test of the suite's manifests, following mf:include, in manifest order.
pub fn tests(suite: &Suite) -> Vec<Test> {
    let mut out = Vec::new();
    for m in suite.manifests {
        read_manifest(suite, &suite.url(m), &mut out);
    }
    out
}

fn read_manifest(suite: &Suite, url: &str, out: &mut Vec<Test>) {
    let data = suite.read(url).unwrap_or_else(|e| panic!("manifest: {e}"));
    let store = Store::new().unwrap();
    let parser = RdfParser::from_format(RdfFormat::Turtle).with_base_iri(url).unwrap();
    store.load_from_reader(parser, data.as_slice()).unwrap_or_else(|e| panic!("manifest {url}: {e}"));
    let m = Manifest(store);
    let me: Term = NamedNode::new(url).unwrap().into();
    for include in m.objects(&me, &format!("{MF}include")) {
        for sub in m.list(&include) {
            if let Term::NamedNode(n) = sub {
                read_manifest(suite, n.as_str(), out);
            }
        }
    }
    let manifest_dir = url.strip_prefix(suite.base).unwrap_or("").rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
    for entries in m.objects(&me, &format!("{MF}entries")) {
        for test in m.list(&entries) {
            out.push(m.test(&test, &manifest_dir));
        }
    }
}

struct Manifest(Store);

impl Manifest {
    fn objects(&self, node: &Term, predicate: &str) -> Vec<Term> {
        let subject = match node {
            Term::NamedNode(n) => NamedOrBlankNodeRef::from(n.as_ref()),
            Term::BlankNode(b) => b.as_ref().into(),
            _ => return Vec::new(),
        };
        let p = NamedNode::new(predicate).unwrap();
        self.0.quads_for_pattern(Some(subject), Some(p.as_ref()), None, None).map(|q| q.unwrap().object).collect()
    }

    fn object(&self, node: &Term, predicate: &str) -> Option<Term> {
        self.objects(node, predicate).into_iter().next()
    }

    fn iri(&self, node: &Term, predicate: &str) -> Option<String> {
        match self.object(node, predicate)? {
            Term::NamedNode(n) => Some(n.into_string()),
            _ => None,
        }
    }

    fn text(&self, node: &Term, predicate: &str) -> Option<String> {
        match self.object(node, predicate)? {
            Term::Literal(l) => Some(l.value().to_string()),
            _ => None,
        }
    }

    /// The members of an RDF list, in order.
    fn list(&self, head: &Term) -> Vec<Term> {
        let mut out = Vec::new();
        let mut node = head.clone();
        while !matches!(&node, Term::NamedNode(n) if n.as_str() == format!("{RDF}nil")) {
            let Some(first) = self.object(&node, &format!("{RDF}first")) else { break };
            out.push(first);
            match self.object(&node, &format!("{RDF}rest")) {
                Some(rest) => node = rest,
                None => break,
            }
        }
        out
    }

    /// qt:data / ut:data into the default graph, qt:graphData / ut:graphData into named graphs:
    /// a file (named by its own URL) or a node with ut:graph/qt:graph and rdfs:label (the name).
    fn dataset(&self, node: &Term, ns: &str) -> Vec<GraphFile> {
        let mut out: Vec<GraphFile> = self
            .objects(node, &format!("{ns}data"))
            .into_iter()
            .filter_map(|t| match t {
                Term::NamedNode(n) => Some(GraphFile { file: n.into_string(), graph: None }),
                _ => None,
            })
            .collect();
        for g in self.objects(node, &format!("{ns}graphData")) {
            match &g {
                Term::NamedNode(n) => out.push(GraphFile { file: n.as_str().to_string(), graph: Some(n.as_str().to_string()) }),
                _ => {
                    let file = self.iri(&g, &format!("{ns}graph"));
                    let label = self.text(&g, RDFS_LABEL);
                    if let Some(file) = file {
                        let graph = label.unwrap_or_else(|| file.clone());
                        out.push(GraphFile { file, graph: Some(graph) });
                    }
                }
            }
        }
        out
    }

    fn test(&self, test: &Term, manifest_dir: &str) -> Test {
        let kind = self
            .objects(test, &format!("{RDF}type"))
            .into_iter()
            .find_map(|t| match t {
                Term::NamedNode(n) => Some(n.as_str().rsplit(['#', '/']).next().unwrap_or_default().to_string()),
                _ => None,
            })
            .unwrap_or_default();
        let approval = self
            .object(test, &format!("{DAWGT}approval"))
            .or_else(|| self.object(test, &format!("{RDFT}approval")))
            .and_then(|t| match t {
                Term::NamedNode(n) => Some(n.as_str().rsplit('#').next().unwrap_or_default().to_string()),
                _ => None,
            });
        let action_node = self.object(test, &format!("{MF}action"));
        let result_node = self.object(test, &format!("{MF}result"));
        let (mut action, mut data, mut needs_service) = (None, Vec::new(), false);
        match &action_node {
            Some(Term::NamedNode(n)) => action = Some(n.as_str().to_string()),
            Some(node) => {
                action = self.iri(node, &format!("{QT}query")).or_else(|| self.iri(node, &format!("{UT}request")));
                data = self.dataset(node, QT);
                data.extend(self.dataset(node, UT));
                needs_service = !self.objects(node, &format!("{QT}serviceData")).is_empty();
            }
            None => {}
        }
        let (mut result, mut result_data, mut expects_failure) = (None, Vec::new(), false);
        match &result_node {
            Some(Term::NamedNode(n)) => result = Some(n.as_str().to_string()),
            Some(node) => {
                result_data = self.dataset(node, UT);
                expects_failure = matches!(self.object(node, &format!("{UT}result")), Some(Term::NamedNode(n)) if n.as_str().ends_with("#failure"));
            }
            None => {}
        }
        Test {
            iri: match test {
                Term::NamedNode(n) => n.as_str().to_string(),
                other => other.to_string(),
            },
            kind,
            action,
            data,
            result,
            result_data,
            expects_failure,
            approval,
            needs_service,
            manifest_dir: manifest_dir.to_string(),
        }
    }
}

/// The suites' root: `$LLMKG_W3C` or `~/.cache/llmkg/w3c`, as scripts/fetch-w3c-suites writes it.
pub fn suites_root() -> PathBuf {
    let root = std::env::var_os("LLMKG_W3C").map(PathBuf::from).unwrap_or_else(|| std::env::home_dir().unwrap().join(".cache/llmkg/w3c"));
    let dir = root.join("rdflib-7.6.0");
    assert!(dir.join("sparql11").is_dir(), "the W3C suites are not in {}: run scripts/fetch-w3c-suites", dir.display());
    dir
}

pub fn suite(root: &Path, name: &'static str, base: &'static str, manifests: &'static [&'static str]) -> Suite {
    Suite { name, dir: root.join(name), base, manifests }
}
