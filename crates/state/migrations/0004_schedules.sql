-- Schedules and cancellation.
-- `next_run_at`: the activation's next scheduled slot (NULL for manual schedules);
-- `scheduled`: the schedule `next_run_at` was computed from, so an edited schedule is
-- recomputed. `cancel_requested_at`: CancelRun was called; the extractor stops reading and the
-- run ends CANCELLED once what was extracted is accounted for.
ALTER TABLE activations ADD COLUMN next_run_at timestamptz, ADD COLUMN scheduled jsonb;
CREATE INDEX activations_next_run_idx ON activations (next_run_at) WHERE next_run_at IS NOT NULL;
ALTER TABLE runs ADD COLUMN cancel_requested_at timestamptz, ADD COLUMN scheduled_for timestamptz;
