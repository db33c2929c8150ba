"""Small typed helpers that read settings from environment variables.

Each helper names the variable in its error, so a typo in a deployment fails loudly at start-up.
"""

import os
from urllib.parse import parse_qs, unquote, urlparse


class ConfigError(ValueError):
    pass


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: float, *, low: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= low:   # also refuses nan
        raise ConfigError(f"{name} must be at least {low:g}, got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_url(url: str, base_dir: str) -> dict:
    """Turns DATABASE_URL into a Django DATABASES entry.

    Supported: ``sqlite:///relative/path.sqlite3``, ``sqlite:////absolute/path.sqlite3`` and
    ``postgres://user:password@host:port/name`` (also ``postgresql://``; ``?sslmode=...`` passes
    through as an option).
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if path.startswith("//"):
            path = path[1:]  # sqlite:////abs/path -> /abs/path
        elif path.startswith("/"):
            path = os.path.join(base_dir, path[1:])
        if not path or path == "/":
            raise ConfigError("DATABASE_URL sqlite:/// needs a file path")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # A file (not :memory:) so Celery workers in other processes see test data.
            "TEST": {"NAME": path + ".test"},
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                # WAL lets the web process read while a worker writes.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if parsed.scheme in {"postgres", "postgresql"}:
        name = unquote(parsed.path.lstrip("/"))
        if not name:
            raise ConfigError("DATABASE_URL for PostgreSQL needs a database name")
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "OPTIONS": options,
            # 0: a connection per request. Under ASGI each request's sync code runs in a thread of
            # its own, so a kept connection is never reused, only left open (Django's docs: "When
            # using ASGI, persistent connections should be disabled"); a busy web tier would pile
            # them up to the server's max_connections.
            "CONN_MAX_AGE": 0,
        }
    raise ConfigError(f"DATABASE_URL scheme {parsed.scheme!r} is not supported (sqlite or postgres)")
