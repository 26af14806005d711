//! A cheap lexical look at a SPARQL request before it is parsed: how deep its brackets nest and
//! how deep a tree the parser would build from it. spargebra's parser recurses once per bracket,
//! and the parser, the optimizer, the evaluator and even dropping the algebra recurse once per
//! link of a left-deep chain (`{…} UNION {…} UNION …`, `OPTIONAL {…} OPTIONAL {…}`, `1+1+1+…`,
//! `:p/:p/:p`), so a request nested or chained a few thousand deep exhausts the wasm stack and
//! traps the component. Requests beyond the limits below are refused with an error instead
//! (docs/LIMITS.md has the measurements behind them).
//!
//! The scan skips string literals, IRIs and comments, so brackets and operators inside them do
//! not count. It over-estimates rather than under-estimates: a request it accepts cannot build
//! a tree deeper than it estimates.

use crate::error::{EngineError, Result};

/// Brackets (`{`, `(`, `[`) open at once. Measured in the component under Wasmtime (512 KiB
/// wasm stack), nesting first traps at 200 (FILTER EXISTS), 248 (CONCAT), 416 (blank nodes in
/// INSERT DATA), 448 (OPTIONAL), 480 (parentheses), 640 (groups), 960 (path brackets).
pub const MAX_NESTING: usize = 64;

/// The estimated depth of the algebra tree: open brackets plus, in each, the links of the
/// chains so far (sibling groups, `FILTER`, `BIND`, `VALUES`; `||`, `&&`, `+`, `-`, `*`, `/`
/// in expressions; `/`, `|` in property paths).
/// Chains first trap at 560 (path `/`), 704 (OPTIONAL), 960 (UNION), 1,536 (`+`), 2,816 (`||`).
pub const MAX_TREE_DEPTH: usize = 256;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `{…}` or `[…]` in a query pattern or template.
    Pattern,
    /// `(…)` holding an expression (FILTER, BIND, SELECT, GROUP BY, ORDER BY, HAVING, calls).
    Expression,
    /// `(…)` in a triple pattern: a collection or a property path group.
    Collection,
    /// Anything inside `INSERT DATA {…}`, `DELETE DATA {…}` or a `VALUES … {…}` block: terms only.
    Data,
}

struct Frame {
    kind: Kind,
    /// Links of pattern chains in this group (never reset inside it).
    patterns: usize,
    /// Links of the current expression or path chain (reset at `,`, `;` and `.`).
    operators: usize,
    /// The next `(` here holds an expression: FILTER, BIND or HAVING came, or a SELECT,
    /// GROUP BY or ORDER BY clause is under way (a subquery).
    expression_next: bool,
    clause: bool,
}

impl Frame {
    fn new(kind: Kind) -> Self {
        Frame { kind, patterns: 0, operators: 0, expression_next: false, clause: false }
    }

    fn weight(&self) -> usize {
        1 + self.patterns + self.operators
    }
}

fn is_keyword(word: &[u8], keywords: &[&str]) -> bool {
    keywords.iter().any(|k| word.eq_ignore_ascii_case(k.as_bytes()))
}

