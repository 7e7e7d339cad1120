"""``TokenVerifier``: bearer JWTs an identity provider signs, checked with PyJWT (the ``jwt``
extra), never by hand.

* **Keys.** An HS256 secret, an RS256 or ES256 public key (PEM; the algorithm follows the key's
  type), or a JWKS whose keys are chosen by the token's ``kid``: a file, or a URL fetched and
  kept fresh by ``RemoteJwks`` (``jwks.py``: rotation, timeouts, 503 while no key was ever had). The algorithms a token
  may name are those of the configured keys only, so ``alg: none`` and an HS256 token signed
  with a public key (the algorithm-confusion attack) are both refused.
* **Claims.** ``exp``, ``iss`` and ``aud`` are required and checked (with a small leeway), as
  are ``nbf`` and ``iat`` when present. The scopes come from a configured claim (default
  ``scope``: space-separated, or a list); names that are not learnloop scopes are ignored
  (``openid profile``). The models may come from another claim; without it, every model.
* **Refusals.** Each is an ``InvalidTokenError`` with its own stable code (401 at the edge):
  the message says what was wrong, never the token.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from learnloop.access.jwks import RemoteJwks
from learnloop.access.principal import Principal
from learnloop.config import JwtSettings
from learnloop.domain import Scope
from learnloop.errors import LearnloopError, MissingExtraError

ASYMMETRIC = ("RS256", "ES256")
MAX_SUBJECT_CHARS = 64
MAX_CACHED_TOKENS = 10_000
SCOPE_NAMES = frozenset(s.value for s in Scope)


class InvalidTokenError(LearnloopError):
    """A bearer JWT that is refused; ``code`` says why (``token_expired``, ...)."""

    code = "invalid_token"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def looks_like_jwt(credential: str) -> bool:
    """A compact JWS (three dot-separated parts); learnloop keys hold no dot."""
    return credential.count(".") == 2


def _jwt() -> Any:
    try:
        import jwt
    except ImportError:  # pragma: no cover - the test extra installs it
        raise MissingExtraError("JWT bearer tokens need PyJWT: pip install 'learnloop[jwt]'", extra="jwt") from None
    return jwt


class TokenVerifier:
    def __init__(self, settings: JwtSettings) -> None:
        self.settings = settings
        jwt = self._jwt = _jwt()
        self._keys: dict[str | None, tuple[str, Any]] = {}  # kid (None: any) -> (algorithm, key)
        self._remote: RemoteJwks | None = None
        if settings.secret is not None:
            self._keys[None] = ("HS256", settings.secret)
        elif settings.public_key is not None:
            self._keys[None] = _pem_key(jwt, settings.public_key)
        elif settings.jwks_url is not None:
            self._remote = RemoteJwks(
                jwt,
                settings.jwks_url,
                _set_keys,
                cache_seconds=settings.jwks_cache_seconds,
                refetch_seconds=settings.jwks_refetch_seconds,
                timeout_seconds=settings.jwks_timeout_seconds,
            )
        else:
            self._keys = _jwks_keys(jwt, settings.jwks or "")
        algorithms = {alg for alg, _ in self._keys.values()} if self._remote is None else set(ASYMMETRIC)
        self.algorithms = sorted(algorithms)
        self._refusals = _refusals(jwt)
        self._verified: dict[bytes, tuple[float, Principal]] = {}  # sha256(token) -> (exp, principal)

    async def principal(self, token: str) -> Principal:
        """Who this token stands for, or ``InvalidTokenError``. A token verified once is
        remembered (by its SHA-256) until its ``exp``: a client sends the same one for its life."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        cached = self._verified.get(digest)
        if cached is not None:
            if time.time() < cached[0] + self.settings.leeway_seconds:
                return cached[1]
            self._verified.pop(digest, None)
        principal, expires = await self._verify(token)
        if len(self._verified) >= MAX_CACHED_TOKENS:
            self._verified.clear()
        self._verified[digest] = (expires, principal)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            algorithm, key = await self._key_for(token)
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except self._jwt.PyJWTError as exc:
            for kind, (code, message) in self._refusals:
                if isinstance(exc, kind):
                    raise InvalidTokenError(code, message) from None
            raise InvalidTokenError("token_malformed", "the bearer token is not a valid JWT") from None
        return self._principal_of(claims), float(claims["exp"])

    async def _key_for(self, token: str) -> tuple[str, Any]:
        header = self._jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            accepted = ", ".join(self.algorithms)
            raise InvalidTokenError(
                "token_algorithm_refused",
                f"the token's algorithm {str(algorithm)[:16]!r} is not accepted here (only {accepted})",
            )
        if None in self._keys:
            return self._keys[None]
        kid = header.get("kid")
        kid = kid if isinstance(kid, str) else None
        if self._remote is not None:
            found = await self._remote.key(kid)
        else:
            found = self._keys.get(kid) if kid is not None else None
        if found is None or found[0] != algorithm:
            raise InvalidTokenError("token_unknown_key", "the token names no key of the configured JWKS (kid)")
        return found

    def _principal_of(self, claims: dict[str, Any]) -> Principal:
        scopes = frozenset(Scope(s) for s in _names(claims.get(self.settings.scope_claim)) if s in SCOPE_NAMES)
        if not scopes:
            raise InvalidTokenError(
                "token_no_scope", f"the token's {self.settings.scope_claim!r} claim names no learnloop scope"
            )
        models: tuple[str, ...] = ()
        if self.settings.models_claim is not None:
            models = tuple(sorted(set(_names(claims.get(self.settings.models_claim)))))
        subject = "".join(c for c in str(claims.get("sub", "")) if c.isprintable())[:MAX_SUBJECT_CHARS]
        return Principal(f"jwt:{subject or '?'}", scopes, models)


