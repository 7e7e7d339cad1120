"""PII scrubbing: every kind found where it should be, and left alone where it should not."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnloop.curation.pii import KINDS, Scrubber, iban_valid, luhn_valid

SCRUBBER = Scrubber()


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("write to john.doe+shop@mail.example.co.uk today", "write to <EMAIL> today", "email"),
        ("Call (415) 555-2671 now", "Call <PHONE> now", "phone"),
        ("ring me on +44 20 7946 0958", "ring me on <PHONE>", "phone"),
        ("my number is 415.555.2671", "my number is <PHONE>", "phone"),
        ("Berlin office +49 30 901820.", "Berlin office <PHONE>.", "phone"),
        ("call 020 7946 0958 after six", "call <PHONE> after six", "phone"),
        ("1-800-555-0199 is their hotline", "<PHONE> is their hotline", "phone"),
        ("card 4111 1111 1111 1111 exp 12/27", "card <CARD> exp 12/27", "card"),
        ("paid with 5500-0000-0000-0004", "paid with <CARD>", "card"),
        ("amex 378282246310005!", "amex <CARD>!", "card"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN <IBAN> please", "iban"),
        ("to GB82WEST12345698765432.", "to <IBAN>.", "iban"),
        ("from 192.168.1.20, again", "from <IP>, again", "ip"),
        ("host 2001:db8::1 down", "host <IP> down", "ip"),
        ("link-local fe80::1ff:fe23:4567:890a here", "link-local <IP> here", "ip"),
        ("Mr. John Smith was rude", "Mr. <NAME> was rude", "name"),
        ("ask Dr Jane O'Neil-Smythe", "ask Dr <NAME>", "name"),
        ("my name is john smith and i paid", "my name is <NAME> and i paid", "name"),
        ("Hi, my name's Ann. Great app", "Hi, my name's <NAME>. Great app", "name"),
    ],
)
def test_each_kind_is_replaced_by_its_placeholder(text: str, expected: str, kind: str) -> None:
    result = SCRUBBER.scrub(text)
    assert result.text == expected
    assert result.found == {kind: 1}


@pytest.mark.parametrize(
    "text",
    [
        "Costs $1999 in 2023, 5 stars",
        "5/5 would buy again",
        "iPhone 12 Pro, 128 GB, bought 2021-03-04",
        "was $12.99, now 9.99 (save 23%)",
        "version 1.2.3.4 fixed it; v2.0.1.3 broke it again",
        "build 10.0.19041.1 is fine",
        "rated 4.5/5 by 1,234,567 people",
        "order 123456789 arrived on 12/05/2023 at 10:30:45",
        "ISBN 978-3-16-148410-0",
        "card ending 1111, 16 digits 4111111111111112 fail Luhn",
        "GB83WEST12345698765432 has a bad check digit",
        "std::vector and :: are C++",
        "300.1.1.1 is not an address",
        "John loved it. Thanks, Mary",
        "my name is not important",
        "call me Monday about the 3 items",
        "zip 94103, room 101, 24/7 support",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    result = SCRUBBER.scrub(text)
    assert result.text == text
    assert result.found == {}


def test_kinds_not_configured_are_kept() -> None:
    text = "Mr. John Smith, john@example.com, +44 20 7946 0958"
    assert Scrubber(kinds=["email"]).scrub(text).text == "Mr. John Smith, <EMAIL>, +44 20 7946 0958"
    assert Scrubber(kinds=[]).scrub(text).text == text


def test_overlapping_detections_go_to_the_stronger_kind_and_are_counted_once() -> None:
    result = SCRUBBER.scrub("mail 4155552671@example.com or 4155552671")
    assert result.text == "mail <EMAIL> or <PHONE>"
    assert result.found == {"email": 1, "phone": 1}


def test_phone_regions_choose_which_national_formats_count() -> None:
    assert Scrubber(phone_regions=["US"]).scrub("call 020 7946 0958").text == "call 020 7946 0958"
    assert Scrubber(phone_regions=["GB"]).scrub("call 020 7946 0958").text == "call <PHONE>"
    assert Scrubber(phone_regions=["US"]).scrub("or +44 20 7946 0958").text == "or <PHONE>"


def test_unknown_kind_or_region_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown PII kind"):
        Scrubber(kinds=["ssn"])
    with pytest.raises(ValueError, match="unknown phone region"):
        Scrubber(phone_regions=["XX"])


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB83WEST12345698765432")
    assert set(KINDS) == {"email", "phone", "card", "iban", "ip", "name"}


def _luhn_complete(prefix: str) -> str:
    return next(prefix + d for d in "0123456789" if luhn_valid(prefix + d))


def _card_numbers_left(text: str) -> list[str]:
    """Independent check: any 13-19 digit stretch of whole digit groups (single space/dash apart) passing Luhn."""
    left = []
    for run in re.finditer(r"(?<!\d)\d+(?:[ -]\d+)*(?!\d)", text):
        groups = re.findall(r"\d+", run.group())
        for i in range(len(groups)):
            for j in range(i, len(groups)):
                digits = "".join(groups[i : j + 1])
                if 13 <= len(digits) <= 19 and luhn_valid(digits):
                    left.append(digits)
    return left


_card = st.builds(
    lambda digits, sep, size: sep.join(
        _luhn_complete(digits)[i : i + size] for i in range(0, len(_luhn_complete(digits)), size)
    ),
    st.text("0123456789", min_size=12, max_size=18),
    st.sampled_from(["", " ", "-"]),
    st.sampled_from([4, 5, 19]),
)
_piece = st.one_of(
    st.text(st.sampled_from("ab Z.:-@+/0123456789$"), max_size=12),
    _card,
    st.sampled_from(["john@example.com", "+44 20 7946 0958", "Mr. John Smith", "192.168.0.1", "2001:db8::1"]),
    st.sampled_from(["GB82WEST12345698765432", "my name is ann", "5/5", "iPhone 12", " "]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_piece, max_size=6).map("".join))
def test_scrubbing_is_idempotent_and_leaves_no_card_number(text: str) -> None:
    once = SCRUBBER.scrub(text)
    assert SCRUBBER.scrub(once.text).text == once.text
    assert _card_numbers_left(once.text) == []
