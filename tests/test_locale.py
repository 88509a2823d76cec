"""keel's translation catalogues: complete, compiled, in step with the source, and used."""

from __future__ import annotations

import gettext
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from django.template.loader import render_to_string
from django.utils import translation

import keel

PACKAGE = Path(keel.__file__).resolve().parent
LANGUAGES = ("fr", "de", "es")
KEYWORDS: dict[str, Any] = {
    "_": None,
    "gettext": None,
    "gettext_lazy": None,
    "ngettext": (1, 2),
}
TEMPLATE_STRING = re.compile(r"""{%\s*(?:translate|trans)\s+"([^"]+)"\s*%}""")
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def _catalogue(language: str) -> Catalog:
    with (PACKAGE / f"locale/{language}/LC_MESSAGES/django.po").open("rb") as po:
        return read_po(po, locale=language)


def _singular(message_id: str | tuple[str, ...]) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]


def _marked_in_source() -> set[str]:
    marked: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for _line, message, _comments, _context in extract_from_file(
            "python", str(path), keywords=KEYWORDS
        ):
            marked.add(message if isinstance(message, str) else message[0])
    for path in (PACKAGE / "templates").rglob("*.html"):
        marked |= set(TEMPLATE_STRING.findall(path.read_text()))
    return marked


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogue_holds_every_marked_string_and_nothing_else(language: str) -> None:
    marked = _marked_in_source()
    assert "Social networks" in marked
    assert "This link is invalid, has expired or has already been used." in marked
    in_catalogue = {_singular(message.id) for message in _catalogue(language) if message.id}
    assert in_catalogue == marked, "run: make messages, then translate the new entries"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_string_is_translated_with_its_placeholders(language: str) -> None:
    catalogue = _catalogue(language)
    for message in catalogue:
        if not message.id:
            continue
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(forms), f"{language}: {message.id!r} is not translated"
        assert not message.fuzzy, f"{language}: {message.id!r} is fuzzy"
        expected = sorted(PLACEHOLDER.findall(_singular(message.id)))
        for form in forms:
            assert sorted(PLACEHOLDER.findall(form)) == expected, (language, form)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_matches_its_source(language: str) -> None:
    with (PACKAGE / f"locale/{language}/LC_MESSAGES/django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    for message in _catalogue(language):
        if isinstance(message.id, tuple):
            singular, plural = message.id
            for n in (1, 2, 5):
                translated = compiled.ngettext(singular, plural, n)
                assert translated == message.string[compiled.plural(n)], "make compilemessages"
        elif message.id:
            assert compiled.gettext(message.id) == message.string, "run: make compilemessages"


@pytest.mark.parametrize(
    ("language", "expected"),
    [("fr", "Lien expiré"), ("de", "Link abgelaufen"), ("es", "Enlace caducado")],
)
def test_django_uses_keels_catalogues(language: str, expected: str) -> None:
    with translation.override(language):
        page = render_to_string("keel/tokens/invalid.html")
    assert f"<title>{expected}</title>" in page
