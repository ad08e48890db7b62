"""Forward-proxy mode: `CONNECT api.openai.com:443` served by the gateway itself (listener.py) over TLS with a
certificate from its own CA (ca.py). `cryptography` (the `forward-proxy` extra) is imported only here."""

from .ca import CertificateAuthority
from .listener import ForwardProxy, open_ca

__all__ = ["CertificateAuthority", "ForwardProxy", "open_ca"]
