"""A newsletter subscription whose state only moves along declared transitions."""

from __future__ import annotations

import logging
from typing import Any

from django.db import models
from django.utils import timezone

from keel.models.mixins import (
    AutoUpdateFieldsMixin,
    StateEnum,
    StateTransitionEventsMixin,
    StateTransitionPreconditionMixin,
    TimestampedMixin,
)

logger = logging.getLogger(__name__)


class SubscriptionState(StateEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    INITIAL_STATE = PENDING
    TRANSITIONS = {
        PENDING: {CONFIRMED, UNSUBSCRIBED},
        CONFIRMED: {UNSUBSCRIBED},
        UNSUBSCRIBED: {PENDING},
    }


class Subscription(
    AutoUpdateFieldsMixin,  # save() writes only the changed columns
    StateTransitionPreconditionMixin,  # a state change is checked, then UPDATE ... WHERE state=old
    StateTransitionEventsMixin,  # on_post_state_transition() once per real state change
    TimestampedMixin,  # created_at, updated_at
):
    states = SubscriptionState

    email = models.EmailField(unique=True)
    state = models.CharField(
        max_length=20, choices=SubscriptionState.choices(), default=SubscriptionState.PENDING
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} ({self.state})"

    def confirm(self) -> None:
        """pending → confirmed. Raises ``TransitionNotAllowedError`` from another state, and
        ``DatabaseUpdatePreconditionsError`` if a concurrent request changed the state first."""
        self.state = SubscriptionState.CONFIRMED
        self.confirmed_at = timezone.now()
        self.save()

    def unsubscribe(self) -> None:
        self.state = SubscriptionState.UNSUBSCRIBED
        self.save()

    def on_post_state_transition(self, previous_state: Any, using: str | None) -> None:
        super().on_post_state_transition(previous_state, using)
        logger.info("subscription %s: %s -> %s", self.pk, previous_state, self.state)
