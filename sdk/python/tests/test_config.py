"""configure() and get_config(): explicit arguments, then TAME_* variables,
then the config file, then defaults; and what is refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

import tamesdk
from tamesdk import Config, ValidationException
from tamesdk.config import default_config_path, load_config


def write_home_config(text: str) -> Path:
    path = default_config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = tamesdk.get_config()
    assert config == Config()
    assert config.api_url == "http://localhost:8000" and config.api_key is None
    assert config.timeout == 30.0 and config.max_retries == 3
    assert config.approval_timeout == 300.0
    assert config.raise_on_deny and config.raise_on_approve
    assert not config.bypass_mode and config.failure_mode == tamesdk.FAIL_CLOSED


def test_precedence_explicit_then_environment_then_file_then_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_home_config(
        "api_url: http://from-file:1\napi_key: file-key\nagent_id: file-agent\n"
        "user_id: file-user\ntimeout: 12.5\nraise_on_approve: false\napproval_timeout: 45\n"
    )
    monkeypatch.setenv("TAME_API_URL", "http://from-env:2")
    monkeypatch.setenv("TAME_AGENT_ID", "env-agent")
    config = tamesdk.configure(agent_id="explicit-agent")
    assert config.agent_id == "explicit-agent"  # explicit beats environment
    assert config.api_url == "http://from-env:2"  # environment beats file
    assert config.api_key == "file-key" and config.user_id == "file-user"  # file beats default
    assert config.timeout == 12.5 and config.raise_on_approve is False
    assert config.approval_timeout == 45
    assert config.max_retries == 3  # default
    assert tamesdk.get_config() is config


def test_every_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TAME_API_URL": "http://localhost:8000",
        "TAME_API_KEY": "your-secret-key",
        "TAME_SESSION_ID": "custom-session",
        "TAME_AGENT_ID": "my-agent",
        "TAME_USER_ID": "user123",
        "TAME_BYPASS_MODE": "false",
    }.items():
        monkeypatch.setenv(name, value)
    config = tamesdk.get_config()
    assert (config.api_key, config.session_id, config.agent_id, config.user_id) == (
        "your-secret-key",
        "custom-session",
        "my-agent",
        "user123",
    )
    assert config.bypass_mode is False
    for text, value in [("1", True), ("TRUE", True), ("yes", True), ("0", False), ("off", False)]:
        assert load_config(environ={"TAME_BYPASS_MODE": text}).bypass_mode is value
    with pytest.raises(ValidationException, match="TAME_BYPASS_MODE"):
        load_config(environ={"TAME_BYPASS_MODE": "maybe"})


def test_config_file_given_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "tame.yaml"
    path.write_text("api_url: https://tame.example:8443\nmetadata: {team: ops}\n")
    write_home_config("api_url: http://ignored:1\n")
    config = tamesdk.configure(config_file=path)
    assert config.api_url == "https://tame.example:8443" and config.metadata == {"team": "ops"}


def test_bad_config_files_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("api_url: [unclosed\n")
    with pytest.raises(ValidationException, match="not valid YAML"):
        tamesdk.configure(config_file=bad)
    bad.write_text("api_ulr: http://typo\n")
    with pytest.raises(ValidationException, match="unknown setting"):
        tamesdk.configure(config_file=bad)
    bad.write_text("- a list\n")
    with pytest.raises(ValidationException, match="mapping"):
        tamesdk.configure(config_file=bad)
    with pytest.raises(ValidationException, match="cannot read"):
        tamesdk.configure(config_file=tmp_path / "missing.yaml")
    bad.write_text("")
    assert tamesdk.configure(config_file=bad) == Config()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"api_url": "localhost:8000"}, "api_url"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"retry_backoff": -0.5}, "retry_backoff"),
        ({"approval_timeout": -1}, "approval_timeout"),
        ({"approval_timeout": "an hour"}, "approval_timeout"),
        ({"failure_mode": "fail_sideways"}, "failure_mode"),
        ({"raise_on_deny": "yes"}, "raise_on_deny"),
        ({"api_key": 12345}, "api_key"),
        ({"metadata": ["a"]}, "metadata"),
    ],
)
def test_invalid_settings_are_refused(settings: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationException, match=message):
        Config(**settings)


def test_unknown_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        load_config(api_ulr="http://x")


def test_replace_and_to_dict() -> None:
    config = Config(api_key="a-long-secret-key")
    changed = config.replace(timeout=5, api_key=None)
    assert changed.timeout == 5 and changed.api_key == "a-long-secret-key"
    assert config.to_dict()["api_key"] == "a-long-secret-key"
    assert config.to_dict(mask_secrets=True)["api_key"] == "a-lo…"


def test_save_writes_a_private_file_that_loads_back(tmp_path: Path) -> None:
    config = Config(api_url="http://saved:9", api_key="k" * 20, metadata={"a": 1})
    path = config.save(tmp_path / "dir" / "config.yaml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_config(path) == config
    assert config.save() == default_config_path()
    assert tamesdk.get_config() == config
