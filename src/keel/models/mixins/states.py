"""State machines on a model field: declared states, allowed transitions, guards and events."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, PermissionDenied
from django.db import models, router
from django.db.models.signals import class_prepared

from keel import compat
from keel.exceptions import InvalidStateError, TransitionNotAllowedError
from keel.models.mixins._shared import LEARNED_BASELINES, PRECONDITIONS
from keel.models.mixins.preconditions import Preconditions, UpdatePreconditionsMixin
from keel.models.mixins.tracking import NOT_LOADED, ChangeTrackingMixin
from keel.signals import post_state_transition, pre_state_transition, send_for

__all__ = [
    "StateEnum",
    "StateGraph",
    "StateMachineMixin",
    "StateTransitionEventsMixin",
    "StateTransitionPreconditionMixin",
    "Transition",
]


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class StateGraph:
    """States (in declaration order), their labels and the allowed transitions."""

    states: tuple[Any, ...]
    labels: Mapping[Any, str]
    transitions: Mapping[Any, frozenset[Any]]
    initial: Any = None

    @classmethod
    def build(
        cls,
        states: Iterable[Any],
        transitions: Mapping[Any, Iterable[Any]],
        *,
        labels: Mapping[Any, str] | None = None,
        initial: Any = None,
        owner: str = "states",
    ) -> StateGraph:
        """Validate and build a graph; unknown states raise ``ImproperlyConfigured``."""
        ordered = tuple(dict.fromkeys(states))
        known = set(ordered)
        normalised: dict[Any, frozenset[Any]] = {}
        for source, targets in transitions.items():
            if isinstance(targets, str):
                targets = (targets,)
            targets = frozenset(targets)
            unknown = [s for s in (source, *targets) if s not in known]
            if unknown:
                raise ImproperlyConfigured(
                    f"{owner}: transitions name undeclared state(s) "
                    f"{', '.join(repr(s) for s in unknown)}; declared: "
                    f"{', '.join(repr(s) for s in ordered)}."
                )
            normalised[source] = targets
        if initial is not None and initial not in known:
            raise ImproperlyConfigured(f"{owner}: initial state {initial!r} is not declared.")
        return cls(
            ordered,
            {s: (labels or {}).get(s, str(s)) for s in ordered},
            {s: normalised.get(s, frozenset()) for s in ordered},
            initial,
        )

    @classmethod
    def from_choices(
        cls,
        choices: Any,
        transitions: Mapping[Any, Iterable[Any]],
        *,
        initial: Any = None,
    ) -> StateGraph:
        """Build from Django ``TextChoices``/``IntegerChoices`` (or ``(value, label)`` pairs)."""
        if isinstance(choices, type) and issubclass(choices, enum.Enum):
            pairs = [(m.value, str(getattr(m, "label", m.name))) for m in choices]
            owner = choices.__qualname__
        else:
            pairs = [(value, str(label)) for value, label in choices]
            owner = "choices"
        transitions = {_plain(k): [_plain(t) for t in _iter(v)] for k, v in transitions.items()}
        return cls.build(
            [v for v, _ in pairs],
            transitions,
            labels=dict(pairs),
            initial=_plain(initial),
            owner=owner,
        )

    @property
    def final_states(self) -> frozenset[Any]:
        """States with no transition to another state."""
        return frozenset(s for s in self.states if not (self.transitions[s] - {s}))

    def sources_of(self, target: Any) -> frozenset[Any]:
        """States from which ``target`` can be reached in one transition."""
        return frozenset(s for s in self.states if target in self.transitions[s])

    def can_transition(self, source: Any, target: Any) -> bool:
        """Whether the graph has a transition from ``source`` to ``target``."""
        return target in self.transitions.get(source, frozenset())

    #: The seed's name of [`can_transition`][keel.models.mixins.states.StateGraph.can_transition].
    can_transit = can_transition

    def to_mermaid(self, *, title: str | None = None) -> str:
        """A Mermaid ``stateDiagram-v2`` of the graph (initial and final states marked)."""
        ids = {s: _mermaid_id(s, i) for i, s in enumerate(self.states)}
        lines = []
        if title:
            lines += ["---", f"title: {title}", "---"]
        lines.append("stateDiagram-v2")
        for state in self.states:
            lines.append(f'    state "{_mermaid_text(self.labels[state])}" as {ids[state]}')
        if self.initial is not None:
            lines.append(f"    [*] --> {ids[self.initial]}")
        for source in self.states:
            for target in self.states:
                if target in self.transitions[source]:
                    lines.append(f"    {ids[source]} --> {ids[target]}")
        for state in self.states:
            if state in self.final_states:
                lines.append(f"    {ids[state]} --> [*]")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Transition:
    """Options of a transition, declared in a model's ``state_transition_rules``.

    ``conditions``: callables taking the instance and returning a bool; every one must be
    true for the transition to be allowed (checked by ``can_transit_to()``,
    ``get_available_transitions()`` and, with the precondition mixin, on save; on save the
    instance already holds the target state). A condition's docstring (first line) or name
    is the refusal's ``reason``. ``permission``: a permission name (``"app.codename"``,
    checked with ``user.has_perm(name)`` or ``user.has_perm(name, instance)``) or a callable
    ``(instance, user) -> bool``; checked by the admin, ``get_available_transitions(user)``
    and ``check_transition(target, user=...)``, never by ``save()`` (which has no user).
    ``label``: the text of the admin's button (default: the target state's label).
    """

    conditions: tuple[Callable[[Any], bool], ...] = ()
    permission: str | Callable[[Any, Any], bool] | None = None
    label: str | None = None

    def unmet_condition(self, instance: Any) -> str | None:
        """The reason of the first condition that is false, or ``None``."""
        for condition in self.conditions:
            if not condition(instance):
                doc = (getattr(condition, "__doc__", None) or "").strip().splitlines()
                name = doc[0] if doc else getattr(condition, "__name__", repr(condition))
                return f"condition not met: {name}"
        return None

    def allows(self, instance: Any, user: Any) -> bool:
        """Whether ``user`` holds this transition's permission on ``instance``."""
        permission = self.permission
        if permission is None:
            return True
        if callable(permission):
            return bool(permission(instance, user))
        return bool(user.has_perm(permission) or user.has_perm(permission, instance))


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def _iter(value: Any) -> Iterable[Any]:
    return (value,) if isinstance(value, str | enum.Enum) else value


