"""Convert the shared real data sets into plain JSONL files for ``learnloop init`` and replays.

Run from the repository root with the project's virtual environment::

    .venv/bin/python bench/datasets.py --out bench/data
    .venv/bin/python bench/datasets.py --out bench/data --data /path/to/shared/datasets --seed 0

Every output file holds one JSON object per line, ``{"text": ..., "label": ...}``, with the
label ``"0"`` (negative) or ``"1"`` (positive) in every file, so any file can bootstrap a model
(``learnloop init --data X.jsonl --text-column text --label-column label``) and any other can be
streamed against it. The sources and their quirks are described in the shared data folder's
README.md; what this module does about them:

* ``sst2_train`` / ``sst2_dev``: GLUE SST-2 TSVs. The train copy's header reads ``text\\tlabel``
  instead of ``sentence\\tlabel``, so the header line is skipped by position, not by name. The
  trailing space before the tab is stripped. Source order is kept.
* ``amazon_<category>``: Blitzer et al.'s pseudo-XML ``*.review.gz`` files (bare ``&``, one file
  wrapped in ``<data>``), parsed line by line. Text = title + ". " + review text (no extra ``.``
  when the title already ends in ``. ! ?``), HTML entities unescaped once, whitespace collapsed.
  The label comes from the file name (positive = 4-5 stars, negative = 1-2 stars). Each
  category's 2,000 reviews are shuffled with a fixed seed so that the labels interleave.
* ``uci_<domain>``: Kotzias et al.'s sentence files, each line split on its **last** tab, read
  without any quote handling (imdb has stray quotes and U+0085 inside sentences). Shuffled with
  a fixed seed (the source files are not in random order).
* ``twitter_us_airline``: Kaggle's ``Tweets.csv`` (quoted newlines: read with a CSV parser).
  Three classes in the source; ``neutral`` is dropped to make it binary. Rows are in time order
  (``tweet_created``, then ``tweet_id``), the natural order of a stream; ``&amp;`` and friends
  are unescaped and whitespace collapsed. 79.5% of the binary tweets are negative: streamed
  after balanced review data this is a label shift as well as a change of register.

U+0085, U+2028 and U+2029 are written as JSON escapes, so a reader that splits on every Unicode
line break (``str.splitlines``) still sees one object per line. ``scenarios()`` names the files
each drift scenario uses. The CLI checks every row count against the README and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import html
import io
import json
import os
import random
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEGATIVE = "0"
POSITIVE = "1"
DEFAULT_SEED = 0

Row = tuple[str, str]
"""(text, label) with label ``"0"`` or ``"1"``."""

AMAZON_CATEGORIES: dict[str, str] = {
    "books": "books",
    "dvd": "dvd",
    "electronics": "electronics",
    "kitchen": "kitchen_housewares",
}
"""Output name -> category prefix of the Blitzer files."""

UCI_DOMAINS: dict[str, str] = {
    "yelp": "yelp_labelled.txt",
    "amazon": "amazon_cells_labelled.txt",
    "imdb": "imdb_labelled.txt",
}

# Row counts and positives stated in the shared data README (twitter: after dropping neutral).
EXPECTED: dict[str, tuple[int, int]] = {
    "sst2_train": (67_349, 37_569),
    "sst2_dev": (872, 444),
    **{f"amazon_{name}": (2_000, 1_000) for name in AMAZON_CATEGORIES},
    **{f"uci_{name}": (1_000, 500) for name in UCI_DOMAINS},
    "twitter_us_airline": (9_178 + 2_363, 2_363),
}
# All tweets (three classes) and per airline, as a check that the CSV was parsed into the right rows.
EXPECTED_TWEETS = 14_640
EXPECTED_NEUTRAL = 3_099
EXPECTED_AIRLINE_TOTALS: dict[str, int] = {
    "Virgin America": 504,
    "Delta": 2_222,
    "Southwest": 2_420,
    "United": 3_822,
    "American": 2_759,
    "US Airways": 2_913,
}

_LINE_BREAKS = {"\u0085": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_INVISIBLE = re.compile("[\ufeff\u200b]")
_TITLE_END = re.compile(r"[.!?]$")
_OPEN_TAG = re.compile(r"^<([a-z_]+)>$")


class DatasetError(Exception):
    """A source file is missing, malformed, or does not have the expected rows."""


@dataclass(frozen=True)
class Summary:
    name: str
    rows: int
    positive: int
    mean_chars: float
    mean_words: float

    @property
    def positive_share(self) -> float:
        return self.positive / self.rows if self.rows else 0.0


# --------------------------------------------------------------------------- text helpers


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace to one space and drop zero-width characters."""
    return " ".join(_INVISIBLE.sub("", text).split())


