-- Issue 5: dead letters kept in full, and failed records that can be replayed.

-- The source row as it travelled (an encoded mixsync.v1.Row) with its
-- column names, so a replay re-maps exactly what the warehouse returned;
-- the run that sent it again, so a second replay skips what was fixed.
ALTER TABLE failed_records
    ADD COLUMN columns            text[],
    ADD COLUMN row_proto          bytea,
    ADD COLUMN replayed_by_run_id text REFERENCES runs (id) ON DELETE SET NULL;

-- Every message taken from the dead-letter queue, decodable or not.
-- No foreign key on run_id: a poison message may name no run, or one
-- that was deleted.
CREATE TABLE dead_letters (
    id              text PRIMARY KEY,
    run_id          text,
    activation_id   text,
    batch_id        text,
    stage           text NOT NULL,
    queue           text NOT NULL DEFAULT '',
    reason          text NOT NULL DEFAULT '',
    headers         jsonb NOT NULL DEFAULT '{}'::jsonb,
    original        bytea NOT NULL,
    failed_records  bigint NOT NULL DEFAULT 0,
    received_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_run_idx ON dead_letters (run_id, id);
