"""The graph's own routes: facts in and out, semantic search, answers grounded in the graph."""

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import BASE_URL, WRITE_KEY, cli


def call(method, path, body=None, content_type="application/json", key=WRITE_KEY, raw=False):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{BASE_URL}{path}", data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", content_type)
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req) as r:
            payload = r.read()
            return r.status, payload if raw else json.loads(payload)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


FACTS = [
    {"subject": "Veltrania", "predicate": "capital", "object": "Quorvik", "source": "atlas", "confidence": 0.9},
    {"subject": "Ostria", "predicate": "capital", "object": "Lumen"},
    {"subject": "Veltrania", "predicate": "motto", "object": "Stone and sky", "literal": True},
]


@pytest.fixture(scope="module", autouse=True)
def facts():
    status, report = call("POST", "/v1/graph/facts", {"facts": FACTS})
    assert status == 200, report
    assert report["changed"] >= 3
    yield
    call("DELETE", "/v1/graph/facts", {"facts": FACTS})


def test_inserted_facts_are_in_the_graph_for_the_cli_too():
    status, triples = call("GET", "/v1/graph/neighbors?entity=Veltrania")
    assert status == 200
    objects = {t["object"]["value"] for t in triples["data"]}
    assert {"urn:llmkg:Quorvik", "Stone and sky"} <= objects
    rows = cli("query", "SELECT ?c WHERE { <urn:llmkg:Veltrania> <urn:llmkg:capital> ?c }")["rows"]
    assert rows == [[{"type": "iri", "value": "urn:llmkg:Quorvik"}]], rows


def test_semantic_search_finds_entities_by_meaning():
    status, hits = call("POST", "/v1/graph/search", {"query": "Veltrania", "k": 3})
    assert status == 200, hits
    assert hits["data"][0]["iri"] == "urn:llmkg:Veltrania"


def test_ask_answers_from_the_graph_and_cites_the_facts():
    status, answer = call("POST", "/v1/graph/ask", {"question": "What is the capital of Veltrania?", "max_tokens": 48})
    assert status == 200, answer
    assert "Quorvik" in answer["answer"], answer
    sentences = [f["sentence"] for f in answer["facts"]]
    assert "The capital of Veltrania is Quorvik." in sentences
    cited = next(f for f in answer["facts"] if f["sentence"] == "The capital of Veltrania is Quorvik.")
    assert cited["source"] == "atlas" and abs(cited["confidence"] - 0.9) < 1e-6


def test_import_then_export_round_trips():
    turtle = b"@prefix ex: <http://example.org/imp/> . ex:a ex:b ex:c ; ex:d \"e\" ."
    status, report = call("POST", "/v1/graph/import", turtle, content_type="text/turtle")
    assert status == 200 and report["changed"] == 2, report
    status, nt = call("GET", "/v1/graph/export?format=ntriples", raw=True)
    assert status == 200
    assert b"<http://example.org/imp/a> <http://example.org/imp/b> <http://example.org/imp/c> ." in nt
    status, _ = call("POST", "/sparql", b"update=" + urllib.parse.quote_plus("DELETE WHERE { <http://example.org/imp/a> ?p ?o }").encode(), content_type="application/x-www-form-urlencoded")
    assert status == 200


def test_removing_facts_removes_them():
    extra = [{"subject": "Temporia", "predicate": "capital", "object": "Brief"}]
    assert call("POST", "/v1/graph/facts", {"facts": extra})[0] == 200
    status, report = call("DELETE", "/v1/graph/facts", {"facts": extra})
    assert status == 200 and report["changed"] >= 1
    _, triples = call("GET", "/v1/graph/neighbors?entity=Temporia")
    assert triples["data"] == []


def test_bad_input_is_named():
    status, error = call("POST", "/v1/graph/import", b"@prefix broken", content_type="text/turtle")
    assert status == 400 and "line 1" in error["error"]["message"], error
    status, error = call("POST", "/v1/graph/import", b"x", content_type="application/pdf")
    assert status == 415
    status, error = call("POST", "/v1/graph/facts", {"facts": [{"subject": "a", "predicate": "b", "object": "c", "confidence": 3}]})
    assert status == 400 and "confidence" in error["error"]["message"], error

