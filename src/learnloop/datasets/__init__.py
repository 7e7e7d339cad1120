"""Reading labelled text data, and the datasets shipped with learnloop."""

from learnloop.datasets.label_names import parse_label_names, rename_labels
from learnloop.datasets.preference import (
    PreferenceData,
    PreferencePair,
    orca_dpo_sample_path,
    read_hh_rlhf,
    read_orca_dpo,
    read_orca_dpo_sample,
)
from learnloop.datasets.readers import (
    SUPPORTED_FORMATS,
    LabelledData,
    detect_format,
    read_labelled,
)
from learnloop.datasets.shipped import UCI_DOMAINS, UCI_LABEL_NAMES, uci_sentiment_path

__all__ = [
    "SUPPORTED_FORMATS",
    "UCI_DOMAINS",
    "UCI_LABEL_NAMES",
    "LabelledData",
    "PreferenceData",
    "PreferencePair",
    "detect_format",
    "orca_dpo_sample_path",
    "parse_label_names",
    "read_hh_rlhf",
    "read_labelled",
    "read_orca_dpo",
    "read_orca_dpo_sample",
    "rename_labels",
    "uci_sentiment_path",
]
