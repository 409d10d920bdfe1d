"""The container example (deploy/) and the deploy guide (docs/deploy.md) against the code: no
container can run here, so this checks what can be checked without one. Every PLINTH_* setting
compose.yaml sets or docs/deploy.md names is one the code reads; every command the containers
run parses with the real `plinth` command line; the service addresses name the compose services;
the image installs the pins scripts/setup.sh and pyproject.toml install."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from webapp.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
GUIDE = (ROOT / "docs" / "deploy.md").read_text()
PLINTH_SERVICES = ("web", "worker-cpu", "worker-gpu")
#: The settings docs/deploy.md must explain (issue 16).
DOCUMENTED = ("PLINTH_QUEUE", "PLINTH_DATABASE_URL", "PLINTH_STORAGE", "PLINTH_S3_ENDPOINT", "AWS_ACCESS_KEY_ID",
              "AWS_SECRET_ACCESS_KEY", "PLINTH_JOB_RETRIES", "PLINTH_LOG_FORMAT", "PLINTH_DEVICES",
              "PLINTH_PUBLIC_URL", "PLINTH_DATA_DIR")


def settings_the_code_reads() -> set[str]:
    """Every "PLINTH_..." string literal in webapp/ and pipeline/ (how each setting is read)."""
    found = set()
    for folder in ("webapp", "pipeline"):
        for path in (ROOT / folder).rglob("*.py"):
            found |= set(re.findall(r"""["'](PLINTH_[A-Z0-9_]+)["']""", path.read_text()))
    return found


def example_env() -> dict[str, str]:
    """deploy/example.env, the .env the guide tells people to copy."""
    lines = (ROOT / "deploy" / "example.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def interpolate(value: str, env: dict[str, str]) -> str:
    """What docker compose makes of ${VAR}, ${VAR:-default} and ${VAR:?error} with `env` as its .env."""

    def one(found: re.Match) -> str:
        name, op, rest = found.group(1), found.group(2) or "", found.group(3) or ""
        if env.get(name):
            return env[name]
        assert op != ":?", f"compose.yaml needs {name}, which deploy/example.env does not set"
        return rest if op == ":-" else ""

    return re.sub(r"\$\{([A-Z0-9_]+)(:[-?])?([^}]*)\}", one, value)


def plinth_command(words: list[str]) -> None:
    """`words` must be a `plinth` command line the real parser takes (it raises otherwise)."""
    assert words[0] == "plinth", words
    build_parser().parse_args(words[1:])


def test_every_plinth_setting_in_compose_is_read_by_the_code():
    known = settings_the_code_reads()
    for name in PLINTH_SERVICES:
        env = COMPOSE["services"][name]["environment"]
        assert {"PLINTH_QUEUE", "PLINTH_DATABASE_URL", "PLINTH_STORAGE"} <= set(env), name
        for key in env:
            assert key in known or key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"), key


def test_the_service_addresses_name_the_compose_services():
    env = {k: interpolate(str(v), example_env()) for k, v in COMPOSE["services"]["web"]["environment"].items()}
    services = set(COMPOSE["services"])
    assert urlsplit(env["PLINTH_QUEUE"]).scheme == "redis" and urlsplit(env["PLINTH_QUEUE"]).hostname in services
    assert urlsplit(env["PLINTH_DATABASE_URL"]).scheme == "postgresql"
    assert urlsplit(env["PLINTH_DATABASE_URL"]).hostname in services
    assert env["PLINTH_STORAGE"].startswith("s3://") and urlsplit(env["PLINTH_S3_ENDPOINT"]).hostname in services
    bucket = urlsplit(env["PLINTH_STORAGE"]).netloc
    assert f"local/{bucket}" in " ".join(COMPOSE["services"]["minio-bucket"]["command"])  # the bucket is made
    assert env["PLINTH_PUBLIC_URL"] == example_env()["PLINTH_PUBLIC_URL"]
    # the same shared services for every Plinth container
    for name in PLINTH_SERVICES:
        assert COMPOSE["services"][name]["environment"] == COMPOSE["services"]["web"]["environment"], name
    # the passwords the services are given are the ones the Plinth containers use
    postgres = {k: interpolate(str(v), example_env()) for k, v in COMPOSE["services"]["postgres"]["environment"].items()}
    assert urlsplit(env["PLINTH_DATABASE_URL"]).password == postgres["POSTGRES_PASSWORD"]
    assert urlsplit(env["PLINTH_DATABASE_URL"]).username == postgres["POSTGRES_USER"]
    minio = {k: interpolate(str(v), example_env()) for k, v in COMPOSE["services"]["minio"]["environment"].items()}
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])


def test_the_containers_commands_are_plinth_commands():
    for name in PLINTH_SERVICES:
        plinth_command(COMPOSE["services"][name]["command"])
    assert COMPOSE["services"]["web"]["command"][:2] == ["plinth", "serve"]
    assert "--queue" in COMPOSE["services"]["worker-gpu"]["command"]
    gpu = COMPOSE["services"]["worker-gpu"]
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "cu" in gpu["build"]["args"]["TORCH_INDEX"]  # the CUDA build of torch
    for name in ("worker-cpu", "worker-gpu"):  # no HTTP port: the image's /healthz check is off
        assert COMPOSE["services"][name]["healthcheck"] == {"disable": True}
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.MULTILINE)
    assert cmd, "the Dockerfile has no CMD"
    plinth_command(yaml.safe_load(cmd.group(1)))
    assert "/healthz" in DOCKERFILE


def test_the_image_installs_what_the_set_up_installs():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    torch = re.search(r'"(torch==[^"]+)"', pyproject).group(1)
    assert f'"{torch}"' in setup and f'"{torch}"' in DOCKERFILE
    for pin in re.findall(r'--no-deps "([^"]+==[^"]+)"', setup):
        assert f'"{pin}"' in DOCKERFILE, pin
    assert 'pip install -e ".[web]"' in DOCKERFILE  # editable: static/ and node_modules/ beside webapp/
    for path in ("pipeline", "webapp", "static", "package-lock.json", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}\b", DOCKERFILE, re.MULTILINE), path


def test_the_guide_explains_every_setting_and_names_only_real_ones():
    known = settings_the_code_reads()
    for name in DOCUMENTED:
        assert f"`{name}" in GUIDE, name
    for name in set(re.findall(r"\bPLINTH_[A-Z0-9_]+\b", GUIDE)):
        assert name in known, f"docs/deploy.md names {name}, which the code does not read"
    for words in ("MinIO", "pg_dump", "plinth status", "/healthz", "docker compose", "PLINTH_JOB_RETRIES"):
        assert words in GUIDE, words
    # every `plinth ...` command the guide shows in a code block parses
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", GUIDE, re.DOTALL)
    commands = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    shown = [c[c.index("plinth "):] for c in commands if re.search(r"(^|\s|/)plinth (serve|worker|status|user)", c)]
    assert len(shown) >= 4, shown
    for line in shown:
        words = shlex.split(line.split("|")[0].split("&&")[0])
        plinth_command(["plinth", *words[1:]])


def test_the_readme_points_at_the_guide_and_keeps_its_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "docs/deploy.md" in readme
    assert "```bash\nmake run\n```" in readme and "```bash\nmake test\n```" in readme
