-- Incremental syncs: each activation's snapshot of what Mixpanel last accepted (a hash of each
-- record sent, by its unique key), the settings fingerprint that snapshot belongs to, and the
-- keys each run has seen so far (duplicate detection, and the send/skip decision made for each
-- key, so a redelivered batch is decided the same way).

ALTER TABLE activations ADD COLUMN snapshot_fingerprint text;
ALTER TABLE runs ADD COLUMN fingerprint text;

CREATE TABLE sync_snapshots (
    activation_id  text NOT NULL REFERENCES activations (id) ON DELETE CASCADE,
    key            text NOT NULL,
    row_hash       bytea NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (activation_id, key)
);

-- Rows live only while their run is unfinished; they are deleted when it ends (and with its
-- activation). No foreign key: the mapper inserts every key of every run here, and the
-- per-row reference check would cost a quarter of that insert.
CREATE TABLE run_keys (
    run_id      text NOT NULL,
    key         text NOT NULL,
    batch_id    text NOT NULL,
    row_number  bigint NOT NULL,
    send        boolean NOT NULL,
    PRIMARY KEY (run_id, key)
);
