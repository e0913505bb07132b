//! `ticket-authz import-csv`: helpdesk CSV exports (support-portal users
//! and organisations, IT-service-desk users) upserted into the database by
//! id, all or nothing, after every row has been checked.
//!
//! * `read.rs`: bytes to records (BOM, delimiter, line numbers, UTF-8).
//! * `portal.rs`, `itsm.rs`: records to rows, one format each.
//! * `known.rs`: what rows may refer to, read from the database first.
//! * `sql.rs`: what each format writes, and the comparison and upsert SQL.
//! * `write.rs`: rows to staging tables, then that SQL, in one
//!   transaction.
//! * `progress.rs`: a bar on a terminal, plain lines otherwise.
//! * `command.rs`: the subcommand's flags and output.

mod command;
mod itsm;
mod known;
mod portal;
mod progress;
mod read;
mod sql;
mod write;

use std::fmt;
use std::path::Path;

pub use command::{ImportCsvArgs, main};
pub use known::Known;
pub use progress::Progress;

use crate::db::{Database, DbError};
use crate::model::{OrgAccess, UserAccess, UserKind};
use crate::time::Timestamp;

/// The export formats `import-csv` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Support-portal users: name, email, external_id, role, restriction,
    /// organization.
    PortalUsers,
    /// Support-portal organisations: name, id, domain_names,
    /// shared_tickets, shared_comments.
    PortalOrganisations,
    /// IT-service-desk users: id_user, password, real_name, email, … in a
    /// fixed order, then custom fields.
    ItsmUsers,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::PortalUsers => "portal-users",
            Format::PortalOrganisations => "portal-organisations",
            Format::ItsmUsers => "itsm-users",
        }
    }
}

/// The import form's "global profile": which kind every imported user is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GlobalProfile {
    /// Staff who work tickets through group grants: agents.
    Standard,
    /// Customers: end-users.
    External,
}

impl GlobalProfile {
    fn kind(self) -> UserKind {
        match self {
            GlobalProfile::Standard => UserKind::Agent,
            GlobalProfile::External => UserKind::EndUser,
        }
    }
}

/// A grant every row of an `itsm-users` import receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowGrant {
    pub profile: String,
    /// `*` means every group.
    pub group: String,
}

/// Rows changed above this count are written as one bulk change: a single
/// revision without row images, which followers apply by reloading in full
/// (cheaper than replaying that many rows one by one).
pub const BULK_THRESHOLD: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Options {
    pub format: Format,
    /// Compare and report, then roll back.
    pub dry_run: bool,
    /// `--group` and `--profile` (itsm-users only).
    pub grant: Option<RowGrant>,
    /// `--global-profile` (itsm-users only); absent keeps each existing
    /// user's kind and makes new users end-users.
    pub global_profile: Option<GlobalProfile>,
    /// See [`BULK_THRESHOLD`].
    pub bulk_threshold: usize,
}

impl Options {
    pub fn new(format: Format) -> Self {
        Options {
            format,
            dry_run: false,
            grant: None,
            global_profile: None,
            bulk_threshold: BULK_THRESHOLD,
        }
    }
}

/// Where in the file: a line and, when one field is at fault, its column
/// (1-based number and header name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub line: u64,
    pub column: Option<(usize, String)>,
}

impl Place {
    /// A whole line (a header, a row with the wrong number of fields).
    pub(crate) fn line(line: u64) -> Place {
        Place { line, column: None }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some((number, name)) => write!(f, "{}:{number} ({name})", self.line),
            None => write!(f, "{}", self.line),
        }
    }
}

/// A row or header that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub place: Place,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something in the file was left out on purpose.
    Notice,
    /// A value was replaced by another.
    Warning,
}

/// Something the import did that the administrator should know about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub level: Level,
    pub place: Place,
    pub message: String,
}

/// Everything that can stop an import. Nothing has been written when one
/// of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
    #[error("{}", invalid_text(file, problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
    #[error("{flag}: {message}")]
    Option { flag: &'static str, message: String },
    #[error("{0}")]
    Database(#[from] DbError),
}

fn invalid_text(file: &str, problems: &[Problem]) -> String {
    let mut text = String::new();
    for p in problems {
        text.push_str(&format!("{file}:{}: {}\n", p.place, p.message));
    }
    let s = if problems.len() == 1 { "" } else { "s" };
    text.push_str(&format!(
        "{file}: {} problem{s}; nothing was written",
        problems.len()
    ));
    text
}

/// What an import found and did.
#[derive(Debug, Clone)]
pub struct Report {
    pub file: String,
    /// Data rows read (a header is not a row).
    pub rows: usize,
    /// Rows whose id was not in the database.
    pub new: usize,
    /// Rows that change a stored user or organisation (its columns, its
    /// explicit organisations or domains, or a missing grant).
    pub changed: usize,
    pub unchanged: usize,
    pub notes: Vec<Note>,
    /// Whether anything was committed (not on a dry run, nor when every
    /// row was unchanged).
    pub written: bool,
    /// Whether the write was recorded as one bulk change.
    pub bulk: bool,
    /// The database's revision after the import.
    pub revision: u64,
}

/// A user row as the file gives it. `None` in `kind`, `ticket_access` and
/// `default_organisation` means "keep what is stored" (new users get the
/// schema's default); whether `email`, `name`, `suspended` and `company`
/// are written at all depends on the format (see `write.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub kind: Option<UserKind>,
    pub suspended: Option<bool>,
    pub ticket_access: Option<UserAccess>,
    pub default_organisation: Option<String>,
    pub company: Option<String>,
    /// Explicit memberships; non-empty replaces the stored ones.
    pub organisations: Vec<String>,
}

