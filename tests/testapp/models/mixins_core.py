"""Concrete test models for keel.models.mixins (change tracking, preconditions, states)."""

from __future__ import annotations

import uuid
from typing import TypeVar

from django.db import models

from keel.models.mixins import (
    AlwaysUpdateFieldsMixin,
    AutoForceInsertMixin,
    AutoRemovePKFromUpdateFieldsMixin,
    AutoUpdateFieldsMixin,
    BetterUniquenessErrorsMixin,
    CallFieldsPreSaveMixin,
    ChangeTrackingMixin,
    PublicMetaMixin,
    RelatedModelMixin,
    ReloadMixin,
    SaveInstanceFilesMixin,
    StateEnum,
    StateTransitionEventsMixin,
    StateTransitionPreconditionMixin,
    TimestampedMixin,
    Transition,
    UpdatePreconditionsMixin,
    ValidateOnSaveMixin,
)


class CoreAuthor(models.Model):
    name = models.CharField(max_length=50)


class TrackedItem(AutoUpdateFieldsMixin):
    name = models.CharField(max_length=50)
    count = models.IntegerField(default=0)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    flag = models.BooleanField(default=False)
    data = models.JSONField(default=dict, blank=True)
    happened_at = models.DateTimeField(null=True, blank=True)
    author = models.ForeignKey(CoreAuthor, null=True, blank=True, on_delete=models.SET_NULL)
    notes = models.TextField(blank=True)


class TrackedOnly(ChangeTrackingMixin):
    """Tracking without widening update_fields: a plain save() stays a full save."""

    name = models.CharField(max_length=50)
    count = models.IntegerField(default=0)


class TrackedParent(AutoUpdateFieldsMixin):
    name = models.CharField(max_length=50)


class TrackedChild(TrackedParent):
    extra = models.CharField(max_length=50, blank=True)


class CompositeItem(AutoUpdateFieldsMixin, AutoRemovePKFromUpdateFieldsMixin):
    pk = models.CompositePrimaryKey("tenant", "code")
    tenant = models.IntegerField()
    code = models.CharField(max_length=20)
    value = models.IntegerField(default=0)


class AlwaysItem(AlwaysUpdateFieldsMixin):
    always_update_fields = ("touched",)

    name = models.CharField(max_length=50)
    counter = models.IntegerField(default=0)
    touched = models.IntegerField(default=0)


class AutoAlwaysItem(AutoUpdateFieldsMixin, AlwaysUpdateFieldsMixin):
    always_update_fields = ("touched",)

    name = models.CharField(max_length=50)
    counter = models.IntegerField(default=0)
    touched = models.IntegerField(default=0)


class ForceInsertItem(AutoForceInsertMixin):
    code = models.IntegerField(primary_key=True)
    name = models.CharField(max_length=50)


class ForceInsertChild(ForceInsertItem):
    extra = models.CharField(max_length=50, blank=True)


class PreSaveItem(CallFieldsPreSaveMixin, AutoUpdateFieldsMixin):
    name = models.CharField(max_length=50)
    touched_at = models.DateTimeField(auto_now=True)


class RemovePKItem(AutoRemovePKFromUpdateFieldsMixin):
    code = models.CharField(max_length=20, primary_key=True)
    name = models.CharField(max_length=50)


class VersionedDoc(UpdatePreconditionsMixin):
    name = models.CharField(max_length=50)
    version = models.IntegerField(default=0)
    status = models.CharField(max_length=20, default="draft")


class VersionedParent(UpdatePreconditionsMixin):
    name = models.CharField(max_length=50)
    version = models.IntegerField(default=0)


class VersionedChild(VersionedParent):
    extra = models.CharField(max_length=50, blank=True)
    locked = models.BooleanField(default=False)


class TaskStates(StateEnum):
    NEW = "new"
    RUNNING = "running"
    DONE = "done"
    CANCELED = "canceled"
    INITIAL_STATE = NEW
    ACTIVE_STATES = {NEW, RUNNING}
    TRANSITIONS = {NEW: {RUNNING, CANCELED}, RUNNING: {DONE, CANCELED}}


class Task(StateTransitionPreconditionMixin, StateTransitionEventsMixin, AutoUpdateFieldsMixin):
    states = TaskStates

    name = models.CharField(max_length=50)
    state = models.CharField(max_length=20, choices=TaskStates.choices(), default=TaskStates.NEW)


class OnCommitTask(StateTransitionEventsMixin):
    states = TaskStates
    state_transition_on_commit = True

    state = models.CharField(max_length=20, default=TaskStates.NEW)


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_REVIEW = "in_review", "In review"
    CLOSED = "closed", "Closed"


class Ticket(StateTransitionPreconditionMixin, StateTransitionEventsMixin):
    states = TicketStatus
    state_transitions = {
        TicketStatus.OPEN: {TicketStatus.IN_REVIEW, TicketStatus.CLOSED},
        TicketStatus.IN_REVIEW: {TicketStatus.OPEN, TicketStatus.CLOSED},
    }
    state_field_name = "status"
    enforce_initial_state = False  # tickets may be imported in any state

    title = models.CharField(max_length=50)
    status = models.CharField(
        max_length=20, choices=TicketStatus.choices, default=TicketStatus.OPEN
    )


