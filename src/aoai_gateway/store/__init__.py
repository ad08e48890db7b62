"""Storage: one data-access layer over SQLite and PostgreSQL, versioned migrations, keys and the usage ledger."""

from .database import DATABASES, Database, connect_database
from .keys import GatewayKey, KeySpec, KeyStore, Limits
from .migrations import migrate
from .usage import UsageLedger, UsageRow, usage_report

__all__ = [
    "DATABASES",
    "Database",
    "GatewayKey",
    "KeySpec",
    "KeyStore",
    "Limits",
    "UsageLedger",
    "UsageRow",
    "connect_database",
    "migrate",
    "usage_report",
]
