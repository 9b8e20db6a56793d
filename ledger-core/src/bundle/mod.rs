//! Export bundles: entries of the log with the proof that they are in it, verifiable offline
//! with nothing but a verifier key the auditor trusts. The layout is specified in
//! `docs/FORMAT.md` (*Export bundles*).
//!
//! A v2 bundle is JSON Lines, written and checked as a stream in O(log n) memory whatever its
//! size:
//!
//! ```text
//! {"format":"provenance-ledger-bundle/v2","selection":{…},"checkpoint":"…","log_key":"…"}
//! {"run":{"start":0,"end":3,"left":[],"right":["<hex>",…]}}      a contiguous run of leaves
//! {"seq":0,"entry":"<base64 entry bytes>","selected":false}       its entries, in order
//! {"seq":1,"entry":"…"}
//! {"seq":2,"entry":"…"}
//! {"run":…}                                                        more runs, ascending
//! {"manifest":"<signed note>"}                                     the log's signature over it all
//! ```
//!
//! Each run proves itself: its leaves, the `left` hashes (the perfect subtrees before it) and
//! the `right` hashes (those after it) recompute the checkpoint's root
//! ([`merkle::RangeVerifier`]). A selection of every entry, or of a time range, is one run
//! with its boundary entries, so the bundle proves it holds every entry of the selection. The
//! manifest, signed by the key that signed the checkpoint, binds the selection and a BLAKE3
//! digest of every line before it: nothing can be dropped, added or relabelled.
//!
//! [`v1`] reads the earlier single-document format.

pub mod v1;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use crate::chain::PreChecked;
use crate::domain::BUNDLE_DIGEST_CONTEXT;
use crate::entry::{entry_hash, key_id, Entry};
use crate::keys::KeyRegister;
use crate::merkle::{self, Hash, RangeVerifier};
use crate::note::{self, Checkpoint};
use crate::record::Kind;
use crate::types::{EntryHash, KeyId, Seq, Timestamp};

/// The format marker of v2 bundles (the first line's `format`).
pub const BUNDLE_FORMAT: &str = "provenance-ledger-bundle/v2";

/// The first line of a v2 bundle manifest's note text.
pub const MANIFEST_HEADER: &str = "provenance-ledger/bundle-manifest/v2";

/// How many entries are checked as one signature batch (split over two threads).
const BATCH: usize = 4096;

/// What a bundle holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Selection {
    /// Every entry of the tree: one run `[0, tree size)`. Complete by construction.
    All,
    /// Every entry integrated in `[since, until)` (an open end when absent). Integration times
    /// never decrease along the log, so the range is one run of seqs; the bundle holds it with
    /// the entry just before and just after it, which prove nothing is missing at either end.
    Time {
        /// Start (inclusive), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<Timestamp>,
        /// End (exclusive), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<Timestamp>,
    },
    /// The entries about one subject (a change and what `why` links to it, gate decisions
    /// about it, policies). That they are all of them is the log's word, by its signed
    /// manifest; it cannot be proven from the tree.
    Subject {
        /// The subject as given (`pr:o/r#5`, a commit, …).
        subject: String,
    },
    /// The entries about each of several subjects (an auditor's sample): the union of their
    /// [`Selection::Subject`] selections. Attested by the manifest, like one subject.
    Subjects {
        /// The subjects, as given.
        subjects: Vec<String>,
    },
}

impl Selection {
    /// The selection in one line, as the manifest names it: `all`, `time <since>..<until>`
    /// (RFC 3339, an open end empty), `subject <subject>`.
    pub fn label(&self) -> String {
        match self {
            Selection::All => "all".into(),
            Selection::Time { since, until } => format!(
                "time {}..{}",
                since.map(|t| t.to_rfc3339()).unwrap_or_default(),
                until.map(|t| t.to_rfc3339()).unwrap_or_default()
            ),
            Selection::Subject { subject } => format!("subject {subject}"),
            Selection::Subjects { subjects } => format!("subjects {}", subjects.join(" ")),
        }
    }

    /// Where an entry integrated at `t` falls (always `In`, but for a time range).
    fn class(&self, t: Timestamp) -> Class {
        match self {
            Selection::Time { since: Some(s), .. } if t < *s => Class::Before,
            Selection::Time { until: Some(u), .. } if t >= *u => Class::After,
            _ => Class::In,
        }
    }
}

