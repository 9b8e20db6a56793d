//! What the GitHub and GitLab API backfills share: the response an object came from (kept on
//! every record as its source) and the files a change touched, put on the change record
//! (`paths`, `lines_added`, `lines_removed`).

use sha2::{Digest as _, Sha256};

use ledger_core::domain::MAX_RECORD_BYTES;
use ledger_core::record::{Body, Record, Source};
use ledger_core::types::{Digest, DigestAlg};
use ledger_core::Result;

/// The API response an object came from.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    /// The resource path, without host or query (`/repos/o/r/pulls/7/reviews`).
    pub resource: &'a str,
    /// The response body, exactly as received.
    pub body: &'a [u8],
}

impl Response<'_> {
    /// The source of a record made from this response: `<forge>-api:<resource>` and the
    /// SHA-256 of the body.
    pub(crate) fn source(&self, forge: &str) -> Result<Source> {
        let digest = Digest::new(DigestAlg::Sha256, Sha256::digest(self.body).to_vec())?;
        Ok(Source::payload(format!("{forge}-api:{}", self.resource), digest))
    }
}

/// A file a pull or merge request changed (GitHub: an item of `/pulls/{n}/files`; GitLab: of
/// `/merge_requests/{iid}/diffs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedFile {
    /// Its path after the change.
    pub path: String,
    /// Lines added.
    pub additions: u64,
    /// Lines removed.
    pub deletions: u64,
}

/// Puts the complete file list `files` on every change record of `records`: the sorted,
/// distinct paths, and (when `lines_known` and the change counts none yet) the lines added
/// and removed. More than [`crate::git::MAX_PATHS`] paths, or a list that would take the record
/// within 1 KiB of [`MAX_RECORD_BYTES`], leaves the paths unknown: never partly known.
///
/// # Errors
/// A record that cannot be encoded.
pub(crate) fn attach(records: &mut [Record], files: &[ChangedFile], lines_known: bool) -> Result<()> {
    for record in records {
        let Body::Change(change) = &mut record.body else { continue };
        if lines_known && change.lines_added.is_none() && change.lines_removed.is_none() {
            change.lines_added = Some(files.iter().map(|f| f.additions).sum());
            change.lines_removed = Some(files.iter().map(|f| f.deletions).sum());
        }
        let mut paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
        paths.sort();
        paths.dedup();
        if paths.len() <= crate::git::MAX_PATHS {
            change.paths = Some(paths);
            if ledger_core::encoding::to_canonical(record, "record")?.len() > MAX_RECORD_BYTES - 1024 {
                if let Body::Change(change) = &mut record.body {
                    change.paths = None;
                }
            }
        }
    }
    Ok(())
}
