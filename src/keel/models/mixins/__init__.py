"""Model save-behaviour mixins.

Every mixin is an abstract model whose ``save(**kwargs)`` takes out its own options and
passes the rest on, so they stack in any order; an option no mixin consumed reaches
``Model.save()`` and raises ``TypeError``. Recommended order (outermost first)::

    class Article(
        BetterUniquenessErrorsMixin,
        AutoForceInsertMixin,
        CallFieldsPreSaveMixin,
        AutoUpdateFieldsMixin,
        AlwaysUpdateFieldsMixin,
        AutoRemovePKFromUpdateFieldsMixin,
        ValidateOnSaveMixin,
        StateTransitionPreconditionMixin,  # includes UpdatePreconditionsMixin
        StateTransitionEventsMixin,
        TimestampedMixin,
        models.Model,
    ): ...

``PublicMetaMixin``, ``RelatedModelMixin``, ``ReloadMixin`` and ``SaveInstanceFilesMixin``
can go anywhere. See the documentation page "Save behaviour" for why.
"""

from __future__ import annotations

from keel.models.mixins.files import SaveInstanceFilesMixin
from keel.models.mixins.meta import PublicMetaMixin, RelatedModelMixin, ReloadMixin
from keel.models.mixins.preconditions import Preconditions, UpdatePreconditionsMixin
from keel.models.mixins.states import (
    StateEnum,
    StateGraph,
    StateMachineMixin,
    StateTransitionEventsMixin,
    StateTransitionPreconditionMixin,
    Transition,
)
from keel.models.mixins.timestamps import TimestampedMixin
from keel.models.mixins.tracking import AutoUpdateFieldsMixin, ChangeTrackingMixin
from keel.models.mixins.uniqueness import BetterUniquenessErrorsMixin
from keel.models.mixins.update_fields import (
    AlwaysUpdateFieldsMixin,
    AutoForceInsertMixin,
    AutoRemovePKFromUpdateFieldsMixin,
    CallFieldsPreSaveMixin,
)
from keel.models.mixins.validation import (
    FasterValidateOnSaveMixin,
    ValidateOnSaveMixin,
    ValidateOnSaveWithoutQueriesMixin,
)

__all__ = [
    "AlwaysUpdateFieldsMixin",
    "AutoForceInsertMixin",
    "AutoRemovePKFromUpdateFieldsMixin",
    "AutoUpdateFieldsMixin",
    "BetterUniquenessErrorsMixin",
    "CallFieldsPreSaveMixin",
    "ChangeTrackingMixin",
    "FasterValidateOnSaveMixin",
    "Preconditions",
    "PublicMetaMixin",
    "RelatedModelMixin",
    "ReloadMixin",
    "SaveInstanceFilesMixin",
    "StateEnum",
    "StateGraph",
    "StateMachineMixin",
    "StateTransitionEventsMixin",
    "StateTransitionPreconditionMixin",
    "TimestampedMixin",
    "Transition",
    "UpdatePreconditionsMixin",
    "ValidateOnSaveMixin",
    "ValidateOnSaveWithoutQueriesMixin",
]
