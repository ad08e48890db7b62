"""The forward proxy's own certificate authority: made on first start, kept with the data, trusted by clients.

    ca = CertificateAuthority.open(Path(settings.data_dir) / "forward-proxy")   # creates ca.pem + ca-key.pem once
    context = ca.server_context("api.openai.com")       # TLS server side for one host, its leaf cached in memory
    # clients: SSL_CERT_FILE / REQUESTS_CA_BUNDLE / NODE_EXTRA_CA_CERTS=<ca.cert_path>

The CA key is an EC P-256 key in a 0600 file in a 0700 directory; it never leaves this machine. Its certificate
may sign only end-entity certificates (path length 0). Each host's leaf is made at first use in this process,
valid for 397 days (the most clients accept), and never written to disk beyond the moment `ssl` loads it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
_CA_DAYS = 3650
_LEAF_DAYS = 397


class CertificateAuthority:
    """A CA certificate and its key; `issue(host)` signs leaves, `server_context(host)` serves them."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey, cert_path: Path) -> None:
        self.certificate = certificate
        self.key = key
        self.cert_path = cert_path
        self._contexts: dict[str, ssl.SSLContext] = {}

    @classmethod
    def open(cls, directory: Path) -> CertificateAuthority:
        """The CA kept in `directory`, made there (0700 directory, 0600 key) if it has none yet."""
        cert_path, key_path = directory / CA_FILE, directory / CA_KEY_FILE
        if cert_path.is_file() and key_path.is_file():
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_path} is not the EC key this gateway made; move it away to make a new CA")
            return cls(certificate, key, cert_path)
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True)
            directory.chmod(0o700)  # mkdir's mode passes through the umask; be exact
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _ca_certificate(key)
        _write_private(key_path, key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, _NO_PASSWORD))
        cert_path.write_bytes(certificate.public_bytes(_PEM))
        return cls(certificate, key, cert_path)

    def issue(self, host: str) -> tuple[bytes, bytes]:
        """A leaf certificate for `host` (a DNS name or an IP address) and its key, both PEM."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            name = x509.DNSName(host)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName([name]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(_PEM), key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, _NO_PASSWORD)

    def server_context(self, host: str) -> ssl.SSLContext:
        """A TLS server context presenting `host`'s leaf; made once per host in this process."""
        context = self._contexts.get(host)
        if context is None:
            certificate, key = self.issue(host)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.set_alpn_protocols(["http/1.1"])
            # ssl loads chains from files only: a 0600 file in the CA's own directory, gone once loaded.
            handle, path = tempfile.mkstemp(dir=self.cert_path.parent, suffix=".pem")
            try:
                with os.fdopen(handle, "wb") as file:
                    file.write(certificate + key)
                context.load_cert_chain(path)
            finally:
                os.unlink(path)
            self._contexts[host] = context
        return context


_PEM = serialization.Encoding.PEM
_NO_PASSWORD = serialization.NoEncryption()


def _key_usage(*, signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signing,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signing,
        crl_sign=signing,
        encipher_only=False,
        decipher_only=False,
    )


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "aoai-gateway"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"aoai-gateway forward proxy CA {os.urandom(4).hex()}"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write_private(path: Path, data: bytes) -> None:
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as file:
        file.write(data)


__all__ = ["CA_FILE", "CA_KEY_FILE", "CertificateAuthority"]
