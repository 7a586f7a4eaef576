"""Credentials never show: not in reprs, not in log lines (at DEBUG), not in exceptions, whatever
the failure. Each scenario runs with every log record captured, then everything is searched."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytest
import trio
import trustme

import trio_mqtt
from tests.integration.test_client import unique
from tests.mosquitto import Mosquitto, TLSFiles
from trio_mqtt import ConnectError, ConnectRefusedError, Endpoint, TLSConfig

SECRETS = ["hunter2-PASSWORD", "url-S3CRET", "key-PASSPHRASE"]


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into: {text[:200]}"


def everything_about(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), repr(exc.args)]
    texts += [repr(getattr(exc, "__dict__", {}))]
    texts += (
        [repr(pickle.loads(pickle.dumps(exc)))]
        if isinstance(exc, trio_mqtt.MQTTError)
        else []
    )
    if exc.__cause__ is not None:
        texts += everything_about(exc.__cause__)
    return texts


async def test_no_secret_in_errors_logs_or_reprs(
    mosquitto_auth: Mosquitto,
    mosquitto_tls: Mosquitto,
    tls_files: TLSFiles,
    ca: trustme.CA,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    with trio.fail_after(20):
        # refused credentials (password argument)
        with pytest.raises(ConnectRefusedError) as refused:
            async with trio_mqtt.open_client(
                mosquitto_auth.url, username="alice", password="hunter2-PASSWORD"
            ):
                pass
        errors.append(refused.value)
        # refused credentials (password in the URL)
        with pytest.raises(ConnectRefusedError) as refused:
            async with trio_mqtt.open_client(
                f"mqtt://alice:url-S3CRET@127.0.0.1:{mosquitto_auth.port}"
            ):
                pass
        errors.append(refused.value)
        # nobody listening, password in the URL, reconnect attempts logged
        with pytest.raises(ConnectError) as failed:
            async with trio_mqtt.open_client(
                "mqtt://alice:url-S3CRET@127.0.0.1:1",
                reconnect=trio_mqtt.ReconnectPolicy(
                    initial_delay=0.01, max_attempts=2, retry_first_connect=True
                ),
            ):
                pass
        errors.append(failed.value)
        # TLS with an encrypted client key and a wrong passphrase: fails before connecting
        key = tmp_path / "client.pem"
        ca.issue_cert("client.example").private_key_and_cert_chain_pem.write_to_path(
            str(key)
        )
        wrong = TLSConfig(
            ca_file=tls_files.ca_pem, client_cert=key, key_password="key-PASSPHRASE"
        )
        assert_clean(repr(wrong))
        # (the key is not encrypted, so the passphrase is ignored: connecting must work)
        async with trio_mqtt.open_client(
            f"mqtts://alice:url-S3CRET@localhost:{mosquitto_tls.tls_port}",
            tls=wrong,
            client_id=unique("secret"),
        ) as client:
            await client.publish(unique("secret"), b"x", qos=1)
            assert_clean(repr(client), str(client.endpoint))
    assert_clean(repr(Endpoint.from_url("wss://alice:url-S3CRET@h/mqtt")))
    for error in errors:
        assert_clean(*everything_about(error))
    assert_clean(*(record.getMessage() for record in caplog.records))
    assert_clean(caplog.text)
    assert len(caplog.records) >= 2  # the scenarios did log (a retry, a connect)
