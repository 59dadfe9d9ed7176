-- One rate limit per Mixpanel project, shared by every loader process (docs/operations.md,
-- "One cap per project"). Each request a loader sends first takes a grant here: the database
-- serialises the grants of a project and its clock is the one time line every process shares.

-- A target's cap: records (events or profile updates) per second for its project.
ALTER TABLE targets ADD COLUMN rate_limit_per_second integer NOT NULL DEFAULT 30000
    CHECK (rate_limit_per_second > 0);

-- The grants of the last minute or so, per project key (`<base URL>#<project id>`). Unlogged:
-- after a crash of the database the log is empty, which only forgets the last minute's spending.
CREATE UNLOGGED TABLE rate_grants (
    project text NOT NULL,
    granted_at timestamptz NOT NULL,
    records bigint NOT NULL,
    bytes bigint NOT NULL
);
CREATE INDEX rate_grants_project_at ON rate_grants (project, granted_at);

-- A project Mixpanel answered 429 for: nothing is granted before `hold_until` (its Retry-After,
-- when it sent one), and the cap is `base_factor` of itself at `throttled_at`, coming back to
-- whole linearly over the ramp. Each 429 takes a fifth off the factor in force (at least a
-- quarter of the cap stays): one 429 from a request that arrived early costs little, while a
-- project whose real limit is lower (another tool sends to it too) is met with fewer requests
-- at each 429 until they stop (multiplicative decrease, additive increase).
CREATE UNLOGGED TABLE rate_holds (
    project text PRIMARY KEY,
    hold_until timestamptz NOT NULL,
    throttled_at timestamptz NOT NULL,
    base_factor double precision NOT NULL
);

-- The share of the cap in force at `p_at` after the hold `h` (1 once its ramp is over).
CREATE FUNCTION mixsync_rate_factor(h rate_holds, p_at timestamptz, p_ramp_ms integer)
RETURNS double precision LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN h.project IS NULL THEN 1.0
                ELSE least(1.0, h.base_factor + (1.0 - h.base_factor)
                      * greatest(0.0, extract(epoch FROM p_at - h.throttled_at))
                      / greatest(p_ramp_ms / 1000.0, 0.001)) END
$$;

-- Takes a grant of `p_records` records and `p_bytes` bytes for `p_project` and returns how long
-- the caller waits before sending (milliseconds from now, on the database's clock) and the
-- records granted in the window ending at the grant, this one included.
--
-- A grant is placed at the earliest time, not before now nor before the project's last grant,
-- at which the records granted within the preceding `p_second_ms` plus this request stay within
-- the cap, and the same for bytes within `p_minute_ms`: a sliding log, so no rolling window ever
-- holds more than the cap (a request larger than the whole cap waits for an empty window).
CREATE FUNCTION mixsync_rate_grant(
    p_project text,
    p_records bigint,
    p_bytes bigint,
    p_per_second bigint,
    p_per_minute_bytes bigint,
    p_second_ms integer,
    p_minute_ms integer,
    p_ramp_ms integer,
    OUT wait_ms double precision,
    OUT in_window bigint
) LANGUAGE plpgsql AS $$
DECLARE
    now_at timestamptz;
    w_second interval := make_interval(secs => p_second_ms / 1000.0);
    w_minute interval := make_interval(secs => p_minute_ms / 1000.0);
    cap bigint := p_per_second;
    slot timestamptz;
    slot_bytes timestamptz;
    total bigint;
    hold rate_holds%ROWTYPE;
    g record;
BEGIN
    -- One grant at a time per project, across every process; the time is read once the lock
    -- is held, so waiting for it does not count as waiting for the grant.
    PERFORM pg_advisory_xact_lock(hashtextextended('mixsync.rate:' || p_project, 0));
    now_at := clock_timestamp();
    SELECT * INTO hold FROM rate_holds WHERE project = p_project;
    slot := now_at;
    IF FOUND THEN
        slot := greatest(slot, hold.hold_until);
        -- After a 429 the cap comes back linearly over the ramp.
        cap := greatest(1, floor(p_per_second * mixsync_rate_factor(hold, slot, p_ramp_ms))::bigint);
    END IF;
    slot := greatest(slot, (SELECT max(granted_at) FROM rate_grants WHERE project = p_project));

    SELECT coalesce(sum(records), 0) INTO total
      FROM rate_grants WHERE project = p_project AND granted_at > slot - w_second;
    IF total > 0 AND total + p_records > cap THEN
        FOR g IN SELECT granted_at, records FROM rate_grants
                  WHERE project = p_project AND granted_at > slot - w_second ORDER BY granted_at LOOP
            slot := g.granted_at + w_second;
            total := total - g.records;
            EXIT WHEN total = 0 OR total + p_records <= cap;
        END LOOP;
    END IF;

    slot_bytes := slot;
    SELECT coalesce(sum(bytes), 0) INTO total
      FROM rate_grants WHERE project = p_project AND granted_at > slot - w_minute;
    IF total > 0 AND total + p_bytes > p_per_minute_bytes THEN
        FOR g IN SELECT granted_at, bytes FROM rate_grants
                  WHERE project = p_project AND granted_at > slot - w_minute ORDER BY granted_at LOOP
            slot_bytes := g.granted_at + w_minute;
            total := total - g.bytes;
            EXIT WHEN total = 0 OR total + p_bytes <= p_per_minute_bytes;
        END LOOP;
    END IF;
    slot := greatest(slot, slot_bytes);

    INSERT INTO rate_grants VALUES (p_project, slot, p_records, p_bytes);
    SELECT sum(records) INTO in_window
      FROM rate_grants WHERE project = p_project AND granted_at > slot - w_second AND granted_at <= slot;
    -- Grants older than both windows count for nothing.
    DELETE FROM rate_grants
     WHERE project = p_project AND granted_at < now_at - w_minute - w_second;
    -- From the last moment before the answer leaves, so the caller's wait starts as late as
    -- possible after the database's clock.
    wait_ms := greatest(0, extract(epoch FROM slot - clock_timestamp()) * 1000);
END
$$;

-- Mixpanel answered 429 for `p_project`: no grant before `p_hold_ms` from now (its Retry-After;
-- 0 when it sent none), and the cap drops to four fifths of the share in force, then ramps back
-- over `p_ramp_ms`. A later hold never shortens an earlier one.
CREATE FUNCTION mixsync_rate_throttled(p_project text, p_hold_ms integer, p_ramp_ms integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    now_at timestamptz := clock_timestamp();
    hold rate_holds%ROWTYPE;
    factor double precision := 1.0;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('mixsync.rate:' || p_project, 0));
    SELECT * INTO hold FROM rate_holds WHERE project = p_project;
    IF FOUND THEN
        factor := mixsync_rate_factor(hold, now_at, p_ramp_ms);
    END IF;
    INSERT INTO rate_holds (project, hold_until, throttled_at, base_factor)
    VALUES (p_project, now_at + make_interval(secs => p_hold_ms / 1000.0), now_at,
            greatest(0.25, factor * 0.8))
    ON CONFLICT (project) DO UPDATE
       SET hold_until = greatest(rate_holds.hold_until, EXCLUDED.hold_until),
           throttled_at = EXCLUDED.throttled_at,
           base_factor = EXCLUDED.base_factor;
END
$$;
