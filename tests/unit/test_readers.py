from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from learnloop.datasets import (
    UCI_DOMAINS,
    detect_format,
    read_labelled,
    uci_sentiment_path,
)
from learnloop.errors import DataError


def write(path: Path, content: str | bytes) -> Path:
    data = content.encode("utf-8") if isinstance(content, str) else content
    path.write_bytes(data)
    return path


# --- format detection ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.CSV", "csv"),
        ("a.tsv", "tsv"),
        ("a.tab", "tsv"),
        ("yelp_labelled.txt", "tsv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.v2.csv.gz", "csv"),
        ("a.jsonl.gz", "jsonl"),
    ],
)
def test_detect_format_from_suffix(name: str, expected: str) -> None:
    assert detect_format(Path(name)) == expected


@pytest.mark.parametrize("name", ["a.parquet", "a.gz", "noext", "a.xlsx.gz"])
def test_detect_format_rejects_unknown_suffix_and_names_supported_formats(name: str) -> None:
    with pytest.raises(DataError, match=r"csv, tsv, jsonl"):
        detect_format(Path(name))


# --- CSV ------------------------------------------------------------------------------------


def test_csv_quoted_commas_doubled_quotes_and_newlines_survive(tmp_path: Path) -> None:
    path = write(
        tmp_path / "reviews.csv",
        "id,text,label\n"
        '1,"Hello, world",pos\n'
        '2,"She said ""hi"", then left",neg\n'
        '3,"line one\nline two",pos\n'
        "4,  plain  , neg \n",
    )
    data = read_labelled(path, text_column="text", label_column="label")
    assert data.texts == [
        "Hello, world",
        'She said "hi", then left',
        "line one\nline two",
        "plain",
    ]
    assert data.labels == ["pos", "neg", "pos", "neg"]
    assert data.skipped == {}


def test_csv_with_crlf_line_ends_and_bom(tmp_path: Path) -> None:
    path = write(
        tmp_path / "excel.csv",
        b'\xef\xbb\xbftext,label\r\n"two\r\nlines",1\r\nnext,0\r\n',
    )
    data = read_labelled(path, text_column="text", label_column="label")
    assert data.texts == ["two\r\nlines", "next"]
    assert data.labels == ["1", "0"]


def test_csv_unclosed_quote_is_an_error_not_a_swallowed_file(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.csv", 'text,label\n"never closed,1\nother,0\nmore,1\n')
    with pytest.raises(DataError, match=r"quoting='none'"):
        read_labelled(path, text_column="text", label_column="label")


# --- TSV ------------------------------------------------------------------------------------


def test_tsv_keeps_literal_quotes_by_default(tmp_path: Path) -> None:
    path = write(
        tmp_path / "reviews.tsv",
        'Review\tLiked\nHe said "wow"\t1\n"Unbalanced start\t0\nLast one\t1\n',
    )
    data = read_labelled(path, text_column="Review", label_column="Liked")
    assert data.texts == ['He said "wow"', '"Unbalanced start', "Last one"]
    assert data.labels == ["1", "0", "1"]


def test_tsv_with_csv_quoting_unquotes_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "q.tsv", 'text\tlabel\n"tab\tinside"\t1\n"plain"\t0\n')
    data = read_labelled(path, text_column="text", label_column="label", quoting="csv")
    assert data.texts == ["tab\tinside", "plain"]
    assert data.labels == ["1", "0"]


def test_headerless_columns_are_named_by_position(tmp_path: Path) -> None:
    path = write(tmp_path / "data.txt", "first\tA\nsecond\tB\n")
    data = read_labelled(path, text_column="0", label_column="1", header=False)
    assert data.texts == ["first", "second"]
    assert data.labels == ["A", "B"]


# --- shipped UCI data -----------------------------------------------------------------------


@pytest.mark.parametrize("domain", UCI_DOMAINS)
def test_shipped_uci_file_reads_as_1000_balanced_rows(domain: str) -> None:
    path = uci_sentiment_path(domain)
    assert path.name == f"{domain}_labelled.txt"
    data = read_labelled(path, text_column="0", label_column="1", header=False)
    assert len(data.texts) == len(data.labels) == 1000
    assert Counter(data.labels) == {"0": 500, "1": 500}
    assert data.skipped == {}
    assert all(text and "\t" not in text and "\n" not in text for text in data.texts)


