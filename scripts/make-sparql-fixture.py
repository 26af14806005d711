#!/usr/bin/env python3
"""Write tests/fixtures/sparql/cases.json: SPARQL 1.1 conformance cases over the hand-written graph
tests/fixtures/sparql/graph.ttl, with every expected result computed by rdflib (an engine
independent of llmkg's oxigraph).

Regenerate with (versions pinned in scripts/requirements-kb.txt):
    ~/.cache/llmkg/venv-kb/bin/python scripts/make-sparql-fixture.py

When pyoxigraph is importable (it is pinned too, at the oxigraph version in Cargo.lock) every case
is also run on it and the script fails on any disagreement (--allow-mismatch to write anyway): a
case where the two engines disagree is either an engine bug or a spot where the spec leaves room,
and does not belong in a conformance fixture as is.

Format of cases.json (each case starts from a freshly loaded graph.ttl):
  {name, kind: "select"|"ask"|"construct"|"update", query, ordered, expected, [then]}
  select:    expected = {variables: [...], rows: [[term|null, ...], ...]}; when ordered is false
             the rows are a multiset (listed sorted for readability) and must be compared as such.
  ask:       expected = true|false
  construct: expected = sorted list of N-Triples lines ("<s> <p> <o> ."), literals in RDF 1.1
             canonical N-Triples form (an xsd:string literal is written without ^^, a language
             tagged one as "x"@lang); the graph must be compared as a set of those lines.
  update:    query is the SPARQL Update; then is a SELECT run after it; expected is that SELECT's
             result (format as for select, ordered applies to it).
  term:      {type: "iri"|"literal"|"bnode", value, datatype?, lang?}; every literal has its
             datatype IRI written out in full (xsd:string for plain strings, rdf:langString plus
             lang for language-tagged ones).
Queries avoid spots where rdflib and the spec (or engines) may differ: computed decimals are cast
to xsd:integer only where rdflib computes them without a fractional part (rdflib 7.6 fails to cast
a decimal such as 8.8 or even 12.0, where the spec truncates), no doubles, GROUP_CONCAT only sees one value per group, ORDER
BY keys are unique where order matters, and no SELECT returns a blank node. rdflib 7.6 also drops
a VALUES row that matches nothing but an OPTIONAL, so VALUES is always joined with a required
pattern.
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIX = REPO / "tests" / "fixtures" / "sparql"
GRAPH = FIX / "graph.ttl"
OUT = FIX / "cases.json"

XSD = "http://www.w3.org/2001/XMLSchema#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XSD_STRING = XSD + "string"
LANG_STRING = RDF + "langString"

PREFIXES = (
    "PREFIX kg: <urn:llmkg:>\n"
    "PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>\n"
    "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n"
    "PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>\n"
)

# (name, kind, ordered, query[, then]) -- query bodies without the PREFIX lines.
CASES = [
    # --- basic graph patterns -------------------------------------------------------------
    ("bgp_capital_labels", "select", False, """
SELECT ?country ?name WHERE {
  ?country kg:capital ?city .
  ?city rdfs:label ?name .
}"""),
    ("bgp_join_three_patterns", "select", False, """
SELECT ?city ?pop WHERE {
  ?city a kg:City ;
        kg:located_in ?country ;
        kg:population ?pop .
  ?country kg:currency kg:Euro .
}"""),
    ("bgp_literal_object", "select", False, """
SELECT ?c WHERE { ?c kg:iso_code "CH" }"""),
    ("bgp_lang_literal_object", "select", False, """
SELECT ?c WHERE { ?c rdfs:label "Allemagne"@fr }"""),
    # --- OPTIONAL -------------------------------------------------------------------------
    ("optional_population", "select", False, """
SELECT ?c ?pop WHERE {
  ?c a kg:Country .
  OPTIONAL { ?c kg:population ?pop }
}"""),
    ("optional_with_inner_filter", "select", False, """
