"""What the PostgreSQL benchmarks share: their own database, Django set up on it, a free port.

The benchmarks run as scripts (``python benchmarks/<name>.py``), so this folder is on the path.
"""

import contextlib
import os
import re
import socket
import sys
import time
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


# Where this machine's PostgreSQL writes its log (log_line_prefix names the user@database).
SERVER_LOG = "/var/log/postgresql/postgresql-15-main.log"


@contextlib.contextmanager
def statements_logged(database_url: str):
    """Log every statement sent to ``database_url``'s database by connections opened inside the block.

    Yields a function ``count(send)`` that calls ``send()`` and returns how many statements the
    server logged for this database meanwhile (BEGIN and COMMIT included, as the server sees
    them), or None if the log cannot be read. Only connections opened after the block starts
    are logged (``log_statement`` is read at connection start): start the server inside it.
    """
    import psycopg

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    marker = re.compile(rf"@{re.escape(name)} LOG:  (statement|execute [^:]*): ")

    def count(send) -> int | None:
        try:
            start = os.path.getsize(SERVER_LOG)
        except OSError:
            send()
            return None
        send()
        time.sleep(0.5)  # the server writes its log asynchronously to us
        with open(SERVER_LOG, "rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
        return sum(1 for line in text.splitlines() if marker.search(line))

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'")
    try:
        yield count
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" RESET log_statement')


def start_gunicorn(
    *, port: int, log, env: dict, workers: int, threads: int, ready_path: str = "/healthz/reference/row"
):
    """Start gunicorn as in production (gthread workers, keep-alive) and wait until it answers."""
    import http.client
    import subprocess

    command = [str(Path(sys.executable).with_name("gunicorn")), "crowdfund_site.wsgi", "-b", f"127.0.0.1:{port}"]
    command += ["-w", str(workers), "-k", "gthread", "--threads", str(threads), "--keep-alive", "30"]
    command += ["--log-level", "error", "--backlog", "2048"]
    server = subprocess.Popen(command, cwd=BASE_DIR, env={**os.environ, **env}, stdout=log, stderr=log)
    give_up_at = time.monotonic() + 60
    while time.monotonic() < give_up_at:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", ready_path)
            if conn.getresponse().status == 200:
                conn.close()
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("gunicorn did not start")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


def reference_lines(*, port: int, clients: int, seconds: float) -> dict[str, tuple[float, float, int]]:
    """Measure the reference pages through a running server: {name: (req/s, p95 ms, errors)}.

    The cheapest Django page reading one row, and a page served from the page cache's copy
    (crowdfund_site/health.py), each from ``clients`` keep-alive threads for ``seconds``.
    """
    import http.client
    import threading

    found = {}
    for name, path in (("one-row view", "/healthz/reference/row"), ("page-cache copy", "/healthz/reference/copy")):
        latencies: list[list[float]] = [[] for _ in range(clients)]
        errors = [0] * clients
        stop = threading.Event()

        def client(n: int, path=path, latencies=latencies, errors=errors, stop=stop) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    ok = False
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                if ok:
                    latencies[n].append(time.perf_counter() - started)
                else:
                    errors[n] += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        started = time.monotonic()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        merged = [x for per in latencies for x in per]
        found[name] = (len(merged) / elapsed, percentile(merged, 0.95) * 1000, sum(errors))
    return found
