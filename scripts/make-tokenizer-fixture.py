#!/usr/bin/env python3
"""Write tests/fixtures/smollm2_tokenizer.json: reference tokenizations of the SmolLM2 GGUF.

The reference is an implementation independent of llmkg's (ours is the Rust `tokenizers` BPE built
from the GGUF metadata):

  * primary:     llama.cpp's own tokenizer, through llama-cpp-python
                 (`Llama(path, vocab_only=True).tokenize(text, add_bos=False, special=True)`);
  * cross-check: Hugging Face transformers' GGUF tokenizer conversion
                 (`AutoTokenizer.from_pretrained(dir, gguf_file=...)`, `add_special_tokens=False`).

Each case's `ids` are llama.cpp's. Where transformers disagrees, the case also gets `hf_ids`, and
the top-level `cross_check` summarises the comparison. Pass `--generator hf` to make transformers
the primary when llama-cpp-python is not installed.

Also recorded: bos/eos ids and the chat template (`tokenizer.chat_template` from the GGUF) rendered
with jinja2 the way transformers renders it, for one user message with add_generation_prompt=True.

Needs the reference venv (see the bottom of this docstring) and the model file from
scripts/fetch-models. Regenerate with:

    scripts/fetch-models --only smollm2
    HF_HUB_OFFLINE=1 ~/.cache/llmkg/venv-ref/bin/python scripts/make-tokenizer-fixture.py

Reference venv: pinned in scripts/requirements-ref.txt (llama-cpp-python builds llama.cpp from
source with cmake; ~7 minutes on 2 cores):
    python3 -m venv ~/.cache/llmkg/venv-ref
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_OPENMP=OFF" \
        ~/.cache/llmkg/venv-ref/bin/pip install -r scripts/requirements-ref.txt
"""

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "smollm2_tokenizer.json"
MODEL_SUBPATH = Path("smollm2-135m-instruct") / "SmolLM2-135M-Instruct.Q4_1.gguf"

CHAT_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]

CASES = [
    # plain ASCII
    "Hello",
    "Hello world",
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    "a",
    " ",
    # digits (SmolLM2 splits digits individually)
    "12345",
    "3.14159",
    "1,000,000",
    "In 2024, 7 of 10 people paid $1,234.56 (that's 99.9%).",
    # punctuation runs
    "!!!???...",
    "Wait... what?!?! --- (really) [yes] {no} <maybe>",
    "#@$%^&*()_+-=~`|\\/:;\"'",
    # code
    "def add(a, b):\n    return a + b\n",
    "fn main() {\n\tprintln!(\"{}\", x?);\n}",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "<div class=\"box\">&amp;</div>",
    # emoji, including multi-codepoint ZWJ sequences and flags
    "I love pizza 🍕!",
    "👍🏽",
    "👨‍👩‍👧‍👦 family",
    "🏳️‍🌈🇫🇷",
    # CJK, Arabic, accented Latin, other scripts
    "你好，世界！",
    "日本語のテキストです。",
    "한국어 문장입니다",
    "مرحبا بالعالم",
    "Ça va? Déjà vu, naïve café, São Paulo, Zürich, Øresund.",
    "Привет, мир!",
    "नमस्ते दुनिया",
    "Mixed: English, 中文, العربية, and Ελληνικά in one line.",
    # leading / trailing spaces and whitespace runs
    " leading space",
    "trailing space ",
    "   three leading spaces",
    "multiple     spaces    inside",
    "\n\n\n",
    "a  \t b",
    "\ttab\tseparated\tvalues",
    "line one\nline two\r\nline three",
    "  \n  \n",
    # chat markers / special tokens
    "<|im_start|>user\nHi<|im_end|>",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text before<|im_end|>text after",
    "Hi <|im_end|> there",
    "<|im_start|><|im_end|>",
    "<|im_start not special|> <im_start> <think>",
    # empty string
    "",
    # long sentence
    "Knowledge graphs store facts as subject-predicate-object triples, and a small language model "
    "running inside a WebAssembly component can retrieve those facts, rank them by embedding "
    "similarity, and then generate a grounded answer without ever leaving the browser.",
    # contractions
    "don't",
    "I'll be there, won't you? We're sure they've said it's fine.",
    "DON'T SHOUT",
    # URL / path / email-like strings
    "https://example.com/path?query=1&lang=en#frag",
    "user.name+tag@example.org",
    "/usr/local/bin/python3 --version",
    # misc
    "CamelCaseIdentifier snake_case_identifier kebab-case-identifier",
    "e = mc² ≈ 9×10¹⁶ J; ∑ xᵢ → ∞",
    "   ",
    "no\u00a0break\u00a0space and e\u0301 (combining) vs \u00e9",
    "zero\u200bwidth",
    "ALL CAPS SENTENCE WITH NUMBERS 42 AND 7",
]


