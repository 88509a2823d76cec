"""Store the uploaded files of a new instance once its primary key exists."""

from __future__ import annotations

from typing import Any

from django.core.files import File
from django.db import connections, models, router, transaction
from django.db.models.fields.files import FieldFile

from keel import compat
from keel.models.mixins._shared import STORED_FILES, UnsavedState, settle_tracking

__all__ = ["SaveInstanceFilesMixin"]


def _pending_upload(value: object) -> File[Any] | None:
    """The file content waiting to be stored, or None when the value is stored already."""
    if isinstance(value, FieldFile):
        if value and not compat.file_is_committed(value):
            content: File[Any] = value.file
            return content
        return None
    if isinstance(value, File):
        return value
    return None


class SaveInstanceFilesMixin(compat.AsyncSaveOptionsMixin):
    """Make ``upload_to`` see the primary key of a new instance.

    Guarantees, for a new instance whose pk comes from the database (an ``AutoField``) and which
    has files to store:

    1. the row is inserted with each pending file's plain name as a placeholder;
    2. the files are stored, ``upload_to`` being called with the pk set;
    3. the file columns are updated with one ``UPDATE`` (no second ``save()``: signals and
       other mixins run once).

    All three steps run in one ``transaction.atomic(using=…)``: if any fails, the row is rolled
    back, the files stored so far are deleted, and the instance is left as it was before
    ``save()`` (no pk, same pending files), so it can be saved again. The same holds when the
    caller's transaction rolls the insert back and change tracking makes the instance new
    again: its files are pending again (the stored copies are deleted) and the retry stores
    them under the new pk. ``pre_save``/``post_save``
    receivers of the insert see the placeholder name, not the final one. Instances that already
    have a pk (an update, or a pk with a default such as ``UUIDField(default=uuid4)``) are saved
    as usual, with a single query.
    """

    class Meta:
        abstract = True

    def _pending_files(self) -> list[tuple[models.FileField, File[Any]]]:
        pending = []
        for f in self._meta.concrete_fields:
            if isinstance(f, models.FileField):
                content = _pending_upload(self.__dict__.get(f.attname))
                if content is not None:
                    pending.append((f, content))
        return pending

    def save(self, **kwargs: Any) -> None:
        self._keel_undo_rolled_back_files()
        pk_missing = any(getattr(self, f.attname) is None for f in compat.pk_fields(self))
        pending = self._pending_files() if self._state.adding and pk_missing else []
        if not pending:
            super().save(**kwargs)
            return
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        unsaved = UnsavedState(self)
        stored: list[tuple[models.FileField, str]] = []
        try:
            with transaction.atomic(using=using):
                for f, content in pending:
                    # Written to __dict__, not through the descriptor: an ImageField keeps the
                    # dimensions read from the real file, and change tracking sees nothing.
                    self.__dict__[f.attname] = f.attr_class(self, f, content.name)
                super().save(**kwargs)
                values = {}
                for f, content in pending:
                    # What FieldFile.save() does, minus its setattr(): the final name goes to
                    # __dict__ too, so change tracking does not see a change to save again.
                    name = f.generate_filename(self, content.name or "")
                    name = f.storage.save(name, content, max_length=f.max_length)
                    stored.append((f, name))
                    values[f.attname] = name
                    self.__dict__[f.attname] = name
                type(self)._base_manager.using(using).filter(pk=self.pk).update(**values)
        except BaseException:
            self._keel_unstore(pending, stored)
            unsaved.restore(self)
            raise
        if compat.in_atomic_block(connections[using]):
            record: tuple[Any, ...] = ()

            def committed() -> None:
                if self.__dict__.get(STORED_FILES) is record:
                    del self.__dict__[STORED_FILES]

            record = (compat.watch_commit(using, committed), pending, stored)
            self.__dict__[STORED_FILES] = record

    def _keel_unstore(
        self, pending: list[tuple[models.FileField, File[Any]]], stored: list[tuple[Any, str]]
    ) -> None:
        """Delete the files stored for an insert that did not happen; pending again."""
        for f, name in stored:
            f.storage.delete(name)
        for f, content in pending:
            # The content, not the FieldFile: that one may name a file deleted above.
            self.__dict__[f.attname] = content

    def _keel_undo_rolled_back_files(self) -> None:
        """After the caller's transaction rolled back an insert this mixin made: when the
        instance is new again (change tracking restores that), its files are pending again,
        so the retry stores them under the new primary key."""
        record = self.__dict__.get(STORED_FILES)
        if record is None:
            return
        watch, pending, stored = record
        if watch.pending():
            return
        del self.__dict__[STORED_FILES]
        settle_tracking(self)
        if self._state.adding and any(
            getattr(self, f.attname) is None for f in compat.pk_fields(self)
        ):
            self._keel_unstore(pending, stored)