def _mermaid_id(state: Any, index: int) -> str:
    ident = re.sub(r"\W", "_", str(state))
    return ident if ident and not ident[0].isdigit() else f"s{index}_{ident}"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "'")


_RESERVED = frozenset({"TRANSITIONS", "INITIAL_STATE", "ALL_STATES", "FINAL_STATES"})


class StateEnumMeta(type):
    """Collects the states of a [`StateEnum`][keel.models.mixins.states.StateEnum] and validates its
    ``TRANSITIONS``."""

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]
    ) -> StateEnumMeta:
        cls = super().__new__(mcs, name, bases, namespace)
        states: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if (
                    isinstance(value, str)
                    and attr.isupper()
                    and not attr.startswith("_")
                    and not attr.endswith("_STATES")
                    and attr not in _RESERVED
                ):
                    states[value] = attr
        graph = StateGraph.build(
            states,
            getattr(cls, "TRANSITIONS", {}),
            labels={value: _label(attr) for value, attr in states.items()},
            initial=getattr(cls, "INITIAL_STATE", None),
            owner=f"{cls.__qualname__}.TRANSITIONS",
        )
        cls._graph = graph  # type: ignore[attr-defined]
        cls.TRANSITIONS = dict(graph.transitions)  # type: ignore[attr-defined]
        cls.ALL_STATES = frozenset(graph.states)  # type: ignore[attr-defined]
        cls.FINAL_STATES = graph.final_states  # type: ignore[attr-defined]
        cls.INVERSE_TRANSITIONS = {  # type: ignore[attr-defined]
            s: graph.sources_of(s) for s in graph.states
        }
        for attr, value in vars(cls).items():
            if attr.endswith("_STATES") and attr not in _RESERVED and attr != "ALL_STATES":
                group = frozenset(_iter(value))
                if not group <= cls.ALL_STATES:  # type: ignore[attr-defined]
                    raise ImproperlyConfigured(
                        f"{cls.__qualname__}.{attr} names undeclared state(s) "
                        f"{sorted(map(repr, group - cls.ALL_STATES))}."  # type: ignore[attr-defined]
                    )
                setattr(cls, attr, group)
        return cls


