//! Foreign-key actions the capture must see: MariaDB and MySQL fire no
//! trigger for a row a cascade deletes or a `SET NULL` or `ON UPDATE
//! CASCADE` rewrites, so a followed table's rows could change unlogged
//! (Integria deletes a work unit; its `tworkunit_incident` links go by
//! cascade). For each foreign key whose child is a followed table and whose
//! action changes rows, a `BEFORE DELETE` or `BEFORE UPDATE` trigger on the
//! parent logs those child rows as the cascade is about to change them,
//! numbered under the same counter lock. A self-referencing cascade (a
//! ticket's sub-tickets) is followed down the whole tree; a cascade reached
//! through another cascade is refused, naming both keys.

use std::collections::BTreeMap;

use sqlx::mysql::MySqlConnection;

use super::MappedError;
use super::capture::plain;
use crate::mapping::Mapping;

/// What a foreign key does to its child rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Cascade,
    SetNull,
    /// RESTRICT, NO ACTION, SET DEFAULT (which InnoDB refuses): nothing
    /// changes under the capture.
    Nothing,
}

impl Action {
    fn parse(rule: &str) -> Action {
        match rule {
            "CASCADE" => Action::Cascade,
            "SET NULL" => Action::SetNull,
            _ => Action::Nothing,
        }
    }
}

/// One foreign key of the database.
#[derive(Debug, Clone)]
struct Key {
    name: String,
    child: String,
    parent: String,
    /// (child column, parent column), in key order.
    columns: Vec<(String, String)>,
    on_delete: Action,
    on_update: Action,
}

impl Key {
    fn child_columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(c, _)| c.as_str())
    }

    fn self_referencing(&self) -> bool {
        self.child == self.parent
    }
}

/// A trigger the cascades need: its name, its table and its statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Trigger {
    pub name: String,
    pub table: String,
    pub sql: String,
}

async fn keys(conn: &mut MySqlConnection) -> Result<Vec<Key>, MappedError> {
    let rows: Vec<(String, String, String, String, String, String, String)> = sqlx::query_as(
        "SELECT rc.CONSTRAINT_NAME, rc.TABLE_NAME, rc.REFERENCED_TABLE_NAME, \
                rc.DELETE_RULE, rc.UPDATE_RULE, k.COLUMN_NAME, k.REFERENCED_COLUMN_NAME \
           FROM information_schema.REFERENTIAL_CONSTRAINTS rc \
           JOIN information_schema.KEY_COLUMN_USAGE k \
             ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA \
            AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME \
            AND k.TABLE_NAME = rc.TABLE_NAME \
          WHERE rc.CONSTRAINT_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_SCHEMA = DATABASE() \
          ORDER BY rc.TABLE_NAME, rc.CONSTRAINT_NAME, k.ORDINAL_POSITION",
    )
    .fetch_all(conn)
    .await?;
    let mut out: BTreeMap<(String, String), Key> = BTreeMap::new();
    for (name, child, parent, on_delete, on_update, column, referenced) in rows {
        out.entry((child.clone(), name.clone()))
            .or_insert_with(|| Key {
                name,
                child,
                parent,
                columns: Vec::new(),
                on_delete: Action::parse(&on_delete),
                on_update: Action::parse(&on_update),
            })
            .columns
            .push((column, referenced));
    }
    Ok(out.into_values().collect())
}

/// `JSON_OBJECT` of the captured columns of a row of `alias`, with the
/// key's columns replaced by `replaced` (the values the action writes).
fn image(captured: &[&str], alias: &str, replaced: &[(&str, String)]) -> String {
    let members: Vec<String> = captured
        .iter()
        .map(|c| match replaced.iter().find(|(r, _)| r == c) {
            Some((_, value)) => format!("'{c}', {value}"),
            None => format!("'{c}', CAST({alias}.`{c}` AS CHAR)"),
        })
        .collect();
    format!("JSON_OBJECT({})", members.join(", "))
}

