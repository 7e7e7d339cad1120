"""A person names a job by the end of its id (UUIDv7 ids made about the same time share their
start): ``JobService.find`` takes the id or a unique end of it, on a real database (SQLite and
PostgreSQL), and says so when an end is ambiguous, too short or matches nothing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from learnloop.errors import NotFoundError, ValidationError
from learnloop.ids import new_id, short_id
from learnloop.services import Services
from learnloop.store.repositories import jobs as job_repo

IDS = (
    "01a24739-644c-7000-8c25-aaaaaa111111",
    "01a24739-644c-7000-8c25-bbbbbb111111",
    "01a24739-644c-7000-8c25-cccccc222222",
)


@pytest.fixture
def jobs(services: Services) -> Services:
    with services.db.write() as conn:
        for i, job_id in enumerate(IDS):
            job_repo.insert_job(
                conn, id=job_id, model=f"m{i}", kind="retrain", requested_by="t", at=datetime(2026, 1, 1, tzinfo=UTC)
            )
    return services


def test_a_job_is_found_by_its_id_or_a_unique_end_of_it(jobs: Services) -> None:
    assert jobs.jobs.find(IDS[2]).id == IDS[2]
    assert jobs.jobs.find(short_id(IDS[2])).id == IDS[2]
    assert jobs.jobs.find("222222").id == IDS[2]
    assert jobs.jobs.find(" A111111 ").id == IDS[0]  # as typed: case and spaces do not matter


def test_an_ambiguous_short_or_unknown_end_is_refused_with_what_to_do(jobs: Services) -> None:
    with pytest.raises(ValidationError, match="2 jobs end with '111111'") as ambiguous:
        jobs.jobs.find("111111")
    assert IDS[0] in ambiguous.value.message and IDS[1] in ambiguous.value.message
    with pytest.raises(NotFoundError, match="last 6 or more characters"):
        jobs.jobs.find("11111")
    with pytest.raises(NotFoundError, match="not a job id"):
        jobs.jobs.find("%11111")  # no LIKE wildcard gets through
    with pytest.raises(NotFoundError, match="no job id ends with '333333'"):
        jobs.jobs.find("333333")


def test_a_job_is_cancelled_by_a_unique_end_of_its_id(jobs: Services) -> None:
    cancelled = jobs.jobs.cancel(short_id(IDS[2]), actor="t", reason="by its end")
    assert (cancelled.id, cancelled.status.value, cancelled.cancel_reason) == (IDS[2], "cancelled", "by its end")
    with pytest.raises(ValidationError, match="2 jobs end with '111111'"):
        jobs.jobs.cancel("111111", actor="t", reason="ambiguous")
    assert jobs.jobs.get(IDS[0]).status.value == "queued"


def test_short_ids_of_ids_made_together_differ_where_their_prefixes_do_not() -> None:
    made = [new_id() for _ in range(200)]
    assert len({i[:8] for i in made}) < 5  # the shared time prefix names nothing
    assert len({short_id(i) for i in made}) == 200
