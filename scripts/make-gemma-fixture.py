#!/usr/bin/env python3
"""Write tests/fixtures/gemma3_reference.json: llama.cpp's own output on the Gemma 3 270M GGUF.

The reference is llama.cpp (through llama-cpp-python, same pinned version as
scripts/bench-llama-cpp) on gemma3-270m/gemma-3-270m-q4_k_m.gguf from scripts/fetch-models:

  * tokenizer: `tokenize(text, add_bos=False, special=True)` of varied strings (those of the
    SmolLM2 fixture plus leading spaces, newline runs, byte-fallback characters and Gemma's
    turn markers);
  * greedy: 32-token greedy continuations (top_k=1, no repeat penalty) of committed prompts,
    BOS added, stopping early at an end-of-generation token;
  * perplexity: the mean next-token log-likelihood over data/eval-text.txt (BOS added, every
    token predicted from all before it, one context), as exp(mean NLL).

Needs the reference venv (scripts/requirements-ref.txt; only llama-cpp-python and numpy are
used here). Regenerate with:

    scripts/fetch-models --only gemma3
    ~/.cache/llmkg/venv-ref/bin/python scripts/make-gemma-fixture.py
"""

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "gemma3_reference.json"
MODEL_SUBPATH = Path("gemma3-270m") / "gemma-3-270m-q4_k_m.gguf"
EVAL_TEXT = REPO / "data" / "eval-text.txt"
GREEDY_TOKENS = 32

EXTRA_CASES = [
    # leading spaces and runs of whitespace (Gemma has pieces for runs of spaces and newlines)
    " Paris",
    "  two leading spaces",
    "\n\n\n\n\n\n\n\nafter eight newlines",
    "end with newlines\n\n",
    "tabs\t\t\tand  spaces   mixed \t\n",
    # byte fallback: characters with no piece of their own
    "\x01\x02 control \x7f bytes",
    "private use \ue000\ue001 and \U000f0000",
    "rare CJK \U00020000\U0002a6d6 and Linear B \U00010000",
    # Gemma's turn markers (control tokens, parsed as special)
    "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\n",
    "<bos><eos><pad>",
    "not a marker: <start_of_turn",
]

PROMPTS = [
    "The Eiffel Tower is located in the city of",
    "The capital of Japan is",
    "Water boils at a temperature of",
    "def fibonacci(n):\n",
    "Once upon a time, in a small village,",
    "The three primary colors are",
    "Photosynthesis is the process by which",
    "1, 2, 3, 4, 5,",
    "The largest planet in our solar system is",
    "To make a cup of tea, first",
]


def smollm2_fixture_module():
    """scripts/make-tokenizer-fixture.py, for its CASES and helpers (dump_json, sha256_file)."""
    spec = importlib.util.spec_from_file_location("tokfix", REPO / "scripts" / "make-tokenizer-fixture.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="GGUF path (default: the fetched gemma3-270m)")
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args()
    models = Path(os.environ.get("LLMKG_MODELS", Path.home() / ".cache" / "llmkg" / "models"))
    model = Path(args.model) if args.model else models / MODEL_SUBPATH
    if not model.is_file():
        sys.exit(f"make-gemma-fixture: {model} not found; run scripts/fetch-models --only gemma3")

    import llama_cpp
    import numpy as np
    from llama_cpp import Llama

    tokfix = smollm2_fixture_module()
    cases_text = list(dict.fromkeys(tokfix.CASES + EXTRA_CASES))

    vocab = Llama(model_path=str(model), vocab_only=True, verbose=False)
    cases = [{"text": t, "ids": vocab.tokenize(t.encode("utf-8"), add_bos=False, special=True)} for t in cases_text]
    del vocab

    text = EVAL_TEXT.read_text(encoding="utf-8")
    llm = Llama(model_path=str(model), n_ctx=2048, n_batch=2048, n_ubatch=2048, n_threads=2,
                logits_all=True, verbose=False, seed=0)
    eos = {llm.token_eos()} | {i for i in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(llm._model.vocab, i)}
    greedy = []
    for prompt in PROMPTS:
        llm.reset()
        prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)
        out = []
        for t in llm.generate(prompt_ids, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0, reset=True):
            if t in eos:
                break
            out.append(t)
            if len(out) == GREEDY_TOKENS:
                break
        greedy.append({"prompt": prompt, "prompt_ids": prompt_ids, "ids": out,
                       "text": llm.detokenize(out).decode("utf-8", "replace")})
        print(f"{prompt!r} -> {greedy[-1]['text']!r}", file=sys.stderr)

    llm.reset()
    ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
    llm.eval(ids)
    logits = np.asarray(llm.scores[: len(ids)], dtype=np.float64)
    m = logits.max(axis=1, keepdims=True)
    logprobs = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    nll = -np.array([logprobs[i, ids[i + 1]] for i in range(len(ids) - 1)])
    perplexity = float(np.exp(nll.mean()))
    print(f"perplexity over {len(ids)} tokens: {perplexity:.4f}", file=sys.stderr)

    fixture = {
        "generator": f"llama-cpp-python {llama_cpp.__version__} (llama.cpp vendored)",
        "model": str(MODEL_SUBPATH),
        "model_sha256": tokfix.sha256_file(model),
        "bos_id": llm.token_bos(),
        "eos_id": llm.token_eos(),
        "cases": cases,
        "greedy_tokens": GREEDY_TOKENS,
        "greedy": greedy,
        "perplexity": {"text": str(EVAL_TEXT.relative_to(REPO)), "tokens": len(ids), "context": 2048, "perplexity": perplexity},
    }
    Path(args.out).write_text(tokfix.dump_json(fixture) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(cases)} tokenizer cases, {len(greedy)} prompts", file=sys.stderr)


if __name__ == "__main__":
    main()
