-- A warehouse may carry the PEM CA certificate its server's certificate must chain to (given
-- through the API, stored encrypted like the password), and may refuse roles that could write
-- or read server files (`require_read_only_role`). See docs/tls.md and docs/security.md.
ALTER TABLE warehouses
    ADD COLUMN ssl_root_cert_secret bytea,
    ADD COLUMN require_read_only_role boolean NOT NULL DEFAULT false;
