-- mixsync state: configuration (warehouses, targets, activations), runs,
-- idempotent progress accounting and failed records. Ids are UUID v7 text.
-- Secret columns hold ChaCha20-Poly1305 ciphertext (nonce || ciphertext).

CREATE TABLE warehouses (
    id               text PRIMARY KEY,
    name             text NOT NULL UNIQUE,
    host             text NOT NULL,
    port             integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    database         text NOT NULL,
    username         text NOT NULL,
    params           jsonb NOT NULL DEFAULT '{}'::jsonb,
    password_secret  bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE targets (
    id                         text PRIMARY KEY,
    name                       text NOT NULL UNIQUE,
    project_id                 bigint NOT NULL CHECK (project_id > 0),
    residency                  text NOT NULL,
    base_url                   text,
    service_account_username   text NOT NULL,
    token_secret               bytea,
    service_account_secret     bytea,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE activations (
    id              text PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    warehouse_id    text NOT NULL REFERENCES warehouses (id),
    target_id       text NOT NULL REFERENCES targets (id),
    query           text NOT NULL,
    object          text NOT NULL,
    sync_behaviour  text NOT NULL,
    mapping         jsonb NOT NULL,
    options         jsonb NOT NULL,
    schedule        jsonb NOT NULL,
    paused          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activations_warehouse_idx ON activations (warehouse_id);
CREATE INDEX activations_target_idx ON activations (target_id);

CREATE TABLE runs (
    id                   text PRIMARY KEY,
    activation_id        text NOT NULL REFERENCES activations (id) ON DELETE CASCADE,
    state                text NOT NULL,
    extracted            bigint NOT NULL DEFAULT 0,
    skipped              bigint NOT NULL DEFAULT 0,
    loaded               bigint NOT NULL DEFAULT 0,
    failed               bigint NOT NULL DEFAULT 0,
    total_rows           bigint,
    extraction_finished  boolean NOT NULL DEFAULT false,
    error_message        text,
    full_resync          boolean NOT NULL DEFAULT false,
    replay_of_run_id     text REFERENCES runs (id) ON DELETE SET NULL,
    settings             jsonb NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    finished_at          timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_activation_idx ON runs (activation_id, id DESC);
-- At most one unfinished run per activation.
CREATE UNIQUE INDEX runs_one_active_per_activation
    ON runs (activation_id) WHERE state IN ('queued', 'running');

-- One row per (run, stage, batch): a redelivered report finds its row and
-- is not counted again.
CREATE TABLE batch_reports (
    run_id       text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stage        text NOT NULL,
    batch_id     text NOT NULL,
    extracted    bigint NOT NULL DEFAULT 0,
    skipped      bigint NOT NULL DEFAULT 0,
    loaded       bigint NOT NULL DEFAULT 0,
    failed       bigint NOT NULL DEFAULT 0,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, stage, batch_id)
);

CREATE TABLE failed_records (
    id             text PRIMARY KEY,
    run_id         text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    activation_id  text NOT NULL,
    stage          text NOT NULL,
    batch_id       text NOT NULL,
    row_number     bigint NOT NULL,
    key            text NOT NULL DEFAULT '',
    field          text NOT NULL DEFAULT '',
    rule           text NOT NULL DEFAULT '',
    message        text NOT NULL DEFAULT '',
    row            jsonb NOT NULL DEFAULT '{}'::jsonb,
    record_json    text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX failed_records_run_idx ON failed_records (run_id, row_number, id);
CREATE INDEX failed_records_activation_idx ON failed_records (activation_id, created_at);
