//! RDF import (the first byte picks N-Triples, N-Quads, Turtle, TriG, RDF/XML or JSON-LD):
//! a failed import adds nothing, and whatever an import commits exports as N-Quads that a fresh
//! engine restores (the path a data dir is reopened by) to the same graph - the persisted format
//! must hold everything the parsers accept, or the data dir would not reload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkg_engine::{Engine, ImportOptions, RdfFormat};
use llmkg_fuzz::{check_error, dump, seeded_engine, RDF_FORMATS};

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    let format = RDF_FORMATS[which as usize % RDF_FORMATS.len()];
    let mut engine = seeded_engine();
    let before = dump(&engine);
    let options = ImportOptions { base_iri: Some("http://example.org/base/doc".into()), graph: None };
    if let Err(err) = engine.kg_import(format, bytes, &options) {
        check_error(&err);
        assert_eq!(dump(&engine), before, "a failed import changed the graph");
        return;
    }
    let exported = engine.kg_export(RdfFormat::NQuads).expect("an imported graph exports");
    let mut reloaded = Engine::new();
    if let Err(err) = reloaded.kg_restore(&exported, 0) {
        panic!("what the import committed does not reload: {err}");
    }
    assert_eq!(dump(&reloaded), dump(&engine), "the reloaded graph differs");
});