/// Refuses a query or update that nests or chains deeper than the engine can parse and evaluate
/// without exhausting the stack.
pub fn check(sparql: &str) -> Result<()> {
    let bytes = sparql.as_bytes();
    // The root: the prologue and the query's clauses, where `(` holds expressions.
    let mut frames: Vec<Frame> = vec![Frame { clause: true, ..Frame::new(Kind::Pattern) }];
    // The sum of the open frames' weights less the root's: the estimated tree depth here.
    let mut depth = 0usize;
    // The previous token can end an operand (so a following `+`/`-` is an operator, not a sign,
    // and `<` compares rather than opens an IRI).
    let mut after_operand = false;
    // VALUES or DATA came: the next `{` holds terms only.
    let mut data_next = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let nested = frames.len() > 1;
        let top = frames.last_mut().expect("the root frame stays");
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                i = skip_string(bytes, i);
                after_operand = true;
                continue;
            }
            b'<' if !(top.kind == Kind::Expression && after_operand) && iri_end(bytes, i).is_some() => {
                i = iri_end(bytes, i).unwrap_or(bytes.len());
                after_operand = true;
                continue;
            }
            b'{' | b'(' | b'[' => {
                let kind = if top.kind == Kind::Data || (c == b'{' && data_next) {
                    Kind::Data
                } else if c != b'(' {
                    Kind::Pattern
                } else if top.kind == Kind::Expression || top.expression_next || top.clause {
                    Kind::Expression
                } else {
                    Kind::Collection
                };
                // Groups side by side in a group are joined (or united, left-joined,
                // subtracted: the keyword before them does not matter) one after another.
                if c == b'{' && kind == Kind::Pattern && nested && top.kind == Kind::Pattern {
                    top.patterns += 1;
                    depth += 1;
                }
                if c == b'(' {
                    top.expression_next = false;
                } else {
                    top.expression_next = false;
                    top.clause = false;
                }
                data_next = false;
                frames.push(Frame::new(kind));
                depth += 1;
                if frames.len() - 1 > MAX_NESTING {
                    return Err(EngineError::InvalidInput(format!(
                        "the SPARQL request nests brackets ({{, ( and [) more than {MAX_NESTING} deep (at byte {start}); \
                         the engine refuses deeper requests, which would exhaust its stack"
                    )));
                }
                i += 1;
                after_operand = false;
            }
            b'}' | b')' | b']' => {
                if frames.len() > 1 {
                    let frame = frames.pop().expect("more than the root");
                    depth -= frame.weight();
                }
                i += 1;
                after_operand = true;
            }
            b',' | b';' | b'.' if c != b'.' || !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                depth -= top.operators;
                top.operators = 0;
                i += 1;
                after_operand = false;
            }
            b'?' | b'$' => {
                i += 1;
                let name_start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80) {
                    i += 1;
                }
                // `?` alone is a path modifier (`:p?`).
                after_operand = i > name_start;
            }
            b'0'..=b'9' | b'.' => {
                i = skip_number(bytes, i);
                after_operand = true;
            }
            b'@' => {
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
                    i += 1;
                }
                after_operand = true;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' || c >= 0x80 => {
                i = skip_name(bytes, i);
                let word = &bytes[start..i];
                after_operand = true;
                if is_keyword(word, &["VALUES", "DATA"]) {
                    data_next = true;
                }
                if is_keyword(word, &["FILTER", "BIND", "HAVING"]) {
                    top.expression_next = true;
                }
                if is_keyword(word, &["SELECT", "GROUP", "ORDER", "HAVING"]) {
                    top.clause = true;
                }
                if is_keyword(word, &["FILTER", "BIND", "VALUES"]) && top.kind == Kind::Pattern && nested {
                    top.patterns += 1;
                    depth += 1;
                    after_operand = false;
                }
            }
            _ => {
                // Operators and punctuation.
                let two = bytes.get(i..i + 2).unwrap_or(&[]);
                let (len, chains) = match (c, two) {
                    (_, b"||" | b"&&") => (2, true),
                    (_, b"^^" | b"!=" | b">=" | b"<=") => (2, false),
                    (b'+' | b'-', _) => (1, after_operand),
                    (b'*' | b'/' | b'|', _) => (1, true),
                    _ => (1, false),
                };
                if chains && top.kind != Kind::Data && nested {
                    top.operators += 1;
                    depth += 1;
                }
                i += len;
                after_operand = false;
            }
        }
        if depth > MAX_TREE_DEPTH {
            return Err(EngineError::InvalidInput(format!(
                "the SPARQL request chains patterns or operators about {depth} deep (at byte {start}; \
                 a left-deep chain such as UNION, OPTIONAL, sibling groups, FILTER, BIND, ||, &&, +, -, *, / \
                 or a property path /, | counts one per link, plus one per open bracket); the engine refuses \
                 more than {MAX_TREE_DEPTH}, which would exhaust its stack"
            )));
        }
    }
    Ok(())
}

