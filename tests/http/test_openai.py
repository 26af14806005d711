"""The OpenAI-compatible routes, driven by the official `openai` Python client."""

import base64
import struct

import openai
import pytest

from conftest import HOST, cli, cosine

QUESTION = "What is the capital of France?"


def test_chat_answers_and_the_stream_joins_to_the_same_answer(client):
    plain = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": QUESTION}], max_tokens=48, temperature=0
    )
    answer = plain.choices[0].message.content
    assert "Paris" in answer, answer
    assert plain.choices[0].finish_reason == "stop"
    assert plain.usage.prompt_tokens > 0 and plain.usage.completion_tokens > 0
    assert plain.usage.total_tokens == plain.usage.prompt_tokens + plain.usage.completion_tokens

    chunks = list(
        client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=48,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    content = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([c for c in content if c]) > 1, "the answer came in one piece, not streamed"
    assert "".join(content) == answer
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_max_tokens_ends_with_length_and_stop_strings_cut(client):
    short = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": QUESTION}], max_tokens=2
    )
    assert short.choices[0].finish_reason == "length"
    assert short.usage.completion_tokens == 2
    stopped = client.chat.completions.create(
        model="smollm2-135m-instruct", messages=[{"role": "user", "content": QUESTION}], max_tokens=48, stop=["Paris"]
    )
    assert "Paris" not in stopped.choices[0].message.content
    assert stopped.choices[0].finish_reason == "stop"


def test_sampling_with_a_seed_is_reproducible(client):
    def sample():
        return client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": "Name a fruit."}],
            max_tokens=16,
            temperature=0.9,
            top_p=0.95,
            seed=42,
        ).choices[0].message.content

    assert sample() == sample()


def test_a_completion_continues_the_prompt(client):
    c = client.completions.create(model="smollm2-135m-instruct", prompt="The capital of France is", max_tokens=8, temperature=0)
    assert c.object == "text_completion"
    assert "Paris" in c.choices[0].text, c.choices[0].text
    streamed = client.completions.create(
        model="smollm2-135m-instruct", prompt="The capital of France is", max_tokens=8, temperature=0, stream=True
    )
    assert "".join(chunk.choices[0].text for chunk in streamed if chunk.choices) == c.choices[0].text


def test_embeddings_equal_the_cli_and_come_as_floats_or_base64(client):
    texts = ["a cat sat on the mat", "a kitten on a rug"]
    e = client.embeddings.create(model="all-minilm-l6-v2", input=texts)
    assert [d.index for d in e.data] == [0, 1]
    assert len(e.data[0].embedding) == 384
    assert e.usage.prompt_tokens > 0
    reference = cli("embed", *texts)["embeddings"]
    for got, want in zip(e.data, reference):
        assert cosine(got.embedding, want) >= 0.9999
    raw = client.embeddings.with_raw_response.create(model="all-minilm-l6-v2", input="a cat sat on the mat", encoding_format="base64")
    packed = base64.b64decode(raw.http_response.json()["data"][0]["embedding"])
    floats = struct.unpack(f"<{len(packed) // 4}f", packed)
    assert cosine(floats, reference[0]) >= 0.9999


def test_one_string_is_embedded_too(client):
    e = client.embeddings.create(model="all-minilm-l6-v2", input="hello")
    assert len(e.data) == 1 and abs(cosine(e.data[0].embedding, e.data[0].embedding) - 1) < 1e-6


def test_the_model_list_names_both_models(client):
    ids = {m.id for m in client.models.list().data}
    assert {"smollm2-135m-instruct", "all-minilm-l6-v2"} <= ids
    assert client.models.retrieve("all-minilm-l6-v2").id == "all-minilm-l6-v2"


def test_an_unknown_model_is_an_openai_shaped_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    error = caught.value.body
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "smollm2-135m-instruct" in error["message"]


def test_bad_requests_are_400s_naming_the_field(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2-135m-instruct", messages=[{"role": "user", "content": "hi"}], temperature=5)
    assert caught.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="smollm2-135m-instruct", messages=[], max_tokens=4)
    assert caught.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="all-minilm-l6-v2", input="")
    assert caught.value.body["param"] == "input"


@pytest.mark.skipif(HOST != "llmkg", reason="deadlines are llmkg serve's (x-llmkg-timeout)")
def test_a_request_past_its_deadline_gets_504_and_the_next_one_is_served(client):
    slow = client.chat.completions.with_raw_response.create
    with pytest.raises(openai.APIStatusError) as caught:
        slow(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": "Write a long story about the sea."}],
            max_tokens=400,
            extra_headers={"x-llmkg-timeout": "300ms"},
        )
    assert caught.value.status_code == 504
    assert caught.value.body["type"] == "timeout_error"
    ok = client.chat.completions.create(model="smollm2-135m-instruct", messages=[{"role": "user", "content": QUESTION}], max_tokens=24)
    assert "Paris" in ok.choices[0].message.content


@pytest.mark.skipif(HOST != "llmkg", reason="reads llmkg serve's /metrics")
def test_a_client_that_disconnects_stops_the_generation(base_url):
    import http.client
    import time
    import urllib.parse

    url = urllib.parse.urlparse(base_url)

    def in_flight():
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return int(next(line.split()[1] for line in text.splitlines() if line.startswith("llmkg_requests_in_flight ")))

    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    body = '{"messages":[{"role":"user","content":"Write a long story about the sea."}],"max_tokens":400,"stream":true}'
    conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 200
    for _ in range(3):
        r.fp.readline()
    started = time.monotonic()
    conn.sock.close()
    conn.close()
    # 400 tokens take seconds; the generation must end at the next token once writes fail.
    while in_flight() > 0:
        assert time.monotonic() - started < 2.0, "the generation went on after the client left"
        time.sleep(0.05)
