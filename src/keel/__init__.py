"""keel: the backbone of a Django project.

Importing the package root is free of Django: the public names live in the subpackages
(``keel.site``, ``keel.fixtures``, ``keel.tokens``, ``keel.models.mixins``).
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