/// The end of a string literal starting at `i` (short or long form, `'` or `"`, with escapes);
/// the input's end if it is not closed (the parser reports that).
fn skip_string(bytes: &[u8], i: usize) -> usize {
    let quote = bytes[i];
    let long = bytes.get(i..i + 3) == Some(&[quote, quote, quote]);
    let mut j = if long { i + 3 } else { i + 1 };
    while j < bytes.len() {
        match bytes[j] {
            b'\\' => j += 2,
            q if q == quote => {
                if !long {
                    return j + 1;
                }
                if bytes.get(j..j + 3) == Some(&[quote, quote, quote]) {
                    // `""""` ends with the last three quotes.
                    let mut end = j + 3;
                    while bytes.get(end) == Some(&quote) {
                        end += 1;
                    }
                    return end;
                }
                j += 1;
            }
            b'\n' | b'\r' if !long => return j,
            _ => j += 1,
        }
    }
    bytes.len()
}

/// The end of an IRI reference `<…>` starting at `i`, if one starts there (else `<` is an operator).
fn iri_end(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'>' => return Some(j + 1),
            b'<' | b'"' | b'{' | b'}' | b'|' | b'^' | b'`' | b'\\' | 0..=b' ' => return None,
            _ => j += 1,
        }
    }
    None
}

fn skip_number(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

/// A keyword, prefixed name, blank node label or function name (PN_LOCAL may hold `-`, `.`,
/// `:`, `%xx` and `\`-escapes, so `ex:a-b` is one token, as the parser sees it).
fn skip_name(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':' | b'%') || c >= 0x80 => i += 1,
            _ => break,
        }
    }
    // A final `.` ends the triple, not the name.
    let mut i = i.min(bytes.len());
    while i > from + 1 && bytes[i - 1] == b'.' {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_requests_pass() {
        for q in [
            "SELECT * WHERE { ?s ?p ?o }",
            "PREFIX ex: <http://example.org/> SELECT ?x WHERE { ?x ex:a-b/ex:c ?y . FILTER(?y < 3 && ?y > -1) }",
            "INSERT DATA { <http://a> <http://b> \"{{{{((((\" . <http://a> <http://b> -5 , 1.5e-3 }",
            "SELECT ?x { ?x ?p ?o } # {{{{{{{{{{{{{{{{{{{{{{{{",
        ] {
            check(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn a_long_flat_insert_passes() {
        let triples: String = (0..50_000).map(|i| format!("<http://s{i}> <http://p> -{i} . ")).collect();
        check(&format!("INSERT DATA {{ {triples} }}")).unwrap();
    }

    #[test]
    fn deep_brackets_are_refused_with_the_limit() {
        let q = format!("SELECT * WHERE {}{}", "{".repeat(20_000), "}".repeat(20_000));
        let e = check(&q).unwrap_err().to_string();
        assert!(e.contains(&MAX_NESTING.to_string()), "{e}");
    }

    #[test]
    fn brackets_in_strings_iris_and_comments_do_not_count() {
        let deep = "(".repeat(10_000);
        check(&format!("SELECT * WHERE {{ ?s ?p \"{deep}\" }}")).unwrap();
        check(&format!("SELECT * WHERE {{ ?s ?p '''{deep}''' }}")).unwrap();
        check(&format!("SELECT * WHERE {{ ?s ?p <http://x/{deep}> }}")).unwrap();
        check(&format!("SELECT * WHERE {{ ?s ?p ?o }} #{deep}")).unwrap();
    }

    #[test]
    fn long_chains_are_refused() {
        let sum = vec!["1"; 5_000].join("+");
        assert!(check(&format!("SELECT ({sum} AS ?x) {{}}")).is_err());
        let signs = vec!["1"; 5_000].join(" -1 ");
        assert!(check(&format!("SELECT ({signs} AS ?x) {{}}")).is_err());
        let union = vec!["{ ?s ?p ?o }"; 5_000].join(" UNION ");
        assert!(check(&format!("SELECT * {{ {union} }}")).is_err());
        let path = vec!["<http://p>"; 5_000].join("/");
        assert!(check(&format!("SELECT * {{ ?s {path} ?o }}")).is_err());
        let filters = "FILTER(true) ".repeat(5_000);
        assert!(check(&format!("SELECT * {{ ?s ?p ?o {filters} }}")).is_err());
    }

    #[test]
    fn chains_in_separate_triples_do_not_add_up() {
        let triples: String = (0..5_000).map(|_| "?s <http://p>/<http://q> ?o . ").collect();
        check(&format!("SELECT * {{ {triples} }}")).unwrap();
    }
}