class StateEnum(metaclass=StateEnumMeta):
    """Declare states as string class attributes and the transitions between them.

    ``TRANSITIONS = {NEW: {RUNNING, CANCELED}, RUNNING: {DONE}}``; optional ``INITIAL_STATE``
    and ``<GROUP>_STATES`` sets. Computed: ``ALL_STATES``, ``FINAL_STATES``,
    ``INVERSE_TRANSITIONS``. A transition naming an undeclared state raises
    ``ImproperlyConfigured`` when the class is defined.
    """

    TRANSITIONS: ClassVar[Mapping[str, Iterable[str]]] = {}
    INITIAL_STATE: ClassVar[str | None] = None
    ALL_STATES: ClassVar[frozenset[str]]
    FINAL_STATES: ClassVar[frozenset[str]]
    INVERSE_TRANSITIONS: ClassVar[dict[str, frozenset[str]]]

    @classmethod
    def graph(cls) -> StateGraph:
        return cls._graph  # type: ignore[attr-defined,no-any-return]

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        """``(value, label)`` pairs for a model field's ``choices``."""
        graph = cls.graph()
        return [(s, graph.labels[s]) for s in graph.states]

    @classmethod
    def get(cls, name: str) -> str:
        """The state whose attribute name or value is ``name`` (case-insensitive)."""
        wanted = name.lower()
        for state in cls.graph().states:
            if wanted == str(state).lower():
                return str(state)
        for attr in dir(cls):
            value = getattr(cls, attr)
            if isinstance(value, str) and value in cls.ALL_STATES and attr.lower() == wanted:
                return value
        raise KeyError(f"{cls.__qualname__} has no state named {name!r}.")

    @classmethod
    def get_transit_from(cls, state: str) -> frozenset[str]:
        """The states from which ``state`` can be reached (empty for none, never KeyError)."""
        return cls.graph().sources_of(state)

    @classmethod
    def to_mermaid(cls, *, title: str | None = None) -> str:
        return cls.graph().to_mermaid(title=title)


