-- API keys of the public gateway. Only a SHA-256 of each key is stored: the key itself is shown
-- once, when it is created (`pulse-store keys create`). Keys are random 256-bit secrets, so a
-- plain hash is as strong as a slow one and lets the gateway check a key with one index probe.
--
-- `id` is the key's public part (the `pk_<id>_` prefix of the key): it names the key in logs,
-- rate limits and the namespace of the post ids its holder publishes. A revoked key stays, so
-- its id is never reused and its posts keep their namespace.
CREATE TABLE api_keys (
    id          TEXT        PRIMARY KEY,
    name        TEXT        NOT NULL,
    key_hash    BYTEA       NOT NULL UNIQUE,
    scopes      TEXT[]      NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ,
    CHECK (scopes <@ ARRAY['read', 'write', 'analyze', 'admin']::TEXT[] AND cardinality(scopes) > 0)
);
