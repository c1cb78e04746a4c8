"""How a campaign's audience is cut into chunks."""

import secrets
import time

from django.conf import settings


class ChunkSizeError(ValueError):
    """An explicit chunk size outside what the settings allow."""


def default_chunk_size(audience: int) -> int:
    """Small audiences in few chunks, large ones in the largest chunks allowed."""
    for largest_audience, size in settings.CAMPAIGN_CHUNK_SIZE_TIERS:
        if audience <= largest_audience:
            return size
    return settings.CAMPAIGN_CHUNK_SIZE_LARGEST


def validate_chunk_size(size: int) -> None:
    maximum = settings.CAMPAIGN_CHUNK_SIZE_MAX
    if not 1 <= size <= maximum:
        raise ChunkSizeError(f"chunk size must be between 1 and {maximum}, got {size}")


def chunk_size_for(*, audience: int, requested: int | None) -> int:
    if requested is None:
        return default_chunk_size(audience)
    validate_chunk_size(requested)
    return requested


def saved_chunk_size_for(*, audience: int, saved: int | None) -> int:
    """The size a saved campaign is cut by: its own if the settings still allow it,
    else the default for its audience (the maximum may have been lowered since)."""
    try:
        return chunk_size_for(audience=audience, requested=saved)
    except ChunkSizeError:
        return default_chunk_size(audience)


def new_job_id(*, campaign_id: int, index: int) -> str:
    """`job-<campaign>-<index>-<epoch ms>-<6 random>`."""
    return f"job-{campaign_id}-{index}-{int(time.time() * 1000)}-{secrets.token_hex(3)}"
