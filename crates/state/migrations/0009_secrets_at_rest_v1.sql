-- Secrets at rest, format 1 (docs/security.md): the key is derived from MIXSYNC_SECRET_KEY with
-- argon2id and this installation's salt, made here once. The salt is not secret; it only has to
-- differ between installations, which 32 bytes of gen_random_uuid()'s randomness (PostgreSQL 13+)
-- ensure.
CREATE TABLE installation (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret_salt bytea NOT NULL CHECK (length(secret_salt) >= 16),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation (secret_salt)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));

-- Values stored before this migration get a leading 0x00 (format 0: a bare SHA-256 key, no key
-- id, associated data naming the column only). Control rewrites each one in format 1 at its next
-- start (StateStore::rotate_secrets) and logs how many.
UPDATE warehouses SET password_secret = '\x00'::bytea || password_secret
 WHERE password_secret IS NOT NULL;
UPDATE warehouses SET ssl_root_cert_secret = '\x00'::bytea || ssl_root_cert_secret
 WHERE ssl_root_cert_secret IS NOT NULL;
UPDATE targets SET token_secret = '\x00'::bytea || token_secret
 WHERE token_secret IS NOT NULL;
UPDATE targets SET service_account_secret = '\x00'::bytea || service_account_secret
 WHERE service_account_secret IS NOT NULL;
