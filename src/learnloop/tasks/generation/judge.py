"""A judge: a small reward model trained on a generative model's own rated answers.

The generative gate (``evaluation.generative_gate``) asks it to score both versions' answers
to held-out prompts. It is fast and local (no hosted LLM): a logistic regression (classes
balanced, each row weighted by its training ``weight``) predicting whether an answer is
desirable from

* TF-IDF of the response: word 1-2 grams and character 3-5 grams (within word bounds);
* TF-IDF of the prompt and response together: word 1-2 grams;
* lengths: log characters and words of the response, and log(response / prompt characters).

Its rows are ``JudgeExample`` s: from KTO rows (``of_kto``: a conversation, a response and
whether it is desirable) or from ratings (``of_rating``: at least ``sft_min_rating`` is
desirable, at most ``UNDESIRABLE_MAX_RATING`` is not, a rating between says nothing).

How far it can be trusted (``Judge.quality``): its ROC AUC on a stratified quarter of the rows
that a first fit did not see; the judge itself is then fitted on every row, so the AUC
describes the procedure (slightly pessimistically), not the very model. ``train_judge``
returns None with fewer than ``MIN_ROWS`` rows or a single class (``judge_refusal`` says
why). A ``Judge`` pickles (it is made and used inside the training process).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from learnloop.evaluation.auc import roc_auc
from learnloop.evaluation.generative_gate import JudgeScores
from learnloop.tasks.generation.answers import prompt_text
from learnloop.tasks.generation.curate import UNDESIRABLE_MAX_RATING
from learnloop.tasks.generation.sets import KtoRow

MIN_ROWS = 20  # fewer rated answers: no judge
MIN_PER_CLASS_FOR_AUC = 4  # fewer of either class: the judge's AUC is unknown
HELD_OUT_SHARE = 0.25


@dataclass(frozen=True)
class JudgeExample:
    """One rated answer: the prompt as text, the response, whether it is desirable, and its weight."""

    prompt: str
    response: str
    desirable: bool
    weight: float = 1.0

    @classmethod
    def of_kto(cls, row: KtoRow) -> JudgeExample:
        return cls(prompt_text(row.messages), row.response, row.desirable, row.weight)

    @classmethod
    def of_rating(cls, prompt: str, response: str, rating: int, *, sft_min_rating: int = 4) -> JudgeExample | None:
        """A rated answer, or None for a rating between bad and good."""
        if rating >= sft_min_rating:
            return cls(prompt, response, True)
        if rating <= UNDESIRABLE_MAX_RATING:
            return cls(prompt, response, False)
        return None


@dataclass(frozen=True)
class JudgeQuality:
    """The judge's ROC AUC on ``held_out`` rows a first fit did not see (None: too few of a
    class to measure it), and how many rows the judge was fitted on."""

    auc: float | None
    held_out: int
    trained_on: int


class _Features:
    """The judge's features (the module doc), fitted on its training rows."""

    def __init__(self) -> None:
        self.response_words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        self.response_chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=1)
        self.both_words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)

    @staticmethod
    def _lengths(prompts: Sequence[str], responses: Sequence[str]) -> sp.csr_matrix:
        chars = np.array([len(r) for r in responses], dtype=np.float64)
        words = np.array([len(r.split()) for r in responses], dtype=np.float64)
        prompt_chars = np.array([len(p) for p in prompts], dtype=np.float64)
        columns = [np.log1p(chars) / 10, np.log1p(words) / 10, (np.log1p(chars) - np.log1p(prompt_chars)) / 10]
        return sp.csr_matrix(np.column_stack(columns))

    def transform(self, prompts: Sequence[str], responses: Sequence[str], *, fit: bool = False) -> sp.csr_matrix:
        """The features of each (prompt, response); ``fit``: fit the vectorizers on them first."""
        both = [f"{p}\n{r}" for p, r in zip(prompts, responses, strict=True)]
        texts = ((self.response_words, responses), (self.response_chars, responses), (self.both_words, both))
        parts = [v.fit_transform(t) if fit else v.transform(t) for v, t in texts]
        return sp.hstack([*parts, self._lengths(prompts, responses)], format="csr")


