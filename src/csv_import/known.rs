//! What the rows of a file may refer to (organisations by id or name,
//! companies) and whether the import form's group and profile exist, read
//! from the database before the file.

use std::collections::{HashMap, HashSet};

use super::{CsvError, Format, Options};
use sqlx::{Encode, Executor, FromRow, IntoArguments, Pool, Type};

use crate::db::{Database, DbError, Dialect};
use crate::model::ALL_GROUPS;

/// What rows may refer to, read from the database before the file.
#[derive(Debug, Default)]
pub struct Known {
    organisation_ids: HashSet<String>,
    /// Lower-cased name → ids (names need not be unique).
    organisation_names: HashMap<String, Vec<String>>,
    companies: HashSet<String>,
}

/// Whether a `count(*)` query for `id` finds a row.
async fn exists<D>(pool: &Pool<D>, sql: &'static str, id: &str) -> Result<bool, DbError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    (i64,): for<'r> FromRow<'r, D::Row>,
    for<'q> &'q str: Encode<'q, D> + Type<D>,
{
    let counts: Vec<i64> = sqlx::query_scalar(sql).bind(id).fetch_all(pool).await?;
    Ok(counts.first().is_some_and(|n| *n > 0))
}

impl Known {
    /// What the database would hold: organisations as (id, name), and
    /// company ids.
    pub fn new<'a>(
        organisations: impl IntoIterator<Item = (&'a str, &'a str)>,
        companies: impl IntoIterator<Item = &'a str>,
    ) -> Known {
        let mut known = Known::default();
        for (id, name) in organisations {
            known.add_organisation(id.to_owned(), name);
        }
        known.companies = companies.into_iter().map(str::to_owned).collect();
        known
    }

    fn add_organisation(&mut self, id: String, name: &str) {
        self.organisation_names
            .entry(name.trim().to_lowercase())
            .or_default()
            .push(id.clone());
        self.organisation_ids.insert(id);
    }

    pub(crate) async fn read(db: &Database, options: &Options) -> Result<Known, CsvError> {
        match db {
            Database::Postgres(pool) => Known::read_from(pool, options).await,
            Database::Sqlite(pool) => Known::read_from(pool, options).await,
        }
    }

    async fn read_from<D>(pool: &Pool<D>, options: &Options) -> Result<Known, CsvError>
    where
        D: Dialect,
        for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
        D::Arguments: IntoArguments<D>,
        (i64,): for<'r> FromRow<'r, D::Row>,
        (String,): for<'r> FromRow<'r, D::Row>,
        (String, String): for<'r> FromRow<'r, D::Row>,
        for<'q> &'q str: Encode<'q, D> + Type<D>,
    {
        let mut known = Known::default();
        match options.format {
            Format::PortalUsers => {
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT id, name FROM organisations")
                        .fetch_all(pool)
                        .await
                        .map_err(DbError::from)?;
                for (id, name) in rows {
                    known.add_organisation(id, &name);
                }
            }
            Format::ItsmUsers => {
                let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM companies")
                    .fetch_all(pool)
                    .await
                    .map_err(DbError::from)?;
                known.companies = ids.into_iter().collect();
                if let Some(grant) = &options.grant {
                    let profiles = "SELECT count(*) FROM profiles WHERE id = $1";
                    if !exists(pool, profiles, &grant.profile).await? {
                        return Err(CsvError::Option {
                            flag: "--profile",
                            message: format!("unknown profile `{}`", grant.profile),
                        });
                    }
                    let groups = "SELECT count(*) FROM groups WHERE id = $1";
                    if grant.group != ALL_GROUPS && !exists(pool, groups, &grant.group).await? {
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
