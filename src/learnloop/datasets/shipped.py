"""Datasets shipped inside the package (see ``uci_sentiment/README.md``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from learnloop.errors import DataError

UCI_DOMAINS: tuple[str, ...] = ("yelp", "amazon_cells", "imdb")
"""Domains of the UCI "Sentiment Labelled Sentences" data, 500 positive + 500 negative each."""

UCI_LABEL_NAMES: dict[str, str] = {"0": "negative", "1": "positive"}
"""What the UCI files' label values mean (``--label-names 0=negative,1=positive``)."""


def uci_sentiment_path(domain: str) -> Path:
    """Path of ``<domain>_labelled.txt``: TSV, no header, column "0" text, column "1" label 0/1.

    Read it with ``read_labelled(path, text_column="0", label_column="1", header=False)``.
    """
    if domain not in UCI_DOMAINS:
        raise DataError(
            f"unknown UCI sentiment domain {domain!r}; choose one of: {', '.join(UCI_DOMAINS)}",
            field="domain",
        )
    resource = resources.files("learnloop.datasets") / "uci_sentiment" / f"{domain}_labelled.txt"
    if not isinstance(resource, Path):
        raise DataError(
            f"shipped data file {resource} is not on the file system (learnloop is imported "
            "from a zip archive); install learnloop as a regular package"
        )
    if not resource.is_file():
        raise DataError(f"shipped data file is missing from the installation: {resource}")
    return resource
