-- Incremental syncs with one write per row: the mapper's key claim is an upsert of the
-- activation's snapshot row itself. `row_hash` becomes what Mixpanel holds or is being sent by
-- the claiming run (NULL: never synced); `prev_hash` is what it held before that claim, put back
-- when the record fails to load or its run fails. `claim_*` say which run and batch own the key
-- in the current run (duplicates, and the same decision on a redelivery); the next run's claim
-- overwrites them, so nothing is deleted when a run ends.
DROP TABLE run_keys;

ALTER TABLE sync_snapshots
    ALTER COLUMN row_hash DROP NOT NULL,
    ADD COLUMN prev_hash bytea,
    ADD COLUMN claim_run text,
    ADD COLUMN claim_batch text,
    ADD COLUMN claim_row bigint,
    ADD COLUMN claim_send boolean;

-- Room on each page for the next run's update of the row (a HOT update: no new index entry).
ALTER TABLE sync_snapshots SET (fillfactor = 70);