def _clean_markup(text: str) -> str:
    return normalize_whitespace(html.unescape(text))


def _shuffled(rows: Sequence[Row], seed: int, name: str) -> list[Row]:
    out = list(rows)
    random.Random(f"{seed}:{name}").shuffle(out)  # str seeds hash with SHA-512: stable across runs
    return out


def _binary_label(value: str, path: Path, line_no: int) -> str:
    label = value.strip()
    if label not in (NEGATIVE, POSITIVE):
        raise DatasetError(f"{path}, line {line_no}: label {label!r} is not 0 or 1")
    return label


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[io.TextIOWrapper]:
    """UTF-8 text, gunzipped when the name ends in .gz; lines split only on \\n, \\r, \\r\\n."""
    if not path.is_file():
        raise DatasetError(f"source file not found: {path}")
    with (
        gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb") as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
    ):
        yield text


# --------------------------------------------------------------------------- readers


def read_sst2(path: Path) -> list[Row]:
    """GLUE SST-2 TSV: skip the header line whatever it says, split on the last tab."""
    with _open_text(path) as stream:
        header = stream.readline()
        if "\t" not in header:
            raise DatasetError(f"{path}: first line is not a TSV header: {header[:80]!r}")
        return _tab_rows(stream, path, first_line=2)


def read_uci(path: Path) -> list[Row]:
    """UCI sentiment sentences: ``sentence<TAB>label``, no header, quotes are literal."""
    with _open_text(path) as stream:
        return _tab_rows(stream, path, first_line=1)


def _tab_rows(lines: Iterable[str], path: Path, *, first_line: int) -> list[Row]:
    """``text<TAB>label`` lines, split on the last tab; blank lines skipped."""
    rows: list[Row] = []
    for line_no, raw in enumerate(lines, start=first_line):
        line = raw.rstrip("\r\n")
        if not line:
            continue
        text, sep, label = line.rpartition("\t")
        if not sep:
            raise DatasetError(f"{path}, line {line_no}: no tab")
        rows.append((text.strip(), _binary_label(label, path, line_no)))
    return rows


def iter_blitzer_records(lines: Iterable[str], path: Path) -> Iterator[dict[str, str]]:
    """Records of a Blitzer ``.review`` file as ``{field: raw value}``, parsed line by line.

    Each field is an opening tag alone on a line, its value on the following lines, and the
    closing tag alone on a line. Values are not XML-escaped (bare ``&`` occurs), so no XML parser.
    """
    record: dict[str, str] | None = None
    field: str | None = None
    value: list[str] = []
    for line_no, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if field is not None:
            if stripped == f"</{field}>":
                assert record is not None
                record[field] = "\n".join(value)
                field, value = None, []
            else:
                value.append(line)
            continue
        if stripped in ("<data>", "</data>", ""):
            continue
        if stripped == "<review>":
            if record is not None:
                raise DatasetError(f"{path}, line {line_no}: <review> inside a review")
            record = {}
        elif stripped == "</review>":
            if record is None:
                raise DatasetError(f"{path}, line {line_no}: </review> without <review>")
            yield record
            record = None
        elif (match := _OPEN_TAG.match(stripped)) and record is not None:
            field = match.group(1)
        else:
            raise DatasetError(f"{path}, line {line_no}: unexpected line outside a field: {stripped[:80]!r}")
    if record is not None or field is not None:
        raise DatasetError(f"{path}: file ends inside a review")


def blitzer_text(record: dict[str, str]) -> str:
    """Title + ". " + review text, entities unescaped, whitespace collapsed."""
    title = _clean_markup(record.get("title", ""))
    body = _clean_markup(record.get("review_text", ""))
    if not title:
        return body
    if not body:
        return title
    joiner = " " if _TITLE_END.search(title) else ". "
    return f"{title}{joiner}{body}"