class TaskParent(StateTransitionPreconditionMixin):
    states = TaskStates

    state = models.CharField(max_length=20, default=TaskStates.NEW)


class TaskChild(TaskParent):
    detail = models.CharField(max_length=50, blank=True)


class StampedItem(TimestampedMixin, AutoUpdateFieldsMixin):
    name = models.CharField(max_length=50)
    count = models.IntegerField(default=0)


class FullStackArticle(
    BetterUniquenessErrorsMixin,
    AutoForceInsertMixin,
    CallFieldsPreSaveMixin,
    AutoUpdateFieldsMixin,
    AlwaysUpdateFieldsMixin,
    AutoRemovePKFromUpdateFieldsMixin,
    ValidateOnSaveMixin,
    StateTransitionPreconditionMixin,
    StateTransitionEventsMixin,
    TimestampedMixin,
    PublicMetaMixin,
    RelatedModelMixin,
    ReloadMixin,
    SaveInstanceFilesMixin,
):
    """Every mixin, in the recommended order."""

    states = TaskStates
    always_update_fields = ("revision",)

    slug = models.SlugField(max_length=50, unique=True)
    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    revision = models.IntegerField(default=0)
    author = models.ForeignKey(CoreAuthor, null=True, blank=True, on_delete=models.SET_NULL)
    state = models.CharField(max_length=20, choices=TaskStates.choices(), default=TaskStates.NEW)
    attachment = models.FileField(upload_to="articles/", blank=True)


class MixPairTable(models.Model):
    """The table every pair model built by tests/models/test_mixins_pairs.py writes to."""

    name = models.CharField(max_length=100, unique=True)
    state = models.CharField(max_length=20, default="new")
    version = models.IntegerField(default=0)
    data = models.JSONField(default=dict, blank=True)
    attachment = models.FileField(upload_to="pairs/", blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "testapp_mixpair"


class InitOverrideItem(AutoUpdateFieldsMixin):
    """Overrides __init__: loading takes Django's own path, tracking still works."""

    name = models.CharField(max_length=50)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.initialised = True


class PurchaseStates(StateEnum):
    NEW = "new"
    PAID = "paid"
    SHIPPED = "shipped"
    REFUNDED = "refunded"
    INITIAL_STATE = NEW
    TRANSITIONS = {NEW: {PAID}, PAID: {SHIPPED, REFUNDED}, SHIPPED: {REFUNDED}}


def has_reference(purchase: Purchase) -> bool:
    """the purchase has a reference"""
    return bool(purchase.reference)


class Purchase(StateTransitionPreconditionMixin, StateTransitionEventsMixin, AutoUpdateFieldsMixin):
    """Guards money: transitions checked, events on commit, only changed columns written."""

    states = PurchaseStates
    state_transition_on_commit = True
    state_transition_rules = {
        (PurchaseStates.PAID, PurchaseStates.SHIPPED): Transition(
            conditions=(has_reference,), label="Ship it"
        ),
        PurchaseStates.REFUNDED: Transition(permission="testapp.refund_purchase"),
    }

    reference = models.CharField(max_length=50)
    amount = models.IntegerField(default=0)
    state = models.CharField(
        max_length=20, choices=PurchaseStates.choices(), default=PurchaseStates.NEW
    )

    class Meta:
        permissions = [("refund_purchase", "Can refund a purchase")]


class PurchaseBase(
    StateTransitionPreconditionMixin, StateTransitionEventsMixin, AutoUpdateFieldsMixin
):
    """Multi-table inheritance: the state lives on the parent table."""

    states = PurchaseStates

    reference = models.CharField(max_length=50)
    state = models.CharField(
        max_length=20, choices=PurchaseStates.choices(), default=PurchaseStates.NEW
    )


class GiftPurchase(PurchaseBase):
    message = models.CharField(max_length=100, blank=True)


class ReadOnlyStatePurchase(Purchase):
    """The same rows, in an admin whose state field is read-only (buttons only)."""

    class Meta:
        proxy = True


_M = TypeVar("_M", bound=models.Model)


def stored_row(model: type[_M], **values: object) -> _M:
    """A row written without ``save()`` (``bulk_create``): no transition event, no initial-state
    check, so that a test starts from any state. Returns it loaded from the database."""
    model._default_manager.bulk_create([model(**values)])
    row = model._default_manager.order_by("-pk").first()
    assert row is not None
    return row


class UuidTask(StateTransitionPreconditionMixin, StateTransitionEventsMixin):
    """A state machine whose primary key has a default: Django inserts unless forced."""

    states = TaskStates

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    name = models.CharField(max_length=50, blank=True)
    state = models.CharField(max_length=20, choices=TaskStates.choices(), default=TaskStates.NEW)
