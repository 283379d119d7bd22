-- Patterns added through the API, beside the shipped catalog (pipeline/patterns.yaml).
-- `definition` is the pattern as the API accepted it (id, regex, severity, category,
-- suggestion, condition, examples). Every process reloads the table when it changes.
CREATE TABLE custom_patterns (
    id          TEXT PRIMARY KEY,
    definition  JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
