//! The churn model as a [`FileScorer`]: `schema::CustomerReader` streams the
//! rows, `Scorer::score` and `score::ScoreWriter` score and write them one
//! at a time, and `summary::SummaryBuilder` summarises them in the same
//! pass, so memory stays flat however long the file is.

use std::io::{Read, Write};

use super::{Checked, FileScorer, ScoringError, Summary};
use retainwise_churn::decode::{MAX_DECODED_BYTES, WorkbookSpool};
use retainwise_churn::model::{ModelError, ModelFile};
use retainwise_churn::schema::{CustomerReader, Purpose, SchemaError};
use retainwise_churn::score::{ScoreWriter, Scorer};
use retainwise_churn::summary::{SummaryBuilder, SummaryError, summarise_scored_csv};

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

/// An `.xlsx` upload is held in an unlinked temporary file under `TMPDIR`
/// while its first sheet is read, not in memory: the 1,000,000-row
/// benchmark workbook is 77 MiB (see the service README's benchmark).
fn temporary_file() -> std::io::Result<std::fs::File> {
    tempfile::tempfile()
}

/// A scoring reader over `input`, a workbook spooled to a temporary file.
fn customers(input: &mut dyn Read) -> Result<CustomerReader<'_>, SchemaError> {
    CustomerReader::with_spool(
        input,
        Purpose::Score,
        MAX_DECODED_BYTES,
        WorkbookSpool::File(&temporary_file),
    )
}

fn schema_error(e: SchemaError) -> ScoringError {
    match e {
        SchemaError::Io(e) => ScoringError::Io(e),
        other => ScoringError::Data(other.to_string()),
    }
}

impl FileScorer for Churn {
    fn validate(&self, input: &mut dyn Read) -> Result<u64, ScoringError> {
        self.check(input).map(|checked| checked.rows)
    }

    fn check(&self, input: &mut dyn Read) -> Result<Checked, ScoringError> {
        let mut reader = customers(input).map_err(schema_error)?;
        let mut rows = 0;
        for row in reader.by_ref() {
            row.map_err(schema_error)?;
            rows += 1;
        }
        Ok(Checked {
            rows,
            report: Some(reader.report()),
        })
    }

    fn score(&self, input: &mut dyn Read, output: &mut dyn Write) -> Result<Summary, ScoringError> {
        // Row by row: a bad row stops the job, and the caller aborts the
        // output upload, so nothing half-written becomes visible.
        // The upload check read this very file whole and refused repeated
        // ids; the worker does not pay for that table again.
        let reader = customers(input).map_err(schema_error)?.without_id_check();
        let mut summary = SummaryBuilder::new(self.scorer.thresholds());
        let mut writer = ScoreWriter::new(output)?;
        for row in reader {
            let row = row.map_err(schema_error)?;
            let score = self.scorer.score(&row);
            summary.add_score(&self.scorer, &row, &score);
            writer.write(&self.scorer, &row, &score)?;
        }
        writer.finish()?.flush()?;
        Ok(summary.finish())
    }

    fn summarise(&self, output: &mut dyn Read) -> Result<Summary, ScoringError> {
        summarise_scored_csv(output, self.scorer.thresholds()).map_err(|e| match e {
            SummaryError::Io(e) => ScoringError::Io(e),
            malformed => ScoringError::Data(malformed.to_string()),
        })
    }
}
