"""Admin support for state-machine models (``keel.models.mixins.StateMachineMixin``).

``StateMachineAdminMixin``, put before ``admin.ModelAdmin``:

- the state field offers only the current state and the transitions available from it to
  the user (graph, conditions, permission); an add form offers only the initial state;
- one button per available transition on the change form (it works when the state field
  itself is read-only or excluded), and one changelist action per target state;
- a refused transition (not declared, a condition, a permission, or a concurrent change
  found by the guarded save) is a form error, never a server error;
- the same choices and checks for each row when the state is in ``list_editable``;
- each transition is recorded in the object's history ("State: New → Paid. ...").

System check ``keel.W007`` (registered when this module is imported, as the admin's
autodiscovery does): a state-machine model registered in the default admin site with a
``ModelAdmin`` that lacks the mixin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.apps import AppConfig, apps
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.core import checks
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse

from keel.exceptions import KeelError
from keel.models.mixins.states import StateMachineMixin

__all__ = [
    "StateMachineAdminMixin",
]

#: The submit button's name on the change form; its value is the target state.
TRANSITION_PARAM = "_transition"
# Attributes keel sets on the request while one admin view runs.
_REFUSED = "_keel_refused_transition"
_DONE = "_keel_transition_done"


def _target_of(request: HttpRequest) -> str | None:
    if request.method != "POST":
        return None
    value = request.POST.get(TRANSITION_PARAM)
    return value or None


class ChangeFormContextMixin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Add ``change_form_context(request, obj)`` to the change form of an object the user may
    change (keel's admin templates read it)."""

    def change_form_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        return {}

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if change and obj is not None and self.has_change_permission(request, obj):
            context.update(self.change_form_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)