/// The first line of a v2 bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// [`BUNDLE_FORMAT`].
    pub format: String,
    /// What the bundle holds.
    pub selection: Selection,
    /// The signed C2SP checkpoint every run is proven against (with its `blake3-head` line).
    pub checkpoint: String,
    /// The verifier key (`<name>+<hex id>+<base64>`) of the key that signed the checkpoint and
    /// the manifest. A hint: it is trusted only if it is the key the auditor gives, or one
    /// that key handed over to ([`KeyRegister::hands_over`]).
    pub log_key: String,
}

/// The start of a run: leaves `[start, end)` follow, one entry line each, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// First seq of the run.
    pub start: u64,
    /// One past the last seq.
    pub end: u64,
    /// Hex hashes of the perfect subtrees covering `[0, start)`, largest first.
    pub left: Vec<String>,
    /// Hex hashes of the aligned perfect subtrees covering `[end, tree size)`, left to right.
    pub right: Vec<String>,
}

/// One line of a v2 bundle after the header, as read: a run, an entry or the manifest.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    run: Option<Run>,
    seq: Option<u64>,
    entry: Option<String>,
    selected: Option<bool>,
    manifest: Option<String>,
}

/// An entry line as written: `selected` only when false.
#[derive(Serialize)]
struct EntryOut<'a> {
    seq: u64,
    entry: &'a str,
    #[serde(skip_serializing_if = "is_true")]
    selected: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

/// How far a verified bundle shows it holds its whole selection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Completeness {
    /// Proven from the tree: every entry of the selection is in the bundle (`all`, `time`).
    Proven,
    /// Attested by the log's signed manifest only (`subject`).
    Attested,
}

/// What a verified v2 bundle holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleSummary {
    /// The selection.
    pub selection: Selection,
    /// The checkpoint the bundle is proven against.
    pub checkpoint: Checkpoint,
    /// Entries verified (selected and supporting).
    pub entries: u64,
    /// Selected entries.
    pub selected: u64,
    /// Whether the bundle proves it holds the whole selection.
    pub completeness: Completeness,
    /// The key that signed the checkpoint and the manifest.
    pub signer: KeyId,
    /// When that is not the key the auditor gave: the key given, which handed over to it.
    pub handed_over_from: Option<KeyId>,
}

/// Why a bundle does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The input is not a bundle of a known format (unreadable input, not an integrity
    /// failure).
    #[error("not a valid bundle: {0}")]
    Malformed(String),
    /// The checkpoint is not signed by a trusted key, or is malformed.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// An entry fails: bytes, proof, link, decoding, signature or signer rights.
    #[error("entry #{seq}: {reason}")]
    Tampered {
        /// The first failing entry.
        seq: u64,
        /// What fails.
        reason: String,
    },
    /// A line of the bundle is wrong (a run, an unreadable line, the order of runs).
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The bundle does not show that it holds its whole selection.
    #[error("incomplete: {0}")]
    Incomplete(String),
    /// The manifest is missing, unsigned, or does not match the bundle.
    #[error("manifest: {0}")]
    Manifest(String),
}

fn hex_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

fn parse_hashes(hashes: &[String]) -> Option<Vec<Hash>> {
    hashes
        .iter()
        .map(|h| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(h, &mut out).ok().map(|()| out)
        })
        .collect()
}

/// The `blake3-head <seq> <hex>` line of a checkpoint of `size` (mandatory in a bundle's
/// checkpoint): the seq and entry hash of the last entry.
fn blake3_head(cp: &Checkpoint) -> Result<EntryHash, BundleError> {
    let bad =
        |why: &str| BundleError::Checkpoint(format!("{why} (a bundle's checkpoint has `blake3-head <seq> <hex>`)"));
    let line =
        cp.extensions.iter().find_map(|e| e.strip_prefix("blake3-head ")).ok_or_else(|| bad("no blake3-head line"))?;
    let (seq, hash) = line.split_once(' ').ok_or_else(|| bad("malformed blake3-head line"))?;
    if cp.size == 0 || seq != (cp.size - 1).to_string() {
        return Err(bad("the blake3-head line does not name the last entry"));
    }
    EntryHash::from_hex(hash).map_err(|_| bad("malformed blake3-head hash"))
}

