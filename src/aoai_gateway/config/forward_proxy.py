"""The forward-proxy listener (`forward_proxy:`): tools that cannot change their base URL set `https_proxy`.

    forward_proxy: {enabled: true, port: 3128, hosts: [api.openai.com]}

Off by default. See forward_proxy/listener.py for what it does with a CONNECT.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ForwardProxySettings(BaseModel):
    """`CONNECT host:443` for `hosts` on `port` (next to the main port), served by the gateway itself over TLS
    with a certificate from its own CA (kept in `data_dir`/forward-proxy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    port: int = Field(3128, ge=0, le=65535)
    hosts: tuple[str, ...] = ("api.openai.com",)
    handshake_timeout_seconds: float = Field(10.0, gt=0)

    @field_validator("hosts")
    @classmethod
    def _names(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if not host or any(c in host for c in "/:@ \t") or host != host.strip("."):
                raise ValueError(f"forward_proxy.hosts: {host!r} is not a host name such as api.openai.com")
        return tuple(host.lower() for host in hosts)


__all__ = ["ForwardProxySettings"]
