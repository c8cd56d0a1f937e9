"""The home broker's JSON device topic (drivers/local_mqtt.py, docs/protocol.md): a
wristband bridge's batches with the band's sample counter, handed over in a burst."""

from __future__ import annotations

import json
import logging

import aiomqtt
import pytest

from drivers.base import first_sample_time
from drivers.local_mqtt import DeviceJsonCodec, LocalMqttDriver, loggable_topic
from gateway.clock import SimClock
from gateway.detection.fall_alerts import FallAlerts, FallSettings
from gateway.model import Device, DeviceKind, EventAction, Reading
from gateway.settings import LocalBrokerSettings
from tests.support.falls import real_fall_at_50hz


def test_a_burst_of_counted_wristband_messages_keeps_every_sample_in_place() -> None:
    """A real fall published in 10-sample messages with ``seq`` and no ``t``; around the
    impact the broker hands five over at one moment, so the codec stamps them alike. The
    counter places them: the fall is raised at its impact and the grid covers every sample
    (stamped on arrival without being moved back to their first sample, the alert came a
    batch late)."""
    clock = SimClock()
    codec = DeviceJsonCodec("eldergate/devices", {"band"})
    detector = FallAlerts(clock, FallSettings())
    device = Device("band", DeviceKind.WRISTBAND, "p1")
    samples, peak = real_fall_at_50hz()
    burst = range(round(peak * 50) // 10 - 2, round(peak * 50) // 10 + 3)
    start = clock.wall()
    raised = []
    for k, i in enumerate(range(0, samples.shape[0], 10)):
        if k not in burst:
            clock.advance(0.2)
        elif k == burst[0]:
            clock.advance(0.2 * len(burst))
        body = {"acc": samples[i : i + 10].tolist(), "fs": 50, "seq": 123_450 + i}
        (reading,) = codec.decode("eldergate/devices/band", json.dumps(body).encode(), clock.wall())
        assert reading.values["seq"] == 123_450 + i
        events = detector.on_reading(reading, device)
        while (due := detector.next_deadline()) is not None and due <= clock.monotonic():
            events += detector.on_tick()
        raised += [e for e in events if e.action is EventAction.RAISE]
    for _ in range(60):
        clock.advance(0.2)
        raised += [e for e in detector.on_tick() if e.action is EventAction.RAISE]
    assert [e.type for e in raised] == ["fall"]
    assert raised[0].t - start == pytest.approx(peak, abs=0.1)
    assert samples.shape[0] - int(detector.ring.written[0]) in (0, 1)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"acc": [[0, 0, 1]] * 11, "fs": 50}, 1000.0 - 0.2),
        ({"acc": [[0, 0, 1]], "fs": 50.0}, 1000.0),
        ({"acc": [], "fs": 50}, 1000.0),
        ({"acc": [[0, 0, 1]] * 11, "fs": 0}, 1000.0),
        ({"acc": [[0, 0, 1]] * 11, "fs": True}, 1000.0),
        ({"acc": [[0, 0, 1]] * 11, "fs": float("nan")}, 1000.0),
        ({"acc": [[0, 0, 1]] * 11, "fs": "50"}, 1000.0),
        ({"acc": 7, "fs": 50}, 1000.0),
        ({"open": True}, 1000.0),
    ],
)
def test_a_batch_is_stamped_with_its_first_sample_and_anything_else_as_it_came(
    values: dict[str, object], expected: float
) -> None:
    assert first_sample_time(1000.0, values) == pytest.approx(expected)


