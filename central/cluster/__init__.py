"""Several centrals: one leads (holds the lease in Redis/Valkey), the others stand by
(docs/decisions/0008-several-centrals.md)."""