def read_blitzer(path: Path, label: str) -> list[Row]:
    """One ``<category>_<positive|negative>.review.gz`` file; the label comes from the file name."""
    with _open_text(path) as stream:
        records = list(iter_blitzer_records(stream, path))
    rows: list[Row] = []
    for index, record in enumerate(records, start=1):
        rating = float(record.get("rating", "nan").strip() or "nan")
        if (label == POSITIVE and rating < 4) or (label == NEGATIVE and rating > 2):
            raise DatasetError(f"{path}, review {index}: rating {rating} contradicts the file's label")
        text = blitzer_text(record)
        if not text:
            raise DatasetError(f"{path}, review {index}: empty title and text")
        rows.append((text, label))
    return rows


def read_amazon(data_dir: Path, category: str) -> list[Row]:
    folder = data_dir / "amazon_multidomain_blitzer"
    return read_blitzer(folder / f"{category}_positive.review.gz", POSITIVE) + read_blitzer(
        folder / f"{category}_negative.review.gz", NEGATIVE
    )


@dataclass(frozen=True)
class Tweet:
    created: str
    tweet_id: int
    airline: str
    sentiment: str
    text: str


def read_tweets(path: Path) -> list[Tweet]:
    """All rows of Kaggle's ``Tweets.csv`` (all three classes), in file order."""
    with _open_text(path) as stream:
        reader = csv.DictReader(stream)
        needed = {"tweet_id", "airline_sentiment", "airline", "text", "tweet_created"}
        missing = needed - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: missing columns {sorted(missing)}")
        return [
            Tweet(
                created=row["tweet_created"],
                tweet_id=int(row["tweet_id"]),
                airline=row["airline"],
                sentiment=row["airline_sentiment"],
                text=_clean_markup(row["text"]),
            )
            for row in reader
        ]


def twitter_binary(tweets: Iterable[Tweet]) -> list[Row]:
    """Negative/positive tweets as rows in time order; neutral ones are dropped."""
    labels = {"negative": NEGATIVE, "positive": POSITIVE}
    # Timestamps share one offset (-0800), so the strings sort chronologically.
    ordered = sorted(tweets, key=lambda t: (t.created, t.tweet_id))
    return [(t.text, labels[t.sentiment]) for t in ordered if t.sentiment in labels]


# --------------------------------------------------------------------------- building


def load_all(data_dir: Path, seed: int = DEFAULT_SEED) -> dict[str, list[Row]]:
    """Every output set by name, in its final row order."""
    sets: dict[str, list[Row]] = {
        "sst2_train": read_sst2(data_dir / "sst2" / "train.tsv.gz"),
        "sst2_dev": read_sst2(data_dir / "sst2" / "dev.tsv"),
    }
    for name, category in AMAZON_CATEGORIES.items():
        sets[f"amazon_{name}"] = _shuffled(read_amazon(data_dir, category), seed, f"amazon_{name}")
    for name, filename in UCI_DOMAINS.items():
        rows = read_uci(data_dir / "uci_sentiment_labelled_sentences" / filename)
        sets[f"uci_{name}"] = _shuffled(rows, seed, f"uci_{name}")
    tweets = read_tweets(data_dir / "twitter_us_airline" / "Tweets.csv.gz")
    _check_airlines(tweets)
    sets["twitter_us_airline"] = twitter_binary(tweets)
    check_counts(sets)
    return sets


def _check_airlines(tweets: Sequence[Tweet]) -> None:
    neutral = sum(1 for t in tweets if t.sentiment == "neutral")
    if len(tweets) != EXPECTED_TWEETS or neutral != EXPECTED_NEUTRAL:
        raise DatasetError(
            f"Tweets.csv: {len(tweets)} rows / {neutral} neutral, README says {EXPECTED_TWEETS} / {EXPECTED_NEUTRAL}"
        )
    for airline, expected in EXPECTED_AIRLINE_TOTALS.items():
        found = sum(1 for t in tweets if t.airline == airline)
        if found != expected:
            raise DatasetError(f"Tweets.csv: {found} tweets for {airline}, README says {expected}")


def check_counts(sets: dict[str, list[Row]]) -> None:
    """Compare rows and positives with the README; raise on the first difference."""
    for name, (rows, positives) in EXPECTED.items():
        data = sets[name]
        found = sum(1 for _, label in data if label == POSITIVE)
        if len(data) != rows or found != positives:
            raise DatasetError(
                f"{name}: {len(data)} rows / {found} positive, README says {rows} rows / {positives} positive"
            )