class StateMachineAdminMixin(ChangeFormContextMixin):
    """Transitions of a state-machine model in the admin (see the module docstring)."""

    change_form_template = "keel/admin/state_change_form.html"

    def _graph_labels(self) -> dict[Any, str]:
        return dict(self._state_model().get_state_graph().labels)

    def _state_model(self) -> type[StateMachineMixin]:
        model = self.model
        if not issubclass(model, StateMachineMixin):
            raise TypeError(
                f"{type(self).__name__} uses StateMachineAdminMixin but {model.__name__} is not "
                "a state-machine model (StateMachineMixin)."
            )
        return model

    # Choices and validation of the form.
    def state_choices(self, request: HttpRequest, obj: Any) -> list[tuple[Any, str]]:
        """The ``(state, label)`` pairs the form offers for ``obj`` (``None``: an add form)."""
        model = self._state_model()
        graph = model.get_state_graph()
        labels = graph.labels
        if obj is None:
            initial = graph.initial
            enforced = getattr(model, "enforce_initial_state", False)
            states = [initial] if initial is not None and enforced else list(graph.states)
        else:
            states = [obj.get_state(), *obj.get_available_transitions(request.user)]
        return [(state, labels.get(state, str(state))) for state in states]

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> type[ModelForm[Any]]:
        base = super().get_form(request, obj, change=change, **kwargs)
        return self._state_form(base, request, obj)

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any) -> type[ModelForm[Any]]:
        """The ``list_editable`` form: each row offers and checks the transitions of its own
        instance, as the change form does."""
        base = super().get_changelist_form(request, **kwargs)
        return self._state_form(base, request, None, per_row=True)

    def _state_form(
        self,
        base: type[ModelForm[Any]],
        request: HttpRequest,
        obj: Any,
        *,
        per_row: bool = False,
    ) -> type[ModelForm[Any]]:
        admin_ = self
        name = self._state_model().state_field_name

        class StateForm(base):  # type: ignore[valid-type,misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                # A changelist row edits its own stored instance (never an add form).
                self.keel_obj = self.instance if per_row else obj
                field = self.fields.get(name)
                if isinstance(field, forms.ChoiceField):
                    field.choices = admin_.state_choices(request, self.keel_obj)

            def clean(self) -> dict[str, Any]:
                cleaned: dict[str, Any] = super().clean()
                admin_.validate_transition(self, request, self.keel_obj)
                return cleaned

        StateForm.__name__ = base.__name__
        return StateForm

    def validate_transition(self, form: ModelForm[Any], request: HttpRequest, obj: Any) -> None:
        """Add a form error when the requested transition is refused (form ``clean()``)."""
        name = self._state_model().state_field_name
        field = name if name in form.fields else None
        refused = getattr(request, _REFUSED, None)
        if refused is not None:  # the save itself refused it (e.g. a concurrent change)
            form.add_error(field, str(refused))
            return
        if obj is None:
            return
        target = _target_of(request) or form.cleaned_data.get(name, obj.get_state())
        if target == obj.get_state():
            return
        try:
            obj.check_transition(target, user=request.user)
        except (KeelError, PermissionDenied) as exc:
            form.add_error(field, str(exc))

    # Saving, history and the refused-save fallback.
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        attname = obj._keel_state_attname()
        target = _target_of(request)
        if change and target is not None:
            setattr(obj, attname, target)
        source = obj.previous(attname) if change else None
        super().save_model(request, obj, form, change)
        if change and source != obj.get_state():
            setattr(request, _DONE, (source, obj.get_state()))

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        done = getattr(request, _DONE, None)
        if done is not None:
            rest = message
            if isinstance(message, list):
                rest = LogEntry(change_message=json.dumps(message)).get_change_message()
            labels = self._graph_labels()
            source, target = (labels.get(s, str(s)) for s in done)
            message = f"State: {source} → {target}. {rest}".strip()
            delattr(request, _DONE)
        return super().log_change(request, obj, message)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except KeelError as exc:
            if request.method != "POST":
                raise
            # The view's transaction was rolled back. Render the form again from the same
            # POST, now carrying the refusal as an error (nothing is saved: it is invalid).
            setattr(request, _REFUSED, exc)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def change_form_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        labels = self._graph_labels()
        current = obj.get_state()
        transitions: list[dict[str, Any]] = []
        for target in obj.get_available_transitions(request.user):
            rule = obj.get_transition_rule(current, target)
            label = rule.label if rule is not None and rule.label else None
            transitions.append(
                {"value": target, "label": label or f"→ {labels.get(target, target)}"}
            )
        return {"keel_transitions": transitions, "keel_transition_param": TRANSITION_PARAM}

    # Changelist actions: one per target state.
    def get_actions(self, request: HttpRequest, action_location: Any = None) -> dict[str, Any]:
        # Django 6.1 passes where the actions are shown (ActionLocation); earlier releases
        # call get_actions(request). Transition actions belong to the change list.
        if action_location is None:
            actions: dict[str, Any] = super().get_actions(request)
        else:
            actions = super().get_actions(request, action_location=action_location)  # type: ignore[call-arg]
            if getattr(action_location, "value", "CHANGE_LIST") != "CHANGE_LIST":
                return actions
        if not self.has_change_permission(request):
            return actions
        graph = self._state_model().get_state_graph()
        for target in graph.states:
            if not graph.sources_of(target):
                continue
            name = f"keel_transition_{target}"
            description = f"Move selected to “{graph.labels[target]}”"
            actions[name] = (self._transition_action(target), name, description)
        return actions

    def _transition_action(self, target: Any) -> Callable[..., None]:
        def action(admin_: Any, request: HttpRequest, queryset: QuerySet[Model]) -> None:
            done, refused = 0, []
            obj: Any
            for obj in queryset:
                source = obj.get_state()
                try:
                    obj.check_transition(target, user=request.user)
                    setattr(obj, obj._keel_state_attname(), target)
                    obj.save()
                except (KeelError, PermissionDenied) as exc:
                    refused.append(f"{obj}: {exc}")
                    continue
                setattr(request, _DONE, (source, target))
                self.log_change(request, obj, [])
                done += 1
            if done:
                self.message_user(request, f"{done} moved.", messages.SUCCESS)
            for reason in refused:
                self.message_user(request, reason, messages.WARNING)

        return action


@checks.register(checks.Tags.admin)
def check_state_machine_admins(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``keel.W007``: a state-machine model registered in the default admin site with a
    ``ModelAdmin`` that is not a ``StateMachineAdminMixin``."""
    models = (
        apps.get_models()
        if app_configs is None
        else [m for config in app_configs for m in config.get_models()]
    )
    messages: list[checks.CheckMessage] = []
    for model in models:
        if not issubclass(model, StateMachineMixin) or not admin.site.is_registered(model):
            continue
        model_admin = admin.site.get_model_admin(model)
        if isinstance(model_admin, StateMachineAdminMixin):
            continue
        messages.append(
            checks.Warning(
                f"{model._meta.label} is a state machine registered in the admin with "
                f"{type(model_admin).__name__}: its {model.state_field_name!r} field offers "
                "every state, and choosing one the graph refuses is a server error.",
                hint="Put keel.admin.StateMachineAdminMixin before admin.ModelAdmin in "
                f"{type(model_admin).__name__}'s bases.",
                obj=model_admin,
                id="keel.W007",
            )
        )
    return messages
