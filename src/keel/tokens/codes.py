"""One-time numeric codes: "enter the 6-digit code we sent you" by e-mail or SMS.

A code is short, so it is guessable: what makes it safe are the limits. Each subject (a user
id, a phone number) has at most one live code per purpose; every verification counts as an
attempt *before* the code is looked up, so parallel guesses are counted too; a code is
accepted only by one of the ``max_attempts`` attempts counted after it was issued (however
issues and guesses interleave: a resend never gives the previous code fresh tries); and at
most ``max_codes`` codes are issued per subject within any ``window_seconds`` (a rolling
window: a code counts for ``window_seconds`` after it was issued). A guesser thus gets at
most ``max_attempts`` tries at a code (5 in 10**6 for 6 digits) and
``max_codes * max_attempts`` per window. Codes live in the same stores as tokens, under a
keyed digest of the purpose, the subject and the code.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from typing import Any, ClassVar

from keel.conf import keel_settings
from keel.tokens.base import NewToken, TokenStore
from keel.tokens.exceptions import TokenError
from keel.tokens.keys import keyed_digest, project_secrets
from keel.tokens.manager import CREATE_ATTEMPTS, JsonActionTokenManager

__all__ = ["OneTimeCodeManager", "TooManyCodes"]

CODE_SALT = "keel.tokens.code"
COUNTER_SALT = "keel.tokens.counter"


def _with_bases(bases: list[tuple[str, int]], document: str) -> str:
    """The stored form of a code: its counters' bases on one line, then the payload's JSON."""
    return ",".join(f"{key}:{base}" for key, base in bases) + "\n" + document


def _bases(header: str) -> dict[str, int]:
    bases: dict[str, int] = {}
    for item in header.split(","):
        key, _, base = item.partition(":")
        if not base.isdigit():
            return {}  # not a code's header: no try at it is accepted
        bases[key] = int(base)
    return bases


class TooManyCodes(TokenError):
    """A subject was issued ``max_codes`` codes within the last ``window_seconds``: none was
    issued."""


class OneTimeCodeManager:
    """Issue and verify one-time numeric codes of one purpose, with per-subject limits.

    ``purpose`` (or its seed name ``prefix``; giving both is a ``TypeError``, as is giving
    neither) names what the codes are for; ``store`` and ``using`` are as for
    [`JsonActionTokenManager`][keel.tokens.JsonActionTokenManager] (by default the store
    ``KEEL['TOKEN_STORE']`` picks). Class attributes set the limits.
    """

    #: Digits per code: 6 gives one chance in a million per guess.
    digits: ClassVar[int] = 6
    #: Verifications allowed per code (right or wrong): any later one is refused.
    max_attempts: ClassVar[int] = 5
    #: Codes issued per subject within any ``window_seconds``.
    max_codes: ClassVar[int] = 3
    #: The rolling window of ``max_codes``, in seconds: a code counts for this long after it
    #: was issued.
    window_seconds: ClassVar[float] = 3600
    #: Lifetime of a code issued without a TTL, in seconds.
    default_ttl_seconds: ClassVar[float] = 600

    def __init__(
        self,
        purpose: str | None = None,
        *,
        prefix: str | None = None,
        store: TokenStore | None = None,
        using: str | None = None,
    ) -> None:
        if purpose is None and prefix is None:
            raise TypeError(f"{type(self).__name__} needs a purpose, such as 'phone:verify'.")
        if not 4 <= self.digits <= 12:
            raise ValueError(f"{type(self).__name__}.digits must be 4 to 12, got {self.digits}.")
        for name in ("max_attempts", "max_codes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{type(self).__name__}.{name} must be at least 1.")
        if not 0 < self.window_seconds < math.inf:
            raise ValueError(
                f"{type(self).__name__}.window_seconds must be a positive number of seconds, "
                f"got {self.window_seconds!r}."
            )
        self.tokens = JsonActionTokenManager(purpose, prefix=prefix, store=store, using=using)
        #: What the codes are for; they are valid for this purpose only.
        self.purpose: str = self.tokens.purpose

    @property
    def prefix(self) -> str:
        """The seed name of ``purpose``: what the codes are for."""
        return self.purpose

    def __repr__(self) -> str:
        return f"{type(self).__name__}(purpose={self.purpose!r})"

    def get_store(self) -> TokenStore:
        """The store of the next operation."""
        return self.tokens.get_store()

    def make_code(self) -> str:
        """A new random code of ``digits`` digits (leading zeros kept); stores nothing."""
        return str(secrets.randbelow(10**self.digits)).zfill(self.digits)

    def is_well_formed(self, code: str) -> bool:
        """Whether ``code`` could have been made by
        [`make_code`][keel.tokens.codes.OneTimeCodeManager.make_code] (no I/O)."""
        if not isinstance(code, str):
            raise TypeError(f"A code is a str, got {type(code).__name__}.")
        return len(code) == self.digits and code.isascii() and code.isdigit()

    def _subjects(self, subject: str | int) -> list[str]:
        return [self.tokens.subject_digest(subject, key) for key in project_secrets()]

    def code_digest(self, subject_digest: str, code: str, secret: str | bytes | None = None) -> str:
        """The key under which ``code`` of the subject with this digest is stored."""
        return keyed_digest(CODE_SALT, f"{self.purpose}\0{subject_digest}\0{code}", secret)

    def _counters(self, kind: str, subjects: list[str]) -> list[str]:
        # One counter per key of project_secrets(), each keyed with its own secret: after a
        # rotation the counts made under the old key still count (a try must be within a
        # code's attempts on each counter its issuer and verifier share), instead of starting
        # afresh under the new key.
        return [
            keyed_digest(COUNTER_SALT, f"{self.purpose}\0{kind}\0{digest}", secret)
            for digest, secret in zip(subjects, project_secrets(), strict=True)
        ]

    def _windows(self, subjects: list[str]) -> list[str]:
        # The windows of codes issued, the current key's last: the windows kept under the keys
        # of SECRET_KEY_FALLBACKS still count after a rotation, and an issue one of them
        # refuses is never recorded under the current key.
        return self._counters("issued", subjects)[::-1]

    def _issue(
        self, subject: str | int, payload: Mapping[str, Any] | None, ttl_seconds: float | None
    ) -> tuple[list[str], float, str]:
        ttl = self.tokens.resolve_ttl(
            self.default_ttl_seconds if ttl_seconds is None else ttl_seconds
        )
        return self._subjects(subject), ttl, self.tokens.encode_payload(payload or {})

    @staticmethod
    def _attempts_ttl() -> float:
        # Longer than any code lives: a code's attempts are never forgotten while it lives.
        return float(keel_settings.TOKEN_MAX_TTL)

    def _too_many(self) -> TooManyCodes:
        return TooManyCodes(
            f"{self.max_codes} {self.purpose!r} codes were already issued to this subject within "
            f"the last {self.window_seconds:g} s; try again later."
        )

    def _verification(
        self, subject: str | int, code: str
    ) -> tuple[TokenStore, list[str], list[str]]:
        """The store of a verification, the subject's attempt counters, and the digests
        ``code`` may be stored under (the current key's first)."""
        subjects = self._subjects(subject)
        digests = [
            self.code_digest(digest, code, secret)
            for digest, secret in zip(subjects, project_secrets(), strict=True)
        ]
        return self.get_store(), self._counters("attempts", subjects), digests

    def _payload(self, value: str, made: dict[str, int]) -> dict[str, Any] | None:
        """The payload of a code just popped, if this verification is one of its first
        ``max_attempts`` tries.

        A code records, when it is issued, how many attempts its subject's counters held; a
        try at it is the attempt that took a counter past that base. The code's tries are thus
        the attempts numbered ``base + 1`` to ``base + max_attempts`` on every counter both the
        issuer and this verifier keep: no interleaving of issues and guesses gives a code more
        (a guess counted before the code was issued, or after its last try, is refused even
        when it is right). The code is spent either way.
        """
        header, _, document = value.partition("\n")
        bases = _bases(header)
        common = [key for key in made if key in bases]
        if not common or not all(0 < made[key] - bases[key] <= self.max_attempts for key in common):
            return None
        return self.tokens.decode_payload(document)

    def _entry(self, subjects: list[str], code: str, value: str, ttl: float) -> NewToken:
        digest = self.code_digest(subjects[0], code)
        return NewToken(self.purpose, digest, value, ttl, subjects[0], tuple(subjects[1:]))

    def issue_code(
        self,
        subject: str | int,
        payload: Mapping[str, Any] | None = None,
        *,
        ttl_seconds: float | None = None,
    ) -> str:
        """Store a new code for ``subject`` and return it; the subject's previous code dies.

        ``payload`` (a JSON object, as for tokens) comes back from
        [`verify_code`][keel.tokens.codes.OneTimeCodeManager.verify_code]. Raises
        [`TooManyCodes`][keel.tokens.codes.TooManyCodes] past ``max_codes`` per window,
        ``ValueError``/ [`InvalidPayload`][keel.tokens.InvalidPayload] before any I/O, and
        [`TokenStoreUnavailable`][keel.tokens.TokenStoreUnavailable] if the store did not answer.
        """
        subjects, ttl, value = self._issue(subject, payload, ttl_seconds)
        store = self.get_store()
        for key in self._windows(subjects):
            if not store.admit(self.purpose, key, self.max_codes, self.window_seconds):
                raise self._too_many()
        attempts = self._counters("attempts", subjects)
        # Read before the put: an attempt counted later may be a try at this code.
        value = _with_bases([(key, store.count(self.purpose, key)) for key in attempts], value)
        for _ in range(CREATE_ATTEMPTS):
            code = self.make_code()
            if store.put(self._entry(subjects, code, value, ttl)):
                return code
        raise TokenError(f"The {store.name} token store refused {CREATE_ATTEMPTS} new codes.")

    def verify_code(self, subject: str | int, code: str) -> dict[str, Any] | None:
        """The payload of the subject's live code if ``code`` is it (the code is used up).

        ``None`` for a wrong, malformed, expired or used code, and for any verification
        after the first ``max_attempts`` counted since the code was issued (the right code
        then spends it without being accepted). A malformed
        code costs no attempt and no I/O.
        """
        if not self.is_well_formed(code):
            return None
        store, attempts, digests = self._verification(subject, code)
        ttl = self._attempts_ttl()
        made = [store.count_attempt(self.purpose, key, ttl) for key in attempts]
        for digest in digests:
            value = store.pop(self.purpose, digest)
            if value is not None:
                return self._payload(value, dict(zip(attempts, made, strict=True)))
        return None

    async def aissue_code(
        self,
        subject: str | int,
        payload: Mapping[str, Any] | None = None,
        *,
        ttl_seconds: float | None = None,
    ) -> str:
        """Async [`issue_code`][keel.tokens.codes.OneTimeCodeManager.issue_code]."""
        subjects, ttl, value = self._issue(subject, payload, ttl_seconds)
        store = self.get_store()
        for key in self._windows(subjects):
            if not await store.aadmit(self.purpose, key, self.max_codes, self.window_seconds):
                raise self._too_many()
        attempts = self._counters("attempts", subjects)
        bases = [(key, await store.acount(self.purpose, key)) for key in attempts]
        value = _with_bases(bases, value)
        for _ in range(CREATE_ATTEMPTS):
            code = self.make_code()
            if await store.aput(self._entry(subjects, code, value, ttl)):
                return code
        raise TokenError(f"The {store.name} token store refused {CREATE_ATTEMPTS} new codes.")

    async def averify_code(self, subject: str | int, code: str) -> dict[str, Any] | None:
        """Async [`verify_code`][keel.tokens.codes.OneTimeCodeManager.verify_code]."""
        if not self.is_well_formed(code):
            return None
        store, attempts, digests = self._verification(subject, code)
        ttl = self._attempts_ttl()
        made = [await store.acount_attempt(self.purpose, key, ttl) for key in attempts]
        for digest in digests:
            value = await store.apop(self.purpose, digest)
            if value is not None:
                return self._payload(value, dict(zip(attempts, made, strict=True)))
        return None
