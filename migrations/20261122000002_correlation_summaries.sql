-- Completed request summaries: the root cause and duration as columns (for listing and
-- filtering), the whole analysis in `graph`.
ALTER TABLE ai_correlations
    ADD COLUMN root_cause  TEXT,
    ADD COLUMN duration_ms DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE INDEX ai_correlations_last_seen ON ai_correlations (last_seen);
