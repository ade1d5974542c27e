"""Passwords of connection settings never reach a log line or a reply."""

from __future__ import annotations

from koppla.core.redact import redact


def test_url_passwords_are_masked_and_the_rest_kept() -> None:
    text = (
        'missing "=" after "postgresql+psycopg2://koppla:S3cretPW@127.0.0.1:5432/db" and '
        "not a rabbitmq-stream:// URL: 'amqp://mq:p%zz@mq:5552/'"
    )
    assert redact(text) == (
        'missing "=" after "postgresql+psycopg2://koppla:***@127.0.0.1:5432/db" and '
        "not a rabbitmq-stream:// URL: 'amqp://mq:***@mq:5552/'"
    )


def test_connection_string_passwords_are_masked() -> None:
    assert (
        redact("host=db user=k password=S3cret dbname=x") == "host=db user=k password=*** dbname=x"
    )
    assert redact("password = 'a b' host=db") == "password = *** host=db"


def test_text_without_secrets_is_unchanged() -> None:
    assert (
        redact("https://shop.example/p/1?x=1 at 10:00") == "https://shop.example/p/1?x=1 at 10:00"
    )
