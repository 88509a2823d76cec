"""Reading fixture files: streamed JSON arrays, JSON Lines, errors with line and column;
content hashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.fixtures import (
    FixtureError,
    compute_paths_hash,
    iter_fixture_rows,
    load_json_fixture_rows,
    reading,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_rows_carry_model_pk_fields_index_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.json",
        '[\n  {"model": "app.thing", "pk": 7, "fields": {"key": "a"}},\n'
        '  {"model": "app.thing", "fields": {"key": "b"}}\n]\n',
    )
    rows = list(iter_fixture_rows(path))
    assert [(r.index, r.line, r.model, r.pk, r.fields) for r in rows] == [
        (0, 2, "app.thing", 7, {"key": "a"}),
        (1, 3, "app.thing", None, {"key": "b"}),
    ]


def test_json_lines_and_flat_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"key": "a"}\n\n{"key": "b", "n": 2}\n')
    rows = list(iter_fixture_rows(path, fields_key=None))
    assert [(r.index, r.line, r.fields) for r in rows] == [
        (0, 1, {"key": "a"}),
        (1, 3, {"key": "b", "n": 2}),
    ]


def test_an_empty_array_has_no_rows(tmp_path: Path) -> None:
    assert list(iter_fixture_rows(write(tmp_path / "a.json", " [ ] \n"))) == []


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'\xef\xbb\xbf[{"fields": {"k": 1}}]')
    assert [r.fields for r in iter_fixture_rows(path)] == [{"k": 1}]


def test_invalid_json_names_file_line_column_and_row(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.json", '[\n {"fields": {"k": 1}},\n {"fields": {"k": 2 "x": 3}}\n]'
    )
    with pytest.raises(FixtureError) as caught:
        list(iter_fixture_rows(path))
    error = caught.value
    assert (error.path, error.line, error.column, error.row) == (path, 3, 21, 1)
    assert str(error).startswith(f"{path}, line 3 column 21, row 1: invalid JSON")


def test_invalid_json_lines_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", '{"k": 1}\n{"k": }\n')
    with pytest.raises(FixtureError) as caught:
        list(iter_fixture_rows(path, fields_key=None))
    assert (caught.value.line, caught.value.column, caught.value.row) == (2, 7, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "found an empty file"),
        ('{"fields": {}}', "holds a JSON array of objects, found '{'"),
        ('[{"fields": {}},]', "trailing comma"),
        ('[{"fields": {}} {"fields": {}}]', "expected ',' or ']' after row"),
        ('[{"fields": {}}', "expected ',' or ']' after row, found end of file"),
        ('[{"fields": {}}] []', "extra data after the array"),
        ("[1]", "a row is a JSON object, found int"),
        ('[{"model": "a.b"}]', "a row holds its values in a 'fields' object, found nothing"),
        ('[{"fields": []}]', "found list"),
        ('[{"fields": {}, "feilds": {}}]', "unknown row key(s) 'feilds'"),
        ('[{"model": 3, "fields": {}}]', "'model' is an 'app_label.model' string"),
    ],
)
def test_malformed_files_are_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.json", text)
    with pytest.raises(FixtureError, match=None) as caught:
        list(iter_fixture_rows(path))
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="cannot read the fixture file"):
        list(iter_fixture_rows(tmp_path / "nope.json"))


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.json"
    path.write_bytes('[{"fields": {"k": "café"}}]'.encode("latin-1"))
    with pytest.raises(FixtureError, match="not UTF-8"):
        list(iter_fixture_rows(path))


def test_load_json_fixture_rows_returns_errors_instead_of_raising(tmp_path: Path) -> None:
    good = load_json_fixture_rows(write(tmp_path / "a.json", '[{"fields": {"k": 1}}]'))
    assert good.success and good.fields == [{"k": 1}]
    bad = load_json_fixture_rows(write(tmp_path / "b.json", '[{"fields": {"k": 1}}, 2]'))
    assert not bad.success
    assert len(bad.rows) == 1 and "row 1" in str(bad.errors[0])


def test_a_large_array_is_read_in_bounded_chunks(tmp_path: Path) -> None:
    count = 20_000
    path = tmp_path / "big.json"
    with path.open("w") as stream:
        stream.write("[\n")
        stream.write(
            ",\n".join(
                json.dumps({"fields": {"key": f"k{i}", "text": "x" * 50}}) for i in range(count)
            )
        )
        stream.write("\n]")
    reader_sizes = []
    original_fill = reading._ArrayReader._fill

    def spy(self: reading._ArrayReader) -> bool:
        reader_sizes.append(len(self.buf))
        return original_fill(self)

    reading._ArrayReader._fill = spy  # type: ignore[method-assign]
    try:
        rows = list(iter_fixture_rows(path))
    finally:
        reading._ArrayReader._fill = original_fill  # type: ignore[method-assign]
    assert len(rows) == count and rows[-1].fields["key"] == f"k{count - 1}"
    assert rows[-1].line == count + 1
    assert path.stat().st_size > 10 * reading.CHUNK_CHARS
    assert max(reader_sizes) < 2 * reading.CHUNK_CHARS


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=4), max_size=8),
    indent=st.sampled_from([None, 0, 2]),
    chunk=st.integers(min_value=1, max_value=16),
)
def test_any_array_reads_back_exactly_whatever_the_chunk_size(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[dict[str, object]],
    indent: int | None,
    chunk: int,
) -> None:
    monkeypatch.setattr(reading, "CHUNK_CHARS", chunk)
    path = tmp_path / "any.json"
    path.write_text(json.dumps([{"fields": r} for r in rows], indent=indent), encoding="utf-8")
    assert [r.fields for r in iter_fixture_rows(path)] == rows


def test_errors_keep_their_line_and_column_across_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reading, "CHUNK_CHARS", 5)
    lines = [f'{{"fields": {{"k": {i}}}}},' for i in range(50)]
    lines.append('{"fields": {"k": tru}}')
    path = write(tmp_path / "bad.json", "[\n" + "\n".join(lines) + "\n]")
    with pytest.raises(FixtureError) as caught:
        list(iter_fixture_rows(path))
    assert (caught.value.line, caught.value.column, caught.value.row) == (52, 18, 50)


# -- hashing ---------------------------------------------------------------------------------


def test_the_hash_ignores_the_order_of_paths(tmp_path: Path) -> None:
    a = write(tmp_path / "a.json", "[]")
    b = write(tmp_path / "b.json", "[1]")
    assert compute_paths_hash([a, b]) == compute_paths_hash([b, a])


def test_the_hash_changes_with_bytes_names_directories_and_extra(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    a = write(tmp_path / "x" / "a.json", "[]")
    base = compute_paths_hash([a], base_dir=tmp_path)
    moved = write(tmp_path / "y" / "a.json", "[]")
    renamed = write(tmp_path / "x" / "b.json", "[]")
    assert compute_paths_hash([moved], base_dir=tmp_path) != base
    assert compute_paths_hash([renamed], base_dir=tmp_path) != base
    assert compute_paths_hash([a], base_dir=tmp_path, extra=["app.model"]) != base
    write(a, "[ ]")
    assert compute_paths_hash([a], base_dir=tmp_path) != base


def test_the_hash_frames_its_parts(tmp_path: Path) -> None:
    # Without lengths, ("ab", "c") and ("a", "bc") would hash the same bytes.
    a = write(tmp_path / "a.json", "[]")
    assert compute_paths_hash([a], extra=["ab", "c"]) != compute_paths_hash([a], extra=["a", "bc"])


def test_the_hash_is_relative_to_base_dir(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    write(one / "a.json", "[]")
    write(two / "a.json", "[]")
    assert compute_paths_hash([one / "a.json"], base_dir=one) == compute_paths_hash(
        [two / "a.json"], base_dir=two
    )


def test_hashing_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match="cannot read"):
        compute_paths_hash([tmp_path / "missing.json"])
