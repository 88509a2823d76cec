"""Per-user details beside ``AUTH_USER_MODEL``:
[`keel.profiles.models.AbstractUserProfile`][keel.profiles.models.AbstractUserProfile].

``import keel.profiles`` imports no model; import them from ``keel.profiles.models``.
"""
