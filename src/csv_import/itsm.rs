//! IT-service-desk user exports: the columns `id_user, password,
//! real_name, email, telephone, description, avatar, disabled, id_company,
//! num_employee, enable_login` in this order, then custom fields; the
//! header line is optional. The password column is never decoded, copied
//! or echoed: its bytes stay in the reader's record buffer until the next
//! row overwrites them.

use super::known::Known;
use super::read::{Columns, Log, Record, Source};
use super::{CsvError, Level, Note, Options, Place, Rows, UserRow};

pub(crate) const COLUMNS: [&str; 11] = [
    "id_user",
    "password",
    "real_name",
    "email",
    "telephone",
    "description",
    "avatar",
    "disabled",
    "id_company",
    "num_employee",
    "enable_login",
];
const ID: usize = 0;
const REAL_NAME: usize = 2;
const EMAIL: usize = 3;
const DISABLED: usize = 7;
const COMPANY: usize = 8;
const ENABLE_LOGIN: usize = 10;

/// The service desk's "no company".
const NO_COMPANY: &str = "0";

/// A first line whose first field is `id_user` is the header.
fn is_header(record: &Record<'_>) -> bool {
    record
        .names()
        .first()
        .is_some_and(|first| first == COLUMNS[ID])
}

/// A header must name the fixed columns in their order (a file in another
/// order would put, say, emails into names).
fn check_header(record: &Record<'_>, log: &mut Log, columns: &Columns) {
    for (index, (found, expected)) in record.names().iter().zip(COLUMNS).enumerate() {
        if found != expected {
            log.problem(
                columns.place(record.line, index),
                format!(
                    "header says `{found}` where `{expected}` belongs: itsm-users columns come in a fixed order ({})",
                    COLUMNS.join(", ")
                ),
            );
        }
    }
}

/// An `itsm-users` export; every row gets `options.global_profile`'s kind.
pub(crate) fn users(
    source: &mut Source,
    known: &Known,
    options: &Options,
) -> Result<(Rows, Vec<Note>), CsvError> {
    let mut columns = Columns(COLUMNS.iter().map(|c| (*c).to_owned()).collect());
    let kind = options.global_profile.map(super::GlobalProfile::kind);
    let mut log = Log::default();
    let mut rows = Vec::new();
    let mut read = 0usize;
    let mut custom_fields_noted = false;
    let mut login_disabled: Option<(Place, usize)> = None;
    while let Some(record) = source.next_record()? {
        read += 1;
        if read == 1 && is_header(&record) {
            check_header(&record, &mut log, &columns);
            // Custom fields are named by the header when there is one.
            columns
                .0
                .extend(record.names().into_iter().skip(COLUMNS.len()));
            continue;
        }
        if record.len() < COLUMNS.len() {
            log.problem(
                Place::line(record.line),
                format!(
                    "the row has {} fields; itsm-users rows have at least {} ({})",
                    record.len(),
                    COLUMNS.len(),
                    COLUMNS.join(", ")
                ),
            );
            continue;
        }
        if record.len() > COLUMNS.len() && !custom_fields_noted {
            custom_fields_noted = true;
            log.note(
                Level::Notice,
                columns.place(record.line, COLUMNS.len()),
                "custom fields (column 12 on) are not used; ignored",
            );
        }
        if log.boolean(&record, &columns, ENABLE_LOGIN) == Some(false) {
            let (_, count) =
                login_disabled.get_or_insert_with(|| (columns.place(record.line, ENABLE_LOGIN), 0));
            *count += 1;
        }
        if let Some(mut row) = user(&mut log, &record, &columns, known) {
            row.kind = kind;
            rows.push(row);
        }
    }
    if let Some((place, count)) = login_disabled {
        log.note(
            Level::Notice,
            place,
            format!(
                "enable_login=0 on {count} row(s), the first here: imported and not suspended (logging in is the helpdesk's concern, not ticket access)"
            ),
        );
    }
    log.finish(source.file(), Rows::Users(rows))
}

fn user(log: &mut Log, record: &Record<'_>, columns: &Columns, known: &Known) -> Option<UserRow> {
    let line = record.line;
    let id = log.text(record, columns, ID);
    let id_ok = log.id(id, columns.place(line, ID));
    let email = log.text(record, columns, EMAIL);
    if !email.is_empty() && !crate::dataset::valid_email(email) {
        log.problem(
            columns.place(line, EMAIL),
            format!("`{email}` is not an email address (local@domain)"),
        );
    }
    let name = log.text(record, columns, REAL_NAME);
    let suspended = log.boolean(record, columns, DISABLED).unwrap_or(false);
    let company = log.text(record, columns, COMPANY);
    let company = if company.is_empty() || (company == NO_COMPANY && !known.has_company(company)) {
        None
    } else if known.has_company(company) {
        Some(company.to_owned())
    } else {
        log.problem(
            columns.place(line, COMPANY),
            format!("unknown company `{company}`: companies must exist before users are imported"),
        );
        None
    };
    id_ok.then(|| UserRow {
        id: id.to_owned(),
        email: (!email.is_empty()).then(|| email.to_owned()),
        name: (!name.is_empty()).then(|| name.to_owned()),
        suspended: Some(suspended),
        company,
        ..UserRow::default()
    })
}
