"""Per-user details beside ``AUTH_USER_MODEL``: :class:`keel.profiles.models.AbstractUserProfile`.

``import keel.profiles`` imports no model; import them from :mod:`keel.profiles.models`.
"""