/// The manifest's note text (before signing).
fn manifest_text(cp: &Checkpoint, selection: &Selection, digest: &blake3::Hash, entries: u64, selected: u64) -> String {
    format!(
        "{MANIFEST_HEADER}\norigin {}\n{}\n{}\nselection {}\ndigest {}\nentries {entries} selected {selected}\n",
        cp.origin,
        cp.size,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, cp.root),
        selection.label(),
        digest.to_hex(),
    )
}

/// Writes a v2 bundle line by line: each method returns the line to write (with its newline)
/// and adds it to the digest the manifest signs. The caller proves each run (see
/// [`merkle::range_proof_from`]) and signs [`BundleWriter::manifest_text`] with the key that
/// signed the checkpoint.
pub struct BundleWriter {
    hasher: blake3::Hasher,
    selection: Selection,
    checkpoint: Checkpoint,
    entries: u64,
    selected: u64,
}

impl BundleWriter {
    /// Starts a bundle of `selection` against `signed_checkpoint`, signed by `log_key` (a
    /// verifier key string). Returns the writer and the header line.
    ///
    /// # Errors
    /// [`BundleError::Checkpoint`] if the checkpoint cannot be read or has no `blake3-head`.
    pub fn new(selection: Selection, signed_checkpoint: &str, log_key: &str) -> Result<(Self, String), BundleError> {
        let text = signed_checkpoint
            .rfind("\n\n")
            .map(|i| &signed_checkpoint[..i + 1])
            .ok_or_else(|| BundleError::Checkpoint("not a signed note".into()))?;
        let checkpoint = Checkpoint::parse(text).map_err(|e| BundleError::Checkpoint(e.to_string()))?;
        blake3_head(&checkpoint)?;
        let header = Header {
            format: BUNDLE_FORMAT.into(),
            selection: selection.clone(),
            checkpoint: signed_checkpoint.to_string(),
            log_key: log_key.to_string(),
        };
        let mut w = BundleWriter {
            hasher: blake3::Hasher::new_derive_key(BUNDLE_DIGEST_CONTEXT),
            selection,
            checkpoint,
            entries: 0,
            selected: 0,
        };
        let line = w.line(&header);
        Ok((w, line))
    }

    fn line(&mut self, v: &impl Serialize) -> String {
        // Serializing these plain structs cannot fail.
        let mut s = serde_json::to_string(v).unwrap_or_default();
        s.push('\n');
        self.hasher.update(s.as_bytes());
        s
    }

    /// The tree size of the checkpoint.
    pub fn tree_size(&self) -> u64 {
        self.checkpoint.size
    }

    /// The line starting a run of leaves `[start, end)` with its proof hashes.
    pub fn run(&mut self, start: u64, end: u64, left: &[Hash], right: &[Hash]) -> String {
        #[derive(Serialize)]
        struct RunOut<'a> {
            run: &'a Run,
        }
        let run = Run { start, end, left: hex_hashes(left), right: hex_hashes(right) };
        self.line(&RunOut { run: &run })
    }

    /// An entry line: its seq, exact bytes (base64) and whether it is selected (a supporting
    /// entry, such as a `key` entry or a boundary of a time range, is not).
    pub fn entry(&mut self, seq: u64, bytes: &[u8], selected: bool) -> String {
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes);
        self.entries += 1;
        if selected {
            self.selected += 1;
        }
        self.line(&EntryOut { seq, entry: &b64, selected })
    }

    /// The manifest's note text, to be signed by the checkpoint's key (origin as the note
    /// name) and given to [`BundleWriter::manifest_line`].
    pub fn manifest_text(&self) -> String {
        manifest_text(&self.checkpoint, &self.selection, &self.hasher.finalize(), self.entries, self.selected)
    }

    /// The last line: the signed manifest.
    pub fn manifest_line(signed_manifest: &str) -> String {
        #[derive(Serialize)]
        struct ManifestOut<'a> {
            manifest: &'a str,
        }
        let mut s = serde_json::to_string(&ManifestOut { manifest: signed_manifest }).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Entries written so far, and how many of them are selected.
    pub fn counts(&self) -> (u64, u64) {
        (self.entries, self.selected)
    }
}

/// A run being read.
struct OpenRun {
    check: RangeVerifier,
    right: Vec<Hash>,
    end: u64,
}

