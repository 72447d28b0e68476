"""Registry authentication: basic, and the bearer-token challenge flow.

A registry answers 401 with ``WWW-Authenticate: Bearer realm="...",service="...",scope="..."``;
we fetch a token from the realm (with basic credentials when we have them) and retry.
``Basic`` challenges are answered with the stored credentials. Tokens are cached per scope
for the life of the object (one pull or push). Not an ``httpx.Auth``: that would have to read
every response body, blobs included, to fetch a token in the middle of a flow.
"""

from __future__ import annotations

import base64
import re

import httpx

from corral.errors import RegistryAuthError
from corral.registry.credentials import Credential

__all__ = ["RegistryAuth", "parse_challenge"]

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="r",service="s"`` -> ``("bearer", {"realm": "r", "service": "s"})``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM.finditer(rest)}
    return scheme.lower(), params


class RegistryAuth:
    def __init__(self, host: str, credential: Credential | None) -> None:
        self.host = host
        self.credential = credential
        self._tokens: dict[str, str] = {}  # scope -> token
        self._header: str | None = None  # what the next request carries

    def _basic(self) -> str:
        assert self.credential is not None
        pair = f"{self.credential.username}:{self.credential.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def apply(self, request: httpx.Request) -> None:
        if self._header is not None:
            request.headers["Authorization"] = self._header

    async def answer(self, client: httpx.AsyncClient, response: httpx.Response) -> bool:
        """After a 401: prepare credentials for a retry; False when we have nothing new."""
        scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
        # Judge by what the refused request carried: parallel parts see 401s at once.
        sent = response.request.headers.get("Authorization")
        if scheme == "basic":
            if self.credential is None:
                raise RegistryAuthError(f"{self.host} needs a login: run corral login {self.host}")
            if sent == self._basic():
                raise RegistryAuthError(f"{self.host} rejected the login for this host")
            self._header = self._basic()
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        scope = params.get("scope", "")
        token = self._tokens.get(scope)
        if token is not None and sent == f"Bearer {token}":
            raise RegistryAuthError(f"{self.host} refused access to {scope or 'the registry'}")
        if token is None:
            token = await self._fetch_token(client, params)
            self._tokens[scope] = token
        self._header = f"Bearer {token}"
        return True

    async def _fetch_token(self, client: httpx.AsyncClient, params: dict[str, str]) -> str:
        query = {k: params[k] for k in ("service", "scope") if params.get(k)}
        headers = {"Authorization": self._basic()} if self.credential else {}
        try:
            response = await client.get(params["realm"], params=query, headers=headers)
        except httpx.HTTPError as exc:
            raise RegistryAuthError(f"token request to {params['realm']} failed: {exc}") from exc
        if response.status_code >= 400:
            hint = (
                f" (check corral login {self.host})" if response.status_code in (401, 403) else ""
            )
            raise RegistryAuthError(
                f"token request to {params['realm']} failed: {response.status_code}{hint}"
            )
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryAuthError(f"token response from {params['realm']} has no token")
        return token