def dump_json(obj, indent=0):
    """Indented JSON, but with lists of numbers kept on one line (readable diffs, small file)."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {dump_json(v, indent + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in obj):
            return "[" + ", ".join(json.dumps(x) for x in obj) + "]"
        return "[\n" + ",\n".join(inner + dump_json(x, indent + 1) for x in obj) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_model():
    base = os.environ.get("LLMKG_MODELS")
    base = Path(base).expanduser() if base else Path.home() / ".cache" / "llmkg" / "models"
    return base / MODEL_SUBPATH


def gguf_metadata(path):
    """Read the tokenizer metadata straight from the GGUF with the `gguf` package."""
    from gguf import GGUFReader

    reader = GGUFReader(str(path))

    def scalar(key):
        f = reader.fields.get(key)
        if f is None:
            return None
        return f.parts[f.data[0]].tolist()[0]

    def string(key):
        f = reader.fields.get(key)
        if f is None:
            return None
        return bytes(f.parts[f.data[0]]).decode("utf-8")

    tokens_field = reader.fields["tokenizer.ggml.tokens"]
    tokens = [bytes(tokens_field.parts[i]).decode("utf-8") for i in tokens_field.data]
    types_field = reader.fields["tokenizer.ggml.token_type"]
    token_types = [int(types_field.parts[i][0]) for i in types_field.data]
    return {
        "tokenizer_model": string("tokenizer.ggml.model"),
        "tokenizer_pre": string("tokenizer.ggml.pre"),
        "bos_id": scalar("tokenizer.ggml.bos_token_id"),
        "eos_id": scalar("tokenizer.ggml.eos_token_id"),
        "pad_id": scalar("tokenizer.ggml.padding_token_id"),
        "unk_id": scalar("tokenizer.ggml.unknown_token_id"),
        "add_bos": scalar("tokenizer.ggml.add_bos_token"),
        "chat_template": string("tokenizer.chat_template"),
        "tokens": tokens,
        "token_types": token_types,
    }


def render_chat_template(template, messages, bos_token, eos_token):
    """Render like transformers' apply_chat_template does (sandboxed jinja2, trim/lstrip blocks)."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(
        messages=messages, add_generation_prompt=True,
        bos_token=bos_token, eos_token=eos_token)


class LlamaCppTokenizer:
    def __init__(self, path):
        import llama_cpp
        from llama_cpp import Llama

        self.version = llama_cpp.__version__
        self.llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.name = f"llama.cpp via llama-cpp-python=={self.version} (vocab_only, add_bos=False, special=True)"

    def encode(self, text):
        if text == "":
            return []
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def decode(self, ids):
        return self.llm.detokenize(ids, special=True).decode("utf-8", errors="replace")


