-- The ingest report of the upload behind a prediction (JSON text: columns
-- used, ignored and imputed, blank rows skipped, likely mistakes). NULL for
-- predictions recorded before the report existed. Expand-only.
ALTER TABLE predictions ADD COLUMN ingest_report TEXT;
