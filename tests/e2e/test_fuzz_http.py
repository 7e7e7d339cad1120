"""Schemathesis against the whole OpenAPI document, over real HTTP, with the admin key and
without one: no 5xx, every answer documented and conforming to its schema, every refusal
problem+json (``tests/fuzz_hooks.py``), 405s carry ``Allow``, schema-valid requests accepted.

A bounded number of examples per operation (``EXAMPLES``), one worker and Hypothesis derandomized
(schemathesis' deterministic mode): the same requests in the same order each run, so a failure
reproduces (the output names each case and its curl line) and the run cannot flake.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from conftest import (
    LiveServer,
    ServerLauncher,
    create_model,
    fresh_postgres_database,
    make_settings,
    subprocess_env,
)
from learnloop.services import build_services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

API_KEY = "fuzz-admin-key-0123456789abcdef"
EXAMPLES = 5  # per operation and pass, beside the coverage phase's own cases (most of the ~2,500)
TESTS = Path(__file__).resolve().parents[1]
Servers = Callable[[str], LiveServer]

# Schema-valid requests a server must still refuse (422), by a rule no JSON Schema can state:
# one that depends on the model named (a classifier asked to generate, feedback of a kind its
# task does not take, a training-data format of the other task, the ask queue, fairness,
# explanations or term weights of a generative model), on the data (too few rows to
# train on), on two fields together (baseline + delta within (0, 1)) or on a policy's own
# rules (ranges, choices, fields that depend on each other). Every other operation
# must accept what its schema allows (2xx, or 401/403/404/409/429).
CONFIG = """
[generation]
deterministic = true

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "429"]

[[operations]]
include-path-regex = "^/v1/models/\\\\{model\\\\}/(predict|generate|generations|feedback)|^/openai/v1/chat|^/v1/models$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]

[[operations]]
include-path-regex = "/(training-data|policy|ask|fairness|explain|weights|weights/changes)$|^/v1/stats/sample-size$"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
"""


@pytest.fixture(scope="module")
def servers(module_server_launcher: ServerLauncher, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """One server per database, started when a test first asks for it; PostgreSQL's database
    is dropped at the end."""
    started: dict[str, LiveServer] = {}
    with ExitStack() as stack:

        def get(database: str) -> LiveServer:
            if database not in started:
                root = tmp_path_factory.mktemp(f"fuzz-{database}")
                url = f"sqlite:///{root}/ll.db"
                if database == "postgres":
                    url = stack.enter_context(fresh_postgres_database())
                services = build_services(make_settings(root / "home", url))
                try:
                    create_model(services, "m")  # a real trained classifier: predict and feedback work
                finally:
                    services.close()
                started[database] = module_server_launcher.start(root / "home", url, "--api-key", API_KEY)
            return started[database]

        yield get
        module_server_launcher.stop_all()  # before the database is dropped


def fuzz(server: LiveServer, workdir: Path, *, key: str | None) -> subprocess.CompletedProcess[str]:
    config = workdir / "schemathesis.toml"
    config.write_text(CONFIG)
    env = subprocess_env(SCHEMATHESIS_HOOKS="fuzz_hooks", PYTHONPATH=str(TESTS))
    env.pop("LEARNLOOP_FUZZ_KEY", None)
    if key is not None:
        env["LEARNLOOP_FUZZ_KEY"] = key
    args = [
        str(Path(sys.executable).with_name("st")),
        "--config-file",
        str(config),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        # Scoped keys have their own table-driven test (test_route_scopes.py); these two need
        # a second identity and the stateful phase.
        "--exclude-checks",
        "ignored_auth,object_level_authorization",
        "--phases",
        # Without a key every request is refused (401) before its body is validated: a few
        # fuzzed cases reach every operation (test_route_scopes.py calls each route keyless
        # too); the coverage phase's thousands of edge-case bodies add nothing there but minutes.
        "examples,coverage,fuzzing" if key is not None else "examples,fuzzing",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "30",
        "--warnings",
        "off",
    ]
    return subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.mark.parametrize(
    ("database", "who"),
    [
        ("sqlite", "admin"),
        ("sqlite", "anonymous"),  # refused before any database is reached: one is enough
        pytest.param("postgres", "admin", marks=pytest.mark.postgres),  # stricter types (int4, no NUL)
    ],
)
def test_schemathesis_finds_nothing_with_the_admin_key_and_without(
    servers: Servers, tmp_path: Path, database: str, who: str
) -> None:
    server = servers(database)
    result = fuzz(server, tmp_path, key=API_KEY if who == "admin" else None)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20_000:]
    selected, tested = re.search(r"Selected: (\d+)/\d+", output), re.search(r"Tested: (\d+)", output)
    assert selected and tested and tested[1] == selected[1], output[-4000:]  # every operation was called
    assert server.process.poll() is None, server.log_tail()
    assert "Traceback" not in server.log_tail(200_000), server.log_tail()
