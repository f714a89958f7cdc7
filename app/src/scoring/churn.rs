//! The churn model as a [`FileScorer`]: `schema::CustomerReader` streams the
//! rows, `score::score_rows` and `score::write_scores` score and write them
//! in batches, so memory stays flat however long the file is.

use std::io::{Read, Write};

use super::{FileScorer, ScoringError, Summary};
use crate::model::{ModelError, ModelFile};
use crate::schema::{CustomerReader, SchemaError};
use crate::score::{self, RiskLevel, Scorer};

/// Rows scored per batch.
const BATCH: usize = 4096;

#[derive(Debug, Clone)]
pub struct Churn {
    scorer: Scorer,
}

impl Churn {
    /// The model compiled into the binary.
    pub fn shipped() -> Result<Self, ModelError> {
        Ok(Churn {
            scorer: Scorer::new(&ModelFile::shipped()?)?,
        })
    }
}

fn schema_error(e: SchemaError) -> ScoringError {
    match e {
        SchemaError::Io(e) => ScoringError::Io(e),
        other => ScoringError::Data(other.to_string()),
    }
}

impl FileScorer for Churn {
    fn validate(&self, input: &mut dyn Read) -> Result<u64, ScoringError> {
        let reader = CustomerReader::new(input).map_err(schema_error)?;
        let mut rows = 0;
        for row in reader {
            row.map_err(schema_error)?;
            rows += 1;
        }
        Ok(rows)
    }

    fn score(&self, input: &mut dyn Read, output: &mut dyn Write) -> Result<Summary, ScoringError> {
        let mut reader = CustomerReader::new(input).map_err(schema_error)?;
        let mut summary = Summary::default();
        let mut batch = Vec::with_capacity(BATCH);
        let mut buf = Vec::new();
        let mut first = true;
        loop {
            batch.clear();
            for row in reader.by_ref().take(BATCH) {
                batch.push(row.map_err(schema_error)?);
            }
            if batch.is_empty() && !first {
                break;
            }
            let scores = score::score_rows(&self.scorer, &batch);
            summary.rows += scores.len() as u64;
            summary.high_risk += scores.iter().filter(|s| s.risk == RiskLevel::High).count() as u64;
            buf.clear();
            score::write_scores(&self.scorer, &batch, &scores, &mut buf)?;
            // Each batch is written with the header; keep only the first.
            let body = if first {
                &buf[..]
            } else {
                let end = buf
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(buf.len(), |i| i + 1);
                &buf[end..]
            };
            output.write_all(body)?;
            first = false;
            if batch.len() < BATCH {
                break;
            }
        }
        output.flush()?;
        Ok(summary)
    }
}
