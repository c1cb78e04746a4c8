"""The simulator's delivery receipts: due after a delay, each taken once."""

import threading

from tests.support.simulator import other_redis_client, send_in_batches, sms
from vendors.simulator_outcomes import UNDELIVERED_CODES
from vendors.simulator_store import RedisStore


def test_a_receipt_is_only_available_after_the_delay(make_simulator, clock):
    # given
    simulator = make_simulator(success_rate=1.0, receipt_delay_ms=1000)
    sent_at = clock.now
    [result] = simulator.send_batch([sms(1)])

    # when
    early = simulator.fetch_receipts(limit=10)
    clock.advance(0.999)
    still_early = simulator.fetch_receipts(limit=10)
    clock.advance(0.002)
    due = simulator.fetch_receipts(limit=10)

    # then
    assert early == still_early == []
    assert [receipt.vendor_ref for receipt in due] == [result.vendor_ref]
    assert due[0].occurred_at.timestamp() == sent_at + 1
    assert due[0].raw["send_id"] == "send-1"
    assert simulator.fetch_receipts(limit=10) == []


def test_failed_sends_get_no_receipt(make_simulator):
    # given
    simulator = make_simulator(success_rate=0.0)
    simulator.send_batch([sms(i) for i in range(20)])

    # when
    receipts = simulator.fetch_receipts(limit=100)

    # then
    assert receipts == []


def test_fetch_takes_at_most_the_limit(make_simulator):
    # given
    simulator = make_simulator(success_rate=1.0)
    simulator.send_batch([sms(i) for i in range(10)])

    # when
    first = simulator.fetch_receipts(limit=4)
    rest = simulator.fetch_receipts(limit=100)

    # then
    assert (len(first), len(rest)) == (4, 6)
    stats = simulator.stats()
    assert (stats.receipts_emitted, stats.receipts_pending) == (10, 0)


def test_a_receipt_is_never_given_to_two_consumers(make_simulator, store):
    # given: 600 receipts due, and four consumers with their own connections
    producer = make_simulator(success_rate=1.0)
    results = send_in_batches(producer, [sms(i) for i in range(600)])

    def own_store():
        if isinstance(store, RedisStore):
            return RedisStore(other_redis_client())
        return store

    consumers = [make_simulator(store=own_store()) for _ in range(4)]
    taken: list[list[str]] = [[] for _ in consumers]

    def consume(index):
        while receipts := consumers[index].fetch_receipts(limit=7):
            taken[index] += [receipt.vendor_ref for receipt in receipts]

    # when
    threads = [threading.Thread(target=consume, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then
    everything = [ref for refs in taken for ref in refs]
    assert len(everything) == len(set(everything)) == 600
    assert set(everything) == {result.vendor_ref for result in results}
    assert producer.stats().receipts_emitted == 600


def test_a_small_share_of_receipts_is_undelivered_with_a_reason(make_simulator):
    # given
    simulator = make_simulator(success_rate=1.0)
    send_in_batches(simulator, [sms(i) for i in range(5000)])

    # when
    receipts = simulator.fetch_receipts(limit=10_000)

    # then
    undelivered = [r for r in receipts if r.status == "UNDELIVERED"]
    assert len(receipts) == 5000
    assert 0.02 <= len(undelivered) / 5000 <= 0.04
    assert {r.error_code for r in undelivered} == set(UNDELIVERED_CODES["sms"])
    delivered = [r for r in receipts if r.status == "DELIVERED"]
    assert all(receipt.error_code is None for receipt in delivered)
