"""Names for a data file's label values: ``0=negative,1=positive``.

Data often codes its labels (``0``/``1``); a person reads names. The names replace the codes as
the data is read, so the model learns, answers and takes feedback in them: its label set, its
answers, the CLI and the dashboard all show ``negative``/``positive``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from learnloop.errors import DataError, ValidationError


def parse_label_names(text: str) -> dict[str, str]:
    """``"0=negative,1=positive"`` into ``{"0": "negative", "1": "positive"}``; a malformed
    item, an empty side, a value named twice or two values given one name is a
    ``ValidationError`` on ``label_names``."""
    names: dict[str, str] = {}
    for item in (part.strip() for part in text.split(",")):
        value, sep, name = (side.strip() for side in item.partition("="))
        if not sep or not value or not name or "=" in name:
            raise ValidationError(
                f"label names are VALUE=NAME pairs separated by commas, got {item!r}", field="label_names"
            )
        if value in names:
            raise ValidationError(f"label value {value!r} is named twice", field="label_names")
        names[value] = name
    check_label_names(names)
    return names


def check_label_names(names: Mapping[str, str]) -> None:
    """A mapping however given (parsed, or a JSON object of an API request): an empty or padded
    value or name is refused, and two values given one name (they would merge their labels)."""
    seen: dict[str, str] = {}
    for value, name in names.items():
        if not value.strip() or not name.strip() or value != value.strip() or name != name.strip():
            raise ValidationError(
                f"label names map a value to a name, neither empty nor padded with spaces, got {value!r}: {name!r}",
                field="label_names",
            )
        if name in seen:
            raise ValidationError(
                f"label values {seen[name]!r} and {value!r} are both named {name!r}; give each its own name",
                field="label_names",
            )
        seen[name] = value


def rename_labels(labels: Sequence[str], names: Mapping[str, str], source: str) -> list[str]:
    """``labels`` with each value ``names`` names replaced by its name (others as they are).
    A named value the data does not hold is a ``DataError`` (a typo would leave a code)."""
    if not names:
        return list(labels)
    check_label_names(names)
    present = set(labels)
    missing = sorted(set(names) - present)
    if missing:
        raise DataError(
            f"label_names names {', '.join(map(repr, missing))}, not a label of {source} "
            f"(its labels: {', '.join(sorted(present)[:20])})",
            field="label_names",
        )
    clash = sorted(set(names.values()) & (present - set(names)))
    if clash:
        raise DataError(
            f"label name {clash[0]!r} is also a label value of {source}: the two would merge", field="label_names"
        )
    return [names.get(label, label) for label in labels]
