"""The SPARQL 1.1 Protocol at /sparql, driven by real SPARQL clients (SPARQLWrapper, rdflib),
with the same results as the CLI on the same data directory."""

import json

import pytest
import rdflib
from rdflib.compare import isomorphic
from SPARQLWrapper import JSON, POST, SPARQLWrapper, TURTLE, XML, CSV

from conftest import BASE_URL, WRITE_KEY, cli

EX = "http://example.org/kb/"
DATA = f"""
PREFIX ex: <{EX}>
INSERT DATA {{
  ex:veltrania ex:capital ex:quorvik ; ex:population 4200000 ; ex:name "Veltrania"@en .
  ex:quorvik ex:name "Quorvik" .
  ex:ostria ex:capital ex:lumen ; ex:population 800000 .
}}"""


def endpoint(fmt=JSON):
    s = SPARQLWrapper(f"{BASE_URL}/sparql")
    if WRITE_KEY:
        s.addCustomHttpHeader("Authorization", f"Bearer {WRITE_KEY}")
    s.setReturnFormat(fmt)
    return s


@pytest.fixture(scope="module", autouse=True)
def graph():
    s = endpoint()
    s.setMethod(POST)
    s.setQuery(DATA)
    s.query()
    yield
    s = endpoint()
    s.setMethod(POST)
    s.setQuery(f"DELETE WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }} ; DELETE {{ ?s ?p ?o }} WHERE {{ ?s ?p ?o FILTER(STRSTARTS(STR(?s), '{EX}')) }}")
    s.query()


def bindings(results):
    rows = [{k: (v["type"], v["value"], v.get("datatype"), v.get("xml:lang")) for k, v in b.items()} for b in results["results"]["bindings"]]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True))


def test_select_equals_the_cli():
    q = f"PREFIX ex: <{EX}> SELECT ?country ?pop WHERE {{ ?country ex:population ?pop }} ORDER BY ?pop"
    s = endpoint()
    s.setQuery(q)
    got = s.query().convert()
    assert got["head"]["vars"] == ["country", "pop"]
    assert [b["pop"]["value"] for b in got["results"]["bindings"]] == ["800000", "4200000"]
    want = json.loads(cli("query", q, "--format", "json", json_out=False))
    assert bindings(got) == bindings(want)


def test_select_as_xml_csv_and_by_post():
    q = f"PREFIX ex: <{EX}> SELECT ?c WHERE {{ ?c ex:capital ex:quorvik }}"
    s = endpoint(XML)
    s.setQuery(q)
    assert f"{EX}veltrania" in s.query().convert().toxml()
    s = endpoint(CSV)
    s.setQuery(q)
    assert s.query().convert().decode().splitlines() == ["c", f"{EX}veltrania"]
    s = endpoint()
    s.setMethod(POST)
    s.setQuery(q)
    assert s.query().convert()["results"]["bindings"][0]["c"]["value"] == f"{EX}veltrania"


def test_ask_equals_the_cli():
    for q, expected in [(f"ASK {{ <{EX}veltrania> <{EX}capital> <{EX}quorvik> }}", True), (f"ASK {{ <{EX}ostria> <{EX}capital> <{EX}quorvik> }}", False)]:
        s = endpoint()
        s.setQuery(q)
        assert s.query().convert()["boolean"] is expected
        assert json.loads(cli("query", q, "--format", "json", json_out=False))["boolean"] is expected


def test_construct_equals_the_cli():
    q = f"PREFIX ex: <{EX}> CONSTRUCT {{ ?city ex:capitalOf ?country }} WHERE {{ ?country ex:capital ?city }}"
    s = endpoint(TURTLE)
    s.setQuery(q)
    got = rdflib.Graph().parse(data=s.query().convert(), format="turtle")
    want = rdflib.Graph().parse(data=cli("query", q, "--format", "json", "--graph-format", "ntriples", json_out=False), format="nt")
    assert len(got) == 2
    assert isomorphic(got, want)


def test_update_changes_what_every_later_request_and_the_cli_see():
    s = endpoint()
    s.setMethod(POST)
    s.setQuery(f"PREFIX ex: <{EX}> DELETE {{ ?c ex:population ?p }} INSERT {{ ?c ex:population ?q }} WHERE {{ ?c ex:population ?p BIND(?p + 1 AS ?q) }}")
    s.query()
    q = f"PREFIX ex: <{EX}> SELECT ?pop WHERE {{ ex:ostria ex:population ?pop }}"
    for _ in range(3):  # a fresh instance per request: each one sees the change
        r = endpoint()
        r.setQuery(q)
        assert r.query().convert()["results"]["bindings"][0]["pop"]["value"] == "800001"
    assert json.loads(cli("query", q, "--format", "json", json_out=False))["results"]["bindings"][0]["pop"]["value"] == "800001"


def test_rdflib_sparql_update_store_round_trips():
    from rdflib.plugins.stores.sparqlstore import SPARQLUpdateStore

    headers = {"Authorization": f"Bearer {WRITE_KEY}"} if WRITE_KEY else {}
    store = SPARQLUpdateStore(query_endpoint=f"{BASE_URL}/sparql", update_endpoint=f"{BASE_URL}/sparql", auth=None, headers=headers)
    g = rdflib.Graph(store, identifier=rdflib.URIRef(f"{EX}graph"))
    g.add((rdflib.URIRef(f"{EX}x"), rdflib.URIRef(f"{EX}p"), rdflib.Literal("hello")))
    assert (rdflib.URIRef(f"{EX}x"), rdflib.URIRef(f"{EX}p"), rdflib.Literal("hello")) in g
    rows = list(store.query(f"SELECT ?o WHERE {{ GRAPH <{EX}graph> {{ <{EX}x> <{EX}p> ?o }} }}"))
    assert [str(r[0]) for r in rows] == ["hello"]


def test_a_syntax_error_is_a_400_naming_the_problem():
    import urllib.error
    import urllib.parse
    import urllib.request

    url = f"{BASE_URL}/sparql?" + urllib.parse.urlencode({"query": "SELECT * WHERE { ?s ?p }"})
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {WRITE_KEY}"} if WRITE_KEY else {})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req)
    assert caught.value.code == 400
    assert "error" in json.loads(caught.value.read())
