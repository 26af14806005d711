//! The graph knows exactly what each write changed: the recorded patch of any write, applied to
//! another graph, gives the same quads (blank-node labels and once-evaluated NOW() included),
//! reversed it undoes the write, and a failing write changes and records nothing.

use llmkg_engine::knowledge::KnowledgeGraph;
use llmkg_engine::{EngineError, Fact, FactObject, ImportOptions, QueryResult, RdfFormat, ResultsFormat};

fn sorted_nquads(g: &KnowledgeGraph) -> Vec<String> {
    let text = String::from_utf8(g.export(RdfFormat::NQuads).unwrap()).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn graph_with(turtle: &str) -> KnowledgeGraph {
    let mut g = KnowledgeGraph::new().unwrap();
    g.import(RdfFormat::Turtle, turtle.as_bytes(), &ImportOptions::default()).unwrap();
    g
}

const PEOPLE: &str = r#"
@prefix : <http://example.org/> .
:alice :knows :bob ; :age 30 .
:bob :knows :carol ; :age 25 .
"#;

#[test]
fn an_update_records_exactly_what_it_removed_and_added() {
    let mut g = graph_with(PEOPLE);
    g.record_changes(true);
    let report = g
        .update(
            "PREFIX : <http://example.org/> DELETE { ?p :age ?a } INSERT { ?p :age ?b } WHERE { ?p :age ?a BIND(?a + 1 AS ?b) FILTER(?a > 26) }",
            &[],
            &[],
        )
        .unwrap();
    assert_eq!((report.changed, report.total), (0, 4));
    let patch = String::from_utf8(g.take_changes()).unwrap();
    assert_eq!(
        patch,
        "D <http://example.org/alice> <http://example.org/age> \"30\"^^<http://www.w3.org/2001/XMLSchema#integer> .\n\
         A <http://example.org/alice> <http://example.org/age> \"31\"^^<http://www.w3.org/2001/XMLSchema#integer> .\n"
    );
    // Taking empties the journal; a no-op write records nothing.
    g.update("PREFIX : <http://example.org/> INSERT DATA { :bob :knows :carol }", &[], &[]).unwrap();
    assert_eq!(g.take_changes(), b"");
}

#[test]
fn a_patch_replays_the_same_quads_elsewhere_even_for_fresh_blank_nodes_and_now() {
    let mut writer = graph_with(PEOPLE);
    let mut replica = graph_with(PEOPLE);
    writer.record_changes(true);
    writer
        .update(
            "PREFIX : <http://example.org/> INSERT { ?p :profile [ :created ?now ; :id ?u ] } WHERE { ?p :knows ?q BIND(NOW() AS ?now) BIND(STRUUID() AS ?u) }",
            &[],
            &[],
        )
        .unwrap();
    writer.insert(&[Fact { subject: "Veltrania".into(), predicate: "capital".into(), object: FactObject::Entity("Quorvik".into()), confidence: Some(0.9), source: Some("atlas".into()) }]).unwrap();
    writer.import(RdfFormat::Turtle, b"<urn:x> <urn:p> [ <urn:q> 1 ] .", &ImportOptions::default()).unwrap();
    let patch = writer.take_changes();
    let report = replica.apply_changes(&patch, false).unwrap();
    assert_eq!(sorted_nquads(&replica), sorted_nquads(&writer));
    assert_eq!(report.total, writer.len().unwrap());

    // Reversed, the patch undoes all three writes.
    replica.apply_changes(&patch, true).unwrap();
    assert_eq!(sorted_nquads(&replica), sorted_nquads(&graph_with(PEOPLE)));
}

#[test]
fn a_failing_update_changes_and_records_nothing() {
    let mut g = graph_with(PEOPLE);
    let before = sorted_nquads(&g);
    g.record_changes(true);
    g.update("CREATE GRAPH <urn:g>", &[], &[]).unwrap();
    let err = g
        .update("PREFIX : <http://example.org/> DELETE DATA { :alice :age 30 } ; INSERT DATA { :dave :age 1 } ; CREATE GRAPH <urn:g>", &[], &[])
        .unwrap_err();
    assert!(matches!(&err, EngineError::InvalidInput(m) if m.contains("CREATE GRAPH <urn:g>") && m.contains("already exists")), "{err}");
    assert_eq!(sorted_nquads(&g), before);
    assert_eq!(g.take_changes(), b"");
}

#[test]
fn clear_and_drop_record_the_quads_they_remove() {
    let mut g = graph_with(PEOPLE);
    g.update("INSERT DATA { GRAPH <urn:g> { <urn:a> <urn:b> <urn:c> } }", &[], &[]).unwrap();
    g.record_changes(true);
    g.update("DROP GRAPH <urn:g>", &[], &[]).unwrap();
    assert_eq!(String::from_utf8(g.take_changes()).unwrap(), "D <urn:a> <urn:b> <urn:c> <urn:g> .\n");
    let err = g.update("CLEAR GRAPH <urn:g>", &[], &[]).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    g.update("CLEAR SILENT GRAPH <urn:g>", &[], &[]).unwrap();
    let report = g.update("CLEAR DEFAULT", &[], &[]).unwrap();
    assert_eq!((report.changed, report.total), (4, 0));
    assert_eq!(g.take_changes().iter().filter(|&&b| b == b'\n').count(), 4);
}

#[test]
fn using_graphs_from_the_protocol_set_the_update_dataset() {
    let mut g = KnowledgeGraph::new().unwrap();
    g.update("INSERT DATA { GRAPH <urn:g1> { <urn:a> <urn:p> 1 } GRAPH <urn:g2> { <urn:b> <urn:p> 2 } }", &[], &[]).unwrap();
    g.update("INSERT { <urn:copy> <urn:p> ?v } WHERE { ?s <urn:p> ?v }", &["urn:g2".into()], &[]).unwrap();
    let QueryResult::Solutions(s) = g.query("SELECT ?v WHERE { <urn:copy> <urn:p> ?v }", 0).unwrap() else { panic!() };
    assert_eq!(s.rows.len(), 1);
    let err = g.update("INSERT { <urn:x> <urn:p> ?v } USING <urn:g1> WHERE { ?s <urn:p> ?v }", &["urn:g2".into()], &[]).unwrap_err();
    assert!(err.to_string().contains("forbids both"), "{err}");
}

#[test]
fn queries_and_updates_are_told_apart_when_the_protocol_says_which() {
    let mut g = graph_with(PEOPLE);
    let err = g.update("SELECT * WHERE { ?s ?p ?o }", &[], &[]).unwrap_err();
    assert!(matches!(&err, EngineError::QuerySyntax(m) if m.contains("a query was sent as an update")), "{err}");
    let err = g.query_serialized("INSERT DATA { <urn:a> <urn:b> <urn:c> }", &[], &[], ResultsFormat::Json, RdfFormat::Turtle, 0).unwrap_err();
    assert!(matches!(&err, EngineError::QuerySyntax(m) if m.contains("an update was sent as a query")), "{err}");
    assert_eq!(g.len().unwrap(), 4);
}

#[test]
fn results_serialize_in_the_standard_formats_with_the_row_limit() {
    let mut g = graph_with(PEOPLE);
    let select = "PREFIX : <http://example.org/> SELECT ?p ?a WHERE { ?p :age ?a } ORDER BY ?a";
    let csv = g.query_serialized(select, &[], &[], ResultsFormat::Csv, RdfFormat::Turtle, 0).unwrap();
    assert_eq!(csv.media_type, "text/csv; charset=utf-8");
    assert_eq!(String::from_utf8(csv.data).unwrap(), "p,a\r\nhttp://example.org/bob,25\r\nhttp://example.org/alice,30\r\n");
    let json = g.query_serialized(select, &[], &[], ResultsFormat::Json, RdfFormat::Turtle, 1).unwrap();
    assert!(json.truncated);
    let v: serde_json::Value = serde_json::from_slice(&json.data).unwrap();
    assert_eq!(v["head"]["vars"], serde_json::json!(["p", "a"]));
    assert_eq!(v["results"]["bindings"].as_array().unwrap().len(), 1);
    let ask = g.query_serialized("ASK { ?s ?p ?o }", &[], &[], ResultsFormat::Xml, RdfFormat::Turtle, 0).unwrap();
    assert!(String::from_utf8(ask.data).unwrap().contains("<boolean>true</boolean>"));
    let graph = g
        .query_serialized("CONSTRUCT { ?s <urn:age> ?a } WHERE { ?s <http://example.org/age> ?a }", &[], &[], ResultsFormat::Json, RdfFormat::NTriples, 0)
        .unwrap();
    assert_eq!(graph.media_type, "application/n-triples");
    assert_eq!(String::from_utf8(graph.data).unwrap().lines().count(), 2);
}

#[test]
fn the_default_graph_uri_of_the_protocol_selects_the_dataset() {
    let mut g = KnowledgeGraph::new().unwrap();
    g.update("INSERT DATA { GRAPH <urn:g1> { <urn:a> <urn:p> 1 } GRAPH <urn:g2> { <urn:b> <urn:p> 2 } }", &[], &[]).unwrap();
    let out = g.query_serialized("SELECT ?s WHERE { ?s ?p ?o }", &["urn:g2".into()], &[], ResultsFormat::Csv, RdfFormat::Turtle, 0).unwrap();
    assert_eq!(String::from_utf8(out.data).unwrap(), "s\r\nurn:b\r\n");
}

#[test]
fn a_restored_snapshot_keeps_blank_node_labels_so_later_patches_apply() {
    let mut writer = graph_with("<urn:x> <urn:p> [ <urn:q> 1 ] .");
    let snapshot = writer.export(RdfFormat::NQuads).unwrap();
    writer.record_changes(true);
    writer.update("DELETE { ?b <urn:q> 1 } INSERT { ?b <urn:q> 2 } WHERE { ?b <urn:q> 1 }", &[], &[]).unwrap();
    let patch = writer.take_changes();

    let mut reader = KnowledgeGraph::new().unwrap();
    reader.restore(&snapshot, 7).unwrap();
    assert_eq!(reader.log_position(), 7);
    reader.apply_changes(&patch, false).unwrap();
    assert_eq!(sorted_nquads(&reader), sorted_nquads(&writer));
    let err = reader.restore(b"<urn:a> <urn:b> .\n", 8).unwrap_err();
    assert!(err.to_string().contains("snapshot at line 1"), "{err}");
    assert_eq!((reader.log_position(), sorted_nquads(&reader)), (7, sorted_nquads(&writer)));
}

#[test]
fn while_recording_every_range_of_local_name_characters_imports_and_replays() {
    // Every range the Turtle grammar admits in local names, U+E0000..U+E0FFF included (which
    // RFC 3987 leaves out of IRIs): each imports, and its patch replays to the same graph.
    let ranges = [0x00C0u32, 0x00D8, 0x00F8, 0x0370, 0x037F, 0x200C, 0x2070, 0x2C00, 0x3001, 0xF900, 0xFDF0, 0x10000, 0xE0000, 0xE0FFF, 0xEFFFF];
    for start in ranges {
        let c = char::from_u32(start).unwrap();
        let mut g = KnowledgeGraph::new().unwrap();
        g.record_changes(true);
        let turtle = format!("@prefix ex: <http://example.org/> . ex:a{c} ex:p ex:b{c} .");
        g.import(RdfFormat::Turtle, turtle.as_bytes(), &ImportOptions::default()).unwrap_or_else(|e| panic!("U+{start:04X}: {e}"));
        let patch = g.take_changes();
        let mut replica = KnowledgeGraph::new().unwrap();
        replica.apply_changes(&patch, false).unwrap_or_else(|e| panic!("U+{start:04X} imported but does not replay: {e}"));
        assert_eq!(sorted_nquads(&replica), sorted_nquads(&g), "U+{start:04X}");
        let mut restored = KnowledgeGraph::new().unwrap();
        restored.restore(&g.export(RdfFormat::NQuads).unwrap(), 0).unwrap_or_else(|e| panic!("U+{start:04X} does not restore: {e}"));
        assert_eq!(sorted_nquads(&restored), sorted_nquads(&g), "U+{start:04X}");
    }
}
