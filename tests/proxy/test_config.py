"""Loading the config file: substitution, validation, and errors that point at the line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.config import (
    ConfigError,
    ConfigIssue,
    LoadedConfig,
    load_config,
    parse_config,
    with_overrides,
)

REPO = Path(__file__).resolve().parents[2]

BASE = """\
services:
  a:
    endpoints:
      - url: http://127.0.0.1:9
routes:
  - name: r0
    service: a
"""


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def line_of(text: str, needle: str, nth: int = 0) -> int:
    """1-based line of the ``nth`` line containing ``needle``."""
    hits = [i + 1 for i, line in enumerate(text.splitlines()) if needle in line]
    return hits[nth]


def load(text: str, env: dict[str, str] | None = None) -> LoadedConfig:
    return parse_config(text, "gw.yaml", env=env or {})


def issues(text: str, env: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    assert info.value.source == "gw.yaml"
    return info.value.issues


def only_issue(text: str, env: dict[str, str] | None = None) -> ConfigIssue:
    found = issues(text, env)
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------------------
# ${ENV} substitution

ENV_TEXT = dedent("""
    services:
      a:
        endpoints:
          - url: ${UPSTREAM}
          - url: ${BACKUP:-http://backup:8080}
    routes:
      - name: r0
        service: a
        plugins:
          headers:
            request:
              set:
                X-Literal: "$${NOT_A_VAR} and $${UPSTREAM}"
                X-Mixed: "pre-${TENANT:-none}-post"
                X-Empty-Default: "${NOTHING:-}"
""")


def test_env_variables_and_defaults_are_substituted() -> None:
    cfg = load(ENV_TEXT, {"UPSTREAM": "http://up:1", "UPSTREAMX": "wrong"}).config
    assert [e.url for e in cfg.services["a"].endpoints] == ["http://up:1", "http://backup:8080"]
    sets = cfg.routes[0].plugins["headers"]["request"]["set"]
    assert sets["X-Mixed"] == "pre-none-post"
    assert sets["X-Empty-Default"] == ""


def test_a_set_variable_beats_its_default() -> None:
    cfg = load(ENV_TEXT, {"UPSTREAM": "http://up:1", "BACKUP": "http://b:2", "TENANT": "t1"}).config
    assert cfg.services["a"].endpoints[1].url == "http://b:2"
    assert cfg.routes[0].plugins["headers"]["request"]["set"]["X-Mixed"] == "pre-t1-post"


def test_double_dollar_is_a_literal() -> None:
    cfg = load(ENV_TEXT, {"UPSTREAM": "http://up:1", "NOT_A_VAR": "oops"}).config
    literal = cfg.routes[0].plugins["headers"]["request"]["set"]["X-Literal"]
    assert literal == "${NOT_A_VAR} and ${UPSTREAM}"


def test_substituted_values_are_validated_like_literals() -> None:
    text = BASE + "limits:\n  max_body_bytes: ${MAX_BODY}\n  client_body_timeout: ${T}\n"
    cfg = load(text, {"MAX_BODY": "2MiB", "T": "250ms"}).config
    assert (cfg.limits.max_body_bytes, cfg.limits.client_body_timeout) == (2 * 1024**2, 0.25)
    issue = only_issue(text, {"MAX_BODY": "lots", "T": "1s"})
    assert issue.path == "limits.max_body_bytes"
    assert issue.line == line_of(text, "max_body_bytes")


def test_missing_env_variables_name_each_path_and_line() -> None:
    found = issues(ENV_TEXT, {})
    assert [(i.path, i.line) for i in found] == [
        ("services.a.endpoints[0].url", line_of(ENV_TEXT, "${UPSTREAM}")),
    ]
    assert "UPSTREAM" in found[0].message
    assert "not set" in found[0].message

    text = BASE.replace("http://127.0.0.1:9", "${HOST_A}") + "admin:\n  token: ${TOKEN}\n"
    found = issues(text, {})
    assert {(i.path, i.line) for i in found} == {
        ("services.a.endpoints[0].url", line_of(text, "${HOST_A}")),
        ("admin.token", line_of(text, "${TOKEN}")),
    }


# ---------------------------------------------------------------------------
# Errors: the YAML path and the line of the key


@pytest.mark.parametrize(("snippet", "key", "path", "in_message"), [
    ("    connect_timeout: soon\n", "connect_timeout", "services.a.connect_timeout",
     "not a duration"),
    ("    load_balancing: random\n", "load_balancing", "services.a.load_balancing", "round_robin"),
    ("    retries: {attempts: 99}\n", "retries", "services.a.retries.attempts", "10"),
    ("    colour: blue\n", "colour", "services.a.colour", "Extra inputs"),
])
def test_service_errors_carry_path_and_line(snippet: str, key: str, path: str,
                                            in_message: str) -> None:
    text = BASE.replace("routes:", snippet + "routes:")
    issue = only_issue(text)
    assert issue.path == path
    assert issue.line == line_of(text, key)
    assert in_message in issue.message


def test_errors_in_later_list_items_point_at_their_own_line() -> None:
    text = dedent("""
        services:
          a:
            endpoints:
              - url: http://ok:1
              - url: http://ok:2
              - url: ftp://nope
        routes:
          - name: r0
            service: a
          - name: r1
            service: a
            match:
              path: no-leading-slash
    """)
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("services.a.endpoints[2].url", line_of(text, "ftp://")),
        ("routes[1].match", line_of(text, "match:", 0)),
    ]
    assert "ftp://nope" in found[0].message
    assert "start with '/'" in found[1].message


def test_unknown_service_and_duplicate_route_are_rejected() -> None:
    text = BASE + "  - name: r1\n    service: nope\n  - name: r0\n    service: a\n"
    with pytest.raises(ConfigError) as info:
        load(text)
    message = str(info.value)
    assert "unknown service 'nope'" in message
    assert "duplicate route name 'r0'" in message


def test_cross_reference_errors_carry_path_and_line() -> None:
    text = BASE + "  - name: r1\n    service: nope\n  - name: r0\n    service: a\n"
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("routes[1].service", line_of(text, "service: nope")),
        ("routes[2].name", line_of(text, "name: r0", 1)),
    ]
    assert found[0].message == "unknown service 'nope' (known: a)"
    assert found[1].message == "duplicate route name 'r0'"


def test_unknown_plugin_names_the_known_ones() -> None:
    text = BASE + "    plugins:\n      hedaers: {}\nplugins:\n  wafff: {}\n"
    found = issues(text)
    assert [(i.path, i.line) for i in found] == [
        ("plugins.wafff", line_of(text, "wafff")),
        ("routes[0].plugins.hedaers", line_of(text, "hedaers")),
    ]
    for issue in found:
        assert "unknown plugin" in issue.message
        assert "headers" in issue.message.split("known:")[1]


@pytest.mark.parametrize(("plugins_yaml", "path", "key", "in_message"), [
    # The route's own config.
    ("""
        routes:
          - name: r0
            service: a
            plugins:
              headers:
                request:
                  set: {"X-Ok": "1", "Bad Name": "x"}
     """, "routes[0].plugins.headers.request.set", "set:", "not a valid header name"),
    ("""
        routes:
          - name: r0
            service: a
            plugins:
              headers:
                request:
                  sett: {"X-A": "1"}
     """, "routes[0].plugins.headers.request.sett", "sett:", "Extra inputs"),
    # A global config.
    ("""
        routes:
          - name: r0
            service: a
        plugins:
          headers:
            response:
              remove: [Connection]
     """, "plugins.headers.response.remove", "remove:", "hop-by-hop"),
    # A route override merged over a valid global one is reported at the route.
    ("""
        routes:
          - name: r0
            service: a
            plugins:
              headers:
                response:
                  add: {"X-B": "a\\r\\nInjected: 1"}
        plugins:
          headers:
            response:
              set: {"X-A": "1"}
     """, "routes[0].plugins.headers.response.add", "add:", "CR, LF"),
])
def test_plugin_config_errors_give_the_full_path(plugins_yaml: str, path: str, key: str,
                                                 in_message: str) -> None:
    text = BASE.split("routes:")[0] + dedent(plugins_yaml)
    issue = only_issue(text)
    assert issue.path == path
    assert issue.line == line_of(text, key)
    assert in_message in issue.message


def test_plugin_config_must_be_a_mapping() -> None:
    text = BASE + "    plugins:\n      headers: [1, 2]\n"
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("routes[0].plugins.headers", line_of(text, "headers:"))


# ---------------------------------------------------------------------------
# Durations, sizes, regexes


@pytest.mark.parametrize(("raw", "seconds"), [
    ("250ms", 0.25), ("5s", 5.0), ("2m", 120.0), ("1h", 3600.0), ("1.5s", 1.5), ("3", 3.0),
    (7, 7.0), (0.5, 0.5), (" 2m ", 120.0),
])
def test_durations(raw: Any, seconds: float) -> None:
    cfg = load(BASE + f"limits:\n  client_body_timeout: {raw!r}\n").config
    assert cfg.limits.client_body_timeout == pytest.approx(seconds)


@pytest.mark.parametrize(("raw", "size"), [
    ("16KiB", 16 * 1024), ("10MB", 10_000_000), ("10MiB", 10 * 1024**2), ("1GiB", 1024**3),
    ("2kb", 2000), ("512", 512), (4096, 4096), ("16kib", 16 * 1024), ("0", 0),
])
def test_sizes(raw: Any, size: int) -> None:
    cfg = load(BASE + f"limits:\n  max_body_bytes: {raw!r}\n").config
    assert cfg.limits.max_body_bytes == size


@pytest.mark.parametrize(("field", "raw", "in_message"), [
    ("client_body_timeout", "soon", "not a duration"),
    ("client_body_timeout", "5 parsecs", "not a duration"),
    ("client_body_timeout", "-1s", "not a duration"),
    ("client_body_timeout", -1, "greater than or equal to 0"),
    ("max_body_bytes", "1.5MB", "not a size"),
    ("max_body_bytes", "10 TB", "not a size"),
    ("max_body_bytes", -5, "greater than or equal to 0"),
])
def test_bad_durations_and_sizes(field: str, raw: Any, in_message: str) -> None:
    text = BASE + f"limits:\n  {field}: {raw!r}\n"
    issue = only_issue(text)
    assert (issue.path, issue.line) == (f"limits.{field}", line_of(text, field))
    assert in_message in issue.message


@pytest.mark.parametrize("match", [
    {"path_regex": "/a("},
    {"path_regex": "/(a)\\1"},  # backreferences are not RE2
    {"path_regex": "/(?=admin)"},  # nor are lookaheads
    {"headers": {"X-A": {"regex": "[z-a]"}}},
    {"query": {"q": {"regex": "(?<!x)y"}}},
])
def test_bad_regex_is_rejected_at_load(match: dict[str, Any]) -> None:
    text = BASE + "    match: " + yaml.safe_dump(match, default_flow_style=True, width=1000)
    issue = only_issue(text)
    assert issue.path.startswith("routes[0].match")
    assert issue.line == line_of(text, "match")
    assert "bad regex" in issue.message


@pytest.mark.parametrize(("match", "in_message"), [
    ({"path": "/a", "path_prefix": "/b"}, "at most one of"),
    ({"hosts": ["api.*.com"]}, "leading '*.'"),
    ({"headers": {"X-A": {"exact": "1", "prefix": "2"}}}, "exactly one of"),
])
def test_contradictory_matches_are_rejected(match: dict[str, Any], in_message: str) -> None:
    text = BASE + "    match: " + yaml.safe_dump(match, default_flow_style=True, width=1000)
    assert in_message in only_issue(text).message


def test_invalid_yaml_gives_a_line() -> None:
    text = BASE + "  - name: r1\n    service: [a\n  - name: r2\n"
    issue = only_issue(text)
    assert issue.message.startswith("invalid YAML")
    assert issue.line is not None
    assert line_of(text, "service: [a") <= issue.line <= line_of(text, "name: r2")


def test_the_config_must_be_a_mapping() -> None:
    assert "mapping" in only_issue("- just\n- a list\n").message


# ---------------------------------------------------------------------------
# Command-line overrides


def test_listen_and_admin_overrides_replace_the_file() -> None:
    loaded = load(BASE + "listeners:\n  - address: 127.0.0.1:8080\n")
    over = with_overrides(loaded, ["0.0.0.0:8000", "[::1]:8001"], "127.0.0.1:9000")
    assert [(li.host, li.port) for li in over.config.listeners] == [("0.0.0.0", 8000),
                                                                    ("::1", 8001)]
    assert over.config.admin.address == "127.0.0.1:9000"
    assert with_overrides(loaded) is loaded


@pytest.mark.parametrize(("listen", "admin", "in_message"), [
    (["8080"], None, "expected HOST:PORT"),
    (["127.0.0.1:70000"], None, "port out of range"),
    (["127.0.0.1:8080", "host:"], None, "expected HOST:PORT"),
    (None, "localhost", "expected HOST:PORT"),
])
def test_bad_overrides_are_config_errors(listen: list[str] | None, admin: str | None,
                                         in_message: str) -> None:
    with pytest.raises(ConfigError) as info:
        with_overrides(load(BASE), listen, admin)
    [issue] = info.value.issues
    assert issue.path.startswith("command line")
    assert in_message in issue.message


# ---------------------------------------------------------------------------
# `bastion check` and `bastion run` as a user runs them


def bastion(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_check_accepts_a_good_file(tmp_path: Path) -> None:
    file = tmp_path / "good.yaml"
    file.write_text(BASE + "    plugins:\n      headers: {request: {set: {X-A: b}}}\n")
    result = bastion("check", "-c", str(file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{file}: OK (1 routes, 1 services, plugins: headers)"


def test_check_reports_every_error_with_file_line_and_path(tmp_path: Path) -> None:
    text = dedent("""
        services:
          a:
            endpoints:
              - url: http://127.0.0.1:9
            connect_timeout: soon
        routes:
          - name: r0
            service: a
            match:
              path: no-slash
          - name: r1
            service: a
            match:
              path_regex: "/a("
        limits:
          max_body_bytes: lots
    """)
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    result = bastion("check", "-c", str(file))
    assert result.returncode == 2
    assert result.stdout == ""
    *lines, total = result.stderr.strip().splitlines()
    assert total == "4 error(s)"
    assert sorted(lines) == sorted([
        f"{file}:{line_of(text, 'connect_timeout')}: services.a.connect_timeout: "
        "not a duration: 'soon' (use e.g. 250ms, 5s, 2m)",
        f"{file}:{line_of(text, 'match:', 0)}: routes[0].match: "
        "paths start with '/': 'no-slash'",
        f"{file}:{line_of(text, 'path_regex')}: routes[1].match.path_regex: "
        "bad regex '/a(': missing ): /a(",
        f"{file}:{line_of(text, 'max_body_bytes')}: limits.max_body_bytes: "
        "not a size: 'lots' (use e.g. 16KiB, 10MiB)",
    ])


def test_check_reports_invalid_yaml_with_its_line(tmp_path: Path) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("services:\n  a: {endpoints: [\n")
    result = bastion("check", "-c", str(file))
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{file}:")
    assert first.split(":")[1].isdigit()
    assert "invalid YAML" in first


def test_check_reports_an_unreadable_file(tmp_path: Path) -> None:
    result = bastion("check", "-c", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "cannot read config" in result.stderr


def test_the_embedded_default_config_checks_ok() -> None:
    load_config(None)  # in this process too, whatever the environment
    result = bastion("check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<embedded default>: OK (2 routes, 1 services")
    assert all(p in result.stdout for p in ("headers", "auth", "waf"))


def test_run_refuses_a_bad_listen_override(tmp_path: Path) -> None:
    file = tmp_path / "good.yaml"
    file.write_text(BASE)
    result = bastion("run", "-c", str(file), "--listen", "nope", "--admin", "127.0.0.1:0")
    assert result.returncode == 2
    assert "command line" in result.stderr
    assert "expected HOST:PORT, got 'nope'" in result.stderr
