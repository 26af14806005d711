"""Shared setup for the HTTP tests: where the server is (started by scripts/test-http) and how
to ask the `llmkg` CLI the same things, on the same data directory, for comparison."""

import json
import os
import subprocess

import pytest

BASE_URL = os.environ.get("LLMKG_BASE_URL", "http://127.0.0.1:8080")
DATA_DIR = os.environ.get("LLMKG_TEST_DATA_DIR")
HOST = os.environ.get("LLMKG_TEST_HOST", "llmkg")
LLMKG = os.environ.get("LLMKG_BIN", "llmkg")
# Keys the server was started with, when it was (test_security.py).
WRITE_KEY = os.environ.get("LLMKG_TEST_WRITE_KEY")
READ_KEY = os.environ.get("LLMKG_TEST_READ_KEY")


def cli(*args, json_out=True):
    """Runs the llmkg CLI on the server's data directory and returns its JSON (or raw bytes)."""
    cmd = [LLMKG, "--quiet"]
    if DATA_DIR:
        cmd += ["--data-dir", DATA_DIR]
    if json_out:
        cmd.append("--json")
    cmd += list(args)
    done = subprocess.run(cmd, capture_output=True, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed: {done.stderr.decode(errors='replace')}")
    return json.loads(done.stdout) if json_out else done.stdout


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb)


@pytest.fixture(scope="session")
def base_url():
    return BASE_URL


@pytest.fixture(scope="session")
def client():
    from openai import OpenAI

    return OpenAI(base_url=f"{BASE_URL}/v1", api_key=WRITE_KEY or "unused", max_retries=0, timeout=120)
