//! Cartesian products are evaluated as LATERAL joins, so that the evaluation [`budget`] can stop
//! them.
//!
//! spareval evaluates a join of patterns that share no variable by holding one side's solutions
//! and pairing each solution of the other side with all of them. Pairing reads nothing from the
//! store, and reading from the store is the only place the evaluator looks at its cancellation
//! token: for `?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l` over 6,000 triples, that is about 10^11
//! pairings between two reads, and the query ran until the host's deadline killed the instance.
//! Evaluated as `LATERAL`, the simple side is read again for each solution of the other, so
//! every solution comes from a read and the budget's cancellation takes effect at once. The
//! solutions are the same (the sides share no variable); the order in which they come may
//! differ, which SPARQL leaves open without ORDER BY.
//!
//! [`budget`]: super::budget

use std::collections::{HashMap, HashSet};

use spargebra::algebra::{Expression, GraphPattern};
use spargebra::term::{NamedNodePattern, TermPattern, TriplePattern};
use spargebra::{GraphUpdateOperation, Query, Update};

pub fn rewrite_query(query: &mut Query) {
    let pattern = match query {
        Query::Select { pattern, .. } | Query::Construct { pattern, .. } | Query::Describe { pattern, .. } | Query::Ask { pattern, .. } => pattern,
    };
    rewrite_in_place(pattern);
}

pub fn rewrite_update(update: &mut Update) {
    for op in &mut update.operations {
        if let GraphUpdateOperation::DeleteInsert { pattern, .. } = op {
            rewrite_in_place(pattern);
        }
    }
}

fn rewrite_in_place(pattern: &mut GraphPattern) {
    let taken = std::mem::replace(pattern, GraphPattern::Bgp { patterns: Vec::new() });
    *pattern = rewrite(taken);
}

fn boxed(pattern: GraphPattern) -> Box<GraphPattern> {
    Box::new(rewrite(pattern))
}

/// The same pattern with every cartesian product made a LATERAL join.
pub fn rewrite(pattern: GraphPattern) -> GraphPattern {
    match pattern {
        GraphPattern::Bgp { patterns } => split_bgp(patterns),
        GraphPattern::Join { left, right } => {
            let (left, right) = (rewrite(*left), rewrite(*right));
            if shares_variables(&left, &right) {
                GraphPattern::Join { left: Box::new(left), right: Box::new(right) }
            } else if is_simple(&right) {
                lateral(left, right)
            } else if is_simple(&left) {
                lateral(right, left)
            } else {
                // Both sides are worth evaluating once (subqueries, aggregates): leave it.
                GraphPattern::Join { left: Box::new(left), right: Box::new(right) }
            }
        }
        GraphPattern::LeftJoin { left, right, expression } => GraphPattern::LeftJoin { left: boxed(*left), right: boxed(*right), expression },
        #[allow(unreachable_patterns)]
        GraphPattern::Lateral { left, right } => GraphPattern::Lateral { left: boxed(*left), right: boxed(*right) },
        GraphPattern::Filter { expr, inner } => GraphPattern::Filter { expr, inner: boxed(*inner) },
        GraphPattern::Union { left, right } => GraphPattern::Union { left: boxed(*left), right: boxed(*right) },
        GraphPattern::Graph { name, inner } => GraphPattern::Graph { name, inner: boxed(*inner) },
        GraphPattern::Extend { inner, variable, expression } => GraphPattern::Extend { inner: boxed(*inner), variable, expression },
        GraphPattern::Minus { left, right } => GraphPattern::Minus { left: boxed(*left), right: boxed(*right) },
        GraphPattern::OrderBy { inner, expression } => GraphPattern::OrderBy { inner: boxed(*inner), expression },
        GraphPattern::Project { inner, variables } => GraphPattern::Project { inner: boxed(*inner), variables },
        GraphPattern::Distinct { inner } => GraphPattern::Distinct { inner: boxed(*inner) },
        GraphPattern::Reduced { inner } => GraphPattern::Reduced { inner: boxed(*inner) },
        GraphPattern::Slice { inner, start, length } => GraphPattern::Slice { inner: boxed(*inner), start, length },
        GraphPattern::Group { inner, variables, aggregates } => GraphPattern::Group { inner: boxed(*inner), variables, aggregates },
        other @ (GraphPattern::Path { .. } | GraphPattern::Values { .. } | GraphPattern::Service { .. }) => other,
    }
}

/// `right` evaluated for each solution of `left`. The right side is wrapped in a FILTER(true),
/// which the optimizer removes again, because a LATERAL of two basic graph patterns would be
/// merged back into one.
fn lateral(left: GraphPattern, right: GraphPattern) -> GraphPattern {
    let right = GraphPattern::Filter { expr: Expression::Literal(true.into()), inner: Box::new(right) };
    GraphPattern::Lateral { left: Box::new(left), right: Box::new(right) }
}

