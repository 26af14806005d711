//! A hostile corpus, generated: requests nested or chained deep, inputs nested deep, huge or
//! malformed, a cartesian product, templates that loop, recurse or blow up. The engine's tests
//! run it natively and the end-to-end tests run the very same cases through the component, where
//! the stack is small and a trap kills the instance.

/// The depths every shape is tried at.
pub const DEPTHS: [usize; 5] = [10, 100, 1_000, 10_000, 100_000];

/// The SPARQL shapes: a name and the request nested or chained `depth` deep.
pub fn sparql_shapes(depth: usize) -> Vec<(&'static str, String)> {
    let d = depth;
    let join = |item: &str, sep: &str| vec![item; d].join(sep);
    vec![
        ("nested groups", format!("SELECT * WHERE {}{}", "{".repeat(d), "}".repeat(d))),
        ("nested FILTER EXISTS", format!("SELECT * WHERE {{ ?s ?p ?o {}{} }}", "FILTER EXISTS { ?s ?p ?o ".repeat(d), "}".repeat(d))),
        ("nested parentheses", format!("SELECT ({}1{} AS ?x) {{}}", "(".repeat(d), ")".repeat(d))),
        ("nested CONCAT calls", format!("SELECT ({}'a'{} AS ?x) {{}}", "CONCAT(".repeat(d), ")".repeat(d))),
        ("nested path brackets", format!("SELECT * WHERE {{ ?s {}<http://example.org/p>{} ?o }}", "(".repeat(d), ")".repeat(d))),
        ("nested OPTIONAL", format!("SELECT * WHERE {{ ?s ?p ?o {}{} }}", "OPTIONAL { ?s ?p ?o ".repeat(d), "}".repeat(d))),
        ("OPTIONAL chain", format!("SELECT * WHERE {{ ?s ?p ?o {} }}", "OPTIONAL { ?s ?p ?o } ".repeat(d))),
        ("UNION chain", format!("SELECT * WHERE {{ {} }}", join("{ ?s ?p ?o }", " UNION "))),
        ("arithmetic chain", format!("SELECT ({} AS ?x) {{}}", join("1", "+"))),
        ("|| chain", format!("SELECT * WHERE {{ ?s ?p ?o FILTER({}) }}", join("?o = 1", " || "))),
        ("path sequence", format!("SELECT * WHERE {{ ?s {} ?o }}", join("<http://example.org/p>", "/"))),
        (
            "nested collections in INSERT DATA",
            format!("INSERT DATA {{ <http://example.org/s> <http://example.org/p> {}1{} }}", "( ".repeat(d), " )".repeat(d)),
        ),
        (
            "nested blank nodes in INSERT DATA",
            format!("INSERT DATA {{ <http://example.org/s> <http://example.org/p> {}1{} }}", "[ <http://example.org/p> ".repeat(d), " ]".repeat(d)),
        ),
    ]
}

/// A 4-way cartesian product: about 10^18 solutions over the demo graph.
pub const CARTESIAN_COUNT: &str = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }";

/// The same product as an update's WHERE: nothing may change.
pub const CARTESIAN_DELETE: &str = "DELETE { ?a ?b ?c } WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }";

/// Turtle: blank-node property lists and collections nested `depth` deep.
pub fn turtle_shapes(depth: usize) -> Vec<(&'static str, Vec<u8>)> {
    let blank_nodes = format!("<http://example.org/s> <http://example.org/p> {}1{} .\n", "[ <http://example.org/p> ".repeat(depth), " ]".repeat(depth));
    let lists = format!("<http://example.org/s> <http://example.org/p> {}1{} .\n", "( ".repeat(depth), " )".repeat(depth));
    vec![("nested blank nodes", blank_nodes.into_bytes()), ("nested lists", lists.into_bytes())]
}

/// N-Triples with bytes that are not UTF-8 inside a literal (on line 2).
pub fn invalid_utf8_ntriples() -> Vec<u8> {
    let mut out = b"<http://example.org/s> <http://example.org/p> \"ok\" .\n<http://example.org/s> <http://example.org/p> \"bad ".to_vec();
    out.extend_from_slice(&[0xff, 0xfe, 0xc3]);
    out.extend_from_slice(b"\" .\n");
    out
}

/// One literal of `bytes` bytes (64 MB in the corpus) in N-Triples.
pub fn huge_literal_ntriples(bytes: usize) -> Vec<u8> {
    let mut out = b"<http://example.org/s> <http://example.org/p> \"".to_vec();
    out.resize(out.len() + bytes, b'x');
    out.extend_from_slice(b"\" .\n");
    out
}

/// JSON arrays nested `depth` deep (given as a config.json or tokenizer.json).
pub fn nested_json(depth: usize) -> Vec<u8> {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
}

/// Chat templates that loop, recurse, blow up their output or a string, or raise.
pub fn chat_templates() -> Vec<(&'static str, &'static str)> {
    vec![
        ("a loop of 10^10 steps", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
        ("a range of 10^8", "{% for i in range(100000000) %}x{% endfor %}"),
        ("a macro calling itself", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"),
        (
            "an output of 4 * 10^11 bytes",
            "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
        ),
        ("a string doubled 40 times", "{% set s = 'x' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s|length }}"),
        ("a string repeated 10^9 times", "{{ 'x' * 1000000000 }}"),
        ("raise_exception", "{{ raise_exception('this template refuses every chat') }}"),
        // Growth that fuel alone does not bound (few steps, many bytes): text::template_budget.
        (
            "a string grown 2^40 times through a namespace",
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        ),
        (
            "a megabyte grown 2^12 times through macro arguments",
            "{% macro d(s, n) %}{% if n > 0 %}{{ d(s ~ s, n - 1) }}{% else %}{{ s|length }}{% endif %}{% endmacro %}{{ d('x' * 1000000, 12) }}",
        ),
        (
            "a string squared by replace",
            "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s|replace('a', ns.s) %}{% endfor %}",
        ),
        ("an indent of 10^9", "{{ 'x'|indent(1000000000) }}"),
        ("a list of a list nested 100,000 deep", "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}"),
        ("a namespace holding itself", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns ~ '' }}"),
        ("a template including itself", "{% include 'chat' %}"),
    ]
}
