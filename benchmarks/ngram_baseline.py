"""A bag-of-n-grams reference for the two text classifications of the fine-tuning suite: how far do words and
characters alone go on MIDAS BBC topic and IITP sentiment, with no language model at all?

    python benchmarks/ngram_baseline.py --out benchmarks/results/ngram_baseline.json

Per task: the suite's own splits (`training.tasks.load_task`: test never overlaps train or dev), TF-IDF of word
1-2-grams and character 2-4-grams within words (sublinear tf), a class-balanced scikit-learn logistic regression
with its `C` chosen on dev by the main metric (macro-F1), scored on test with the suite's metric function.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from training.task_encoding import MAIN_METRICS, accuracy_and_macro_f1  # noqa: E402
from training.tasks import load_task  # noqa: E402

C_VALUES = (0.3, 1.0, 3.0, 10.0, 30.0)

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--tasks", nargs="+", default=["bbc_topic", "iitp_sentiment"])
parser.add_argument("--shared-data", help="the shared data folder (default: $HINDI_MODELS_SHARED_DATA or ../shared/data)")
parser.add_argument("--c-values", nargs="+", type=float, default=list(C_VALUES))


def ngram_features(train_texts: list[str]):
    """Fit word and character TF-IDF on the training texts; returns a function from texts to features."""
    words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True).fit(train_texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True).fit(train_texts)
    return lambda texts: hstack([words.transform(texts), chars.transform(texts)]).tocsr()


def ngram_baseline(task: str, shared_data=None, c_values=C_VALUES) -> dict:
    """The dev-chosen n-gram logistic regression of one classification task: dev score per C, test scores."""
    train, dev, test, labels = load_task(task, shared_data)
    main_metric = MAIN_METRICS["classification"][0]
    features = ngram_features([e["text"] for e in train])
    x_train, x_dev, x_test = (features([e["text"] for e in split]) for split in (train, dev, test))
    y_train = [e["label"] for e in train]
    fits, dev_scores = {}, {}
    for c in c_values:
        fits[c] = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x_train, y_train)
        dev_scores[c] = accuracy_and_macro_f1([e["label"] for e in dev], list(fits[c].predict(x_dev)))
    chosen = max(c_values, key=lambda c: dev_scores[c][main_metric])
    return {"n_train": len(train), "n_dev": len(dev), "n_eval": len(test), "labels": labels, "c": chosen,
            "dev_by_c": {f"{c:g}": scores for c, scores in dev_scores.items()},
            **accuracy_and_macro_f1([e["label"] for e in test], list(fits[chosen].predict(x_test)))}


def main() -> int:
    args = parser.parse_args()
    results = {task: ngram_baseline(task, args.shared_data, args.c_values) for task in args.tasks}
    for task, r in results.items():
        print(f"{task}: macro-F1 {r['macro_f1']:.4f}, accuracy {r['accuracy']:.4f} (C={r['c']:g}, "
              f"n_train={r['n_train']}, n_eval={r['n_eval']})")
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
