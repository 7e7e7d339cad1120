"""Names for a data file's label values (``--label-names 0=negative,1=positive``): parsed
strictly, and applied so that the model's labels are the names; a name for a value the data
lacks, or two values given one name, is refused rather than leaving codes or merging labels."""

from __future__ import annotations

import pytest

from learnloop.datasets import parse_label_names, rename_labels
from learnloop.datasets.label_names import check_label_names
from learnloop.errors import DataError, ValidationError


def test_pairs_are_parsed_with_spaces_around_them() -> None:
    assert parse_label_names("0=negative, 1 = positive") == {"0": "negative", "1": "positive"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("0=negative;1=positive", "VALUE=NAME pairs"),
        ("0=", "VALUE=NAME pairs"),
        ("=negative", "VALUE=NAME pairs"),
        ("0=neg,0=negative", "'0' is named twice"),
        ("0=bad,1=bad", "both named 'bad'"),
    ],
)
def test_malformed_names_are_refused_on_the_label_names_field(text: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words) as refused:
        parse_label_names(text)
    assert refused.value.field == "label_names"


def test_named_values_are_renamed_and_others_kept() -> None:
    names = {"0": "negative", "1": "positive"}
    assert rename_labels(["1", "0", "1", "2"], names, "f.tsv") == ["positive", "negative", "positive", "2"]
    assert rename_labels(["a"], {}, "f.tsv") == ["a"]


def test_a_name_for_a_value_the_data_lacks_or_one_that_is_already_a_value_is_refused() -> None:
    with pytest.raises(DataError, match=r"names '2', not a label of f\.tsv \(its labels: 0, 1\)"):
        rename_labels(["0", "1"], {"0": "negative", "2": "positive"}, "f.tsv")
    with pytest.raises(DataError, match=r"'1' is also a label value of f\.tsv"):
        rename_labels(["0", "1"], {"0": "1"}, "f.tsv")


@pytest.mark.parametrize("names", [{"": "negative"}, {"0": ""}, {"0": " negative"}, {" 0": "negative"}])
def test_a_mapping_given_as_json_with_an_empty_or_padded_side_is_refused(names: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="neither empty nor padded") as refused:
        check_label_names(names)
    assert refused.value.field == "label_names"