class Judge:
    """A fitted judge: ``score`` is the probability that an answer is desirable."""

    def __init__(self, features: _Features, model: LogisticRegression, quality: JudgeQuality) -> None:
        self._features = features
        self._model = model
        self.quality = quality
        self.sklearn_version = sklearn.__version__

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The probability desirable of each (prompt, response)."""
        if not pairs:
            return []
        prompts, responses = zip(*pairs, strict=True)
        proba = self._model.predict_proba(self._features.transform(prompts, responses))
        return [float(p) for p in proba[:, list(self._model.classes_).index(1)]]

    def score(self, prompt: str, response: str) -> float:
        return self.scores([(prompt, response)])[0]

    def compare(
        self, prompts: Sequence[str], champion: Sequence[str], candidate: Sequence[str], *, samples_per_prompt: int = 1
    ) -> JudgeScores:
        """Both versions' answers to the same prompts (each prompt ``samples_per_prompt`` times
        in a row), scored, with this judge's quality: what the generative gate reads."""
        return JudgeScores(
            champion=self.scores(list(zip(prompts, champion, strict=True))),
            candidate=self.scores(list(zip(prompts, candidate, strict=True))),
            judge_auc=self.quality.auc,
            judge_auc_n=self.quality.held_out,
            judge_trained_on=self.quality.trained_on,
            samples_per_prompt=samples_per_prompt,
        )


def _examples(rows: Sequence[JudgeExample | KtoRow]) -> list[JudgeExample]:
    return [JudgeExample.of_kto(r) if isinstance(r, KtoRow) else r for r in rows]


def judge_refusal(rows: Sequence[JudgeExample | KtoRow]) -> str | None:
    """Why ``train_judge`` makes no judge of ``rows`` (None: it makes one)."""
    if len(rows) < MIN_ROWS:
        return f"{len(rows)} rated answers; a judge needs at least {MIN_ROWS}"
    desirable = sum(1 for r in rows if r.desirable)
    if desirable in (0, len(rows)):
        return f"all {len(rows)} rated answers are {'desirable' if desirable else 'undesirable'}; a judge needs both"
    return None


def _fit(examples: Sequence[JudgeExample], seed: int) -> tuple[_Features, LogisticRegression]:
    features = _Features()
    x = features.transform([e.prompt for e in examples], [e.response for e in examples], fit=True)
    y = np.array([int(e.desirable) for e in examples])
    model = LogisticRegression(class_weight="balanced", max_iter=1000, random_state=seed)
    model.fit(x, y, sample_weight=np.array([e.weight for e in examples], dtype=np.float64))
    return features, model


def _held_out_auc(examples: Sequence[JudgeExample], seed: int) -> tuple[float | None, int]:
    y = np.array([int(e.desirable) for e in examples])
    if min(int(y.sum()), int(len(y) - y.sum())) < MIN_PER_CLASS_FOR_AUC:
        return None, 0
    train_idx, test_idx = train_test_split(
        np.arange(len(examples)), test_size=HELD_OUT_SHARE, stratify=y, random_state=seed
    )
    features, model = _fit([examples[i] for i in train_idx], seed)
    test = [examples[i] for i in test_idx]
    proba = model.predict_proba(features.transform([e.prompt for e in test], [e.response for e in test]))
    return roc_auc(y[test_idx], proba), len(test_idx)


def train_judge(rows: Sequence[JudgeExample | KtoRow], *, seed: int = 0) -> Judge | None:
    """A judge fitted on ``rows`` with its held-out quality; None when ``judge_refusal`` objects."""
    if judge_refusal(rows) is not None:
        return None
    examples = _examples(rows)
    auc, held_out = _held_out_auc(examples, seed)
    features, model = _fit(examples, seed)
    return Judge(features, model, JudgeQuality(auc=auc, held_out=held_out, trained_on=len(examples)))