class StateMachineMixin(ChangeTrackingMixin):
    """Declares the state field and its graph; the helpers shared by the two state mixins.

    ``states`` is a [`StateEnum`][keel.models.mixins.states.StateEnum] subclass, or a Django
    ``TextChoices`` with ``state_transitions = {source: {targets}}`` (``states = None`` takes the
    field's ``choices``). ``state_field_name`` defaults to ``"state"``.
    """

    states: ClassVar[Any] = None
    state_transitions: ClassVar[Mapping[Any, Iterable[Any]] | None] = None
    #: ``{target: Transition(...)}`` or ``{(source, target): Transition(...)}`` (the pair
    #: wins over the target alone): conditions, permission and label of transitions.
    state_transition_rules: ClassVar[Mapping[Any, Transition]] = {}
    state_field_name: ClassVar[str] = "state"
    invalid_state_error_class: ClassVar[type[InvalidStateError]] = InvalidStateError
    transition_not_allowed_error_class: ClassVar[type[TransitionNotAllowedError]] = (
        TransitionNotAllowedError
    )

    class Meta:
        abstract = True

    @classmethod
    def get_state_graph(cls) -> StateGraph:
        """The model's validated state graph (built once per class)."""
        graph: StateGraph | None = cls.__dict__.get("_keel_state_graph")
        if graph is None:
            graph = _build_graph(cls)
            cls._keel_state_graph = graph  # type: ignore[attr-defined]
        return graph

    def get_state(self) -> Any:
        return getattr(self, self._keel_state_attname())

    def can_transition_to(self, state: Any, fail: bool = False, noop_skip: bool = False) -> bool:
        """Whether the graph (and the transition's conditions) allow going from the current
        state to ``state``. ``can_transit_to`` is the same method under the seed's name.

        ``noop_skip``: staying in the same state returns ``False`` (nothing to do). Otherwise
        a disallowed transition returns ``False``, or raises ``TransitionNotAllowedError``
        (with its ``reason``) when ``fail``; an undeclared current state is
        ``InvalidStateError`` when ``fail``.
        """
        state = _plain(state)
        current = self.get_state()
        if noop_skip and state == current:
            return False
        graph = self.get_state_graph()
        if current not in graph.transitions:
            if fail:
                raise self.invalid_state_error_class(self, current, graph.states)
            return False
        reason = self.transition_refusal(current, state)
        if reason is None:
            return True
        if fail:
            raise self.transition_not_allowed_error_class(self, current, state, reason)
        return False

    #: The seed's name of
    #: [`can_transition_to`][keel.models.mixins.states.StateMachineMixin.can_transition_to].
    can_transit_to = can_transition_to

    @classmethod
    def get_transition_rule(cls, source: Any, target: Any) -> Transition | None:
        """The [`Transition`][keel.models.mixins.states.Transition] options of ``source -> target``
        (``None``: none declared)."""
        rules = cls.state_transition_rules
        return rules.get((source, target)) or rules.get(target)

    def transition_refusal(self, source: Any, target: Any) -> str | None:
        """Why ``source -> target`` is refused (graph, then conditions), or ``None``."""
        if not self.get_state_graph().can_transition(source, target):
            return "the transition is not declared"
        rule = self.get_transition_rule(source, target)
        return None if rule is None else rule.unmet_condition(self)

    def get_available_transitions(self, user: Any = None) -> list[Any]:
        """Target states reachable now, in declaration order: declared from the current
        state, conditions met and, when ``user`` is given, permitted to that user."""
        current = self.get_state()
        graph = self.get_state_graph()
        return [
            target
            for target in graph.states
            if target != current
            and self.transition_refusal(current, target) is None
            and (user is None or self.has_transition_permission(user, target))
        ]

    def has_transition_permission(self, user: Any, target: Any) -> bool:
        """Whether ``user`` may move the instance from its current state to ``target``
        (a transition without ``permission`` is open to anyone)."""
        rule = self.get_transition_rule(self.get_state(), _plain(target))
        return rule is None or rule.allows(self, user)

    def check_transition(self, target: Any, *, user: Any = None) -> None:
        """For views: raise ``TransitionNotAllowedError`` (graph or conditions) or Django's
        ``PermissionDenied`` (``user`` lacks the transition's permission), else return."""
        target = _plain(target)
        self.can_transit_to(target, fail=True)
        if user is not None and not self.has_transition_permission(user, target):
            raise PermissionDenied(
                f"{user} may not change the state of {self._meta.label} pk={self.pk!r} "
                f"from {self.get_state()!r} to {target!r}."
            )

    def check_state_in(self, states: Any, fail: bool = False) -> bool:
        """Whether the current state is one of ``states`` (one state or an iterable)."""
        expected = tuple(_plain(s) for s in _iter(states))
        current = self.get_state()
        if current in expected:
            return True
        if fail:
            raise self.invalid_state_error_class(self, current, expected)
        return False

    def _keel_may_update(self, kwargs: Mapping[str, Any]) -> bool:
        """Whether Django's save of this new instance, with the save keywords ``kwargs``, may
        UPDATE an existing row: the update is forced, or the primary key is set by hand and
        has no default (which would make Django INSERT directly)."""
        if kwargs.get("force_insert"):
            return False
        if kwargs.get("force_update") or kwargs.get("update_fields") is not None:
            return True
        return all(
            getattr(self, f.attname) is not None
            and f.default is models.NOT_PROVIDED
            and getattr(f, "db_default", models.NOT_PROVIDED) is models.NOT_PROVIDED
            for f in compat.pk_fields(self)
        )

    def _keel_stored_state(self, using: str, *, lock: bool) -> list[Any]:
        """The stored state of this instance's row (``[]``: no row), read from the table that
        holds the state field: with multi-table inheritance a new child row may be added to
        an existing parent row, whose state Django's save then updates."""
        owner = self._meta.get_field(self.state_field_name).model
        owner = compat.concrete_model(owner)
        qs = owner._base_manager.using(using)
        if lock:
            qs = qs.select_for_update()
        pk = getattr(self, owner._meta.pk.attname)
        return list(qs.filter(pk=pk).values_list(self._keel_state_attname(), flat=True))

    def _keel_state_attname(self) -> str:
        return self._keel_attname(self.state_field_name)


