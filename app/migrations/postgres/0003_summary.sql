-- The summary of a completed prediction (JSON text: level counts, mean
-- probability, histogram, factor counts, the customers most at risk),
-- written by the worker with the result. NULL for predictions completed
-- before summaries existed: the API computes theirs once, on first request.
-- Expand-only.
ALTER TABLE predictions ADD COLUMN summary TEXT;
