"""Who may do what, against a server started with a read-write and a read-only key: every route
but /health needs a key, a read-only key cannot change the graph, and an oversized body is
refused before it is buffered."""

import http.client
import json
import os
import time
import urllib.parse

import pytest

from conftest import BASE_URL, READ_KEY, WRITE_KEY

pytestmark = pytest.mark.skipif(not (WRITE_KEY and READ_KEY), reason="needs a server started with keys")

ROUTES = [
    ("GET", "/v1/models", None),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}),
    ("POST", "/v1/completions", {"prompt": "hi", "max_tokens": 1}),
    ("POST", "/v1/embeddings", {"input": "hi"}),
    ("GET", "/sparql?query=" + urllib.parse.quote("ASK {}"), None),
    ("POST", "/v1/graph/search", {"query": "x"}),
    ("POST", "/v1/graph/ask", {"question": "x"}),
    ("GET", "/v1/graph/stats", None),
    ("GET", "/v1/graph/export", None),
    ("POST", "/v1/graph/facts", {"facts": [{"subject": "a", "predicate": "b", "object": "c"}]}),
    ("GET", "/metrics", None),
]


def request(method, path, body=None, key=None, content_type="application/json"):
    url = urllib.parse.urlparse(BASE_URL)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    headers = {}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    payload = r.read()
    conn.close()
    return r.status, payload


def test_every_route_but_health_needs_a_key():
    assert request("GET", "/health")[0] == 200
    for method, path, body in ROUTES:
        status, payload = request(method, path, body)
        assert status == 401, (method, path, status, payload)
        assert json.loads(payload)["error"]["type"] == "authentication_error"
        assert request(method, path, body, key="not-a-real-key-0")[0] == 401, (method, path)


def test_a_read_only_key_reads_but_cannot_change_the_graph():
    assert request("GET", "/v1/models", key=READ_KEY)[0] == 200
    _, before = request("GET", "/v1/graph/export?format=nquads", key=READ_KEY)
    changes = [
        ("POST", "/sparql", b"update=" + urllib.parse.quote_plus("INSERT DATA { <urn:x> <urn:y> <urn:z> }").encode(), "application/x-www-form-urlencoded"),
        ("POST", "/sparql", b"INSERT DATA { <urn:x> <urn:y> <urn:z> }", "application/sparql-update"),
        ("POST", "/v1/graph/facts", {"facts": [{"subject": "a", "predicate": "b", "object": "c"}]}, "application/json"),
        ("DELETE", "/v1/graph/facts", {"facts": [{"subject": "a", "predicate": "b", "object": "c"}]}, "application/json"),
        ("POST", "/v1/graph/import", b"<urn:x> <urn:y> <urn:z> .", "application/n-triples"),
    ]
    for method, path, body, ctype in changes:
        status, payload = request(method, path, body, key=READ_KEY, content_type=ctype)
        assert status == 403, (method, path, status, payload)
        assert json.loads(payload)["error"]["type"] == "permission_error"
    _, after = request("GET", "/v1/graph/export?format=nquads", key=READ_KEY)
    assert after == before
    status, _ = request("POST", "/v1/graph/facts", {"facts": [{"subject": "Keyed", "predicate": "is", "object": "writable"}]}, key=WRITE_KEY)
    assert status == 200


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.mark.skipif(not os.environ.get("LLMKG_TEST_SERVER_PID"), reason="needs the server's pid")
def test_a_1gb_body_is_refused_with_413_and_memory_stays_flat():
    pid = int(os.environ["LLMKG_TEST_SERVER_PID"])
    before = rss_kb(pid)
    url = urllib.parse.urlparse(BASE_URL)
    # Declared: refused before a byte of the body is read.
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    conn.putrequest("POST", "/v1/embeddings")
    conn.putheader("Authorization", f"Bearer {WRITE_KEY}")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(1 << 30))
    conn.endheaders()
    # No byte of the body is sent: the answer must come from the declared length alone.
    r = conn.getresponse()
    assert r.status == 413, r.status
    assert json.loads(r.read())["error"]["code"] == "request_too_large"
    conn.close()
    # Not declared (chunked): read only up to the limit, then refused, while 1 GB is offered.
    # The answer is read while sending, as the server may close before taking it all.
    import socket
    import threading

    sock = socket.create_connection((url.hostname, url.port), timeout=120)
    head = (
        f"POST /v1/embeddings HTTP/1.1\r\nHost: {url.hostname}\r\nAuthorization: Bearer {WRITE_KEY}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer = bytearray()

    def read():
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            answer.extend(data)
            if b"\r\n\r\n" in answer:
                return

    reader = threading.Thread(target=read)
    reader.start()
    started = time.monotonic()
    sent = 0
    chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
    try:
        sock.sendall(head.encode())
        while sent < 1024 and reader.is_alive():
            sock.sendall(chunk)
            sent += 1
    except OSError:
        pass
    reader.join(60)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), bytes(answer[:200])
    assert sent < 1024, "the whole gigabyte was taken"
    after = rss_kb(pid)
    assert after - before < 64 * 1024, f"RSS grew from {before} kB to {after} kB"
    assert time.monotonic() - started < 60
