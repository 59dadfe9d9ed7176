-- The extractor holds a lease on its run's extraction, renewed every few seconds, and acks the
-- ExtractRequest as soon as it has the lease, so an extraction can take longer than RabbitMQ's
-- delivery-acknowledgement timeout (30 minutes by default). Control queues the extraction again
-- when a lease expires (its extractor died). `extract_done`: the extractor published its last
-- report (control may not have accounted it yet).
ALTER TABLE runs
    ADD COLUMN extract_lease text,
    ADD COLUMN extract_lease_until timestamptz,
    ADD COLUMN extract_done boolean NOT NULL DEFAULT false;

CREATE INDEX runs_extract_lease ON runs (extract_lease_until)
    WHERE state = 'running' AND NOT extract_done;
