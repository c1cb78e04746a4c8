"""docker-compose.yml, the Dockerfile and the docs, read as an engine and a reader do.

There is no container engine on these machines (`make deploy-smoke` runs the same
processes from the wheel instead); these tests hold the files to what compose and
the image must do.
"""

import re
from pathlib import Path

import pytest
import yaml
from django.core.exceptions import ImproperlyConfigured

from config.secret_policy import refuse_development_secrets

PROJECT = Path(__file__).resolve().parents[2]
DJANGO_PROCESSES = ["web", "worker", "beat"]


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((PROJECT / "docker-compose.yml").read_text())["services"]


def test_web_worker_and_beat_start_only_once_migrate_has_finished(services):
    # given the compose file
    # when compose orders the services
    migrate = services["migrate"]

    # then migrate runs once (after emptying the last deploy's metrics files), and
    # each process waits for it to succeed
    shell, flag, script = migrate["command"]
    assert (shell, flag) == ("sh", "-c")
    assert script.endswith("&& exec django-admin migrate --noinput")
    assert 'rm -f "$$PROMETHEUS_MULTIPROC_DIR"/*.db' in script
    assert migrate["restart"] == "no"
    for name in DJANGO_PROCESSES:
        waits_for = services[name]["depends_on"]
        assert waits_for["migrate"] == {
            "condition": "service_completed_successfully"
        }, name
        assert waits_for["postgres"] == {"condition": "service_healthy"}, name


def test_every_django_process_runs_the_one_image_restarts_and_has_a_healthcheck(
    services,
):
    for name in [*DJANGO_PROCESSES, "migrate"]:
        assert services[name]["image"] == "campaign-crm", name
        environment = services[name]["environment"]
        assert environment["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    for name in DJANGO_PROCESSES:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name


def test_web_serves_with_gunicorn_and_is_healthy_when_live_answers(services):
    web = services["web"]

    assert web["command"][:2] == ["gunicorn", "config.wsgi:application"]
    assert "http://localhost:8000/health/live" in " ".join(web["healthcheck"]["test"])


def test_a_worker_is_healthy_when_its_own_node_answers_a_ping(services):
    worker = services["worker"]

    assert "--hostname=worker@%h" in worker["command"]
    check = " ".join(worker["healthcheck"]["test"])
    assert "inspect ping --destination=worker@$$HOSTNAME" in check


def test_beat_is_healthy_while_it_runs_its_schedules(services):
    assert services["beat"]["healthcheck"]["test"] == [
        "CMD",
        "django-admin",
        "probe",
        "beat",
    ]


def test_flower_and_rabbitmq_are_optional_profiles(services):
    assert services["flower"]["profiles"] == ["flower"]
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    # Without the profile, nothing waits for RabbitMQ.
    assert services["web"]["depends_on"]["rabbitmq"]["required"] is False


def test_the_image_builds_from_the_whole_project_and_runs_as_a_user_not_root():
    dockerfile = (PROJECT / "Dockerfile").read_text()

    assert "COPY . ." in dockerfile
    assert "pip wheel" in dockerfile
    assert "collectstatic" in dockerfile
    users = re.findall(r"^USER (\S+)$", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    ignored = (PROJECT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


def example_secrets() -> list[tuple[str, str, str]]:
    """(file, variable, value) for each secret a shipped file spells out: in
    NAME=value, NAME: value, or as the default of ${NAME:-value}."""
    files = [PROJECT / "docker-compose.yml", PROJECT / "README.md"]
    files += sorted((PROJECT / "docs").glob("*.md"))
    found = []
    pattern = re.compile(
        r"\b(SECRET_KEY|\w+_WEBHOOK_SECRET)\b"
        r"(?::-([^}\s]+)\}|\s*[=:]\s*[\"']?(?![$?])([^\s\"'`|]+))"
    )
    for path in files:
        if path.exists():
            for match in pattern.finditer(path.read_text()):
                value = match.group(2) or match.group(3)  # a default, or a value
                found.append((path.name, match.group(1), value))
    return found


def test_no_secret_the_repository_shows_is_accepted_in_production():
    # given every secret value the compose file and the docs spell out
    examples = example_secrets()
    assert examples

    # when production checks each
    # then each is refused
    for _, name, value in examples:
        with pytest.raises(ImproperlyConfigured, match=name):
            refuse_development_secrets({name: value})