def test_uci_imdb_keeps_next_line_character_inside_the_sentence() -> None:
    # U+0085 (NEL) is a line break for str.splitlines but not for the file format.
    path = uci_sentiment_path("imdb")
    data = read_labelled(path, text_column="0", label_column="1", header=False)
    assert data.texts[178] == "The script is\x85was there a script?"
    assert data.labels[178] == "0"


def test_unknown_uci_domain_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"yelp, amazon_cells, imdb"):
        uci_sentiment_path("twitter")


# --- JSON Lines -----------------------------------------------------------------------------


def test_jsonl_labels_of_any_json_scalar_become_strings(tmp_path: Path) -> None:
    rows = [
        {"text": "a", "label": 1},
        {"text": "b", "label": 0},
        {"text": "c", "label": 1.0},
        {"text": "d", "label": 0.5},
        {"text": "e", "label": True},
        {"text": "f", "label": " pos "},
    ]
    lines = [json.dumps(row) for row in rows]
    lines.insert(2, "   ")  # blank lines are ignored
    path = write(tmp_path / "data.jsonl", "\n".join(lines) + "\n\n")
    data = read_labelled(path, text_column="text", label_column="label")
    assert data.texts == ["a", "b", "c", "d", "e", "f"]
    assert data.labels == ["1", "0", "1", "0.5", "true", "pos"]
    assert data.skipped == {}


def test_jsonl_null_or_absent_fields_are_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.jsonl",
        '{"text": "ok", "label": 1}\n'
        '{"text": null, "label": 1}\n'
        '{"label": 0}\n'
        '{"text": "no label"}\n'
        '{"text": "null label", "label": null}\n',
    )
    data = read_labelled(path, text_column="text", label_column="label")
    assert data.texts == ["ok"]
    assert data.skipped == {"empty_text": 2, "missing_label": 2}


def test_jsonl_line_that_is_not_an_object_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", '{"text": "a", "label": 1}\n\n[1, 2]\n')
    with pytest.raises(DataError, match=r"line 3: expected a JSON object, got list"):
        read_labelled(path, text_column="text", label_column="label")


def test_jsonl_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", '{"text": "a", "label": 1}\n{"text": \n')
    with pytest.raises(DataError, match=r"line 2: invalid JSON"):
        read_labelled(path, text_column="text", label_column="label")


def test_jsonl_missing_field_names_the_fields_found(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", '{"review": "a", "stars": 5}\n')
    with pytest.raises(DataError, match=r"'text'.*'review', 'stars'"):
        read_labelled(path, text_column="text", label_column="stars")


# --- errors ---------------------------------------------------------------------------------


def test_missing_column_error_names_the_columns_found(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "review,sentiment\ngood,1\n")
    with pytest.raises(DataError) as info:
        read_labelled(path, text_column="text", label_column="sentiment")
    message = str(info.value)
    assert "'text'" in message
    assert "'review', 'sentiment'" in message


def test_missing_column_in_headerless_file_names_positions(tmp_path: Path) -> None:
    path = write(tmp_path / "data.tsv", "good\t1\n")
    with pytest.raises(DataError, match=r"'2'.*'0', '1'"):
        read_labelled(path, text_column="0", label_column="2", header=False)


def test_invalid_utf8_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", b"text,label\nok,1\nbad \xff byte,0\n")
    with pytest.raises(DataError, match=r"line 3: not valid UTF-8"):
        read_labelled(path, text_column="text", label_column="label")


def test_invalid_utf8_far_into_a_file_names_the_right_line(tmp_path: Path) -> None:
    good = "".join(f"sentence number {i} \u00e9t\u00e9\t1\n" for i in range(4998))
    content = b"text\tlabel\n" + good.encode("utf-8") + b"caf\xe9\t0\nlast\t1\n"
    path = write(tmp_path / "data.tsv", content)
    with pytest.raises(DataError, match=r"line 5000: not valid UTF-8"):
        read_labelled(path, text_column="text", label_column="label")


def test_other_encodings_can_be_chosen(tmp_path: Path) -> None:
    path = write(tmp_path / "latin.tsv", "text\tlabel\ncaf\u00e9\t1\n".encode("latin-1"))
    data = read_labelled(path, text_column="text", label_column="label", encoding="latin-1")
    assert data.texts == ["caf\u00e9"]


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"file not found"):
        read_labelled(tmp_path / "nope.csv", text_column="text", label_column="label")


