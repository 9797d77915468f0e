"""The API token: from the config secret, VIGIL_API_TOKEN, or a file generated in data_dir."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from monitor.config.model import MIN_TOKEN_LENGTH as MIN_LENGTH
from monitor.config.model import ApiConfig

log = logging.getLogger(__name__)


class TokenError(Exception):
    """The configured token cannot protect the API (empty or too short)."""


def _checked(token: str, where: str) -> SecretStr:
    token = token.strip()
    if len(token) < MIN_LENGTH:
        what = "empty" if not token else f"only {len(token)} characters"
        raise TokenError(f"the API token from {where} is {what}; it needs at least "
                         f"{MIN_LENGTH} (refusing to start with an unprotected API)")
    return SecretStr(token)


def token_file(data_dir: Path) -> Path:
    return data_dir / "api-token"


def api_token(cfg: ApiConfig, data_dir: Path) -> SecretStr:
    """The token from the config secret, VIGIL_API_TOKEN, or a generated file in data_dir."""
    if cfg.token is not None:
        return _checked(cfg.token.resolve().get_secret_value(), "api.token")
    env = os.environ.get("VIGIL_API_TOKEN")
    if env is not None:
        return _checked(env, "VIGIL_API_TOKEN")
    path = token_file(data_dir)
    if path.exists():
        return _checked(path.read_text(encoding="utf-8"), str(path))
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    log.warning("no API token configured: generated one in %s (readable by this user only)", path)
    return SecretStr(token)