/// Where an entry's integration time falls against a time selection. Times never decrease
/// along the log, so its entries are all `Before`, then all `In`, then all `After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Before,
    In,
    After,
}

/// The two ends of a time selection, `[lower, upper)` in seqs, as far as the entries seen so
/// far prove them: `lower` is the first entry not before the range (shown by entry 0, or by
/// it and the entry before it), `upper` the first entry after it (shown by it and the entry
/// before it, or by the last entry of the tree).
#[derive(Default)]
struct Boundaries {
    lower: Option<u64>,
    upper: Option<u64>,
}

/// The previous entry verified (in seq order).
#[derive(Clone, Copy)]
struct Last {
    seq: u64,
    hash: EntryHash,
    time: Timestamp,
    class: Class,
}

/// Checks a v2 bundle as a stream: [`BundleVerifier::start`] with the header line, then
/// [`BundleVerifier::line`] for every further line (newline included) until it returns the
/// summary at the manifest, then [`BundleVerifier::end`] at the end of the input. Memory stays
/// O(log n + batch) whatever the bundle's size.
///
/// Checked: the checkpoint's signature (by the given key, or by a key it handed over to); every
/// run's leaves against the checkpoint's root; every entry's seq, canonical decoding, signature
/// and signer rights, replaying the `key` entries in order from the genesis entry; `prev` links
/// between consecutive entries, non-decreasing integration times, the `blake3-head` line
/// against the last entry when it is included; the selection (every entry of `all`; a time
/// range with both boundaries); the manifest's signature, selection, digest and counts.
pub struct BundleVerifier {
    name: String,
    given: VerifyingKey,
    signer: VerifyingKey,
    selection: Selection,
    checkpoint: Checkpoint,
    head: EntryHash,
    hasher: blake3::Hasher,
    register: KeyRegister,
    admin: Option<KeyId>,
    run: Option<OpenRun>,
    next_start: u64,
    runs: u64,
    last: Option<Last>,
    pending: Vec<(Entry, EntryHash)>,
    entries: u64,
    selected: u64,
    bounds: Boundaries,
    line_no: u64,
    summary: Option<BundleSummary>,
}

impl BundleVerifier {
    /// Reads the header line and opens the checkpoint with the auditor's key (`name`,
    /// `given`), or with the header's `log_key` when it names the same note name (its hand-over
    /// from `given` is checked at the end).
    ///
    /// # Errors
    /// [`BundleError::Malformed`] if the line is not a v2 bundle header;
    /// [`BundleError::Checkpoint`] if the checkpoint is not signed by either key.
    pub fn start(header_line: &[u8], name: &str, given: &VerifyingKey) -> Result<Self, BundleError> {
        let header: Header = serde_json::from_slice(header_line)
            .map_err(|e| BundleError::Malformed(format!("the first line is not a bundle header: {e}")))?;
        if header.format != BUNDLE_FORMAT {
            return Err(BundleError::Malformed(format!("format `{}`, expected `{BUNDLE_FORMAT}`", header.format)));
        }
        let cp_err = |e: note::NoteError| BundleError::Checkpoint(e.to_string());
        let (signer, text) = match note::open(&header.checkpoint, name, given) {
            Ok(text) => (*given, text),
            Err(first) => {
                let (hint_name, hint) = note::parse_verifier_key(&header.log_key)
                    .map_err(|e| BundleError::Checkpoint(format!("{first}; the bundle's log_key: {e}")))?;
                if hint_name != name || hint == *given {
                    return Err(cp_err(first));
                }
                (hint, note::open(&header.checkpoint, name, &hint).map_err(cp_err)?)
            }
        };
        let checkpoint = Checkpoint::parse(text).map_err(cp_err)?;
        let head = blake3_head(&checkpoint)?;
        let mut hasher = blake3::Hasher::new_derive_key(BUNDLE_DIGEST_CONTEXT);
        hasher.update(header_line);
        Ok(BundleVerifier {
            name: name.to_string(),
            given: *given,
            signer,
            selection: header.selection,
            checkpoint,
            head,
            hasher,
            register: KeyRegister::new(),
            admin: None,
            run: None,
            next_start: 0,
            runs: 0,
            last: None,
            pending: Vec::with_capacity(BATCH),
            entries: 0,
            selected: 0,
            bounds: Boundaries::default(),
            line_no: 1,
            summary: None,
        })
    }