def summarize(name: str, rows: Sequence[Row]) -> Summary:
    n = len(rows)
    return Summary(
        name=name,
        rows=n,
        positive=sum(1 for _, label in rows if label == POSITIVE),
        mean_chars=sum(len(text) for text, _ in rows) / n if n else 0.0,
        mean_words=sum(len(text.split()) for text, _ in rows) / n if n else 0.0,
    )


def _json_line(text: str, label: str) -> str:
    line = json.dumps({"text": text, "label": label}, ensure_ascii=False)
    for char, escape in _LINE_BREAKS.items():
        line = line.replace(char, escape)
    return line + "\n"


def write_jsonl(path: Path, rows: Iterable[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # two benches may build at once
    with tmp.open("w", encoding="utf-8", newline="\n") as out:
        for text, label in rows:
            out.write(_json_line(text, label))
    tmp.replace(path)


def read_jsonl(path: Path) -> list[Row]:
    """Rows of a file written by :func:`write_jsonl` (for replays and checks)."""
    rows: list[Row] = []
    with path.open(encoding="utf-8", newline="") as stream:
        for line in stream:
            if line.strip():
                obj = json.loads(line)
                rows.append((obj["text"], obj["label"]))
    return rows


def build(data_dir: Path, out_dir: Path, seed: int = DEFAULT_SEED) -> list[Summary]:
    """Write ``<name>.jsonl`` for every set into ``out_dir``; return one summary per file."""
    sets = load_all(data_dir, seed)
    summaries = []
    for name, rows in sets.items():
        write_jsonl(out_dir / f"{name}.jsonl", rows)
        summaries.append(summarize(name, rows))
    return summaries


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    """A drift scenario: bootstrap data, in-domain segments replayed first, then the shift."""

    bootstrap: Path
    pre_shift: list[Path]
    stream: list[Path]


# name -> (bootstrap, pre-shift segments, post-shift segments)
SCENARIOS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # Phrases of movie reviews -> full-length product reviews; sst2_dev is the in-domain segment.
    "sst2-to-amazon": (
        "sst2_train",
        ("sst2_dev",),
        ("amazon_books", "amazon_dvd", "amazon_electronics", "amazon_kitchen"),
    ),
    # Short sentences: restaurants -> phones -> movies.
    "uci-three-domains": ("uci_yelp", (), ("uci_amazon", "uci_imdb")),
    # Review sentences -> customer-service tweets in time order: register shift plus label shift
    # (50% -> 20% positive).
    "yelp-to-airline": ("uci_yelp", (), ("twitter_us_airline",)),
}


def scenarios(directory: str | Path = "") -> dict[str, Scenario]:
    """Every scenario, with its files inside ``directory``."""
    base = Path(directory)

    def paths(names: Sequence[str]) -> list[Path]:
        return [base / f"{name}.jsonl" for name in names]

    return {
        name: Scenario(base / f"{bootstrap}.jsonl", paths(pre), paths(post))
        for name, (bootstrap, pre, post) in SCENARIOS.items()
    }


# --------------------------------------------------------------------------- CLI


def default_data_dir() -> Path:
    for candidate in (ROOT / "shared" / "datasets", ROOT.parent / "shared" / "datasets"):
        if (candidate / "README.md").is_file():
            return candidate
    return ROOT.parent / "shared" / "datasets"


def format_table(summaries: Sequence[Summary]) -> str:
    header = f"{'file':<28} {'rows':>7} {'positive':>8} {'pos %':>6} {'chars':>7} {'words':>6}"
    lines = [header, "-" * len(header)]
    for s in summaries:
        lines.append(
            f"{s.name + '.jsonl':<28} {s.rows:>7,} {s.positive:>8,} {100 * s.positive_share:>5.1f}% "
            f"{s.mean_chars:>7.0f} {s.mean_words:>6.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, required=True, help="folder for the .jsonl files")
    parser.add_argument(
        "--data", type=Path, default=None, help="shared datasets folder (default: found next to the repository)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="shuffle seed (default %(default)s)")
    args = parser.parse_args(argv)
    data_dir = args.data or default_data_dir()
    try:
        summaries = build(data_dir, args.out, args.seed)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(summaries)} files to {args.out} (row counts match {data_dir / 'README.md'})\n")
    print(format_table(summaries))
    print("\nscenarios (bootstrap -> stream):")
    for name, sc in scenarios().items():
        print(f"  {name}: {sc.bootstrap.stem} -> {' -> '.join(p.stem for p in [*sc.pre_shift, *sc.stream])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
