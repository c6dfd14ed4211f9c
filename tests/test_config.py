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
    ("postgres://u:p@db:5432/waybill", "postgresql+psycopg://u:p@db:5432/waybill"),
    ("postgresql://u@db/waybill", "postgresql+psycopg://u@db/waybill"),
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