SELECT ?c ?big WHERE {
  ?c a kg:Country .
  OPTIONAL { ?c kg:population ?big FILTER(?big > 60000000) }
}"""),
    ("optional_two_levels", "select", False, """
SELECT ?c ?city ?largest WHERE {
  ?c kg:continent kg:Europe .
  OPTIONAL { ?c kg:capital ?city }
  OPTIONAL { ?c kg:largest_city ?largest }
}"""),
    # --- FILTER ---------------------------------------------------------------------------
    ("filter_integer_compare", "select", False, """
SELECT ?c ?pop WHERE {
  ?c a kg:Country ; kg:population ?pop .
  FILTER(?pop >= 48000000 && ?pop < 100000000)
}"""),
    ("filter_decimal_compare", "select", False, """
SELECT ?c ?area WHERE {
  ?c kg:area_km2 ?area .
  FILTER(?area < 100000.0)
}"""),
    ("filter_regex_case_insensitive", "select", False, """
SELECT ?x ?l WHERE {
  ?x rdfs:label ?l .
  FILTER(regex(?l, "^s", "i"))
}"""),
    ("filter_lang_equals", "select", False, """
SELECT ?c ?l WHERE {
  ?c a kg:Country ; rdfs:label ?l .
  FILTER(lang(?l) = "fr")
}"""),
    ("filter_langmatches", "select", False, """
SELECT ?c ?l WHERE {
  ?c rdfs:label ?l .
  FILTER(langMatches(lang(?l), "de"))
}"""),
    ("filter_date_compare", "select", False, """
SELECT ?c ?d WHERE {
  ?c kg:founded ?d .
  FILTER(?d < "1950-01-01"^^xsd:date)
}"""),
    ("filter_in_and_not_in", "select", False, """
SELECT ?c ?code WHERE {
  ?c kg:iso_code ?code .
  FILTER(?code IN ("FR", "JP", "XX") || (?code NOT IN ("DE", "ES", "CH", "PT")))
}"""),
    ("filter_datatype_and_isliteral", "select", False, """
SELECT ?p ?dt WHERE {
  kg:France ?p ?o .
  FILTER(isLiteral(?o) && lang(?o) = "")
  BIND(datatype(?o) AS ?dt)
}"""),
    # --- UNION / MINUS / NOT EXISTS ---------------------------------------------------------
    ("union_capital_or_largest", "select", False, """
SELECT ?c ?city WHERE {
  { ?c kg:capital ?city } UNION { ?c kg:largest_city ?city }
  ?c kg:currency kg:Swiss_Franc .
}"""),
    ("union_different_variables", "select", False, """
SELECT ?x ?code ?cur WHERE {
  { ?x kg:currency_code ?code } UNION { ?x kg:currency ?cur . ?x kg:continent kg:Asia }
}"""),
    ("minus_countries_without_population", "select", False, """
SELECT ?c WHERE {
  ?c a kg:Country .
  MINUS { ?c kg:population ?p }
}"""),
    ("filter_not_exists_no_borders", "select", False, """
SELECT ?c WHERE {
  ?c a kg:Country .
  FILTER NOT EXISTS { ?c kg:borders ?other }
}"""),
    ("filter_exists", "select", False, """
SELECT ?c WHERE {
  ?c a kg:Country .
  FILTER EXISTS { ?c kg:borders kg:Germany }
}"""),
    # --- aggregates -----------------------------------------------------------------------
    ("count_group_by", "select", False, """
SELECT ?cont (COUNT(?c) AS ?n) WHERE {
  ?c kg:continent ?cont .
} GROUP BY ?cont"""),
    ("count_having", "select", False, """
SELECT ?cur (COUNT(?c) AS ?n) WHERE {
  ?c kg:currency ?cur .
} GROUP BY ?cur HAVING (COUNT(?c) > 1)"""),
    ("sum_avg_min_max", "select", False, """
