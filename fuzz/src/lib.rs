//! What the fuzz targets share: the small valid inputs they start from (also written out as the
//! committed seed corpus by `examples/make_seeds.rs`) and the checks every target makes.

use llmkg_engine::memory::CountingAllocator;
use llmkg_engine::{Engine, EngineError, ImportOptions, RdfFormat};

// As in the component: the SPARQL evaluation budget is enforced from the counting allocator.
#[global_allocator]
static ALLOCATOR: CountingAllocator<std::alloc::System> = CountingAllocator(std::alloc::System);

/// The formats an import can be asked for, indexed by a target's first input byte.
pub const RDF_FORMATS: [RdfFormat; 6] =
    [RdfFormat::NTriples, RdfFormat::NQuads, RdfFormat::Turtle, RdfFormat::TriG, RdfFormat::RdfXml, RdfFormat::JsonLd];

/// A few facts in every shape the store holds: IRIs, blank nodes, typed and tagged literals,
/// a named graph.
pub const SEED_GRAPH: &str = r#"<http://example.org/paris> <http://www.w3.org/2000/01/rdf-schema#label> "Paris"@en .
<http://example.org/paris> <http://example.org/capitalOf> <http://example.org/france> .
<http://example.org/paris> <http://example.org/population> "2102650"^^<http://www.w3.org/2001/XMLSchema#integer> .
<http://example.org/france> <http://www.w3.org/2000/01/rdf-schema#label> "France" .
_:b1 <http://example.org/knows> <http://example.org/paris> .
<http://example.org/s> <http://example.org/p> "in a graph" <http://example.org/g> .
"#;

/// An engine whose graph holds `SEED_GRAPH`.
pub fn seeded_engine() -> Engine {
    let mut engine = Engine::new();
    engine.kg_import(RdfFormat::NQuads, SEED_GRAPH.as_bytes(), &ImportOptions::default()).expect("the seed graph parses");
    engine
}

/// The whole store as N-Quads lines, sorted (blank-node labels are the store's own, stable
/// within one engine).
pub fn dump(engine: &Engine) -> Vec<String> {
    let bytes = engine.kg_export(RdfFormat::NQuads).expect("export of a loaded graph");
    let mut lines: Vec<String> = String::from_utf8(bytes).expect("N-Quads are UTF-8").lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// Errors are values; one that says "internal" means validation missed something, a bug.
pub fn check_error(err: &EngineError) {
    assert!(!matches!(err, EngineError::Internal(_)), "an internal error escaped: {err}");
    assert!(!err.to_string().is_empty(), "an error without a message: {err:?}");
}
