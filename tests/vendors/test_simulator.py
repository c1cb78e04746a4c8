"""The simulator's sending: idempotency, outcomes, rates, scenarios, cost, stats."""

import threading
import time
from collections import defaultdict
from decimal import Decimal

import pytest

from tests.support.simulator import (
    TEST_REDIS_URL,
    other_redis_client,
    send_in_batches,
    sms,
)
from vendors.base import OutboundMessage, VendorUnavailable
from vendors.simulator_outcomes import EMAIL_COST, SCENARIOS, SMS_SEGMENT_COST
from vendors.simulator_store import MemoryStore, RedisStore

SMS_ONLY = {"invalid_number"}
EMAIL_ONLY = {"bounced"}
RETRYABLE = {"rate_limited", "carrier_timeout", "service_error"}


def email(index: int) -> OutboundMessage:
    return OutboundMessage(
        send_id=f"mail-{index}",
        channel="email",
        to="jo@example.com",
        body="Hello",
        subject="News",
    )


def test_accepted_send_id_sent_again_gets_the_same_result_and_is_not_a_new_message(
    make_simulator,
):
    # given
    simulator = make_simulator(success_rate=1.0)
    messages = [sms(i) for i in range(3)]
    first = simulator.send_batch(messages)

    # when
    second = simulator.send_batch(messages)

    # then
    assert second == first
    assert len({result.vendor_ref for result in first}) == 3
    stats = simulator.stats()
    assert (stats.accepted, stats.messages, stats.duplicates) == (3, 3, 3)
    assert stats.receipts_pending == 3
    assert simulator.accepted_counts() == {m.send_id: 1 for m in messages}


def test_permanent_failure_is_final_for_its_send_id(make_simulator):
    # given
    simulator = make_simulator(success_rate=0.0)
    results = simulator.send_batch([sms(i) for i in range(50)])
    failed = next(result for result in results if not result.retryable)
    simulator.set_success_rate(1.0)

    # when
    again = simulator.send_batch([sms(int(failed.send_id.split("-")[1]))])

    # then
    assert again == [failed]
    assert simulator.stats().messages == 50


def test_retryable_failure_is_attempted_again(make_simulator):
    # given
    simulator = make_simulator(success_rate=0.0)
    results = simulator.send_batch([sms(i) for i in range(50)])
    failed = next(result for result in results if result.retryable)
    simulator.set_success_rate(1.0)

    # when
    again = simulator.send_batch([sms(int(failed.send_id.split("-")[1]))])

    # then
    assert again[0].accepted
    assert again[0].vendor_ref
    assert simulator.stats().messages == 51
    assert simulator.accepted_counts() == {failed.send_id: 1}


def test_same_send_id_twice_in_one_batch_is_one_message(make_simulator):
    # given
    simulator = make_simulator(success_rate=1.0)

    # when
    results = simulator.send_batch([sms(1), sms(1)])

    # then
    assert results[0] == results[1]
    assert simulator.stats().accepted == 1
    assert simulator.accepted_counts() == {"send-1": 1}


