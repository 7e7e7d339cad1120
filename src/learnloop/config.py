"""Settings: read once by the edges (CLI, app factory) and passed down; never global."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

DEFAULT_HOME = Path(".learnloop")


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a server healthy under bad or heavy input."""

    max_text_chars: int = 10_000
    max_batch_items: int = 1_000
    max_metadata_bytes: int = 4_096
    prediction_queue_max: int = 50_000
    prediction_flush_rows: int = 1024
    prediction_flush_seconds: float = 0.1
    feedback_queue_max: int = 20_000
    # A new model: at most this many distinct labels (a label column with more is more likely
    # an id or a free-text column than a label set), and an upload of at most this many bytes.
    max_labels: int = 1_000
    max_upload_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    home: Path = DEFAULT_HOME
    database_url: str | None = None
    api_key: str | None = None
    limits: Limits = field(default_factory=Limits)
    # Seconds between checks of the routing table (champion changes made by other processes).
    routing_poll_seconds: float = 1.0
    # Seconds between retrain-trigger checks in the worker.
    trigger_poll_seconds: float = 2.0
    # Run training in a child process so a fit never stalls serving.
    isolate_training: bool = True
    # Jobs running at once across every worker sharing the database (each fit takes a core).
    max_running_jobs: int = 2
    # Seconds between online-accuracy checks (alarms, Prometheus gauges) in the worker.
    performance_poll_seconds: float = 10.0

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'learnloop.db').resolve()}"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    def home_exists(self) -> bool:
        """Whether a learnloop home is here: the home directory, and the SQLite database file when
        the database is SQLite (the home's own or one named by URL). Read commands check this
        before opening anything, so a mistyped ``--home`` never creates one."""
        if not self.home.is_dir():
            return False
        url = self.resolved_database_url
        if url.startswith("sqlite:///"):
            return Path(url.removeprefix("sqlite:///")).is_file()
        return True

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        env = dict(os.environ if environ is None else environ)
        base = cls(
            home=Path(env.get("LEARNLOOP_HOME", str(DEFAULT_HOME))),
            database_url=env.get("LEARNLOOP_DATABASE_URL") or None,
            api_key=env.get("LEARNLOOP_API_KEY") or None,
        )
        return base.with_overrides(**overrides)
