"""A real PostgreSQL that only lets the bridge in over verified TLS with a client certificate.

What the HA chart promises about the database (`sslmode: verify-full`, the CA from one Secret,
a client certificate and key from another) is then exercised for real: the server
(tests/postgres.py) is switched to TLS at run time (PostgreSQL reloads `ssl` and pg_hba.conf
without a restart), and its pg_hba.conf admits the bridge's role only by `hostssl ... cert`,
so a connection without the client certificate, or not over TLS, is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.postgres import PostgresServer, running_postgres

ROLE = "fluxwatch_bridge"  # the client certificate's CN: PostgreSQL's cert auth maps it


@dataclass(frozen=True)
class TlsPostgres:
    server: PostgresServer
    ca_pem: bytes
    client_cert_pem: bytes
    client_key_pem: bytes

    def dsn(self, database: str) -> str:
        """What the DSN Secret holds: no password, the certificate is the credential."""
        return f"host=127.0.0.1 port={self.server.port} dbname={database} user={ROLE}"

    def verified_dsn(self, database: str, sslrootcert: Path, sslcert: Path, sslkey: Path) -> str:
        """The DSN with the TLS files, as the bridge connects (``verify-full``)."""
        return (
            f"{self.dsn(database)} sslmode=verify-full sslrootcert={sslrootcert} "
            f"sslcert={sslcert} sslkey={sslkey}"
        )

    def new_database(self) -> str:
        """A fresh database the bridge's role owns (it creates its schema at start)."""
        name = self.server.new_database()
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" OWNER TO {ROLE}')
        with psycopg.connect(self.server.dsn(name), autocommit=True) as conn:
            conn.execute(f"ALTER SCHEMA public OWNER TO {ROLE}")
        return name


def _serves_tls(server: PostgresServer) -> bool:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    return bool(row and row[0])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _issue(
    subject: str,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    usage: x509.ObjectIdentifier | None,
    sans: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


@contextlib.contextmanager
def tls_postgres() -> Iterator[TlsPostgres]:
    ca, ca_key = _issue("fluxwatch-test-db-ca", None, None, [])
    issuer = (ca.subject, ca_key)
    loopback: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    server_cert, server_key = _issue("db", issuer, ExtendedKeyUsageOID.SERVER_AUTH, loopback)
    client_cert, client_key = _issue(ROLE, issuer, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    with running_postgres() as server:
        data = server.data_dir
        files = {
            "server.crt": _pem(server_cert),
            "server.key": _key_pem(server_key),
            "root.crt": _pem(ca),
        }
        owner = data.owner()
        for name, content in files.items():
            path = data / name
            path.write_bytes(content)
            path.chmod(0o600)  # the server refuses a key others can read
            shutil.chown(path, owner)
        hba = data / "pg_hba.conf"
        # First match wins: the bridge's role only over TLS with a certificate the CA signed.
        hba.write_text(
            f"hostssl all {ROLE} 127.0.0.1/32 cert\nhost all {ROLE} 127.0.0.1/32 reject\n"
            + hba.read_text()
        )
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN")
            for key, value in (
                ("ssl_cert_file", "server.crt"),
                ("ssl_key_file", "server.key"),
                ("ssl_ca_file", "root.crt"),
                ("ssl", "on"),
            ):
                conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")
            conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 30
        while not _serves_tls(server):  # the postmaster rereads its files when signalled
            assert time.monotonic() < deadline, "PostgreSQL did not turn TLS on"
            time.sleep(0.05)
        yield TlsPostgres(server, _pem(ca), _pem(client_cert), _key_pem(client_key))


def write_client_files(tls: TlsPostgres, sslrootcert: Path, sslcert: Path, sslkey: Path) -> None:
    """The CA and client certificate where the pod mounts them; the key as libpq wants it from
    the file's owner (0600: the tests run as the key's owner, the pod as another user)."""
    for path, content in ((sslrootcert, tls.ca_pem), (sslcert, tls.client_cert_pem)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    sslkey.parent.mkdir(parents=True, exist_ok=True)
    sslkey.touch(mode=0o600)
    sslkey.chmod(0o600)
    sslkey.write_bytes(tls.client_key_pem)
