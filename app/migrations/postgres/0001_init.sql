-- Uploads, predictions and the job queue table. Times are Unix milliseconds
-- (BIGINT) so that the same queries run on SQLite and PostgreSQL.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    filename    TEXT NOT NULL,
    object_key  TEXT NOT NULL,
    size_bytes  BIGINT NOT NULL,
    rows        BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX uploads_by_user ON uploads (user_id, created_at);

CREATE TABLE predictions (
    id            TEXT PRIMARY KEY,
    upload_id     TEXT NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    user_id       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'completed', 'failed')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    rows          BIGINT,
    high_risk     BIGINT,
    output_key    TEXT,
    error         TEXT,
    created_at    BIGINT NOT NULL,
    started_at    BIGINT,
    completed_at  BIGINT
);
CREATE INDEX predictions_by_upload ON predictions (upload_id);

-- The table queue: a job is visible when visible_at <= now; taking it sets
-- a lease (visible_at = now + lease) and a fresh lease_token that ack and
-- extend must present. dead_at marks a job that used all its attempts.
CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    prediction_id  TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    visible_at     BIGINT NOT NULL,
    lease_token    TEXT,
    enqueued_at    BIGINT NOT NULL,
    dead_at        BIGINT
);
CREATE INDEX jobs_ready ON jobs (visible_at) WHERE dead_at IS NULL;