@pytest.mark.parametrize(
    "body",
    [
        {"hr": "72"},
        {"hr": [72, 71]},
        {"rr": {"value": "14"}},
        {"occupied": True, "movement": "37"},
    ],
)
async def test_a_rejected_health_value_stays_out_of_the_log(
    body: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    """A heart rate or breathing rate sent with the wrong type is rejected with its reason,
    counted, and logged, but its value is no one's business in a log (docs/protocol.md:
    no health values in logs); before, the reason echoed it ("got '72'")."""
    driver = LocalMqttDriver(
        LocalBrokerSettings(), [DeviceJsonCodec("eldergate/devices", {"bed"})], SimClock()
    )
    message = aiomqtt.Message("eldergate/devices/bed", json.dumps(body).encode(), 1, False, 1, None)
    caplog.set_level(logging.DEBUG)

    async def sink(reading: Reading) -> None:
        raise AssertionError("a rejected message yields no reading")

    await driver._handle(message, sink)
    assert driver.counters["rejected"] == 1
    (logged,) = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    key = next(iter(body.keys() - {"occupied"}))
    assert f"{key}: expected a number" in logged  # the reason is still clear
    for value in ("72", "71", "14", "37"):
        assert value not in logged.replace(loggable_topic("eldergate/devices/bed"), "")


class _BuggyCodec:
    """A decoder bug whose exception, as Python's own often do, quotes what it was reading."""

    name = "buggy"

    def subscriptions(self) -> list[str]:
        return ["home/+"]

    def problems(self) -> dict[str, tuple[str, str]]:
        return {}

    def subscribed(self) -> None:
        pass

    def decode(
        self, topic: str, payload: bytes, t: float, *, retained: bool = False
    ) -> list[Reading]:
        return [Reading(t, topic, {"hr": float(json.loads(payload)["hr"])})]


async def test_a_decoder_bug_is_logged_without_the_payload_its_exception_quotes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The log said where a decoder failed with ``exc_info``, and the traceback's last line is
    the exception's message: ``could not convert string to float: "Mary's pulse 72"``. Now
    the type and the place (file, line, function) are logged, not the message."""
    driver = LocalMqttDriver(LocalBrokerSettings(), [_BuggyCodec()], SimClock())
    payload = json.dumps({"hr": "Mary's pulse 72"}).encode()
    caplog.set_level(logging.DEBUG)

    async def sink(reading: Reading) -> None:
        raise AssertionError("no reading expected")

    await driver._handle(aiomqtt.Message("home/x", payload, 1, False, 1, None), sink)
    assert driver.rejected_by_reason == {"buggy": 1}
    logged = "\n".join(
        f"{r.getMessage()}\n{logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
    )
    assert "ValueError" in logged and "test_device_json_codec.py" in logged  # where it broke
    assert "Mary" not in logged and "72" not in logged


async def test_a_device_that_keeps_sending_what_is_rejected_is_logged_once_an_hour(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A smart plug paired to Zigbee2MQTT but not configured reports every few seconds: each
    message logged a warning, thousands a day in the journal on the SD card. Every one is
    still counted; the log says it once an hour per topic and reason, with how many more."""
    clock = SimClock()
    driver = LocalMqttDriver(
        LocalBrokerSettings(), [DeviceJsonCodec("eldergate/devices", {"bed"})], clock
    )
    caplog.set_level(logging.DEBUG)

    async def sink(reading: Reading) -> None:
        raise AssertionError("a rejected message yields no reading")

    def plug(n: int = 1) -> aiomqtt.Message:
        payload = json.dumps({"power": n}).encode()
        return aiomqtt.Message("eldergate/devices/plug", payload, 1, False, 1, None)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]

    for n in range(360):  # an hour of a report every 10 s
        await driver._handle(plug(n), sink)
        clock.advance(9.99)
    assert driver.counters["rejected"] == 360
    assert len(warnings()) == 1 and "unknown device" in warnings()[0]
    for payload in (b"{", b"{", b'{"hr": "x"}'):  # another topic, another reason: news
        await driver._handle(
            aiomqtt.Message("eldergate/devices/bed", payload, 1, False, 1, None), sink
        )
    assert len(warnings()) == 3
    clock.advance(10.0)
    await driver._handle(plug(), sink)
    assert len(warnings()) == 4
    assert "359 more like it" in warnings()[3]
    assert driver.counters["rejected"] == 364
