//! Support-portal exports, whose first line names the columns: users
//! (`name, email, external_id, role, restriction, organization`) and
//! organisations (`name, id, domain_names, shared_tickets,
//! shared_comments`). Columns may come in any order; others are ignored
//! with a notice.

use super::known::Known;
use super::read::{Columns, Log, Record, Source};
use super::{CsvError, Level, Note, OrgAccess, OrgRow, Place, Rows, UserAccess, UserKind, UserRow};

/// A column a format reads: its name and other spellings accepted.
type Wanted = (&'static str, &'static [&'static str]);

const USER_COLUMNS: [Wanted; 6] = [
    ("name", &[]),
    ("email", &[]),
    ("external_id", &[]),
    ("role", &[]),
    ("restriction", &[]),
    ("organization", &["organisation"]),
];
const NAME: usize = 0;
const EMAIL: usize = 1;
const EXTERNAL_ID: usize = 2;
const ROLE: usize = 3;
const RESTRICTION: usize = 4;
const ORGANIZATION: usize = 5;

const ORG_COLUMNS: [Wanted; 5] = [
    ("name", &[]),
    ("id", &[]),
    ("domain_names", &[]),
    ("shared_tickets", &[]),
    ("shared_comments", &[]),
];
const ORG_NAME: usize = 0;
const ORG_ID: usize = 1;
const DOMAINS: usize = 2;
const SHARED_TICKETS: usize = 3;
const SHARED_COMMENTS: usize = 4;

/// The header: the file's column names and where each wanted column is.
struct Header<const N: usize> {
    columns: Columns,
    at: [Option<usize>; N],
}

impl<const N: usize> Header<N> {
    /// Reads the first record as the header. Unknown columns are noted;
    /// a wanted column named twice is a problem. `None` for an empty file.
    fn read(
        source: &mut Source,
        log: &mut Log,
        format: &str,
        wanted: &[Wanted; N],
    ) -> Result<Option<Self>, CsvError> {
        let Some(record) = source.next_record()? else {
            log.problem(
                Place::line(1),
                format!("the file is empty: {format} needs a header line naming its columns"),
            );
            return Ok(None);
        };
        let columns = Columns(record.names());
        let line = record.line;
        let mut at = [None; N];
        for (index, name) in columns.0.iter().enumerate() {
            let known = wanted
                .iter()
                .position(|(w, other)| w == name || other.contains(&name.as_str()));
            match known {
                Some(k) => match at.get_mut(k) {
                    Some(Some(first)) => log.problem(
                        columns.place(line, index),
                        format!("column `{name}` is also column {}", *first + 1),
                    ),
                    Some(slot) => *slot = Some(index),
                    None => {}
                },
                None => log.note(
                    Level::Notice,
                    columns.place(line, index),
                    format!("column not used by {format}; ignored"),
                ),
            }
        }
        Ok(Some(Header { columns, at }))
    }

    /// Reads the data rows: those with the header's field count go
    /// through `row`, which keeps the usable ones.
    fn rows<T>(
        &self,
        source: &mut Source,
        log: &mut Log,
        mut row: impl FnMut(&Self, &mut Log, &Record<'_>) -> Option<T>,
    ) -> Result<Vec<T>, CsvError> {
        let mut rows = Vec::new();
        while let Some(record) = source.next_record()? {
            if self.fits(&record, log)
                && let Some(kept) = row(self, log, &record)
            {
                rows.push(kept);
            }
        }
        Ok(rows)
    }

    /// Where a record's field count differs from the header's.
    fn fits(&self, record: &Record<'_>, log: &mut Log) -> bool {
        let fits = record.len() == self.columns.0.len();
        if !fits {
            log.problem(
                Place::line(record.line),
                format!(
                    "the row has {} fields, the header {}",
                    record.len(),
                    self.columns.0.len()
                ),
            );
        }
        fits
    }

    /// The trimmed text of a wanted column ("" when the file lacks it).
    fn text<'r>(&self, log: &mut Log, record: &Record<'r>, wanted: usize) -> &'r str {
        match self.at.get(wanted).copied().flatten() {
            Some(index) => log.text(record, &self.columns, index),
            None => "",
        }
    }

    /// The place of a wanted column on a line (the line alone when the
    /// file lacks the column).
    fn place(&self, line: u64, wanted: usize) -> Place {
        match self.at.get(wanted).copied().flatten() {
            Some(index) => self.columns.place(line, index),
            None => Place::line(line),
        }
    }

    fn has(&self, wanted: usize) -> bool {
        self.at.get(wanted).copied().flatten().is_some()
    }
}

fn role(text: &str) -> Result<Option<UserKind>, String> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "" => Ok(None),
        "end-user" | "end_user" => Ok(Some(UserKind::EndUser)),
        "agent" => Ok(Some(UserKind::Agent)),
        "admin" => Ok(Some(UserKind::Superadmin)),
        _ => Err(format!(
            "unknown role `{text}`, expected end-user, agent or admin"
        )),
    }
}

