//! Data that leaves and arrives: the export of links and of a link's raw
//! clicks (CSV or JSON, streamed page by page), and the import of other
//! shorteners' exports.
//!
//! * [`export`]: [`export::Format`], the columns of each export (one list
//!   each: [`export::LINK_COLUMNS`], [`export::CLICK_COLUMNS`]), the pages
//!   read by keyset paging (links by slug, clicks by day and id) and written as
//!   chunks, so that no export holds more than a page in memory.
//! * [`import`]: [`import::Source`], each source's own format parsed into
//!   [`import::Entry`] rows, and [`import::run`], which creates them through
//!   `links::Links::create` (a slug that exists is skipped or reported,
//!   never overwritten; a dry run writes nothing).
//!
//! CSV is RFC 4180 with a header row, read and written by the `csv` crate.

pub mod export;
pub mod import;

use crate::error::ErrorCode;

/// Largest import body accepted, in bytes (its own `DefaultBodyLimit` on
/// the import route; past it a 413 naming it).
pub const MAX_IMPORT_BYTES: usize = 10 * 1024 * 1024;

/// What is wrong with an export or import request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// `format` is not `csv` or `json`.
    #[error("`format` must be `csv` or `json`.")]
    InvalidFormat,
    /// `source` is not one we read.
    #[error("`source` must be one of shlink, yourls, kutt, bitly, csv.")]
    InvalidSource,
    /// `dry_run` is not `true` or `false`.
    #[error("`dry_run` must be `true` or `false`.")]
    InvalidDryRun,
    /// The body is not the source's format at all (the message says why);
    /// single bad rows are reported per line instead.
    #[error("The file is not a {tool} export: {reason}.")]
    InvalidImport {
        /// The source named.
        tool: &'static str,
        /// What did not parse.
        reason: String,
    },
}

impl TransferError {
    /// The API's `error.code` of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            TransferError::InvalidFormat => ErrorCode::InvalidFormat,
            TransferError::InvalidSource => ErrorCode::InvalidSource,
            TransferError::InvalidDryRun => ErrorCode::InvalidQuery,
            TransferError::InvalidImport { .. } => ErrorCode::InvalidImport,
        }
    }
}
