"""keel's clock: what expiry decisions read, moved by tests instead of sleeping."""

from __future__ import annotations

import datetime
import math
import time
from types import ModuleType

import pytest
from django.utils import timezone

from keel import clock as keel_clock


def test_the_clock_reads_the_real_time_until_moved(clock: ModuleType) -> None:
    assert clock.monotonic is time.monotonic  # nothing between the readers and the real clock
    before = timezone.now()
    assert before <= clock.now() <= timezone.now()
    assert timezone.is_aware(clock.now())


def test_advance_moves_both_clocks_for_every_reader(clock: ModuleType) -> None:
    clock.advance(90)
    clock.advance(30)
    assert keel_clock.monotonic() - time.monotonic() == pytest.approx(120, abs=1)
    shift = keel_clock.now() - timezone.now()
    assert datetime.timedelta(seconds=119) < shift <= datetime.timedelta(seconds=120)


def test_offset_is_how_far_the_clock_was_moved(clock: ModuleType) -> None:
    assert clock.offset() == datetime.timedelta(0)
    clock.advance(90)
    clock.advance(0.5)
    assert clock.offset() == datetime.timedelta(seconds=90.5)


def test_reset_puts_the_real_time_back(clock: ModuleType) -> None:
    clock.advance(3600)
    clock.reset()
    assert clock.offset() == datetime.timedelta(0)
    assert clock.monotonic is time.monotonic
    assert clock.now() - timezone.now() < datetime.timedelta(seconds=1)


@pytest.mark.parametrize("seconds", [-1, math.inf, math.nan])
def test_the_clock_never_goes_back(clock: ModuleType, seconds: float) -> None:
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(seconds)
    assert clock.monotonic is time.monotonic