def test_explicit_unknown_format_names_supported_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "text,label\na,1\n")
    with pytest.raises(DataError, match=r"'xml'.*csv, tsv, jsonl"):
        read_labelled(path, text_column="text", label_column="label", fmt="xml")


def test_file_without_usable_rows_is_a_data_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "text,label\n,1\n   ,0\n")
    with pytest.raises(DataError, match=r"no usable rows.*2 empty_text"):
        read_labelled(path, text_column="text", label_column="label")


def test_empty_file_is_a_data_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv", "")
    with pytest.raises(DataError, match=r"empty"):
        read_labelled(path, text_column="text", label_column="label")


# --- compression and skipping ---------------------------------------------------------------


def test_gzip_input_reads_like_the_plain_file(tmp_path: Path) -> None:
    content = 'text\tlabel\nHe said "wow"\t1\ncaf\u00e9 \u00e0 Paris\t0\n'.encode()
    plain = write(tmp_path / "data.tsv", content)
    packed = write(tmp_path / "data.tsv.gz", gzip.compress(content))
    expected = read_labelled(plain, text_column="text", label_column="label")
    got = read_labelled(packed, text_column="text", label_column="label")
    assert got == expected
    assert got.texts == ['He said "wow"', "caf\u00e9 \u00e0 Paris"]


def test_gzip_is_recognised_without_gz_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "data.jsonl", gzip.compress(b'{"t": "x", "l": 1}\n'))
    data = read_labelled(path, text_column="t", label_column="l")
    assert data.texts == ["x"]
    assert data.labels == ["1"]


def test_corrupt_gzip_is_a_data_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.csv.gz", gzip.compress(b"text,label\na,1\n" * 100)[:40])
    with pytest.raises(DataError, match=r"cannot read"):
        read_labelled(path, text_column="text", label_column="label")


def test_empty_text_and_missing_label_rows_are_counted_as_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path / "data.csv",
        "text,label\n  ,1\n,0\nno label,\n  kept  , yes \nshort row\n\n,\n",
    )
    data = read_labelled(path, text_column="text", label_column="label")
    assert data.texts == ["kept"]
    assert data.labels == ["yes"]
    assert data.skipped == {"empty_text": 3, "missing_label": 2}


# --- metadata -----------------------------------------------------------------------------


def test_a_metadata_column_is_read_aligned_with_the_kept_rows(tmp_path: Path) -> None:
    csv_path = write(
        tmp_path / "data.csv",
        'text,label,metadata\nfine,1,"{""region"": ""emea"", ""age"": 30}"\n,0,"{""region"": ""x""}"\nbad,0,\n',
    )
    data = read_labelled(csv_path, text_column="text", label_column="label")
    assert data.texts == ["fine", "bad"] and data.metadata == [{"region": "emea", "age": 30}, None]
    jsonl = write(
        tmp_path / "data.jsonl",
        '{"text": "a", "label": 1, "metadata": {"region": "apac"}}\n{"text": "b", "label": 0}\n',
    )
    assert read_labelled(jsonl, text_column="text", label_column="label").metadata == [{"region": "apac"}, None]
    plain = write(tmp_path / "plain.jsonl", '{"text": "a", "label": 1}\n')
    assert read_labelled(plain, text_column="text", label_column="label").metadata == []


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("nested.jsonl", '{"text": "a", "label": 1, "metadata": {"a": {"b": 1}}}\n', "line 1: metadata must be"),
        ("list.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": 1, "metadata": [1]}\n', "line 2"),
        ("nan.jsonl", '{"text": "a", "label": 1, "metadata": {"x": NaN}}\n', "metadata must be"),
        ("text.csv", "text,label,metadata\na,1,{not json\n", "line 2: metadata is not JSON"),
    ],
)
def test_metadata_that_is_not_a_flat_object_is_refused_with_its_line(
    tmp_path: Path, name: str, content: str, says: str
) -> None:
    with pytest.raises(DataError, match=says) as refused:
        read_labelled(write(tmp_path / name, content), text_column="text", label_column="label")
    assert refused.value.field == "data"