/// An organisation row; `ticket_access` `None` keeps what is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgRow {
    pub id: String,
    pub name: String,
    pub ticket_access: Option<OrgAccess>,
    /// Lower case; non-empty replaces the stored domains.
    pub domains: Vec<String>,
}

/// The rows of a checked file.
#[derive(Debug)]
pub enum Rows {
    Users(Vec<UserRow>),
    Organisations(Vec<OrgRow>),
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Users(rows) => rows.len(),
            Rows::Organisations(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rows' ids, in file order.
    pub fn ids(&self) -> Vec<&str> {
        match self {
            Rows::Users(rows) => rows.iter().map(|r| r.id.as_str()).collect(),
            Rows::Organisations(rows) => rows.iter().map(|r| r.id.as_str()).collect(),
        }
    }
}

/// The import time, in whole seconds: `created_at` of new users and
/// `added_at` of new domains. Whole seconds keep an organisation import
/// and a user import run right after it in order (domain added at or
/// before the user's creation), whatever the database's precision.
fn import_time() -> Timestamp {
    Timestamp::from_unix_seconds(Timestamp::now().nanos().div_euclid(1_000_000_000))
}

/// Reads, checks and writes one file. On any problem nothing is written
/// and every problem is returned; a dry run reports the same counts and
/// rolls back.
pub async fn import_file(
    db: &Database,
    path: &Path,
    options: &Options,
    progress: &Progress,
) -> Result<Report, CsvError> {
    check_options(options)?;
    let known = known::Known::read(db, options).await?;
    let file = path.display().to_string();
    let (rows, notes) = {
        let (path, name, options, progress) = (
            path.to_owned(),
            file.clone(),
            options.clone(),
            progress.clone(),
        );
        // Parsing is CPU work proportional to the file: off the async threads.
        tokio::task::spawn_blocking(move || {
            let source = read::Source::open(&path, &name, progress)?;
            check_rows(source, &options, &known)
        })
        .await
        .map_err(|e| CsvError::Read {
            file: file.clone(),
            message: e.to_string(),
        })??
    };
    let outcome = write::apply(db, &rows, options, import_time(), progress).await?;
    Ok(Report {
        file,
        rows: rows.len(),
        new: outcome.new,
        changed: outcome.changed,
        unchanged: rows.len().saturating_sub(outcome.new + outcome.changed),
        notes,
        written: outcome.written,
        bulk: outcome.bulk,
        revision: outcome.revision,
    })
}

/// Reads and checks every row of an export held in `input` (`file` names
/// it in messages) against what the database holds (`known`), as
/// [`import_file`] does before it writes: the rows, or every problem.
pub fn read_rows(
    input: impl std::io::Read + Send + 'static,
    file: &str,
    options: &Options,
    known: &Known,
) -> Result<(Rows, Vec<Note>), CsvError> {
    check_options(options)?;
    let source = read::Source::from_reader(Box::new(input), 0, file, Progress::hidden())?;
    check_rows(source, options, known)
}

fn check_rows(
    mut source: read::Source,
    options: &Options,
    known: &Known,
) -> Result<(Rows, Vec<Note>), CsvError> {
    match options.format {
        Format::PortalUsers => portal::users(&mut source, known),
        Format::PortalOrganisations => portal::organisations(&mut source),
        Format::ItsmUsers => itsm::users(&mut source, known, options),
    }
}

/// The import form's fields belong to the service-desk format only.
fn check_options(options: &Options) -> Result<(), CsvError> {
    if options.format == Format::ItsmUsers {
        return Ok(());
    }
    let misplaced = if options.grant.is_some() {
        Some("--group")
    } else if options.global_profile.is_some() {
        Some("--global-profile")
    } else {
        None
    };
    match misplaced {
        Some(flag) => Err(CsvError::Option {
            flag,
            message: format!(
                "applies to --format itsm-users only, not {}",
                options.format.name()
            ),
        }),
        None => Ok(()),
    }
}