def test_concurrent_senders_of_the_same_send_ids_get_one_acceptance_each(
    make_simulator, store
):
    # given: four workers, each with its own connection when the store is Redis
    def own_store():
        if isinstance(store, RedisStore):
            return RedisStore(other_redis_client())
        return store

    simulators = [make_simulator(store=own_store()) for _ in range(4)]
    messages = [sms(i) for i in range(300)]
    refs: dict[str, set[str]] = defaultdict(set)
    lock = threading.Lock()

    def send(simulator):
        for _ in range(3):
            for result in send_in_batches(simulator, messages, size=50):
                if result.accepted:
                    with lock:
                        refs[result.send_id].add(result.vendor_ref)

    # when
    threads = [threading.Thread(target=send, args=(s,)) for s in simulators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then
    assert all(len(vendor_refs) == 1 for vendor_refs in refs.values())
    counts = simulators[0].accepted_counts()
    assert set(counts) == set(refs)
    assert set(counts.values()) == {1}
    assert simulators[0].stats().accepted == len(refs)


def test_success_rate_is_roughly_honoured_over_many_messages(make_simulator):
    # given
    simulator = make_simulator(success_rate=0.9)

    # when
    results = send_in_batches(simulator, [sms(i) for i in range(5000)])

    # then
    accepted = sum(result.accepted for result in results)
    assert 0.88 <= accepted / 5000 <= 0.92
    assert simulator.stats().accepted == accepted


def test_a_seed_makes_outcomes_reproducible_whatever_the_batching(make_simulator):
    # given: the same messages, once in order in batches of 200, once reversed
    # one by one, on a fresh store
    messages = [sms(i) for i in range(400)]
    in_order = send_in_batches(make_simulator(), messages)
    other = make_simulator(store=MemoryStore())

    # when
    reversed_one_by_one = [other.send_batch([m])[0] for m in reversed(messages)]

    # then
    assert list(reversed(reversed_one_by_one)) == in_order


def test_different_seeds_give_different_outcomes(make_simulator):
    # given
    messages = [sms(i) for i in range(200)]
    first = make_simulator(seed="one").send_batch(messages)

    # when
    second = make_simulator(store=MemoryStore(), seed="two").send_batch(messages)

    # then
    assert [r.accepted for r in first] != [r.accepted for r in second]


def test_success_rate_changed_at_run_time_applies_to_the_next_batch(simulator):
    # given
    simulator.set_success_rate(0.0)
    failed = simulator.send_batch([sms(i) for i in range(100)])

    # when
    simulator.set_success_rate(1.0)
    accepted = simulator.send_batch([sms(i, prefix="later") for i in range(100)])

    # then
    assert not any(result.accepted for result in failed)
    assert all(result.accepted for result in accepted)
    assert simulator.success_rate == 1.0


def test_success_rate_set_in_one_process_is_seen_by_another(
    redis_store, make_simulator
):
    # given: two workers, each with its own connection and a default rate of 0.9
    here = make_simulator(store=redis_store)
    elsewhere = make_simulator(store=RedisStore(other_redis_client()))

    # when
    here.set_success_rate(0.0)

    # then
    assert elsewhere.success_rate == 0.0
    results = elsewhere.send_batch([sms(i) for i in range(50)])
    assert not any(result.accepted for result in results)


def test_reset_forgets_the_run_time_rate_and_every_message(simulator):
    # given
    simulator.set_success_rate(0.5)
    simulator.send_batch([sms(i) for i in range(10)])

    # when
    simulator.reset()

    # then
    stats = simulator.stats()
    assert (stats.messages, stats.receipts_pending, stats.success_rate) == (0, 0, 0.9)
    assert simulator.accepted_counts() == {}


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_a_success_rate_outside_zero_to_one_is_refused(simulator, rate):
    with pytest.raises(ValueError):
        simulator.set_success_rate(rate)


def test_failures_carry_the_codes_of_their_channel_and_their_retryability(
    make_simulator,
):
    # given
    simulator = make_simulator(success_rate=0.0)

    # when
    sms_results = send_in_batches(simulator, [sms(i) for i in range(1000)])
    email_results = send_in_batches(simulator, [email(i) for i in range(1000)])

    # then
    all_codes = {scenario.code for scenario in SCENARIOS}
    sms_codes = {result.error_code for result in sms_results}
    email_codes = {result.error_code for result in email_results}
    assert sms_codes == all_codes - EMAIL_ONLY
    assert email_codes == all_codes - SMS_ONLY
    for result in sms_results + email_results:
        assert not result.accepted
        assert result.vendor_ref is None
        assert result.retryable == (result.error_code in RETRYABLE)
        assert result.error_message
        assert result.cost == 0


def test_statistics_count_failures_by_code(make_simulator):
    # given
    simulator = make_simulator(success_rate=0.5)

    # when
    results = simulator.send_batch([sms(i) for i in range(200)])

    # then
    expected: dict[str, int] = defaultdict(int)
    for result in results:
        if not result.accepted:
            expected[result.error_code] += 1
    stats = simulator.stats()
    assert stats.failed_by_code == expected
    assert stats.failed == sum(expected.values())
    assert stats.accepted == 200 - stats.failed


def test_a_batch_above_the_vendor_limit_is_split_and_keeps_its_order(make_simulator):
    # given
    simulator = make_simulator(max_batch_size=7)
    messages = [sms(i) for i in range(30)]

    # when
    results = simulator.send_batch(messages)

    # then
    assert [result.send_id for result in results] == [m.send_id for m in messages]
    assert simulator.stats().messages == 30


def test_latency_is_added_to_each_vendor_call(make_simulator):
    # given
    simulator = make_simulator(latency_ms=20, max_batch_size=5)

    # when
    started = time.perf_counter()
    simulator.send_batch([sms(i) for i in range(10)])

    # then
    assert time.perf_counter() - started >= 0.04


def test_an_empty_batch_sends_nothing(simulator):
    assert simulator.send_batch([]) == []
    assert simulator.stats().messages == 0


def test_cost_is_per_sms_segment_and_flat_per_email(make_simulator):
    # given
    simulator = make_simulator(success_rate=1.0)
    messages = [
        sms(1, body="a" * 160),
        sms(2, body="a" * 161),
        sms(3, body="é" * 70 + "ж"),
        email(1),
    ]

    # when
    results = simulator.send_batch(messages)

    # then
    assert [result.cost for result in results] == [
        SMS_SEGMENT_COST,
        SMS_SEGMENT_COST * 2,
        SMS_SEGMENT_COST * 2,
        EMAIL_COST,
    ]
    assert Decimal("0.0079") == SMS_SEGMENT_COST


def test_a_duplicate_reports_the_cost_of_the_original_send(make_simulator):
    # given
    simulator = make_simulator(success_rate=1.0)
    first = simulator.send_batch([sms(1, body="a" * 161)])

    # when
    again = simulator.send_batch([sms(1, body="a" * 161)])

    # then
    assert again[0].cost == first[0].cost == SMS_SEGMENT_COST * 2


def test_an_unreachable_store_makes_the_vendor_unavailable(make_simulator):
    # given: a port nothing listens on
    unreachable = RedisStore.from_url(TEST_REDIS_URL.replace("6379", "1"))
    simulator = make_simulator(store=unreachable)

    # when / then
    with pytest.raises(VendorUnavailable):
        simulator.send_batch([sms(1)])
