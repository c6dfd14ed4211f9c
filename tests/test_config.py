"""Configuration from the environment."""
import pytest

from app.config import DevelopmentConfig, ProductionConfig, database_url


def test_production_refuses_to_start_without_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        ProductionConfig()


def test_production_uses_secure_cookies(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "s3cret")
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    config = ProductionConfig()
    assert config.SECRET_KEY == "s3cret" and config.SESSION_COOKIE_SECURE is True


@pytest.mark.parametrize("given, expected", [
    ("postgres://u:p@db:5432/waybill", "postgresql+psycopg2://u:p@db:5432/waybill"),
    ("postgresql://u@db/waybill", "postgresql+psycopg2://u@db/waybill"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
])
def test_database_url_accepts_both_postgres_spellings(given, expected):
    assert database_url(given) == expected


def test_default_database_is_a_sqlite_file_under_instance(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    uri = DevelopmentConfig().SQLALCHEMY_DATABASE_URI
    assert uri.startswith("sqlite:///") and uri.endswith("instance/waybill.db")


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEFAULT_PHONE_REGION", "gb")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://track.example.com/")
    monkeypatch.setenv("RATELIMIT_ENABLED", "false")
    config = DevelopmentConfig()
    assert config.DEFAULT_PHONE_REGION == "GB"
    assert config.PUBLIC_BASE_URL == "https://track.example.com"
    assert config.RATELIMIT_ENABLED is False
    assert config.MAX_CONTENT_LENGTH == 64 * 1024


def _variables_read_by_config() -> set[str]:
    import re
    from pathlib import Path
    source = (Path(__file__).resolve().parent.parent / "app" / "config.py").read_text()
    return set(re.findall(r'env\w*\(\s*"([A-Z][A-Z0-9_]+)"', source)) | {"WAYBILL_ENV"}


def test_every_variable_the_config_reads_is_in_env_example_and_readme():
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    names = _variables_read_by_config()
    assert len(names) > 30
    missing_example = sorted(n for n in names if f"\n{n}=" not in f"\n{example}" and f"# {n}=" not in example)
    missing_readme = sorted(n for n in names if f"`{n}`" not in readme)
    assert missing_example == [] and missing_readme == []


def test_env_example_as_a_dotenv_gives_a_working_development_config(monkeypatch):
    from pathlib import Path

    from dotenv import dotenv_values
    values = dotenv_values(Path(__file__).resolve().parent.parent / ".env.example")
    for name, value in values.items():
        monkeypatch.setenv(name, value or "")
    config = DevelopmentConfig()
    assert config.SQLALCHEMY_DATABASE_URI.endswith("instance/waybill.db")
    assert config.MAIL_BACKEND == "console" and config.NOTIFY_POLL_SECONDS == 2.0
    assert config.SECRET_KEY  # the dev-only key when SECRET_KEY is left empty


def test_counters_in_memory_are_refused_in_production_with_several_workers(monkeypatch):
    from app.config import check_rate_limit_store

    monkeypatch.setenv("WAYBILL_ENV", "production")
    monkeypatch.setenv("RATELIMIT_ENABLED", "true")
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    with pytest.raises(RuntimeError, match="memory:// keeps rate-limit counters in each process"):
        check_rate_limit_store(2)
    assert check_rate_limit_store(1) is None
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://cache:6379/0")
    assert check_rate_limit_store(4) is None
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    monkeypatch.setenv("RATELIMIT_ENABLED", "false")
    assert check_rate_limit_store(4) is None  # no limits, nothing to share


def test_counters_in_memory_with_several_workers_are_only_a_warning_in_development(monkeypatch):
    from app.config import check_rate_limit_store

    monkeypatch.setenv("WAYBILL_ENV", "development")
    monkeypatch.setenv("RATELIMIT_ENABLED", "true")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "memory://")
    assert "3 worker processes would let 3 times every limit through" in check_rate_limit_store(3)


def test_proxy_hops_and_limits_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("TRUST_PROXY_HOPS", raising=False)
    assert DevelopmentConfig().TRUST_PROXY_HOPS == 0
    monkeypatch.setenv("TRUST_PROXY_HOPS", "1")
    monkeypatch.setenv("RATELIMIT_TRACK", "50 per minute")
    monkeypatch.setenv("RATELIMIT_TRACK_MISS", "5 per minute")
    monkeypatch.setenv("RATELIMIT_SEARCH", "7 per minute")
    config = DevelopmentConfig()
    assert config.TRUST_PROXY_HOPS == 1
    assert (config.RATELIMIT_TRACK, config.RATELIMIT_TRACK_MISS, config.RATELIMIT_SEARCH) == (
        "50 per minute", "5 per minute", "7 per minute")


@pytest.mark.parametrize("listen, expected", [
    ({"PORT": "5123"}, "http://localhost:5123"),
    ({"PORT": "5123", "BIND": "127.0.0.1:8081"}, "http://localhost:8081"),  # gunicorn.conf.py: BIND wins
    ({}, "http://localhost:5000"),
])
def test_links_follow_the_chosen_port_with_env_example_copied_to_env(monkeypatch, listen, expected):
    """The README says to copy .env.example to .env; run-local.sh may then pick another port than 5000 (or the
    user sets PORT): every link (emails, QR codes, List-Unsubscribe) must point at the port really served."""
    from pathlib import Path

    from dotenv import dotenv_values

    for name in ("PUBLIC_BASE_URL", "PORT", "BIND"):
        monkeypatch.delenv(name, raising=False)
    for name, value in listen.items():
        monkeypatch.setenv(name, value)
    example = dotenv_values(Path(__file__).resolve().parent.parent / ".env.example")
    for name, value in example.items():  # as load_env_file does: the real environment wins over .env
        if name not in listen and value is not None:
            monkeypatch.setenv(name, value)
    base_url = DevelopmentConfig().PUBLIC_BASE_URL
    assert base_url == expected
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://track.example.com/")
    assert DevelopmentConfig().PUBLIC_BASE_URL == "https://track.example.com"