SELECT (SUM(?p) AS ?total) (xsd:integer(AVG(?p)) AS ?avg) (MIN(?p) AS ?min) (MAX(?p) AS ?max)
       (COUNT(?p) AS ?n) WHERE {
  ?c a kg:Country ; kg:continent kg:Europe ; kg:population ?p .
}"""),
    ("count_distinct_and_star", "select", False, """
SELECT (COUNT(DISTINCT ?cur) AS ?currencies) (COUNT(*) AS ?rows) WHERE {
  ?c kg:currency ?cur .
}"""),
    ("group_by_sum_city_population", "select", True, """
SELECT ?country (SUM(?p) AS ?cities) WHERE {
  ?city kg:located_in ?country ; kg:population ?p .
} GROUP BY ?country ORDER BY DESC(?cities)"""),
    ("group_concat_single_value_groups", "select", False, """
SELECT ?c (GROUP_CONCAT(?code; separator=", ") AS ?codes) WHERE {
  ?c a kg:Country ; kg:iso_code ?code ; kg:continent kg:Asia .
} GROUP BY ?c"""),
    ("count_all_triples", "select", False, """
SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"""),
    # --- property paths -------------------------------------------------------------------
    ("path_one_or_more", "select", False, """
SELECT ?x WHERE { ?x kg:part_of+ kg:France }"""),
    ("path_zero_or_more", "select", False, """
SELECT ?x WHERE { kg:Montmartre kg:part_of* ?x }"""),
    ("path_sequence", "select", False, """
SELECT ?c ?pop WHERE { ?c kg:capital/kg:population ?pop }"""),
    ("path_inverse", "select", False, """
SELECT ?c WHERE { kg:Paris ^kg:capital ?c }"""),
    ("path_alternative", "select", False, """
SELECT ?c ?city WHERE { ?c kg:capital|kg:largest_city ?city . ?c kg:continent kg:Europe }"""),
    ("path_inverse_sequence", "select", False, """
SELECT ?name WHERE { kg:Euro ^kg:currency/kg:capital/rdfs:label ?name }"""),
    ("path_through_blank_node", "select", False, """
SELECT ?anthem WHERE { kg:France kg:anthem/rdfs:label ?anthem }"""),
    ("path_plus_then_sequence", "select", False, """
SELECT DISTINCT ?cur WHERE { kg:Montmartre kg:part_of+/kg:currency ?cur }"""),
    # --- solution modifiers ----------------------------------------------------------------
    ("order_by_desc_limit_offset", "select", True, """
SELECT ?c ?pop WHERE {
  ?c a kg:Country ; kg:population ?pop .
} ORDER BY DESC(?pop) LIMIT 2 OFFSET 1"""),
    ("order_by_string_asc", "select", True, """
SELECT ?code WHERE { ?c kg:iso_code ?code } ORDER BY ?code"""),
    ("order_by_two_keys", "select", True, """
SELECT ?cont ?c WHERE { ?c kg:continent ?cont } ORDER BY ?cont DESC(?c)"""),
    ("distinct_continents", "select", False, """
SELECT DISTINCT ?cont WHERE { ?c kg:continent ?cont }"""),
    # --- BIND / VALUES / functions / subquery ----------------------------------------------
    ("bind_integer_arithmetic", "select", False, """
SELECT ?c ?rest WHERE {
  ?c kg:population ?p ; kg:capital/kg:population ?cp .
  BIND(?p - ?cp AS ?rest)
}"""),
    ("bind_string_functions", "select", False, """
SELECT ?code ?lower ?len ?text WHERE {
  ?c kg:iso_code ?code ; kg:capital/rdfs:label ?cap .
  BIND(LCASE(?code) AS ?lower)
  BIND(STRLEN(?cap) AS ?len)
  BIND(CONCAT(?cap, " (", ?code, ")") AS ?text)
  FILTER(STRSTARTS(?cap, "B") || CONTAINS(?cap, "ok"))
}"""),
    ("bind_year_and_if_coalesce", "select", False, """
