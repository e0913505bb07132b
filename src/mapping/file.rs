//! The mapping file: YAML with `database`, `names`, `entities` (one query
//! per entity) and `tables` (what a changed row of each source table
//! determines), checked whole, every problem named by file, line and member.

use std::collections::{BTreeMap, HashMap};

use marked_yaml::{FromYamlError, LoaderOptions, Spanned};
use serde::Deserialize;

use super::entity::entity;
use super::{Database, Determines, ENTITIES, EntityQuery, Mapping, MappingError, Params, Rule};
use super::{SourceTable, entity::Entity};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    database: Spanned<String>,
    #[serde(default)]
    names: Option<Spanned<String>>,
    entities: HashMap<Spanned<String>, RawEntity>,
    tables: HashMap<Spanned<String>, HashMap<Spanned<String>, Spanned<RawRule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    query: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    column: Option<Spanned<String>>,
    #[serde(default)]
    query: Option<Spanned<String>>,
}

/// Longest source table name: the capture's trigger names
/// (`ticket_authz_<table>_i`) must fit MySQL's 64 bytes.
const MAX_TABLE: usize = 49;

fn line<T>(s: &Spanned<T>) -> usize {
    s.span().start().map_or(0, |m| m.line())
}

/// A plain SQL identifier: the capture names tables and columns in DDL,
/// so nothing else may pass.
fn is_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// Whether `sql` names `table` as a whole word (any case, quoted or not).
fn reads(sql: &str, table: &str) -> bool {
    sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
        .any(|word| word.eq_ignore_ascii_case(table))
}