/// The user-level setting from a portal restriction; `None` keeps what is
/// stored.
fn restriction(
    log: &mut Log,
    place: Place,
    text: &str,
    kind: Option<UserKind>,
) -> Option<UserAccess> {
    if text.is_empty() {
        return None;
    }
    if matches!(kind, Some(UserKind::Agent | UserKind::Superadmin)) {
        log.note(
            Level::Notice,
            place,
            format!("restriction `{text}` ignored: agents and admins get their access from grants"),
        );
        return None;
    }
    match text.to_ascii_lowercase().as_str() {
        "requested" => Some(UserAccess::Own),
        "organization" | "organisation" => Some(UserAccess::Organisation),
        // Agent-only restrictions: the portal treats an end-user with one as
        // seeing their own requests only.
        "groups" | "assigned" => {
            log.note(
                Level::Warning,
                place,
                format!("restriction `{text}` does not apply to end-users; set to own (requested)"),
            );
            Some(UserAccess::Own)
        }
        _ => {
            log.problem(
                place,
                format!("unknown restriction `{text}`, expected requested or organization"),
            );
            None
        }
    }
}

/// `organization`: ids or names separated by `|`, resolved against the
/// database; the first is the default organisation.
fn memberships(log: &mut Log, place: Place, text: &str, known: &Known) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for piece in text.split('|').map(str::trim).filter(|p| !p.is_empty()) {
        match known.organisation(piece) {
            Ok(id) if ids.iter().any(|i| i == id) => {}
            Ok(id) => ids.push(id.to_owned()),
            Err(message) => log.problem(place.clone(), message),
        }
    }
    ids
}

/// A `portal-users` export.
pub(crate) fn users(source: &mut Source, known: &Known) -> Result<(Rows, Vec<Note>), CsvError> {
    let mut log = Log::default();
    let format = "portal-users";
    let Some(header) = Header::read(source, &mut log, format, &USER_COLUMNS)? else {
        return log.finish(source.file(), Rows::Users(Vec::new()));
    };
    if !header.has(EXTERNAL_ID) && !header.has(EMAIL) {
        log.problem(
            Place::line(1),
            "no external_id or email column: one of them is the user id",
        );
    }
    let rows = header.rows(source, &mut log, |header, log, record| {
        user(header, log, record, known)
    })?;
    log.finish(source.file(), Rows::Users(rows))
}

fn user(header: &Header<6>, log: &mut Log, record: &Record<'_>, known: &Known) -> Option<UserRow> {
    let line = record.line;
    let external_id = header.text(log, record, EXTERNAL_ID);
    let email = header.text(log, record, EMAIL);
    let (id, id_column) = if external_id.is_empty() {
        (email, EMAIL)
    } else {
        (external_id, EXTERNAL_ID)
    };
    let id_ok = if id.is_empty() {
        log.problem(
            header.place(line, EXTERNAL_ID),
            "external_id or email is required: it is the user id",
        );
        false
    } else {
        log.id(id, header.place(line, id_column))
    };
    if !email.is_empty() && !crate::dataset::valid_email(email) {
        log.problem(
            header.place(line, EMAIL),
            format!("`{email}` is not an email address (local@domain)"),
        );
    }
    let kind = role(header.text(log, record, ROLE)).unwrap_or_else(|message| {
        log.problem(header.place(line, ROLE), message);
        None
    });
    let restriction_text = header.text(log, record, RESTRICTION);
    let ticket_access = restriction(log, header.place(line, RESTRICTION), restriction_text, kind);
    let organization = header.text(log, record, ORGANIZATION);
    let organisations = memberships(log, header.place(line, ORGANIZATION), organization, known);
    let name = header.text(log, record, NAME);
    id_ok.then(|| UserRow {
        id: id.to_owned(),
        email: (!email.is_empty()).then(|| email.to_owned()),
        name: (!name.is_empty()).then(|| name.to_owned()),
        kind,
        ticket_access,
        default_organisation: organisations.first().cloned(),
        organisations,
        ..UserRow::default()
    })
}