def _build_graph(cls: type[StateMachineMixin]) -> StateGraph:
    owner = f"{cls.__qualname__}.states"
    try:
        field = cls._meta.get_field(cls.state_field_name)
    except FieldDoesNotExist:
        raise ImproperlyConfigured(
            f"{cls.__qualname__}.state_field_name is {cls.state_field_name!r}, which is not a "
            "field of the model."
        ) from None
    default = getattr(field, "default", models.NOT_PROVIDED)
    initial = None if default is models.NOT_PROVIDED or callable(default) else _plain(default)
    states = cls.states
    if isinstance(states, type) and issubclass(states, StateEnum):
        graph = states.graph()
        if initial is not None and graph.initial is None and initial in graph.states:
            graph = StateGraph(graph.states, graph.labels, graph.transitions, initial)
        return graph
    if cls.state_transitions is None:
        raise ImproperlyConfigured(
            f"{owner}: declare a StateEnum subclass (with TRANSITIONS), or TextChoices plus "
            f"{cls.__qualname__}.state_transitions = {{source: {{targets}}}}."
        )
    choices = states if states is not None else getattr(field, "choices", None)
    if not choices:
        raise ImproperlyConfigured(
            f"{owner}: no states: set states = <TextChoices> or give the "
            f"{cls.state_field_name!r} field choices."
        )
    graph = StateGraph.from_choices(choices, cls.state_transitions)
    if initial is not None and initial in graph.states:
        graph = StateGraph(graph.states, graph.labels, graph.transitions, initial)
    return graph


