-- People and their access: staff accounts, named API keys, sign-in sessions and the audit
-- trail of who did what. No secret is stored in clear: passwords are argon2id hashes (PHC
-- strings), keys and session ids SHA-256 digests (hex), computed by the API.
CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    -- Lower-cased and trimmed by the store, on the way in and when looked up.
    email         text        NOT NULL UNIQUE,
    name          text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('admin', 'agent', 'viewer')),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz
);

CREATE TABLE api_keys (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL UNIQUE,
    -- The clear part of the key that finds it; `hash` is the digest of the whole key.
    prefix     text        NOT NULL UNIQUE,
    hash       text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('admin', 'agent', 'viewer')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE sessions (
    id_hash      text        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The idle expiry runs from here (recorded at most every few seconds).
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    -- The absolute expiry.
    expires_at   timestamptz NOT NULL
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE audit_log (
    id     bigserial   PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    -- A person's e-mail, `key:<name>` for a named key, `api-key-<n>` for one of API_KEYS.
    actor  text        NOT NULL,
    action text        NOT NULL,
    target text,
    detail jsonb       NOT NULL DEFAULT '{}'
);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
