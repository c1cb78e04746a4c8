"""Production settings refuse development secrets; with real ones they pass Django's
deploy check."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.conf import settings

from config.secret_policy import (
    DEVELOPMENT_SECRET_KEY,
    development_credentials_key,
    secret_setting_names,
)

PROJECT = Path(__file__).resolve().parents[2]


def real_secrets() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "SIMULATOR_WEBHOOK_SECRET": secrets.token_urlsafe(32),
    }


def run_production(args: list[str], **overrides: str) -> subprocess.CompletedProcess:
    """`python args` with production settings, the given environment and no other
    secret from this process's environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "SECRET_KEY",
            "SIMULATOR_WEBHOOK_SECRET",
            "TWILIO_AUTH_TOKEN",
            "DJANGO_SETTINGS_MODULE",
        }
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings.production", **overrides)
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_production(**overrides: str) -> subprocess.CompletedProcess:
    return run_production(["-c", "import config.settings.production"], **overrides)


def test_production_starts_with_secrets_of_its_own():
    # given secrets nobody else has
    # when production settings load
    result = start_production(**real_secrets())

    # then they do
    assert result.returncode == 0, result.stderr


def test_production_starts_with_keys_of_its_own_for_vendor_credentials():
    # given two real Fernet keys, the new one first
    keys = ",".join(Fernet.generate_key().decode() for _ in range(2))

    # when production settings load
    result = start_production(VENDOR_CREDENTIALS_KEYS=keys, **real_secrets())

    # then they do
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("SECRET_KEY", None, "is not set"),
        ("SECRET_KEY", "change-me-in-production", "documented example"),
        (
            "SECRET_KEY",
            "dev-only-insecure-key-set-SECRET_KEY-in-production",
            "development default",
        ),
        ("SECRET_KEY", "django-insecure-" + "x1y2z3" * 10, "development default"),
        ("SECRET_KEY", "please-changeme-" + secrets.token_urlsafe(50), "placeholder"),
        ("SECRET_KEY", secrets.token_urlsafe(20), "shorter than 50"),
        ("SECRET_KEY", "ab" * 40, "fewer than 5 distinct"),
        ("SIMULATOR_WEBHOOK_SECRET", None, "development default"),
        ("SIMULATOR_WEBHOOK_SECRET", "simulator-dev-secret", "development default"),
        ("SIMULATOR_WEBHOOK_SECRET", "", "is not set"),
        ("SIMULATOR_WEBHOOK_SECRET", "Change-Me", "documented example"),
        ("SIMULATOR_WEBHOOK_SECRET", secrets.token_hex(8), "shorter than 32"),
        ("TWILIO_AUTH_TOKEN", "change-me", "documented example"),
        ("TWILIO_AUTH_TOKEN", secrets.token_hex(8), "shorter than 32"),
        ("VENDOR_CREDENTIALS_KEYS", "not-a-fernet-key", "is not a Fernet key"),
        (
            "VENDOR_CREDENTIALS_KEYS",
            development_credentials_key(DEVELOPMENT_SECRET_KEY),
            "development default",
        ),
    ],
)
def test_production_refuses_a_development_or_placeholder_secret(
    variable, value, reason
):
    # given real secrets but for one variable, unset or a known or weak value
    environment = real_secrets()
    if value is None:
        del environment[variable]
    else:
        environment[variable] = value

    # when production settings load
    result = start_production(**environment)

    # then they refuse, naming the variable and why, never echoing the value
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert variable in message
    assert reason in message
    if value:
        assert value not in result.stderr


def test_docker_compose_requires_every_secret_and_offers_no_default():
    # given the environment docker-compose.yml gives the Django services
    compose = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())
    environment = compose["x-django"]["environment"]

    # when it names a secret
    names = secret_setting_names(environment)

    # then the value is required from the operator (${NAME:?why}), with no default
    assert set(names) == {"SECRET_KEY", "SIMULATOR_WEBHOOK_SECRET"}
    for name in names:
        assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", environment[name]), name


def test_deploy_check_warns_only_of_hsts_preload_with_real_secrets():
    # given production settings with real secrets
    # when Django's deploy check runs
    result = run_production(["manage.py", "check", "--deploy"], **real_secrets())

    # then it passes, its one warning the documented HSTS preload (security.W021)
    assert result.returncode == 0, result.stderr
    issues = set(re.findall(r"\((\w+\.[EW]\d+)\)", result.stdout + result.stderr))
    assert issues == {"security.W021"}


def test_probes_answer_over_plain_http_while_everything_else_redirects_to_https():
    # given production settings with the HTTPS redirect on (the default)
    script = (
        "import django; django.setup();"
        "from django.test import Client;"
        "client = Client();"
        "print(client.get('/health/live').status_code,"
        " client.get('/admin/login/').status_code)"
    )

    # when an orchestrator probes liveness over plain HTTP, and a person opens a page
    result = run_production(
        ["-c", script], ALLOWED_HOSTS="testserver", **real_secrets()
    )

    # then the probe is answered and the page redirected to HTTPS
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["200", "301"]


def test_production_serves_collected_static_files_under_their_hashed_names(tmp_path):
    # given production settings and the static files collected into STATIC_ROOT
    environment = {"STATIC_ROOT": str(tmp_path), **real_secrets()}
    collected = run_production(
        ["manage.py", "collectstatic", "--noinput", "--verbosity", "0"], **environment
    )
    assert collected.returncode == 0, collected.stderr

    # when a browser asks the process for the admin's stylesheet by its hashed name
    script = (
        "import django; django.setup();"
        "from django.templatetags.static import static;"
        "from django.test import Client;"
        "url = static('admin/css/base.css');"
        "response = Client().get(url, secure=True);"
        "print(url, response.status_code, response['Content-Type'].split(';')[0])"
    )
    result = run_production(["-c", script], ALLOWED_HOSTS="testserver", **environment)

    # then the process serves it, as CSS
    assert result.returncode == 0, result.stderr
    url, status, content_type = result.stdout.split()
    assert re.fullmatch(r"/static/admin/css/base\.[0-9a-f]{12}\.css", url)
    assert (status, content_type) == ("200", "text/css")


def test_every_production_process_counts_throttles_in_one_shared_cache():
    # given production on the suite's Redis as its broker, and no CACHE_URL
    broker = {
        **real_secrets(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CACHE_URL": "",
    }
    key = f"shared-{secrets.token_hex(4)}"
    script = "import django; django.setup(); from django.core.cache import cache; "

    # when one process counts a request and another reads the count
    counted = run_production(["-c", script + f"cache.set('{key}', 1, 60)"], **broker)
    read = run_production(["-c", script + f"print(cache.get('{key}'))"], **broker)

    # then the second sees the first's count, as two gunicorn workers must
    assert counted.returncode == 0, counted.stderr
    assert read.stdout.strip() == "1", read.stderr