/// The statements that log, for one key and one event of its parent, the
/// child rows the action changes.
fn logging(key: &Key, captured: &[&str], deleting: bool, all: &[Key]) -> String {
    let matches: Vec<String> = key
        .columns
        .iter()
        .map(|(c, p)| format!("c.`{c}` = OLD.`{p}`"))
        .collect();
    let matches = matches.join(" AND ");
    let action = if deleting {
        key.on_delete
    } else {
        key.on_update
    };
    let replaced: Vec<(&str, String)> = key
        .columns
        .iter()
        .map(|(c, p)| {
            let value = if action == Action::SetNull {
                "NULL".to_owned()
            } else {
                format!("CAST(NEW.`{p}` AS CHAR)")
            };
            (c.as_str(), value)
        })
        .collect();
    let child = &key.child;
    let stamp = "UNIX_TIMESTAMP(SYSDATE(6))";
    let insert =
        "INSERT INTO ticket_authz_changes (revision, table_name, op, old_row, new_row, changed_at)";
    let select = if deleting && action == Action::Cascade {
        // The rows deleted with it, and down a self-referencing cascade
        // the rows deleted with those.
        let tree = all
            .iter()
            .find(|k| k.self_referencing() && k.child == *child && k.on_delete == Action::Cascade);
        match tree {
            None => format!(
                "SELECT r + ROW_NUMBER() OVER (), '{child}', 'D', {}, NULL, {stamp} FROM `{child}` c WHERE {matches}",
                image(captured, "c", &[])
            ),
            Some(tree) => {
                let mut columns: Vec<&str> = captured.to_vec();
                for (c, p) in &tree.columns {
                    for name in [c.as_str(), p.as_str()] {
                        if !columns.contains(&name) {
                            columns.push(name);
                        }
                    }
                }
                let list = |alias: &str| {
                    columns
                        .iter()
                        .map(|c| format!("{alias}.`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let down: Vec<String> = tree
                    .columns
                    .iter()
                    .map(|(c, p)| format!("c.`{c}` = d.`{p}`"))
                    .collect();
                format!(
                    "WITH RECURSIVE d AS (SELECT {} FROM `{child}` c WHERE {matches} \
                     UNION ALL SELECT {} FROM `{child}` c JOIN d ON {}) \
                     SELECT r + ROW_NUMBER() OVER (), '{child}', 'D', {}, NULL, {stamp} FROM d",
                    list("c"),
                    list("c"),
                    down.join(" AND "),
                    image(captured, "d", &[])
                )
            }
        }
    } else {
        format!(
            "SELECT r + ROW_NUMBER() OVER (), '{child}', 'U', {}, {}, {stamp} FROM `{child}` c WHERE {matches}",
            image(captured, "c", &[]),
            image(captured, "c", &replaced)
        )
    };
    let changed = if deleting {
        String::new()
    } else {
        // An update that leaves the key alone changes no child row.
        let same: Vec<String> = key
            .columns
            .iter()
            .map(|(_, p)| format!("OLD.`{p}` <=> NEW.`{p}`"))
            .collect();
        format!("IF NOT ({}) THEN\n", same.join(" AND "))
    };
    let end = if deleting { "" } else { "END IF;\n" };
    format!(
        "{changed}SELECT revision INTO r FROM ticket_authz_revision WHERE id = 1 FOR UPDATE;\n\
         {insert} {select};\n\
         SET n = ROW_COUNT();\n\
         UPDATE ticket_authz_revision SET revision = r + n WHERE id = 1;\n{end}"
    )
}

/// The triggers the database's cascading foreign keys into followed
/// tables need, or why they cannot be captured.
pub(super) async fn triggers(
    conn: &mut MySqlConnection,
    mapping: &Mapping,
    or_replace: bool,
) -> Result<Vec<Trigger>, MappedError> {
    let all = keys(conn).await?;
    let relevant: Vec<&Key> = all
        .iter()
        .filter(|k| mapping.tables.contains_key(&k.child))
        .filter(|k| k.on_delete != Action::Nothing || k.on_update != Action::Nothing)
        .collect();
    for key in &relevant {
        let names = [&key.name, &key.child, &key.parent];
        if let Some(bad) = names.iter().find(|n| !plain(n)) {
            return Err(MappedError::Capture(format!(
                "foreign key `{}` of `{}`: `{bad}` is not a plain identifier the capture can name",
                key.name, key.child
            )));
        }
        if key.columns.iter().any(|(c, p)| !plain(c) || !plain(p)) {
            return Err(MappedError::Capture(format!(
                "foreign key `{}` of `{}`: a column name the capture cannot write",
                key.name, key.child
            )));
        }
        if key.parent.len() > 48 {
            return Err(MappedError::Capture(format!(
                "foreign key `{}`: table `{}` is too long a name for the capture's trigger on it",
                key.name, key.parent
            )));
        }
        // A cascade into the parent from elsewhere changes the parent's
        // rows without its triggers: what follows from there is unseen.
        for before in all.iter().filter(|b| b.child == key.parent) {
            let deletes = before.on_delete == Action::Cascade
                && key.on_delete != Action::Nothing
                && !before.self_referencing();
            let rewrites = (before.on_update != Action::Nothing
                || before.on_delete == Action::SetNull)
                && key.on_update != Action::Nothing
                && before
                    .child_columns()
                    .any(|c| key.columns.iter().any(|(_, p)| p == c));
            let through_tree = before.self_referencing()
                && before.on_delete == Action::Cascade
                && key.on_delete != Action::Nothing
                && !key.self_referencing();
            if deletes || rewrites || through_tree {
                return Err(MappedError::Capture(format!(
                    "foreign key `{}` of `{}` acts on rows that foreign key `{}` of `{}` changes by cascade; \
                     the capture cannot see a cascade of a cascade: drop one of the actions or follow without `{}`",
                    key.name, key.child, before.name, before.child, key.child
                )));
            }
        }
    }
    let create = if or_replace {
        "CREATE OR REPLACE TRIGGER"
    } else {
        "CREATE TRIGGER"
    };
    let mut bodies: BTreeMap<(String, &str), String> = BTreeMap::new();
    for key in &relevant {
        let Some(table) = mapping.tables.get(&key.child) else {
            continue;
        };
        let captured = table.captured_columns();
        for (deleting, event) in [(true, "DELETE"), (false, "UPDATE")] {
            let action = if deleting {
                key.on_delete
            } else {
                key.on_update
            };
            if action == Action::Nothing {
                continue;
            }
            bodies
                .entry((key.parent.clone(), event))
                .or_default()
                .push_str(&logging(key, &captured, deleting, &all));
        }
    }
    Ok(bodies
        .into_iter()
        .map(|((table, event), body)| {
            let name = format!(
                "ticket_authz_{table}_b{}",
                if event == "DELETE" { 'd' } else { 'u' }
            );
            let sql = format!(
                "{create} `{name}` BEFORE {event} ON `{table}` FOR EACH ROW\nBEGIN\n  \
                 DECLARE r BIGINT UNSIGNED;\n  DECLARE n BIGINT UNSIGNED;\n{body}END"
            );
            Trigger { name, table, sql }
        })
        .collect())
}