    /// The checkpoint the bundle is proven against.
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    /// Reads the next line (newline included). Returns the summary when the line is the
    /// manifest and everything verified.
    ///
    /// # Errors
    /// The first integrity failure; a line without its closing `\n`; any line after the manifest.
    pub fn line(&mut self, line: &[u8]) -> Result<Option<BundleSummary>, BundleError> {
        self.line_no += 1;
        let line_no = self.line_no;
        let bad_line = |reason: String| BundleError::Line { line: line_no, reason };
        if self.summary.is_some() {
            return Err(bad_line("data after the manifest".into()));
        }
        // Every line, the manifest included, ends with `\n` (FORMAT.md): a missing one means
        // the file was cut short or edited.
        if !line.ends_with(b"\n") {
            return Err(bad_line("does not end with a newline: the bundle was truncated or altered".into()));
        }
        let l: LineIn = serde_json::from_slice(line).map_err(|e| bad_line(format!("not a bundle line: {e}")))?;
        match l {
            LineIn { run: Some(run), seq: None, entry: None, selected: None, manifest: None } => {
                self.hasher.update(line);
                self.start_run(run).map_err(bad_line)?;
                Ok(None)
            }
            LineIn { run: None, seq: Some(seq), entry: Some(entry), selected, manifest: None } => {
                self.hasher.update(line);
                self.entry(seq, &entry, selected.unwrap_or(true))?;
                Ok(None)
            }
            LineIn { run: None, seq: None, entry: None, selected: None, manifest: Some(m) } => {
                let summary = self.finish(&m)?;
                self.summary = Some(summary.clone());
                Ok(Some(summary))
            }
            _ => Err(bad_line("a line is a run, an entry or the manifest".into())),
        }
    }

    /// Ends the input: the summary if the manifest was read.
    ///
    /// # Errors
    /// [`BundleError::Manifest`] if the input ended before the manifest (a truncated bundle).
    pub fn end(self) -> Result<BundleSummary, BundleError> {
        self.summary
            .ok_or_else(|| BundleError::Manifest("the bundle ends before its manifest: it was truncated".into()))
    }

    fn start_run(&mut self, run: Run) -> Result<(), String> {
        self.close_run().map_err(|e| e.to_string())?;
        if run.start < self.next_start {
            return Err(format!("run [{}, {}) overlaps or precedes the run before it", run.start, run.end));
        }
        if self.runs == 0 && run.start != 0 {
            return Err("the first run must start at the genesis entry (seq 0)".into());
        }
        let left = parse_hashes(&run.left).ok_or("a left hash is not 32 bytes of hex")?;
        let right = parse_hashes(&run.right).ok_or("a right hash is not 32 bytes of hex")?;
        let check = RangeVerifier::new(run.start, run.end, self.checkpoint.size, left)
            .map_err(|e| format!("run [{}, {}) in a tree of {}: {e}", run.start, run.end, self.checkpoint.size))?;
        self.next_start = run.end;
        self.runs += 1;
        self.run = Some(OpenRun { check, right, end: run.end });
        Ok(())
    }

    /// Checks the open run (all its leaves read) against the checkpoint's root.
    fn close_run(&mut self) -> Result<(), BundleError> {
        let Some(run) = self.run.take() else { return Ok(()) };
        let next = run.check.next();
        if next != run.end {
            return Err(BundleError::Tampered { seq: next, reason: "missing from its run".into() });
        }
        run.check.finish(&run.right, &self.checkpoint.root).map_err(|e| BundleError::Tampered {
            seq: run.end - 1,
            reason: format!("the run ending here does not lead to the checkpoint's root: {e}"),
        })
    }