class StateTransitionPreconditionMixin(StateMachineMixin, UpdatePreconditionsMixin):
    """A save that changes the state checks the transition, then compares and sets it.

    Only when the state changed and is being written (``check_state=False`` on ``save()`` or
    in the class skips it): the transition from the loaded state must be declared (else
    ``TransitionNotAllowedError``, before any query), and the UPDATE carries
    ``WHERE <state> = <loaded state>``, so a concurrent transition makes the save raise
    ``DatabaseUpdatePreconditionsError``. Any save of an undeclared state raises
    ``InvalidStateError``. Saves that leave the state alone are not guarded. A precondition
    of the caller on the state field replaces the automatic one.

    A state assigned without a loaded baseline (the field was deferred, or a new instance
    with a preset primary key) is checked against the stored row inside the save: the row
    is read (``SELECT ... FOR UPDATE`` where supported) and the UPDATE carries
    ``WHERE <state> IN (<states allowed to reach the target>, <target>)``; a refused
    transition raises ``TransitionNotAllowedError`` naming the stored state.

    A new row must start in the graph's initial state (``INITIAL_STATE``, or the field's
    default) when it has one: else ``InvalidStateError`` before any query. Set
    ``enforce_initial_state = False`` on the model to allow any declared state.
    """

    check_state: ClassVar[bool] = True
    enforce_initial_state: ClassVar[bool] = True

    class Meta:
        abstract = True

    def pop_preconditions(self, kwargs: dict[str, Any]) -> bool:
        self._keel_sync()
        self.__dict__.pop(LEARNED_BASELINES, None)
        check = kwargs.pop("check_state", None)
        guarded = super().pop_preconditions(kwargs)
        if not (self.check_state if check is None else check):
            return guarded
        name = self.state_field_name
        attname = self._keel_state_attname()
        graph = self.get_state_graph()
        data = self.__dict__
        if attname not in data:  # deferred and untouched: not written
            return guarded
        state = data[attname]
        if state not in graph.transitions:
            raise self.invalid_state_error_class(self, state, graph.states)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and not {name, attname}.intersection(update_fields):
            return guarded  # the state is not written
        if self._state.adding:
            if not self._keel_may_update(kwargs):
                self._keel_check_initial(state)
                return guarded
            # A preset primary key: Django updates the row if it exists, else inserts.
            data.setdefault(PRECONDITIONS, Preconditions()).unknown_state = (name, attname, state)
            return True
        if not self.has_changed(name):
            return guarded
        previous = self.previous(name)
        active = data.setdefault(PRECONDITIONS, Preconditions())
        if previous is NOT_LOADED:
            active.unknown_state = (name, attname, state)
            return True
        reason = self.transition_refusal(previous, state)
        if reason is not None:
            raise self.transition_not_allowed_error_class(self, previous, state, reason)
        active.state = (name, attname, previous)
        return True

    def _keel_check_initial(self, state: Any) -> None:
        initial = self.get_state_graph().initial
        if self.enforce_initial_state and initial is not None and state != initial:
            raise self.invalid_state_error_class(self, state, (initial,))

    def prepare_guarded_save(self, using: str) -> None:
        super().prepare_guarded_save(using)
        active: Preconditions | None = self.__dict__.get(PRECONDITIONS)
        if active is not None and active.unknown_state is not None:
            self._keel_check_stored_state(active, using)

    def _keel_check_stored_state(self, active: Preconditions, using: str) -> None:
        """Read (and lock) the stored state before anything is written; check the transition.

        The UPDATE still carries the allowed source states (``get_preconditions``): on SQLite,
        which has no row locks, the read alone would not be enough.
        """
        assert active.unknown_state is not None
        _, attname, target = active.unknown_state
        rows = self._keel_stored_state(using, lock=True)
        if not rows:
            if self._state.adding:  # Django inserts next: a new row
                active.unknown_state = None
                self._keel_check_initial(target)
            return  # a loaded row that is gone: the guarded UPDATE reports it
        stored = rows[0]
        if stored != target:
            reason = self.transition_refusal(stored, target)
            if reason is not None:
                raise self.transition_not_allowed_error_class(self, stored, target, reason)
        self._keel_learn_baseline(attname, stored)

    def get_preconditions(self, update_fields: Any) -> Preconditions:
        conditions = super().get_preconditions(update_fields)
        active: Preconditions | None = self.__dict__.get(PRECONDITIONS)
        if active is None:
            return conditions
        if active.unknown_state is not None:
            # Stored state unknown: the database checks it in the same statement.
            _, attname, target = active.unknown_state
            allowed = self.get_state_graph().sources_of(target) | {target}
            conditions.filters[f"{attname}__in"] = sorted(allowed, key=str)
            return conditions
        if active.state is None:
            return conditions
        name, attname, previous = active.state
        if update_fields is not None and not {name, attname}.intersection(update_fields):
            return conditions
        keys = [*conditions.filters, *conditions.excludes]
        if not any(k.split("__")[0] in (name, attname) for k in keys):
            conditions.filters[attname] = previous
        return conditions


