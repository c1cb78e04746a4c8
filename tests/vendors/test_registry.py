"""Choosing the adapter and the simulator's store from settings."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.support.simulator import TEST_REDIS_URL
from vendors.base import VendorAdapter
from vendors.registry import get_adapter, reset_adapters
from vendors.simulator import SimulatorAdapter
from vendors.simulator_store import MemoryStore, RedisStore, store_from_settings


class NullVendor(VendorAdapter):
    name = "null"
    max_batch_size = 10

    def send_batch(self, messages):
        return []

    def parse_receipts(self, *, body, headers):
        return []

    def verify_signature(self, *, body, headers, now=None):
        return False


@pytest.fixture(autouse=True)
def fresh_registry():
    reset_adapters()
    yield
    reset_adapters()


def test_the_default_vendor_is_the_simulator_built_once_per_process(settings):
    # given
    settings.VENDOR_DEFAULT = "simulator"

    # when
    adapter = get_adapter()

    # then
    assert isinstance(adapter, SimulatorAdapter)
    assert get_adapter("simulator") is adapter


def test_reset_builds_the_adapter_again(settings):
    # given
    first = get_adapter("simulator")

    # when
    reset_adapters()

    # then
    assert get_adapter("simulator") is not first


def test_a_dotted_path_names_an_adapter_class(settings):
    # given
    settings.VENDOR_DEFAULT = "tests.vendors.test_registry.NullVendor"

    # when
    adapter = get_adapter()

    # then
    assert isinstance(adapter, NullVendor)
    assert adapter.fetch_receipts(limit=5) == []


@pytest.mark.parametrize("name", ["carrier-pigeon", "nowhere.Vendor"])
def test_an_unknown_vendor_is_a_configuration_error(name):
    with pytest.raises(ImproperlyConfigured):
        get_adapter(name)


def test_with_no_redis_configured_the_store_is_in_memory(settings):
    # given
    settings.SIMULATOR_REDIS_URL = ""
    settings.CELERY_BROKER_URL = "memory://"

    # when
    store = store_from_settings()

    # then
    assert isinstance(store, MemoryStore)
    assert store_from_settings() is store


def test_a_redis_broker_gives_a_store_shared_through_it(settings):
    # given
    settings.SIMULATOR_REDIS_URL = ""
    settings.CELERY_BROKER_URL = TEST_REDIS_URL

    # when
    store = store_from_settings()

    # then
    assert isinstance(store, RedisStore)
    assert store.client.connection_pool.connection_kwargs["db"] == 14


def test_the_simulator_redis_url_wins_over_the_broker(settings):
    # given
    settings.SIMULATOR_REDIS_URL = TEST_REDIS_URL
    settings.CELERY_BROKER_URL = "amqp://guest@localhost//"

    # when
    store = store_from_settings()

    # then
    assert isinstance(store, RedisStore)
    assert store.client.connection_pool.connection_kwargs["db"] == 14
