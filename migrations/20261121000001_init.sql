-- ailogs views. Counters are sums of deltas written by consumers in the same transaction as
-- the Kafka offsets they cover (consumer_offsets), so each line counts exactly once.
-- Money is integer nano-dollars (1e-9 USD): exact sums, no float drift.

CREATE TABLE consumer_offsets (
    group_id     TEXT    NOT NULL,
    topic        TEXT    NOT NULL,
    partition    INTEGER NOT NULL,
    next_offset  BIGINT  NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

CREATE TABLE model_prices (
    id                     BIGSERIAL PRIMARY KEY,
    model_pattern          TEXT    NOT NULL,  -- exact name, or a glob with '*'
    provider               TEXT,
    valid_from             TIMESTAMPTZ NOT NULL,
    input_nanousd_per_mtok        BIGINT NOT NULL,  -- nano-USD per million tokens
    output_nanousd_per_mtok       BIGINT NOT NULL,
    cached_input_nanousd_per_mtok BIGINT NOT NULL,
    version                TEXT    NOT NULL,
    UNIQUE (model_pattern, valid_from)
);

-- One row per AI request, for audit, re-pricing and billing detail.
CREATE TABLE ai_operations (
    event_time      TIMESTAMPTZ NOT NULL,
    source_topic    TEXT    NOT NULL,
    source_partition INTEGER NOT NULL,
    source_offset   BIGINT  NOT NULL,
    workspace_id    TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    service         TEXT    NOT NULL,
    request_type    TEXT,
    correlation_id  TEXT,
    conversation_id TEXT,
    user_id         TEXT,
    input_tokens    BIGINT  NOT NULL,
    output_tokens   BIGINT  NOT NULL,
    cached_tokens   BIGINT  NOT NULL,
    total_tokens    BIGINT  NOT NULL,
    cost_nanousd    BIGINT  NOT NULL,
    priced          BOOLEAN NOT NULL,
    price_version   TEXT,
    success         BOOLEAN,
    duration_ms     DOUBLE PRECISION,
    error           TEXT,
    prompt_hash     TEXT,
    PRIMARY KEY (event_time, source_topic, source_partition, source_offset)
) PARTITION BY RANGE (event_time);
-- Monthly partitions are created on demand by the consumers, before they insert.
CREATE FUNCTION ensure_ai_operations_partition(at TIMESTAMPTZ) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    month_start TIMESTAMPTZ := date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    part TEXT := format('ai_operations_%s', to_char(month_start AT TIME ZONE 'UTC', 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF ai_operations FOR VALUES FROM (%L) TO (%L)',
                           part, month_start, month_start + interval '1 month');
        EXCEPTION WHEN duplicate_table OR unique_violation THEN
            NULL;  -- another consumer created it at the same moment
        END;
    END IF;
END
$$;

CREATE INDEX ai_operations_workspace ON ai_operations (workspace_id, event_time);
CREATE INDEX ai_operations_conversation ON ai_operations (conversation_id) WHERE conversation_id IS NOT NULL;

CREATE TABLE ai_workspace_usage (
    workspace_id      TEXT   NOT NULL,
    model             TEXT   NOT NULL,
    hour              TIMESTAMPTZ NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    input_tokens      BIGINT NOT NULL DEFAULT 0,
    output_tokens     BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    total_tokens      BIGINT NOT NULL DEFAULT 0,
    cost_nanousd      BIGINT NOT NULL DEFAULT 0,
    unpriced_requests BIGINT NOT NULL DEFAULT 0,
    errors            BIGINT NOT NULL DEFAULT 0,
    duration_ms_sum   DOUBLE PRECISION NOT NULL DEFAULT 0,
    timed_requests    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (workspace_id, model, hour)
);

CREATE TABLE ai_conversations (
    conversation_id TEXT PRIMARY KEY,
    workspace_id    TEXT,
    user_id         TEXT,
    first_seen      TIMESTAMPTZ NOT NULL,
    last_seen       TIMESTAMPTZ NOT NULL,
    lines           BIGINT NOT NULL DEFAULT 0,
    requests        BIGINT NOT NULL DEFAULT 0,
    errors          BIGINT NOT NULL DEFAULT 0,
    input_tokens    BIGINT NOT NULL DEFAULT 0,
    output_tokens   BIGINT NOT NULL DEFAULT 0,
    total_tokens    BIGINT NOT NULL DEFAULT 0,
    cost_nanousd    BIGINT NOT NULL DEFAULT 0,
    duration_ms_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    timed_requests  BIGINT NOT NULL DEFAULT 0,
    models          JSONB  NOT NULL DEFAULT '{}'::jsonb,   -- model -> requests
    prompt_hashes   JSONB  NOT NULL DEFAULT '[]'::jsonb    -- hashes only: prompts are never stored
);

CREATE TABLE ai_correlations (
    correlation_id TEXT PRIMARY KEY,
    first_seen     TIMESTAMPTZ NOT NULL,
    last_seen      TIMESTAMPTZ NOT NULL,
    services       TEXT[] NOT NULL DEFAULT '{}',
    lines          BIGINT NOT NULL DEFAULT 0,
    errors         BIGINT NOT NULL DEFAULT 0,
    graph          JSONB
);

CREATE TABLE detected_patterns (
    pattern_id   TEXT NOT NULL,
    service      TEXT NOT NULL,
    minute       TIMESTAMPTZ NOT NULL,
    count        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (pattern_id, service, minute)
);

CREATE TABLE log_templates (
    template_id  TEXT PRIMARY KEY,
    service      TEXT NOT NULL,
    template     TEXT NOT NULL,
    first_seen   TIMESTAMPTZ NOT NULL,
    last_seen    TIMESTAMPTZ NOT NULL,
    count        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE ai_performance_baselines (
    service      TEXT NOT NULL,
    operation    TEXT NOT NULL,
    hour         TIMESTAMPTZ NOT NULL,
    count        BIGINT NOT NULL DEFAULT 0,
    duration_ms_sum DOUBLE PRECISION NOT NULL DEFAULT 0,
    duration_ms_max DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (service, operation, hour)
);

CREATE TABLE ai_query_history (
    id          BIGSERIAL PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    api_key_id  BIGINT,
    endpoint    TEXT NOT NULL,
    params      JSONB NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    returned    INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    key_hash    TEXT NOT NULL UNIQUE,     -- SHA-256 of the key; the key itself is never stored
    workspaces  TEXT[] NOT NULL DEFAULT '{}',  -- empty: every workspace
    rate_per_minute INTEGER NOT NULL DEFAULT 600,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at  TIMESTAMPTZ
);
