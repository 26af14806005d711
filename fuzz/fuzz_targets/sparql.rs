//! SPARQL parse and evaluate (queries and updates) against a small graph: any text ends in a
//! result or a typed error within the evaluation budget, and a failed update changes nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmkg_fuzz::{check_error, dump, seeded_engine};

fuzz_target!(|data: &[u8]| {
    let Ok(sparql) = std::str::from_utf8(data) else { return };
    let mut engine = seeded_engine();
    let before = dump(&engine);
    if let Err(err) = engine.kg_query(sparql, 64) {
        check_error(&err);
        assert_eq!(dump(&engine), before, "a failed request changed the graph");
    }
});