SELECT ?c ?year ?size WHERE {
  ?c a kg:Country .
  OPTIONAL { ?c kg:founded ?d }
  OPTIONAL { ?c kg:population ?p }
  BIND(COALESCE(YEAR(?d), 0) AS ?year)
  BIND(IF(BOUND(?p), IF(?p > 50000000, "large", "small"), "unknown") AS ?size)
}"""),
    ("bind_str_and_cast", "select", False, """
SELECT ?c ?text ?pop WHERE {
  ?c kg:area_km2 ?a ; kg:population ?p .
  FILTER(?a > 400000)
  BIND(STR(?a) AS ?text)
  BIND(xsd:integer(STR(?p)) AS ?pop)
}"""),
    ("values_inline", "select", False, """
SELECT ?c ?pop WHERE {
  VALUES ?c { kg:France kg:Japan kg:Ruritania }
  ?c a kg:Country .
  OPTIONAL { ?c kg:population ?pop }
}"""),
    ("values_two_variables", "select", False, """
SELECT ?c ?lang ?l WHERE {
  VALUES (?c ?lang) { (kg:Germany "fr") (kg:Switzerland "de") (kg:Portugal "fr") }
  ?c rdfs:label ?l .
  FILTER(lang(?l) = ?lang)
}"""),
    ("subquery_top_country", "select", False, """
SELECT ?c ?l WHERE {
  { SELECT ?c WHERE { ?c a kg:Country ; kg:population ?p } ORDER BY DESC(?p) LIMIT 1 }
  ?c rdfs:label ?l .
  FILTER(lang(?l) = "")
}"""),
    ("subquery_aggregate_join", "select", False, """
SELECT ?c ?n WHERE {
  ?c a kg:Country .
  { SELECT ?c (COUNT(?o) AS ?n) WHERE { ?c kg:borders ?o } GROUP BY ?c }
  FILTER(?n >= 2)
}"""),
    # --- ASK ------------------------------------------------------------------------------
    ("ask_true", "ask", False, """
ASK { kg:France kg:borders kg:Germany }"""),
    ("ask_false", "ask", False, """
ASK { kg:Japan kg:borders ?x }"""),
    ("ask_path_true", "ask", False, """
ASK { kg:Montmartre kg:part_of+ kg:France }"""),
    ("ask_filter_false", "ask", False, """
ASK { ?c kg:population ?p FILTER(?p > 200000000) }"""),
    # --- CONSTRUCT ------------------------------------------------------------------------
    ("construct_inverse_capital", "construct", False, """
CONSTRUCT { ?city kg:capital_of ?c } WHERE { ?c kg:capital ?city . ?c kg:continent kg:Europe }"""),
    ("construct_literals", "construct", False, """
CONSTRUCT { ?cur kg:code ?code ; rdfs:label ?l } WHERE {
  ?cur a kg:Currency ; kg:currency_code ?code ; rdfs:label ?l .
}"""),
    ("construct_lang_and_typed", "construct", False, """
CONSTRUCT { ?c rdfs:label ?l ; kg:area_km2 ?a ; kg:founded ?d } WHERE {
  VALUES ?c { kg:Germany }
  ?c rdfs:label ?l ; kg:area_km2 ?a ; kg:founded ?d .
}"""),
    ("construct_where_shorthand", "construct", False, """
CONSTRUCT WHERE { kg:Tokyo ?p ?o }"""),
    # --- UPDATE ---------------------------------------------------------------------------
    ("update_insert_data", "update", True, """
INSERT DATA {
  kg:Ruritania kg:population 1000 ; kg:capital kg:Strelsau .
  kg:Strelsau a kg:City ; rdfs:label "Strelsau" .
}""", """
SELECT ?c ?pop WHERE { ?c a kg:Country ; kg:population ?pop } ORDER BY ?pop"""),
    ("update_delete_data", "update", False, """
DELETE DATA { kg:France kg:borders kg:Spain . kg:Spain kg:borders kg:France }""", """
SELECT ?a ?b WHERE { ?a kg:borders ?b . FILTER(?a = kg:France || ?a = kg:Spain) }"""),
    ("update_delete_insert_where", "update", False, """
