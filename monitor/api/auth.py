"""Bearer-token guard for everything but /health and the static status page."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from pathlib import Path

from fastapi import HTTPException, Request
from pydantic import SecretStr

from monitor.config.model import ApiConfig

log = logging.getLogger(__name__)


def api_token(cfg: ApiConfig, data_dir: Path) -> SecretStr:
    """The token from the config secret, VIGIL_API_TOKEN, or a generated file in data_dir."""
    if cfg.token is not None:
        return cfg.token.resolve()
    env = os.environ.get("VIGIL_API_TOKEN")
    if env:
        return SecretStr(env)
    path = data_dir / "api-token"
    if path.exists():
        return SecretStr(path.read_text(encoding="utf-8").strip())
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    log.warning("no API token configured: generated one in %s (readable by this user only)", path)
    return SecretStr(token)


class TokenGuard:
    def __init__(self, token: SecretStr):
        self._expected = token.get_secret_value().encode()

    def __call__(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 self._expected):
            raise HTTPException(401, "a valid bearer token is required",
                                headers={"WWW-Authenticate": "Bearer"})