/// Patterns that read the store directly: cheap to evaluate again for each solution of the
/// other side. No expressions: a FILTER or BIND could name a variable of the other side, which
/// LATERAL would bind where a join leaves it unbound.
fn is_simple(pattern: &GraphPattern) -> bool {
    match pattern {
        GraphPattern::Bgp { .. } | GraphPattern::Path { .. } | GraphPattern::Values { .. } => true,
        GraphPattern::Graph { inner, .. } => is_simple(inner),
        GraphPattern::Join { left, right } => is_simple(left) && is_simple(right),
        #[allow(unreachable_patterns)]
        GraphPattern::Lateral { left, right } => is_simple(left) && is_simple(right),
        _ => false,
    }
}

fn shares_variables(left: &GraphPattern, right: &GraphPattern) -> bool {
    let mut names = HashSet::new();
    left.on_in_scope_variable(|v| {
        names.insert(v.as_str().to_string());
    });
    let mut shared = false;
    right.on_in_scope_variable(|v| shared |= names.contains(v.as_str()));
    shared
}

/// Names linking triple patterns: variables and blank nodes (which are variables in a query).
fn keys(t: &TriplePattern) -> Vec<String> {
    let mut out = Vec::new();
    for term in [&t.subject, &t.object] {
        match term {
            TermPattern::Variable(v) => out.push(format!("?{}", v.as_str())),
            TermPattern::BlankNode(b) => out.push(format!("_:{}", b.as_str())),
            _ => {}
        }
    }
    if let NamedNodePattern::Variable(v) = &t.predicate {
        out.push(format!("?{}", v.as_str()));
    }
    out
}

/// A basic graph pattern split into its connected parts, joined laterally; unchanged when it
/// is connected.
fn split_bgp(patterns: Vec<TriplePattern>) -> GraphPattern {
    if patterns.len() < 2 {
        return GraphPattern::Bgp { patterns };
    }
    // Union-find over the patterns, linked through shared keys.
    let mut parent: Vec<usize> = (0..patterns.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_with: HashMap<String, usize> = HashMap::new();
    let mut constant = Vec::new();
    for (i, t) in patterns.iter().enumerate() {
        let keys = keys(t);
        if keys.is_empty() {
            constant.push(i);
        }
        for k in keys {
            match first_with.get(&k) {
                Some(&j) => {
                    let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                    parent[a] = b;
                }
                None => {
                    first_with.insert(k, i);
                }
            }
        }
    }
    let mut order: Vec<usize> = Vec::new();
    let mut parts: HashMap<usize, Vec<TriplePattern>> = HashMap::new();
    for (i, t) in patterns.into_iter().enumerate() {
        // Patterns without variables hold or fail as a whole: they go with the first part.
        let r = if constant.contains(&i) { usize::MAX } else { root(&mut parent, i) };
        if !parts.contains_key(&r) {
            order.push(r);
        }
        parts.entry(r).or_default().push(t);
    }
    if parts.len() < 2 || (parts.len() == 2 && parts.contains_key(&usize::MAX)) {
        let patterns = order.into_iter().flat_map(|r| parts.remove(&r).unwrap_or_default()).collect();
        return GraphPattern::Bgp { patterns };
    }
    let mut constant_part = parts.remove(&usize::MAX).unwrap_or_default();
    let mut pieces = order.into_iter().filter(|r| *r != usize::MAX).map(|r| parts.remove(&r).unwrap_or_default());
    let mut first = pieces.next().unwrap_or_default();
    first.append(&mut constant_part);
    let mut out = GraphPattern::Bgp { patterns: first };
    for piece in pieces {
        out = lateral(out, GraphPattern::Bgp { patterns: piece });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(sparql: &str) -> GraphPattern {
        let mut q = spargebra::SparqlParser::new().parse_query(sparql).unwrap();
        rewrite_query(&mut q);
        match q {
            Query::Select { pattern, .. } => pattern,
            _ => unreachable!(),
        }
    }

    fn laterals(p: &GraphPattern) -> usize {
        match p {
            GraphPattern::Lateral { left, right } => 1 + laterals(left) + laterals(right),
            GraphPattern::Filter { inner, .. } | GraphPattern::Project { inner, .. } | GraphPattern::Group { inner, .. } | GraphPattern::Extend { inner, .. } => laterals(inner),
            GraphPattern::Join { left, right } => laterals(left) + laterals(right),
            _ => 0,
        }
    }

    #[test]
    fn a_disconnected_bgp_becomes_laterals() {
        let p = pattern("SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }");
        assert_eq!(laterals(&p), 3, "{p}");
    }

    #[test]
    fn a_connected_bgp_is_left_alone() {
        let p = pattern("SELECT * WHERE { ?a <http://p> ?b . ?b <http://q> _:x . _:x <http://r> ?c . <http://s> <http://t> <http://u> }");
        assert_eq!(laterals(&p), 0, "{p}");
    }

    #[test]
    fn a_join_of_a_subquery_and_a_pattern_reads_the_pattern_again() {
        let p = pattern("SELECT * WHERE { { SELECT (COUNT(*) AS ?n) { ?a ?b ?c } } { ?d ?e ?f } }");
        assert_eq!(laterals(&p), 1, "{p}");
    }
}
