"""Chunk sizes: defaults by audience, explicit sizes within the allowed range."""

import re

import pytest

from campaigns.chunking import ChunkSizeError, chunk_size_for, new_job_id


@pytest.mark.parametrize(
    ("audience", "size"),
    [(0, 50), (50, 50), (51, 100), (500, 100), (501, 150), (5000, 150), (5001, 200)],
)
def test_default_chunk_size_follows_the_audience(audience, size):
    assert chunk_size_for(audience=audience, requested=None) == size


@pytest.mark.parametrize("requested", [0, -1, 201])
def test_explicit_chunk_size_outside_range_is_rejected(requested):
    with pytest.raises(ChunkSizeError, match="between 1 and 200"):
        chunk_size_for(audience=1000, requested=requested)


def test_explicit_chunk_size_wins_over_the_default():
    assert chunk_size_for(audience=100_000, requested=7) == 7


def test_a_raised_maximum_chunk_size_setting_allows_larger_chunks(settings):
    settings.CAMPAIGN_CHUNK_SIZE_MAX = 500

    assert chunk_size_for(audience=10, requested=450) == 450


def test_job_id_has_the_documented_form():
    assert re.fullmatch(
        r"job-12-3-\d{13}-[0-9a-f]{6}", new_job_id(campaign_id=12, index=3)
    )