/// A `portal-organisations` export.
pub(crate) fn organisations(source: &mut Source) -> Result<(Rows, Vec<Note>), CsvError> {
    let mut log = Log::default();
    let format = "portal-organisations";
    let Some(header) = Header::read(source, &mut log, format, &ORG_COLUMNS)? else {
        return log.finish(source.file(), Rows::Organisations(Vec::new()));
    };
    for (wanted, name) in [(ORG_ID, "id"), (ORG_NAME, "name")] {
        if !header.has(wanted) {
            log.problem(
                Place::line(1),
                format!("no {name} column: {format} needs id and name"),
            );
        }
    }
    let rows = header.rows(source, &mut log, |header, log, record| {
        organisation(header, log, record)
    })?;
    log.finish(source.file(), Rows::Organisations(rows))
}

fn organisation(header: &Header<5>, log: &mut Log, record: &Record<'_>) -> Option<OrgRow> {
    let line = record.line;
    let id = header.text(log, record, ORG_ID);
    let id_ok = log.id(id, header.place(line, ORG_ID));
    let name = header.text(log, record, ORG_NAME);
    if name.is_empty() && header.has(ORG_NAME) {
        log.problem(header.place(line, ORG_NAME), "must not be empty");
    }
    let mut domains: Vec<String> = Vec::new();
    for domain in header.text(log, record, DOMAINS).split_whitespace() {
        let lower = domain.to_ascii_lowercase();
        if !crate::dataset::valid_domain(&lower) {
            log.problem(
                header.place(line, DOMAINS),
                format!("`{domain}` is not a domain name"),
            );
        } else if domains.contains(&lower) {
            log.problem(
                header.place(line, DOMAINS),
                format!("`{domain}` is listed twice"),
            );
        } else {
            domains.push(lower);
        }
    }
    let shared = |log: &mut Log, wanted| {
        header
            .at
            .get(wanted)
            .copied()
            .flatten()
            .and_then(|index| log.boolean(record, &header.columns, index))
    };
    let tickets = shared(log, SHARED_TICKETS);
    let comments = shared(log, SHARED_COMMENTS);
    let ticket_access = match (tickets, comments) {
        (None, None) => None,
        // Commenting on colleagues' tickets presumes seeing them.
        (None | Some(false), Some(true)) => {
            log.note(
                Level::Warning,
                header.place(line, SHARED_COMMENTS),
                "shared_comments without shared_tickets has no effect; ticket access is own",
            );
            Some(OrgAccess::Own)
        }
        (None | Some(false), _) => Some(OrgAccess::Own),
        (Some(true), Some(true)) => Some(OrgAccess::CommentAll),
        (Some(true), _) => Some(OrgAccess::ViewAll),
    };
    (id_ok && !name.is_empty()).then(|| OrgRow {
        id: id.to_owned(),
        name: name.to_owned(),
        ticket_access,
        domains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        assert_eq!(role("admin"), Ok(Some(UserKind::Superadmin)));
        assert_eq!(role("End-User"), Ok(Some(UserKind::EndUser)));
        assert_eq!(role(""), Ok(None));
        assert!(role("owner").is_err_and(|e| e.contains("`owner`")));
    }

    #[test]
    fn restrictions_by_kind() {
        let mut log = Log::default();
        let at = Place::line(2);
        let end_user = Some(UserKind::EndUser);
        assert_eq!(
            restriction(&mut log, at.clone(), "organization", end_user),
            Some(UserAccess::Organisation)
        );
        assert_eq!(
            restriction(&mut log, at.clone(), "groups", None),
            Some(UserAccess::Own)
        );
        assert_eq!(
            restriction(&mut log, at.clone(), "organization", Some(UserKind::Agent)),
            None
        );
        assert_eq!(restriction(&mut log, at, "", end_user), None);
    }
}
