"""Reading labelled text data, and the datasets shipped with learnloop."""

from learnloop.datasets.readers import (
    SUPPORTED_FORMATS,
    LabelledData,
    detect_format,
    read_labelled,
)
from learnloop.datasets.shipped import UCI_DOMAINS, uci_sentiment_path

__all__ = [
    "SUPPORTED_FORMATS",
    "UCI_DOMAINS",
    "LabelledData",
    "detect_format",
    "read_labelled",
    "uci_sentiment_path",
]
