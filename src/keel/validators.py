"""Validators shared by keel's abstract models.

Internal: not part of keel's public API; import the public names from their package.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

IMAGE_EXTENSIONS = ["png", "jpg", "jpeg", "gif", "webp", "svg", "avif"]

no_newlines = RegexValidator(
    r"[\r\n]", inverse_match=True, message=_("Line breaks are not allowed here.")
)