def _names(value: object) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _pem_key(jwt: Any, pem: str) -> tuple[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        raise LearnloopError("JWT: the public key file is not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256", key
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1":
        return "ES256", key
    raise LearnloopError("JWT: the public key is neither RSA (RS256) nor EC P-256 (ES256)")


def _jwks_keys(jwt: Any, text: str) -> dict[str | None, tuple[str, Any]]:
    try:
        found = jwt.PyJWKSet.from_json(text)
    except (jwt.PyJWTError, json.JSONDecodeError, KeyError, TypeError):
        raise LearnloopError("JWT: the JWKS file is not a JSON Web Key Set") from None
    return _set_keys(found)


def _set_keys(jwk_set: Any) -> dict[str | None, tuple[str, Any]]:
    """The RS256 and ES256 keys of a ``PyJWKSet`` by kid (None: the one key, which has none)."""
    keys: dict[str | None, tuple[str, Any]] = {}
    for jwk in jwk_set.keys:
        if jwk.algorithm_name in ASYMMETRIC:
            keys[jwk.key_id] = (jwk.algorithm_name, jwk.key)
    if not keys:
        raise LearnloopError("JWT: the JWKS holds no RS256 or ES256 key")
    if len(keys) > 1 and None in keys:
        raise LearnloopError("JWT: a JWKS of several keys must give each a kid")
    return keys


def _refusals(jwt: Any) -> list[tuple[type[Exception], tuple[str, str]]]:
    """PyJWT's exceptions, most specific first, with the code and message each becomes."""
    return [
        (jwt.ExpiredSignatureError, ("token_expired", "the bearer token has expired")),
        (jwt.ImmatureSignatureError, ("token_not_yet_valid", "the bearer token is not valid yet (nbf or iat)")),
        (jwt.InvalidAudienceError, ("token_wrong_audience", "the bearer token is for another audience")),
        (jwt.InvalidIssuerError, ("token_wrong_issuer", "the bearer token comes from another issuer")),
        (jwt.MissingRequiredClaimError, ("token_missing_claim", "the bearer token lacks exp, iss or aud")),
        (jwt.InvalidAlgorithmError, ("token_algorithm_refused", "the token's algorithm is not accepted")),
        (jwt.InvalidSignatureError, ("token_bad_signature", "the bearer token's signature does not verify")),
    ]
