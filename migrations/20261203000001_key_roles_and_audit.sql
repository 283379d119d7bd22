-- Issue 17: a key's role and rate limits; the audit row's caller, tool, scope and status.
ALTER TABLE api_keys
    ADD COLUMN role   TEXT  NOT NULL DEFAULT 'reader' CHECK (role IN ('admin', 'reader', 'ingest')),
    ADD COLUMN limits JSONB NOT NULL DEFAULT '{}';

ALTER TABLE ai_query_history
    ADD COLUMN key_name TEXT NOT NULL DEFAULT '',
    ADD COLUMN tool     TEXT,
    ADD COLUMN scope    TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN method   TEXT NOT NULL DEFAULT 'GET',
    ADD COLUMN status   INTEGER NOT NULL DEFAULT 0;

ALTER TABLE ai_query_history ALTER COLUMN returned DROP NOT NULL;

CREATE INDEX ai_query_history_at ON ai_query_history (at DESC);
