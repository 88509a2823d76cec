"""What loaddata users expect: compressed files by extension, fields removed from the model."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from keel.fixtures import FixtureError, FixtureImportResult, JsonFixtureUpsertCommand
from tests.testapp.models.fixtures import FixtureEntry

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    {"model": "testapp.fixtureentry", "fields": {"key": f"e-{i}", "label": "x", "amount": "1.5"}}
    for i in range(3)
]
TEXT = json.dumps(ROWS).encode()
LINES = "\n".join(json.dumps(row) for row in ROWS).encode()


class ImportEntries(JsonFixtureUpsertCommand):
    fixture_key = "entries"
    model_class = FixtureEntry
    lookup_field = "key"


def run(path: Path, *args: str, **attributes: Any) -> FixtureImportResult:
    command = ImportEntries()
    command.fixture_path = path  # type: ignore[misc]
    for name, value in attributes.items():
        setattr(command, name, value)
    call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert command.import_result is not None
    return command.import_result


def zipped(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("entries.json", data)
    return buffer.getvalue()


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    ".gz": gzip.compress,
    ".bz2": bz2.compress,
    ".xz": lzma.compress,
    ".lzma": lambda data: lzma.compress(data, format=lzma.FORMAT_ALONE),
    ".zip": zipped,
}


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
@pytest.mark.parametrize("inner", [".json", ".jsonl"])
def test_compressed_files_are_read_by_their_extension(
    tmp_path: Path, suffix: str, inner: str
) -> None:
    path = tmp_path / f"entries{inner}{suffix}"
    path.write_bytes(COMPRESSORS[suffix](TEXT if inner == ".json" else LINES))
    assert run(path).created == 3
    assert run(path).status == "unchanged"
    # A change of the compressed bytes is a change of content.
    path.write_bytes(COMPRESSORS[suffix](TEXT.replace(b'"x"', b'"y"')))
    if inner == ".json":
        assert run(path).updated == 3


def test_a_compressed_file_with_a_plain_name_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "entries.json"
    path.write_bytes(gzip.compress(TEXT))
    with pytest.raises(FixtureError, match="gzip-compressed, but its name does not say so"):
        run(path)


def test_a_corrupt_compressed_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "entries.json.gz"
    path.write_bytes(gzip.compress(TEXT)[:-12])
    with pytest.raises(FixtureError, match="cannot decompress the file"):
        run(path)
    assert not FixtureEntry.objects.exists()


def test_a_zip_of_several_files_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "entries.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.json", TEXT)
        archive.writestr("b.json", TEXT)
    with pytest.raises(FixtureError, match="holds exactly one file, this archive holds 2"):
        run(path)


def test_fields_the_model_no_longer_has_are_refused_or_ignored_on_request(
    tmp_path: Path,
) -> None:
    rows = [dict(row, fields={**row["fields"], "legacy": "old"}) for row in ROWS]
    path = tmp_path / "entries.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(FixtureError, match=r"row 0, field 'legacy'"):
        run(path)
    assert run(path, "--ignorenonexistent").created == 3
    FixtureEntry.objects.all().delete()
    assert run(path, "--force", ignore_unknown_fields=True).created == 3
