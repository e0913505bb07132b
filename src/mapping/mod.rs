//! Source mappings: a helpdesk's own tables read into our entities through
//! SQL queries the mapping file gives, and which of our keys a changed
//! source row determines, so that a change re-reads only those rows.
//!
//! * `entity.rs`: our entities (docs/schema.md) as the mapping sees them:
//!   name, key column, the columns a query must or may produce.
//! * `file.rs`: the YAML file, checked whole before anything runs.
//! * `params.rs`: `:name` parameters in a rule's query, bound, never spliced.
//!
//! Reading a mapped source (its change capture and follower) builds on
//! these types; see issue 18's status in ARCHITECTURE.md.

mod entity;
mod file;
mod params;

use std::collections::BTreeMap;

pub use entity::{Column, ColumnKind, ENTITIES, Entity, entity};
pub use params::Params;

/// The SQL dialect a mapping's queries are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Postgres,
    MySql,
}

impl Database {
    pub fn name(self) -> &'static str {
        match self {
            Database::Postgres => "postgres",
            Database::MySql => "mysql",
        }
    }
}

/// A checked mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The file's path (or `integria` for the preset), for errors.
    pub file: String,
    pub database: Database,
    /// Names (the `name` columns) are stored HTML-escaped and are decoded
    /// once on reading.
    pub html_names: bool,
    /// Each mapped entity's query, by entity.
    pub entities: BTreeMap<&'static str, EntityQuery>,
    /// Each followed source table, by name.
    pub tables: BTreeMap<String, SourceTable>,
}

/// One entity's query over the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityQuery {
    pub entity: &'static Entity,
    pub sql: String,
    /// The line of `query:` in the file.
    pub line: usize,
}

/// A source table the capture follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTable {
    pub name: String,
    pub line: usize,
    /// What a changed row of it determines, by entity.
    pub rules: Vec<Rule>,
}

/// How a changed source row determines keys of one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub entity: &'static Entity,
    pub how: Determines,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Determines {
    /// The key is this column's value (in the old and the new row).
    Column(String),
    /// The keys are the first column of this query, run with the changed
    /// row's columns as its `:name` parameters.
    Query(Params),
}

impl SourceTable {
    /// The columns the capture records of each changed row: every rule's
    /// column and parameter, in order, once.
    pub fn captured_columns(&self) -> Vec<&str> {
        let mut columns: Vec<&str> = Vec::new();
        for rule in &self.rules {
            let names: Vec<&str> = match &rule.how {
                Determines::Column(c) => vec![c.as_str()],
                Determines::Query(p) => p.names().collect(),
            };
            for name in names {
                if !columns.contains(&name) {
                    columns.push(name);
                }
            }
        }
        columns
    }
}

/// Why a mapping was refused; nothing of it is used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    /// `at` is the member at fault (`entities.users.query`).
    #[error("{file}:{line}: {at}: {problem}")]
    Invalid {
        file: String,
        line: usize,
        at: String,
        problem: String,
    },
}

/// The mappings built into the binary, by the name `--mapping` takes.
pub const PRESETS: [(&str, &str); 1] = [("integria", include_str!("presets/integria.yaml"))];

impl Mapping {
    /// A preset by name, or else the file at that path.
    pub fn load(name_or_path: &str) -> Result<Mapping, MappingError> {
        if let Some((name, text)) = PRESETS.iter().find(|(n, _)| *n == name_or_path) {
            return Mapping::parse(name, text);
        }
        let text = std::fs::read_to_string(name_or_path).map_err(|source| MappingError::Read {
            file: name_or_path.to_owned(),
            source,
        })?;
        Mapping::parse(name_or_path, &text)
    }

    /// Parses and checks mapping text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Mapping, MappingError> {
        file::parse(file, text)
    }

    /// The source tables whose rules determine `entity`, for messages
    /// and metrics that name where data came from.
    pub fn tables_of(&self, entity: &str) -> Vec<&str> {
        self.tables
            .values()
            .filter(|t| t.rules.iter().any(|r| r.entity.name == entity))
            .map(|t| t.name.as_str())
            .collect()
    }

    /// What the capture records (each table and its columns), stored
    /// with the capture so that `serve` can tell a capture installed for
    /// another mapping.
    pub fn capture_spec(&self) -> String {
        let mut text = String::new();
        for table in self.tables.values() {
            text.push_str(&table.name);
            text.push('(');
            text.push_str(&table.captured_columns().join(","));
            text.push_str(") ");
        }
        text.trim_end().to_owned()
    }
}
