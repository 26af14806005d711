//! Writes the seed corpus (`corpus/TARGET/`, committed): small valid inputs for each target, so
//! fuzzing starts past the magic numbers and the outer syntax. `scripts/fuzz seeds` runs it.

use std::fs;
use std::path::Path;

use llmkg_engine::gguf::Value;
use llmkg_engine::testing::{hostile, tiny_bert, TinyLlama};
use llmkg_fuzz::SEED_GRAPH;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    // GGUF: the tiny llama and gemma3 in two block types, one with a chat template.
    for (arch, name) in [("llama", "llama"), ("gemma3", "gemma3")] {
        let tiny = TinyLlama { architecture: arch, block_type: candle_block(), context_length: 16, ..TinyLlama::default() };
        write("gguf", &format!("{name}-q8_0.gguf"), &tiny.gguf());
    }
    let templated = TinyLlama { context_length: 16, overrides: vec![("llama.rope.freq_base".into(), Value::F32(500000.0))], ..TinyLlama::default() };
    write("gguf", "llama-q4_1-template.gguf", &templated.gguf_with_chat_template(Some("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}")));

    // Embedding files: selector byte, then the file it replaces.
    let files = tiny_bert::files("gelu", tiny_bert::safetensors(&tiny_bert::tensors()));
    for (i, file) in files.iter().enumerate() {
        write("embedding_files", &file.name, &[&[i as u8][..], &file.bytes].concat());
    }

    // Chat templates: the real formats and the hostile corpus' programs.
    let chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    let gemma = "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";
    let macros = "{% macro m(x) %}[{{ x }}]{% endmacro %}{% set ns = namespace(s='') %}{% for message in messages %}{% set ns.s = ns.s ~ m(message.content) %}{% endfor %}{{ ns.s | upper }}{{ raise_exception('no') if messages|length > 9 }}";
    write("chat_template", "chatml.jinja", chatml.as_bytes());
    write("chat_template", "gemma.jinja", gemma.as_bytes());
    write("chat_template", "macros.jinja", macros.as_bytes());
    for (i, (_, template)) in hostile::chat_templates().iter().enumerate() {
        write("chat_template", &format!("hostile-{i}.jinja"), template.as_bytes());
    }

    // SPARQL: queries and updates over the seed graph's terms, and the hostile shapes at depth 10.
    let queries = [
        "SELECT ?s ?o WHERE { ?s <http://www.w3.org/2000/01/rdf-schema#label> ?o FILTER(LANG(?o) = 'en') } ORDER BY ?o LIMIT 3",
        "PREFIX ex: <http://example.org/> SELECT (COUNT(*) AS ?n) (SUM(?p) AS ?t) WHERE { ?c ex:population ?p } GROUP BY ?c HAVING (?n > 0)",
        "PREFIX ex: <http://example.org/> ASK { ?x ex:capitalOf/ex:capitalOf* ?y }",
        "CONSTRUCT { ?o ?p ?s } WHERE { GRAPH ?g { ?s ?p ?o } }",
        "DESCRIBE <http://example.org/paris>",
        "SELECT * WHERE { { ?s ?p ?o } UNION { OPTIONAL { ?s ?p ?x } } MINUS { ?s a ?t } BIND(STRLEN(STR(?o)) AS ?l) VALUES ?z { 1 2 } }",
        "SELECT ?x WHERE { BIND(CONCAT(UCASE('a'), SUBSTR('abc', 2), REPLACE('aaa', 'a+', 'b'), STR(NOW())) AS ?x) FILTER(REGEX(?x, '^A')) }",
        "SELECT ?s (GROUP_CONCAT(?o; SEPARATOR='|') AS ?all) WHERE { ?s ?p ?o FILTER NOT EXISTS { ?s <http://example.org/knows> [] } } GROUP BY ?s",
        "PREFIX ex: <http://example.org/> INSERT DATA { ex:lyon ex:capitalOf ex:rhone ; ex:pop 513275 . GRAPH ex:g2 { ex:a ex:b (1 2 [ ex:c 'd' ]) } }",
        "PREFIX ex: <http://example.org/> DELETE { ?s ex:capitalOf ?o } INSERT { ?o ex:hasCapital ?s } WHERE { ?s ex:capitalOf ?o }",
        "DELETE WHERE { ?s ?p ?o }",
        "CLEAR GRAPH <http://example.org/g> ; DROP SILENT DEFAULT ; ADD <http://example.org/g> TO DEFAULT",
        "SELECT (xsd:integer('12') + 1.5e0 * 3 / 2 - ABS(-4) AS ?n) (BNODE('x') AS ?b) (IRI('http://example.org/i') AS ?i) (STRDT('1', xsd:byte) AS ?t) {}",
    ];
    for (i, q) in queries.iter().enumerate() {
        write("sparql", &format!("query-{i:02}.rq"), q.as_bytes());
    }
    for (name, shape) in hostile::sparql_shapes(10) {
        write("sparql", &format!("shape-{}.rq", name.replace(|c: char| !c.is_ascii_alphanumeric(), "-")), shape.as_bytes());
    }

    // RDF import: selector byte (N-Triples, N-Quads, Turtle, TriG, RDF/XML, JSON-LD), then a document.
    let turtle = "@prefix ex: <http://example.org/> .\n@base <http://example.org/base/> .\nex:a ex:b \"c\"@en-GB , 1.5e3 , true ; ex:d [ ex:e ( 1 2 ( 3 ) ) ] .\n<rel> ex:f \"\"\"long\nstring\"\"\"^^ex:t .\n";
    let trig = "@prefix ex: <http://example.org/> .\nex:g { ex:a ex:b _:x . _:x ex:c \"d\" }\n{ ex:top ex:level 1 }\n";
    let rdfxml = r#"<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/"><rdf:Description rdf:about="http://example.org/a"><ex:b xml:lang="en">c</ex:b><ex:d rdf:parseType="Resource"><ex:e rdf:datatype="http://www.w3.org/2001/XMLSchema#integer">1</ex:e></ex:d></rdf:Description></rdf:RDF>"#;
    let jsonld = r#"{"@context":{"ex":"http://example.org/"},"@id":"ex:a","ex:b":[{"@value":"c","@language":"en"},{"@id":"ex:d"}],"@graph":[{"@id":"ex:x","ex:y":1}]}"#;
    let nt: String = SEED_GRAPH.lines().filter(|l| !l.contains("<http://example.org/g>")).map(|l| format!("{l}\n")).collect();
    for (selector, name, doc) in
        [(0u8, "seed.nt", nt.as_str()), (1, "seed.nq", SEED_GRAPH), (2, "doc.ttl", turtle), (3, "doc.trig", trig), (4, "doc.rdf", rdfxml), (5, "doc.jsonld", jsonld)]
    {
        write("rdf_import", name, &[&[selector][..], doc.as_bytes()].concat());
    }
    // Requests are built by `arbitrary` from raw bytes: a few deterministic byte strings.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..4 {
        let bytes: Vec<u8> = (0..64 << i)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        write("requests", &format!("bytes-{i}"), &bytes);
    }
    println!("seed corpus written under {}", Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").display());
}

/// Q8_0: the block type the loader keeps as is (the default tiny llama's Q4_1 is converted).
fn candle_block() -> llmkg_engine::testing::GgmlDType {
    llmkg_engine::testing::GgmlDType::Q8_0
}
