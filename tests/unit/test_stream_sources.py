"""A broker's source chosen by the URL's scheme; a scheme no source reads is refused by name."""

from __future__ import annotations

import pytest

from learnloop.errors import ValidationError
from learnloop.streams import open_source


def test_a_kafka_url_names_the_bootstrap_servers_with_the_default_port_where_none_is_given() -> None:
    pytest.importorskip("aiokafka")
    from learnloop.streams.kafka import KafkaSource

    source = open_source("kafka://broker-1,broker-2:9093,[::1]", "events", group="intake", ack_wait=12)
    assert isinstance(source, KafkaSource)
    assert source.servers == "broker-1:9092,broker-2:9093,[::1]:9092"
    assert (source.topic, source.group) == ("events", "intake")
    assert (source.dead_topic, source.session_ms) == ("events.dead", 12_000)


def test_a_scheme_no_source_reads_is_refused_with_the_ones_it_can() -> None:
    with pytest.raises(ValidationError, match=r"kafka://") as refused:
        open_source("pulsar://127.0.0.1:6650", "events")
    assert refused.value.field == "from"