class StateTransitionEventsMixin(StateMachineMixin):
    """``keel.signals.post_state_transition`` is sent once per saved change of the state.

    Sent after the row was written, with ``sender`` (the instance's class), ``instance``, ``source``
    (``None`` on creation), ``target``, ``previous_state`` and ``state`` (the same two) and
    ``using``; never for a save that leaves the state alone. ``keel.signals.pre_state_transition``
    (``sender``, ``instance``, ``source``, ``target``, ``using``) is sent just before such a save
    writes; a receiver that raises stops it. With ``state_transition_on_commit = True`` the post
    signal is sent when the transaction commits (not at all on rollback). Override
    [`on_post_state_transition`][keel.models.mixins.states.StateTransitionEventsMixin.on_post_state_transition]
    to act without a signal.
    """

    state_transition_on_commit: ClassVar[bool] = False
    _keel_keep_saved_changes: ClassVar[bool] = True

    class Meta:
        abstract = True

    def save_base(self, *args: Any, **kwargs: Any) -> None:
        self._keel_learn_stored_state(kwargs)
        transition = self._keel_transition_to_save(kwargs.get("update_fields"))
        if transition is not None:
            send_for(
                pre_state_transition,
                self,
                kwargs.get("using") or self._state.db,
                source=transition[0],
                target=transition[1],
            )
        super().save_base(*args, **kwargs)

    save_base.alters_data = True  # type: ignore[attr-defined]

    def _keel_learn_stored_state(self, kwargs: Mapping[str, Any]) -> None:
        """Read the stored state when the save is about to write a state it has no loaded
        baseline for (deferred field, preset primary key), so that the event names the state
        the row leaves (no event when it does not change, no creation for an existing row).
        The precondition mixin has already read it, locked, when both are used."""
        data = self.__dict__
        attname = self._keel_state_attname()
        update_fields = kwargs.get("update_fields")
        if attname not in data or attname in (data.get(LEARNED_BASELINES) or {}):
            return
        if update_fields is not None and not {
            self.state_field_name,
            attname,
        }.intersection(update_fields):
            return
        if data["_state"].adding:
            if not self._keel_may_update(kwargs):
                return
        elif self._keel_changes().get(attname, None) is not NOT_LOADED:
            return
        using = kwargs.get("using") or self._state.db or router.db_for_write(type(self))
        rows = self._keel_stored_state(using, lock=False)
        if rows:
            self._keel_learn_baseline(attname, rows[0])

    def _keel_transition_to_save(self, update_fields: Any) -> tuple[Any, Any] | None:
        """(source, target) of the state change the save about to write makes, if any."""
        data = self.__dict__
        attname = self._keel_state_attname()
        if attname not in data:
            return None
        if update_fields is not None and not {
            self.state_field_name,
            attname,
        }.intersection(update_fields):
            return None
        learned = data.get(LEARNED_BASELINES) or {}
        if attname in learned:  # a guard read the stored state
            source = learned[attname]
        elif data["_state"].adding:
            source = None
        else:
            changes = self._keel_changes()
            if attname not in changes:
                return None
            source = changes[attname]
        target = data[attname]
        return None if source == target else (source, target)

    def save(self, **kwargs: Any) -> None:
        self._keel_sync()
        self._keel_pop_saved_changes()
        super().save(**kwargs)
        saved = self._keel_pop_saved_changes()
        if saved is None:
            return
        inserted, changes = saved
        attname = self._keel_state_attname()
        if inserted:
            self.on_post_state_transition(None, self._state.db)
        elif attname in changes:
            self.on_post_state_transition(changes[attname], self._state.db)

    def on_post_state_transition(self, previous_state: Any, using: str | None) -> None:
        """Send the signal now, or on commit when ``state_transition_on_commit``."""
        state = self.get_state()
        send_for(
            post_state_transition,
            self,
            using,
            on_commit=self.state_transition_on_commit,
            source=previous_state,
            target=state,
            previous_state=previous_state,
            state=state,
        )


def _check_state_model(sender: type[models.Model], **kwargs: Any) -> None:
    if issubclass(sender, StateMachineMixin) and not sender._meta.abstract:
        graph = sender.get_state_graph()
        rules = {}
        for key, rule in sender.state_transition_rules.items():
            pair = tuple(_plain(k) for k in key) if isinstance(key, tuple) else _plain(key)
            declared = (
                graph.can_transition(*pair) if isinstance(pair, tuple) else pair in graph.states
            )
            if not declared or not isinstance(rule, Transition):
                raise ImproperlyConfigured(
                    f"{sender.__qualname__}.state_transition_rules: {key!r} must name a "
                    "declared transition (source, target) or state, mapped to a Transition."
                )
            rules[pair] = rule
        sender.state_transition_rules = rules


class_prepared.connect(_check_state_model, dispatch_uid="keel.models.mixins.states")