    fn entry(&mut self, seq: u64, b64: &str, selected: bool) -> Result<(), BundleError> {
        let bad = |reason: String| BundleError::Tampered { seq, reason };
        let run = self.run.as_mut().ok_or_else(|| bad("an entry outside any run".into()))?;
        if run.check.next() != seq {
            return Err(bad(format!("out of place: its run expects #{}", run.check.next())));
        }
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
            .map_err(|_| bad("the entry is not base64".into()))?;
        run.check.push(merkle::leaf_hash(&bytes)).map_err(|e| bad(e.to_string()))?;
        let hash = entry_hash(&bytes);
        let entry = Entry::decode(&bytes).map_err(|e| bad(e.to_string()))?;
        if entry.seq.0 != seq {
            return Err(bad(format!("the entry says seq {}", entry.seq)));
        }
        if let Some(last) = self.last {
            if last.seq + 1 == seq && entry.prev != last.hash {
                return Err(bad(format!("prev {} is not the hash of entry #{} ({})", entry.prev, last.seq, last.hash)));
            }
            if entry.time < last.time {
                return Err(bad(format!("integration time goes backwards from entry #{}", last.seq)));
            }
        }
        if seq + 1 == self.checkpoint.size && hash != self.head {
            return Err(bad(format!("the last entry's hash is not the checkpoint's blake3-head ({})", self.head)));
        }
        let class = self.check_selection(seq, entry.time, selected)?;
        self.entries += 1;
        if selected {
            self.selected += 1;
        }
        self.last = Some(Last { seq, hash, time: entry.time, class });
        // Only the admin key appends `key` records (and nothing else): those change the
        // register, so everything before one is checked first, and it on its own.
        let admin_signed = seq == 0 || self.admin == Some(entry.signer);
        if admin_signed {
            self.flush()?;
            self.pending.push((entry, hash));
            self.flush()?;
            if seq == 0 {
                self.admin = self.register.keys().find(|k| k.admin).map(|k| k.id);
            }
        } else {
            self.pending.push((entry, hash));
            if self.pending.len() >= BATCH {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// The selection's rules for an entry: every entry of `all` is selected; in a time range,
    /// exactly the entries in it are, and the range's ends are noted as they are proven.
    fn check_selection(&mut self, seq: u64, time: Timestamp, selected: bool) -> Result<Class, BundleError> {
        let class = self.selection.class(time);
        let bad = |reason: String| BundleError::Tampered { seq, reason };
        match &self.selection {
            Selection::All if !selected => return Err(bad("an `all` bundle selects every entry".into())),
            Selection::Time { .. } => {
                if selected != (class == Class::In) {
                    return Err(bad(format!(
                        "integrated at {time}, {} the range, but marked {}",
                        if class == Class::In { "in" } else { "outside" },
                        if selected { "selected" } else { "not selected" }
                    )));
                }
                let before = self.last.filter(|l| l.seq + 1 == seq).map(|l| l.class);
                if class != Class::Before && (seq == 0 || before == Some(Class::Before)) {
                    self.bounds.lower = Some(seq);
                }
                if class == Class::After && (seq == 0 || before.is_some_and(|c| c != Class::After)) {
                    self.bounds.upper = Some(seq);
                }
            }
            _ => {}
        }
        Ok(class)
    }

    /// Checks the pending entries' signatures as one batch (two threads for a large one),
    /// then each one's signer rights in order, applying `key` records to the register.
    fn flush(&mut self) -> Result<(), BundleError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let seqs: Vec<u64> = pending.iter().map(|(e, _)| e.seq.0).collect();
        let register = &self.register;
        let checked: Vec<_> = if pending.len() >= 512 {
            let mut first = pending;
            let second = first.split_off(first.len() / 2);
            let (a, b) = std::thread::scope(|s| {
                let h = s.spawn(|| PreChecked::check_decoded(register, second.into_iter().map(Ok).collect()));
                let a = PreChecked::check_decoded(register, first.into_iter().map(Ok).collect());
                (a, h.join())
            });
            let b = b.map_err(|_| BundleError::Malformed("a verify thread panicked".into()))?;
            a.into_iter().chain(b).collect()
        } else {
            PreChecked::check_decoded(register, pending.into_iter().map(Ok).collect())
        };
        for (pre, seq) in checked.into_iter().zip(seqs) {
            let tampered = |e: crate::Error| BundleError::Tampered { seq, reason: e.to_string() };
            let pre = pre.map_err(tampered)?;
            let time = pre.entry().time;
            if seq == 0 && pre.verified().kind() != Kind::Key {
                return Err(tampered(crate::Error::KeyRecord {
                    reason: "entry 0 is not the genesis key record".into(),
                }));
            }
            self.register.check_rights(pre.verified(), Seq(seq), time).map_err(tampered)?;
            self.register.apply(pre.verified(), Seq(seq), time);
        }
        self.pending = Vec::with_capacity(BATCH);
        Ok(())
    }

    fn finish(&mut self, signed_manifest: &str) -> Result<BundleSummary, BundleError> {
        self.close_run()?;
        self.flush()?;
        if self.runs == 0 {
            return Err(BundleError::Incomplete("no entries: the genesis entry is missing".into()));
        }
        // The checkpoint's key must be the log key of the register at its tree size, and
        // trusted from the key the auditor gave.
        let (given_id, signer_id) = (key_id(&self.given), key_id(&self.signer));
        let current = self.register.checkpoint_key().map(|k| k.id);
        if current != Some(signer_id) {
            return Err(BundleError::Checkpoint(format!(
                "signed by key {}, which is not the ledger's log key at this tree size{}",
                signer_id.short(),
                current.map(|c| format!(" ({})", c.short())).unwrap_or_default()
            )));
        }
        if !self.register.hands_over(&given_id, &signer_id) {
            return Err(BundleError::Checkpoint(format!(
                "signed by key {}, and the bundle holds no hand-over to it from the key given ({})",
                signer_id.short(),
                given_id.short()
            )));
        }
        let completeness = match &self.selection {
            Selection::All => {
                if self.runs != 1 || self.next_start != self.checkpoint.size || self.entries != self.checkpoint.size {
                    return Err(BundleError::Incomplete(format!(
                        "an `all` bundle holds every entry of the tree ({}), in one run; this one holds {}",
                        self.checkpoint.size, self.entries
                    )));
                }
                Completeness::Proven
            }
            Selection::Time { .. } => {
                // The last entry of the tree, when present, closes the range: the range ends
                // there unless it is after it; the range starts there if it is before it.
                let (mut lower, mut upper) = (self.bounds.lower, self.bounds.upper);
                if let Some(l) = self.last.filter(|l| l.seq + 1 == self.checkpoint.size) {
                    if l.class != Class::After {
                        upper = upper.or(Some(self.checkpoint.size));
                    }
                    if l.class == Class::Before {
                        lower = Some(self.checkpoint.size);
                    }
                }
                match (lower, upper) {
                    (Some(lo), Some(hi)) if hi >= lo && hi - lo == self.selected => Completeness::Proven,
                    (Some(lo), Some(hi)) => {
                        return Err(BundleError::Incomplete(format!(
                            "the range {} is entries #{lo}..#{hi} of the tree, but the bundle selects {}",
                            self.selection.label(),
                            self.selected
                        )))
                    }
                    _ => {
                        return Err(BundleError::Incomplete(format!(
                            "the bundle does not show where the range {} {} (the entries just outside it)",
                            self.selection.label(),
                            if lower.is_none() { "starts" } else { "ends" }
                        )))
                    }
                }
            }
            Selection::Subject { .. } | Selection::Subjects { .. } => Completeness::Attested,
        };
        let text = note::open(signed_manifest, &self.name, &self.signer)
            .map_err(|e| BundleError::Manifest(format!("not signed by the checkpoint's key: {e}")))?;
        let expected =
            manifest_text(&self.checkpoint, &self.selection, &self.hasher.finalize(), self.entries, self.selected);
        if text != expected {
            let field = text
                .lines()
                .zip(expected.lines())
                .find(|(a, b)| a != b)
                .map(|(a, _)| a.split(' ').next().unwrap_or(a).to_string())
                .unwrap_or_else(|| "length".into());
            return Err(BundleError::Manifest(format!(
                "it does not describe this bundle (first difference: `{field}`): lines were changed, added or removed"
            )));
        }
        Ok(BundleSummary {
            selection: self.selection.clone(),
            checkpoint: self.checkpoint.clone(),
            entries: self.entries,
            selected: self.selected,
            completeness,
            signer: signer_id,
            handed_over_from: (given_id != signer_id).then_some(given_id),
        })
    }
}

/// Reads one entry line of a bundle already verified (for printing it): its seq, bytes and
/// whether it is selected. `None` for a line that is not an entry.
pub fn read_entry_line(line: &[u8]) -> Option<(Seq, Vec<u8>, bool)> {
    let l: LineIn = serde_json::from_slice(line).ok()?;
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, l.entry?).ok()?;
    Some((Seq(l.seq?), bytes, l.selected.unwrap_or(true)))
}
