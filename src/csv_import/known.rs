//! What the rows of a file may refer to (organisations by id or name,
//! companies) and whether the import form's group and profile exist, read
//! from the database before the file.

use std::collections::{HashMap, HashSet};

use super::{CsvError, Format, Options};
use crate::db::{Database, DbError};
use crate::model::ALL_GROUPS;

/// What rows may refer to, read from the database before the file.
#[derive(Debug, Default)]
pub(crate) struct Known {
    organisation_ids: HashSet<String>,
    /// Lower-cased name → ids (names need not be unique).
    organisation_names: HashMap<String, Vec<String>>,
    companies: HashSet<String>,
}

/// Runs one read-only statement on either kind of database.
macro_rules! fetch_all {
    ($db:expr, $query:expr) => {
        match $db {
            Database::Postgres(pool) => $query.fetch_all(pool).await,
            Database::Sqlite(pool) => $query.fetch_all(pool).await,
        }
        .map_err(DbError::from)
    };
}

/// Whether a `count(*)` query for `id` finds a row.
async fn exists(db: &Database, sql: &'static str, id: &str) -> Result<bool, DbError> {
    let counts: Vec<i64> = fetch_all!(db, sqlx::query_scalar(sql).bind(id))?;
    Ok(counts.first().is_some_and(|n| *n > 0))
}

impl Known {
    pub(crate) async fn read(db: &Database, options: &Options) -> Result<Known, CsvError> {
        let mut known = Known::default();
        match options.format {
            Format::PortalUsers => {
                let rows: Vec<(String, String)> =
                    fetch_all!(db, sqlx::query_as("SELECT id, name FROM organisations"))?;
                for (id, name) in rows {
                    known
                        .organisation_names
                        .entry(name.trim().to_lowercase())
                        .or_default()
                        .push(id.clone());
                    known.organisation_ids.insert(id);
                }
            }
            Format::ItsmUsers => {
                let ids: Vec<String> =
                    fetch_all!(db, sqlx::query_scalar("SELECT id FROM companies"))?;
                known.companies = ids.into_iter().collect();
                if let Some(grant) = &options.grant {
                    let profiles = "SELECT count(*) FROM profiles WHERE id = $1";
                    if !exists(db, profiles, &grant.profile).await? {
                        return Err(CsvError::Option {
                            flag: "--profile",
                            message: format!("unknown profile `{}`", grant.profile),
                        });
                    }
                    let groups = "SELECT count(*) FROM groups WHERE id = $1";
                    if grant.group != ALL_GROUPS && !exists(db, groups, &grant.group).await? {
                        return Err(CsvError::Option {
                            flag: "--group",
                            message: format!(
                                "unknown group `{}` (`*` means every group)",
                                grant.group
                            ),
                        });
                    }
                }
            }
            Format::PortalOrganisations => {}
        }
        Ok(known)
    }

    /// An organisation by id, else by name (any case); an unknown or
    /// ambiguous name is an error message.
    pub(crate) fn organisation<'a>(&'a self, text: &str) -> Result<&'a str, String> {
        if let Some(id) = self.organisation_ids.get(text) {
            return Ok(id);
        }
        match self
            .organisation_names
            .get(&text.to_lowercase())
            .map(Vec::as_slice)
        {
            Some([id]) => Ok(id),
            Some(ids) if !ids.is_empty() => {
                let mut ids = ids.to_vec();
                ids.sort();
                Err(format!(
                    "organisation name `{text}` is ambiguous: ids {}; use the id",
                    ids.join(", ")
                ))
            }
            _ => Err(format!(
                "unknown organisation `{text}` (neither an id nor a name)"
            )),
        }
    }

    pub(crate) fn has_company(&self, id: &str) -> bool {
        self.companies.contains(id)
    }
}