pub(super) fn parse(file: &str, text: &str) -> Result<Mapping, MappingError> {
    let invalid = |line: usize, at: &str, problem: String| MappingError::Invalid {
        file: file.to_owned(),
        line,
        at: at.to_owned(),
        problem,
    };
    if crate::yaml::is_blank(text) {
        return Err(MappingError::Syntax {
            file: file.to_owned(),
            line: 1,
            message: "the file holds no mapping".to_owned(),
        });
    }
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let raw: Raw = marked_yaml::from_yaml_with_options(0, text, options).map_err(|e| {
        let (line, message) = match e {
            FromYamlError::ParseYaml(load) => crate::yaml::load_error(
                &load,
                "a YAML mapping of database, names, entities and tables",
            ),
            FromYamlError::FromNode(node) => {
                let message = node.to_string();
                let line = node.into_inner().start_mark().map_or(0, |m| m.line());
                (line, message)
            }
        };
        MappingError::Syntax {
            file: file.to_owned(),
            line,
            message,
        }
    })?;

    let database = match raw.database.as_str() {
        "mysql" | "mariadb" => Database::MySql,
        "postgres" | "postgresql" => Database::Postgres,
        other => {
            return Err(invalid(
                line(&raw.database),
                "database",
                format!("`{other}` is not one of mysql, mariadb, postgres"),
            ));
        }
    };
    let html_names = match raw.names.as_ref().map(|n| (n.as_str(), line(n))) {
        None | Some(("plain", _)) => false,
        Some(("html", _)) => true,
        Some((other, at)) => {
            return Err(invalid(
                at,
                "names",
                format!("`{other}` is not one of plain, html"),
            ));
        }
    };

    let mut entities = BTreeMap::new();
    let mut raw_entities: Vec<_> = raw.entities.into_iter().collect();
    raw_entities.sort_by_key(|(name, _)| line(name));
    for (name, body) in raw_entities {
        let Some(entity) = entity(name.as_str()) else {
            let known: Vec<&str> = ENTITIES.iter().map(|e| e.name).collect();
            return Err(invalid(
                line(&name),
                &format!("entities.{}", name.as_str()),
                format!("not an entity; expected one of {}", known.join(", ")),
            ));
        };
        let query = &body.query;
        if query.trim().is_empty() {
            return Err(invalid(
                line(query),
                &format!("entities.{}.query", entity.name),
                "is empty".to_owned(),
            ));
        }
        entities.insert(
            entity.name,
            EntityQuery {
                entity,
                sql: query.trim().to_owned(),
                line: line(query),
            },
        );
    }
    if entities.is_empty() {
        return Err(invalid(0, "entities", "maps no entity".to_owned()));
    }

    let mut tables = BTreeMap::new();
    let mut raw_tables: Vec<_> = raw.tables.into_iter().collect();
    raw_tables.sort_by_key(|(name, _)| line(name));
    for (name, raw_rules) in raw_tables {
        let at = format!("tables.{}", name.as_str());
        let table = name.as_str();
        if !is_identifier(table) || table.len() > MAX_TABLE {
            return Err(invalid(
                line(&name),
                &at,
                format!("a table name is a plain identifier of at most {MAX_TABLE} bytes"),
            ));
        }
        if table.to_ascii_lowercase().starts_with("ticket_authz_") {
            return Err(invalid(
                line(&name),
                &at,
                "the ticket_authz_ tables are the capture's own".to_owned(),
            ));
        }
        if !entities.values().any(|q| reads(&q.sql, table)) {
            return Err(invalid(
                line(&name),
                &at,
                "no entity's query reads this table".to_owned(),
            ));
        }
        let mut rules = Vec::new();
        let mut raw_rules: Vec<_> = raw_rules.into_iter().collect();
        raw_rules.sort_by_key(|(entity, _)| line(entity));
        for (entity_name, rule) in raw_rules {
            let at = format!("{at}.{}", entity_name.as_str());
            let Some(query) = entities.get(entity_name.as_str()) else {
                return Err(invalid(
                    line(&entity_name),
                    &at,
                    "not an entity this mapping gives a query for".to_owned(),
                ));
            };
            let entity: &'static Entity = query.entity;
            let how = match (&rule.column, &rule.query) {
                (Some(column), None) => {
                    if !is_identifier(column) {
                        return Err(invalid(
                            line(column),
                            &format!("{at}.column"),
                            "a column name is a plain identifier".to_owned(),
                        ));
                    }
                    Determines::Column(column.as_str().to_owned())
                }
                (None, Some(sql)) => {
                    let params = Params::parse(sql.trim());
                    if params.bindings().is_empty() {
                        return Err(invalid(
                            line(sql),
                            &format!("{at}.query"),
                            "names no :column of the changed row".to_owned(),
                        ));
                    }
                    Determines::Query(params)
                }
                _ => {
                    return Err(invalid(
                        line(&rule),
                        &at,
                        format!(
                            "give either `column` (whose value is the {} key `{}`) or `query`",
                            entity.name, entity.key
                        ),
                    ));
                }
            };
            rules.push(Rule {
                entity,
                how,
                line: line(&entity_name),
            });
        }
        if rules.is_empty() {
            return Err(invalid(
                line(&name),
                &at,
                "determines nothing; name the entities a changed row determines".to_owned(),
            ));
        }
        tables.insert(
            table.to_owned(),
            SourceTable {
                name: table.to_owned(),
                line: line(&name),
                rules,
            },
        );
    }
    for query in entities.values() {
        let followed = tables
            .values()
            .any(|t: &SourceTable| t.rules.iter().any(|r| r.entity == query.entity));
        if !followed {
            return Err(invalid(
                query.line,
                &format!("entities.{}", query.entity.name),
                "no source table determines it, so its changes would never be read".to_owned(),
            ));
        }
    }
    Ok(Mapping {
        file: file.to_owned(),
        database,
        html_names,
        entities,
        tables,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::panic)]

    use super::*;

    const GOOD: &str = "\
database: postgres
entities:
  users:
    query: SELECT login AS id, created AS created_at FROM people
  tickets:
    query: SELECT n AS id, opened AS created_at, author AS requester_id FROM issues
tables:
  people:
    users: {column: login}
  issues:
    tickets: {column: n}
";

    fn error(text: &str) -> String {
        match parse("map.yaml", text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_integria_preset_parses_and_follows_every_table_it_reads() {
        let mapping = Mapping::load("integria").expect("preset");
        assert_eq!(mapping.database, Database::MySql);
        assert!(mapping.html_names);
        assert_eq!(mapping.entities.len(), 8);
        let workunit = &mapping.tables["tworkunit"];
        assert_eq!(workunit.captured_columns(), ["id"]);
        assert!(matches!(&workunit.rules[0].how, Determines::Query(p) if p.bindings() == ["id"]));
        assert_eq!(
            mapping.tables["tincidencia"].rules.len(),
            2,
            "a ticket row determines the ticket and its participants"
        );
        assert!(
            mapping
                .capture_spec()
                .contains("tworkunit_incident(id_incident)")
        );
    }

    #[test]
    fn a_good_file_gives_its_queries_and_rules() {
        let mapping = parse("map.yaml", GOOD).expect("good");
        assert_eq!(mapping.database, Database::Postgres);
        assert!(!mapping.html_names);
        assert_eq!(mapping.entities["users"].line, 4);
        assert_eq!(
            mapping.tables["issues"].rules[0].how,
            Determines::Column("n".into())
        );
    }

    #[test]
    fn each_bad_file_is_refused_naming_line_and_member() {
        let cases: [(String, &str); 10] = [
            (
                GOOD.replace("postgres", "oracle"),
                "map.yaml:1: database: `oracle`",
            ),
            (
                GOOD.replace("  users:", "  people:"),
                "map.yaml:3: entities.people: not an entity",
            ),
            (
                GOOD.replace(
                    "    users: {column: login}",
                    "    users: {column: \"login; DROP\"}",
                ),
                "tables.people.users.column: a column name is a plain identifier",
            ),
            (
                GOOD.replace("  people:\n", "  peop`le:\n"),
                "tables.peop`le: a table name is a plain identifier",
            ),
            (
                format!("{GOOD}  tworkunit:\n    users: {{column: id}}\n"),
                "map.yaml:12: tables.tworkunit: no entity's query reads this table",
            ),
            (
                GOOD.replace(
                    "    tickets: {column: n}",
                    "    tickets: {column: n, query: SELECT 1}",
                ),
                "map.yaml:11: tables.issues.tickets: give either `column`",
            ),
            (
                GOOD.replace(
                    "    tickets: {column: n}",
                    "    tickets: {query: SELECT n FROM issues}",
                ),
                "tables.issues.tickets.query: names no :column",
            ),
            (
                GOOD.replace("    tickets: {column: n}", "    grants: {column: n}"),
                "map.yaml:11: tables.issues.grants: not an entity this mapping gives a query for",
            ),
            (
                GOOD.replace(
                    "  issues:\n    tickets: {column: n}\n",
                    "  issues:\n    users: {column: author}\n",
                ),
                "map.yaml:6: entities.tickets: no source table determines it",
            ),
            (
                GOOD.replace("tables:", "tablez:"),
                "map.yaml:7: tablez: Unknown field `tablez`",
            ),
        ];
        for (text, expected) in cases {
            let message = error(&text);
            assert!(
                message.contains(expected),
                "{message}\n  expected: {expected}"
            );
        }
        assert_eq!(
            error("# nothing\n"),
            "map.yaml:1: the file holds no mapping"
        );
        let syntax = error("database: [");
        assert!(syntax.starts_with("map.yaml:"), "{syntax}");
        assert!(syntax.contains("did not find expected node"), "{syntax}");
        let read = Mapping::load("/nonexistent/map.yaml").map(|_| ());
        assert!(matches!(read, Err(MappingError::Read { .. })));
    }
}
