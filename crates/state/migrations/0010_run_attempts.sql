-- Riding out faults (docs/operations.md, "Faults").
--
-- Run attempts: a run whose extraction meets a transient failure (the warehouse connection
-- lost, the extractor killed) is extracted again, as attempt 2, 3, … of the same run, up to
-- `max_attempts`. `attempt_started`: the current attempt's extractor took the lease (a
-- requeued extraction that no extractor took yet is still the same attempt). `attempt_error`:
-- why the last attempt ended. `prior_rows`: rows the ended attempts published (NULL when an
-- extractor died without saying), so the run knows how many rows to wait for.
ALTER TABLE runs
    ADD COLUMN attempt integer NOT NULL DEFAULT 1,
    ADD COLUMN max_attempts integer NOT NULL DEFAULT 3,
    ADD COLUMN attempt_started boolean NOT NULL DEFAULT false,
    ADD COLUMN attempt_error text,
    ADD COLUMN prior_rows bigint DEFAULT 0,
    -- Why this run sends every row again (its snapshot was emptied), for the report.
    ADD COLUMN full_sync_reason text,
    -- A stage reported a fatal error: the run stops extracting and ends FAILED once what is
    -- in flight is accounted for, so its counts add up and `loaded` is what Mixpanel took.
    ADD COLUMN failing boolean NOT NULL DEFAULT false;

UPDATE runs SET attempt_started = true WHERE state <> 'queued';

-- A key claimed by an earlier attempt of the run is claimed again by the next one (and
-- skipped when that attempt loaded it).
ALTER TABLE sync_snapshots ADD COLUMN claim_attempt integer;

-- A target whose destination changed (project, residency, URL) leaves its activations'
-- snapshots describing another project: the next run empties them and says why.
ALTER TABLE activations ADD COLUMN snapshot_reset_reason text;

-- The outbox of ExtractRequests: a run is committed with `request_published = false`, and set
-- true once the broker confirmed its request. Control relays the request of a queued run that
-- stayed unpublished (control died between the commit and the publish, or RabbitMQ was away).
ALTER TABLE runs ADD COLUMN request_published boolean NOT NULL DEFAULT true;
CREATE INDEX runs_unpublished ON runs (created_at) WHERE NOT request_published;
