"""What the PostgreSQL benchmarks share: their own database, Django set up on it, a free port.

The benchmarks run as scripts (``python benchmarks/<name>.py``), so this folder is on the path.
"""

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent


def setup_django_on_postgres(database_url: str, *, benchmark: str) -> None:
    """Point this process at ``database_url`` (created if missing), set Django up and migrate.

    Settings come from the environment as in production; set any extra variables (broker,
    queue) before calling.
    """
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.exit(f"The {benchmark} benchmark runs on PostgreSQL only (--database-url postgres://...).")
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-insecure-key")
    os.environ["DJANGO_SETTINGS_MODULE"] = "crowdfund_site.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # Clients speak plain http to gunicorn, as to a web process behind a TLS-terminating proxy.
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    sys.path.insert(0, str(BASE_DIR))
    create_database(database_url)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def create_database(url: str) -> None:
    """Create the database ``url`` names, unless it exists."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