DELETE { ?c kg:currency kg:Euro }
INSERT { ?c kg:currency kg:Euro_New }
WHERE { ?c kg:currency kg:Euro ; kg:population ?p . FILTER(?p > 50000000) }""", """
SELECT ?c ?cur WHERE { ?c kg:currency ?cur . FILTER(?cur IN (kg:Euro, kg:Euro_New)) }"""),
    ("update_delete_where", "update", False, """
DELETE WHERE { ?c kg:founded ?d }""", """
SELECT (COUNT(*) AS ?n) (COUNT(?d) AS ?dated) WHERE {
  ?c a kg:Country . OPTIONAL { ?c kg:founded ?d }
}"""),
    ("update_insert_where_computed", "update", False, """
INSERT { ?c kg:population_thousands ?k }
WHERE { ?c a kg:Country ; kg:population ?p . BIND(xsd:integer(?p / 1000) AS ?k) }""", """
SELECT ?c ?k WHERE { ?c kg:population_thousands ?k }"""),
    ("update_sequence", "update", False, """
INSERT DATA { kg:Atlantis a kg:Country ; rdfs:label "Atlantis" } ;
DELETE { ?c a kg:Country } WHERE { ?c rdfs:label "Ruritania" }""", """
SELECT ?c WHERE { ?c a kg:Country FILTER NOT EXISTS { ?c kg:capital ?x } }"""),
]


# ---------------------------------------------------------------------------------------------
def term_json(kind, value, datatype=None, lang=None):
    if kind != "literal":
        return {"type": kind, "value": value}
    if lang:
        return {"type": "literal", "value": value, "datatype": LANG_STRING, "lang": lang}
    return {"type": "literal", "value": value, "datatype": datatype or XSD_STRING}


def nt_line(s, p, o):
    def t(x):
        if x["type"] == "iri":
            return "<%s>" % x["value"]
        if x["type"] == "bnode":
            return "_:%s" % x["value"]
        v = x["value"]
        esc = v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
        esc = "".join(c if ord(c) >= 0x20 and ord(c) != 0x7F else "\\u%04X" % ord(c) for c in esc)
        if x.get("lang"):
            return '"%s"@%s' % (esc, x["lang"])
        if x["datatype"] == XSD_STRING:
            return '"%s"' % esc
        return '"%s"^^<%s>' % (esc, x["datatype"])

    return "%s %s %s ." % (t(s), t(p), t(o))


def row_sort_key(row):
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


# --- rdflib ----------------------------------------------------------------------------------
def rdflib_term(t):
    import rdflib

    if t is None:
        return None
    if isinstance(t, rdflib.URIRef):
        return term_json("iri", str(t))
    if isinstance(t, rdflib.BNode):
        return term_json("bnode", str(t))
    if isinstance(t, rdflib.Literal):
        return term_json("literal", str(t), str(t.datatype) if t.datatype else None, t.language)
    raise TypeError(t)


def rdflib_fresh():
    import rdflib

    g = rdflib.Graph()
    g.parse(GRAPH, format="turtle")
    return g


def rdflib_select(g, q):
    r = g.query(q)
    variables = [str(v) for v in r.vars]
    rows = [[rdflib_term(row[i]) for i in range(len(variables))] for row in r]
    return {"variables": variables, "rows": rows}


def rdflib_run(kind, q, then=None):
    g = rdflib_fresh()
    if kind == "select":
        return rdflib_select(g, q)
    if kind == "ask":
        return bool(g.query(q).askAnswer)
    if kind == "construct":
        res = g.query(q).graph
        return sorted({nt_line(*(rdflib_term(x) for x in tr)) for tr in res})
    if kind == "update":
        g.update(q)
        return rdflib_select(g, then)
    raise ValueError(kind)


# --- pyoxigraph (cross-check) ----------------------------------------------------------------
def ox_term(t):
    import pyoxigraph as ox

    if t is None:
        return None
    if isinstance(t, ox.NamedNode):
        return term_json("iri", t.value)
    if isinstance(t, ox.BlankNode):
        return term_json("bnode", t.value)
    if isinstance(t, ox.Literal):
        return term_json("literal", t.value, t.datatype.value, t.language)
    raise TypeError(t)


def ox_select(store, q):
    r = store.query(q)
    variables = [v.value for v in r.variables]
    rows = [[ox_term(sol[v]) for v in variables] for sol in r]
    return {"variables": variables, "rows": rows}


def ox_run(kind, q, then=None):
    import pyoxigraph as ox

    store = ox.Store()
    store.load(path=str(GRAPH), format=ox.RdfFormat.TURTLE)
    if kind == "select":
        return ox_select(store, q)
    if kind == "ask":
        return bool(store.query(q))
    if kind == "construct":
        return sorted({nt_line(ox_term(t.subject), ox_term(t.predicate), ox_term(t.object))
                       for t in store.query(q)})
    if kind == "update":
        store.update(q)
        return ox_select(store, then)
    raise ValueError(kind)


def same(kind, ordered, a, b):
    if kind in ("select", "update"):
        if a["variables"] != b["variables"]:
            return False
        if ordered:
            return a["rows"] == b["rows"]
        return sorted(a["rows"], key=row_sort_key) == sorted(b["rows"], key=row_sort_key)
    return a == b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--allow-mismatch", action="store_true")
    args = ap.parse_args()

    import rdflib

    try:
        import pyoxigraph
    except ImportError:
        pyoxigraph = None

    names = [c[0] for c in CASES]
    assert len(set(names)) == len(names), "duplicate case name"
    n_triples = len(rdflib_fresh())

    out_cases, mismatches = [], []
    for case in CASES:
        name, kind, ordered, body = case[:4]
        query = PREFIXES + body.strip() + "\n"
        then = PREFIXES + case[4].strip() + "\n" if kind == "update" else None
        expected = rdflib_run(kind, query, then)
        if kind in ("select", "update"):
            assert all(t is None or t["type"] != "bnode" for r in expected["rows"] for t in r), name
            if not ordered:
                expected["rows"].sort(key=row_sort_key)
        entry = {"name": name, "kind": kind, "query": query}
        if then is not None:
            entry["then"] = then
        entry["ordered"] = ordered
        entry["expected"] = expected
        out_cases.append(entry)

        if pyoxigraph is not None:
            got = ox_run(kind, query, then)
            if not same(kind, ordered, expected, got):
                mismatches.append(name)
                print("MISMATCH %s\n  rdflib:     %s\n  pyoxigraph: %s" % (
                    name, json.dumps(expected, ensure_ascii=False),
                    json.dumps(got, ensure_ascii=False)))

    doc = {
        "description": (
            "SPARQL 1.1 conformance cases over tests/fixtures/sparql/graph.ttl; each case starts "
            "from a freshly loaded graph. Expected results computed by rdflib; see "
            "scripts/make-sparql-fixture.py for the format."
        ),
        "graph": "tests/fixtures/sparql/graph.ttl",
        "graph_triples": n_triples,
        "reference": "rdflib==%s" % rdflib.__version__,
        "cross_checked_with": ("pyoxigraph==%s" % pyoxigraph.__version__) if pyoxigraph else None,
        "cases": out_cases,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    kinds = {}
    for c in out_cases:
        kinds[c["kind"]] = kinds.get(c["kind"], 0) + 1
    print("graph: %d triples; wrote %s: %d cases (%s)" % (
        n_triples, OUT.relative_to(REPO), len(out_cases),
        ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
    if pyoxigraph is None:
        print("pyoxigraph not installed: no cross-check")
    elif mismatches:
        print("pyoxigraph disagrees on %d case(s): %s" % (len(mismatches), ", ".join(mismatches)))
        if not args.allow_mismatch:
            return 1
    else:
        print("pyoxigraph %s agrees on all cases" % pyoxigraph.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