class HfTokenizer:
    def __init__(self, path):
        import transformers
        from transformers import AutoTokenizer

        self.version = transformers.__version__
        self.tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        self.name = f"transformers=={self.version} GGUF tokenizer conversion (add_special_tokens=False)"

    def encode(self, text):
        return list(self.tok.encode(text, add_special_tokens=False))

    def chat(self, messages):
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=default_model(), help="SmolLM2 GGUF path")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--generator", choices=["llama.cpp", "hf"], default="llama.cpp",
                    help="which implementation's ids go into `ids` (default llama.cpp)")
    ap.add_argument("--no-cross-check", action="store_true",
                    help="do not compare against the other implementation")
    args = ap.parse_args()

    if not args.model.is_file():
        sys.exit(f"model not found: {args.model} (run scripts/fetch-models --only smollm2)")
    print(f"model: {args.model}", file=sys.stderr)
    model_sha = sha256_file(args.model)
    meta = gguf_metadata(args.model)
    tokens = meta["tokens"]
    bos_token = tokens[meta["bos_id"]] if meta["bos_id"] is not None else ""
    eos_token = tokens[meta["eos_id"]] if meta["eos_id"] is not None else ""

    primary = LlamaCppTokenizer(args.model) if args.generator == "llama.cpp" else HfTokenizer(args.model)
    other = None
    if not args.no_cross_check:
        other = HfTokenizer(args.model) if args.generator == "llama.cpp" else LlamaCppTokenizer(args.model)

    cases = []
    mismatches = []
    for text in CASES:
        ids = primary.encode(text)
        case = {"text": text, "ids": ids}
        if other is not None:
            other_ids = other.encode(text)
            if other_ids != ids:
                key = "hf_ids" if args.generator == "llama.cpp" else "llama_cpp_ids"
                case[key] = other_ids
                mismatches.append(text)
        cases.append(case)

    # Sanity: special markers must come out as single ids.
    for marker in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        ids = primary.encode(marker)
        assert len(ids) == 1 and tokens[ids[0]] == marker, (marker, ids)

    rendered = render_chat_template(meta["chat_template"], CHAT_MESSAGES, bos_token, eos_token)
    hf_rendered = None
    if isinstance(primary, HfTokenizer):
        hf_rendered = primary.chat(CHAT_MESSAGES)
    elif other is not None:
        hf_rendered = other.chat(CHAT_MESSAGES)
    if hf_rendered is not None and hf_rendered != rendered:
        print(f"WARNING: transformers' apply_chat_template differs:\n{hf_rendered!r}\nvs\n{rendered!r}",
              file=sys.stderr)

    special_ids = {t: i for i, (t, ty) in enumerate(zip(tokens, meta["token_types"])) if ty != 1}
    fixture = {
        "generator": primary.name,
        "model_file": MODEL_SUBPATH.name,
        "model_sha256": model_sha,
        "notes": (
            "ids are encoded without BOS or any other added prefix; special tokens written in the "
            "text (e.g. <|im_start|>) are parsed as specials. chat_template_render is the GGUF's "
            "tokenizer.chat_template rendered with jinja2 (sandboxed, trim_blocks, lstrip_blocks, "
            "as transformers does) for chat_template_messages with add_generation_prompt=true; "
            "chat_template_render_ids is that text tokenized by the generator."
        ),
        "tokenizer_model": meta["tokenizer_model"],
        "tokenizer_pre": meta["tokenizer_pre"],
        "vocab_size": len(tokens),
        "bos_id": meta["bos_id"],
        "bos_token": bos_token,
        "eos_id": meta["eos_id"],
        "eos_token": eos_token,
        "pad_id": meta["pad_id"],
        "unk_id": meta["unk_id"],
        "add_bos_token": meta["add_bos"],
        "special_tokens": special_ids,
        "chat_template_messages": CHAT_MESSAGES,
        "chat_template_render": rendered,
        "chat_template_render_ids": primary.encode(rendered),
        "cross_check": None if other is None else {
            "other": other.name,
            "cases_compared": len(CASES),
            "cases_differing": len(mismatches),
            "differing_texts": mismatches,
            "chat_template_render_matches_apply_chat_template": hf_rendered == rendered,
        },
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(dump_json(fixture) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(cases)} cases, generator: {primary.name}", file=sys.stderr)
    if other is not None:
        print(f"cross-check vs {other.name}: {len(mismatches)} of {len(CASES)} differ", file=sys.stderr)
        for t in mismatches:
            print(f"  differs: {t!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
