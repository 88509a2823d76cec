"""Template tags of keel's project state: ``{% load keel_site %}``.

- ``{% static_text "footer" %}`` (or ``{% static_text "footer" default="..." as footer %}``):
  the static content of a key in the active language, escaped like any variable;
- ``{% page_seo "home" as seo %}``: the SEO row of a page for the active language, or
  ``None`` (``{{ seo.seo_title }}``, ``{{ seo.seo_image.url }}``), with the same rules as the
  context processors (published fields only);
- ``{% get_site_settings as settings %}``: the site settings as templates see them (secrets
  refused), for templates rendered without keel's context processor.
"""

from __future__ import annotations

from django import template
from django.db import models

from keel.site.context_processors import PublicSingleton, PublicView, public_view
from keel.site.registry import context_models, get_site_settings_model

register = template.Library()


def _content_model() -> type[models.Model]:
    from keel.site.models import AbstractStaticContent

    found = context_models(AbstractStaticContent)
    if len(found) != 1:
        raise template.TemplateSyntaxError(
            "static_text needs exactly one static content model, found "
            f"{', '.join(sorted(found)) or 'none'}."
        )
    return next(iter(found.values()))


def _seo_model() -> type[models.Model]:
    from keel.site.models import AbstractStaticPageSeo
    from keel.site.registry import cached_models

    found = [m for m in cached_models() if issubclass(m, AbstractStaticPageSeo)]
    if len(found) != 1:
        raise template.TemplateSyntaxError(
            f"page_seo needs exactly one page SEO model, found {len(found)}."
        )
    return found[0]


@register.simple_tag
def static_text(key: str, default: str = "") -> str:
    """The content of ``key`` in the active language, or ``default``."""
    return _content_model().get_text(key, default)  # type: ignore[attr-defined,no-any-return]


@register.simple_tag
def page_seo(page_key: str) -> PublicView | None:
    """The SEO row of ``page_key`` for the active language as templates may see it (its
    published fields; ``seo_image`` as ``name`` and ``url``), or ``None``."""
    return public_view(_seo_model().for_page(page_key))  # type: ignore[attr-defined]


@register.simple_tag
def get_site_settings() -> PublicSingleton:
    """The site settings as the ``site_settings`` context processor exposes them."""
    return PublicSingleton(get_site_settings_model())
