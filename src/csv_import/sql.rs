//! What each format writes, as data (staging tables, the columns a format
//! carries, child lists), and the SQL built from it: the comparison that
//! counts new and changed rows, and the set-based upserts. The same text
//! runs on PostgreSQL and SQLite.

// Every statement here is assembled from this module's table, column and
// expression constants only; values from the file never appear in it.

/// A temporary table the rows are copied into; the first `key` columns
/// are its primary key, or, with `key` 0, the first column is indexed (the
/// comparison looks staged rows up by parent once per row).
pub(super) struct Stage {
    pub(super) name: &'static str,
    pub(super) columns: &'static [(&'static str, &'static str)],
    pub(super) key: usize,
}

pub(super) const USERS: Stage = Stage {
    name: "ticket_authz_csv_users",
    columns: &[
        ("id", "text"),
        ("email", "text"),
        ("name", "text"),
        ("kind", "text"),
        ("suspended", "boolean"),
        ("ticket_access", "text"),
        ("default_organisation_id", "text"),
        ("company_id", "text"),
    ],
    key: 1,
};
pub(super) const MEMBERSHIPS: Stage = Stage {
    name: "ticket_authz_csv_memberships",
    columns: &[("user_id", "text"), ("organisation_id", "text")],
    key: 2,
};
/// No key: `group_id` is NULL for a grant on every group.
pub(super) const GRANTS: Stage = Stage {
    name: "ticket_authz_csv_grants",
    columns: &[
        ("user_id", "text"),
        ("profile_id", "text"),
        ("group_id", "text"),
    ],
    key: 0,
};
pub(super) const ORGANISATIONS: Stage = Stage {
    name: "ticket_authz_csv_organisations",
    columns: &[("id", "text"), ("name", "text"), ("ticket_access", "text")],
    key: 1,
};
pub(super) const DOMAINS: Stage = Stage {
    name: "ticket_authz_csv_domains",
    columns: &[("organisation_id", "text"), ("domain", "text")],
    key: 2,
};

/// How an upsert fills a column from the staged value `s.c`.
#[derive(Clone, Copy)]
pub(super) enum Fill {
    /// The file's value, empty meaning NULL.
    Set,
    /// The file's value; when empty, what is stored, else this default
    /// (an SQL literal; `None` leaves NULL).
    Keep(Option<&'static str>),
}

/// A list of child rows of each staged row.
pub(super) struct Child {
    pub(super) table: &'static str,
    pub(super) stage: &'static Stage,
    /// The column naming the parent, in both tables.
    pub(super) parent: &'static str,
    pub(super) items: &'static [&'static str],
    /// A column set to the import time on insert.
    pub(super) added_at: Option<&'static str>,
    /// `true`: a row listing children replaces the stored ones (a row
    /// listing none leaves them); `false`: children are only added.
    pub(super) replace: bool,
}

const USER_ORGANISATIONS: Child = Child {
    table: "user_organisations",
    stage: &MEMBERSHIPS,
    parent: "user_id",
    items: &["organisation_id"],
    added_at: None,
    replace: true,
};
const USER_GRANTS: Child = Child {
    table: "grants",
    stage: &GRANTS,
    parent: "user_id",
    items: &["profile_id", "group_id"],
    added_at: None,
    replace: false,
};
const ORGANISATION_DOMAINS: Child = Child {
    table: "organisation_domains",
    stage: &DOMAINS,
    parent: "organisation_id",
    items: &["domain"],
    added_at: Some("added_at"),
    replace: true,
};

/// What one format writes: the columns it carries (others are never
/// touched on existing rows and take the schema's defaults on new ones).
pub(super) struct Target {
    pub(super) table: &'static str,
    pub(super) stage: &'static Stage,
    pub(super) fields: &'static [(&'static str, Fill)],
    /// A column set to the import time on insert only.
    pub(super) created_at: Option<&'static str>,
    pub(super) children: &'static [Child],
}

pub(super) const PORTAL_USERS: Target = Target {
    table: "users",
    stage: &USERS,
    fields: &[
        ("email", Fill::Set),
        ("name", Fill::Set),
        ("kind", Fill::Keep(Some("'end_user'"))),
        ("ticket_access", Fill::Keep(Some("'own'"))),
        ("default_organisation_id", Fill::Keep(None)),
    ],
    created_at: Some("created_at"),
    children: &[USER_ORGANISATIONS, USER_GRANTS],
};
pub(super) const ITSM_USERS: Target = Target {
    table: "users",
    stage: &USERS,
    fields: &[
        ("email", Fill::Set),
        ("name", Fill::Set),
        ("suspended", Fill::Set),
        ("company_id", Fill::Set),
        ("kind", Fill::Keep(Some("'end_user'"))),
    ],
    created_at: Some("created_at"),
    children: &[USER_ORGANISATIONS, USER_GRANTS],
};
pub(super) const PORTAL_ORGANISATIONS: Target = Target {
    table: "organisations",
    stage: &ORGANISATIONS,
    fields: &[
        ("name", Fill::Set),
        ("ticket_access", Fill::Keep(Some("'own'"))),
    ],
    created_at: None,
    children: &[ORGANISATION_DOMAINS],
};

/// The value a row would get for a field: `s` is the staged row, `t` the
/// stored one (NULL columns when new).
fn value(column: &str, fill: Fill) -> String {
    match fill {
        Fill::Set => format!("s.{column}"),
        Fill::Keep(Some(default)) => format!("coalesce(s.{column}, t.{column}, {default})"),
        Fill::Keep(None) => format!("coalesce(s.{column}, t.{column})"),
    }
}

/// Stored child `c` (a table name or alias) and staged child `m` are the
/// same row.
fn same_child(child: &Child, c: &str) -> String {
    let mut parts = vec![format!("{c}.{p} = m.{p}", p = child.parent)];
    for item in child.items {
        parts.push(format!("{c}.{item} IS NOT DISTINCT FROM m.{item}"));
    }
    parts.join(" AND ")
}

/// Whether staged parent `s` would change its stored children.
fn child_changes(child: &Child) -> String {
    let (stage, table, parent) = (child.stage.name, child.table, child.parent);
    let added = format!(
        "EXISTS (SELECT 1 FROM {stage} m WHERE m.{parent} = s.id AND NOT EXISTS (SELECT 1 FROM {table} c WHERE {}))",
        same_child(child, "c")
    );
    if !child.replace {
        return added;
    }
    format!(
        "{added} OR (EXISTS (SELECT 1 FROM {stage} m WHERE m.{parent} = s.id) AND EXISTS (SELECT 1 FROM {table} c WHERE c.{parent} = s.id AND NOT EXISTS (SELECT 1 FROM {stage} m WHERE {})))",
        same_child(child, "c")
    )
}

/// One row: how many staged rows are new, and how many would change a
/// stored row.
pub(super) fn count_sql(target: &Target) -> String {
    let mut changed: Vec<String> = target
        .fields
        .iter()
        .map(|(c, fill)| format!("t.{c} IS DISTINCT FROM {}", value(c, *fill)))
        .collect();
    changed.extend(target.children.iter().map(child_changes));
    format!(
        "SELECT count(*) FILTER (WHERE t.id IS NULL), count(*) FILTER (WHERE t.id IS NOT NULL AND ({})) FROM {} s LEFT JOIN {} t ON t.id = s.id",
        changed.join(" OR "),
        target.stage.name,
        target.table
    )
}

/// Inserts new rows and updates changed ones; `time` is the import-time
/// expression.
pub(super) fn upsert_sql(target: &Target, time: &str) -> String {
    let table = target.table;
    let mut columns = vec!["id".to_owned()];
    let mut values = vec!["s.id".to_owned()];
    for (c, fill) in target.fields {
        columns.push((*c).to_owned());
        values.push(value(c, *fill));
    }
    if let Some(created_at) = target.created_at {
        columns.push(created_at.to_owned());
        values.push(time.to_owned());
    }
    let set: Vec<String> = target
        .fields
        .iter()
        .map(|(c, _)| format!("{c} = excluded.{c}"))
        .collect();
    let differs: Vec<String> = target
        .fields
        .iter()
        .map(|(c, _)| format!("{table}.{c} IS DISTINCT FROM excluded.{c}"))
        .collect();
    // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join clause.
    format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {} s LEFT JOIN {table} t ON t.id = s.id WHERE true \
         ON CONFLICT (id) DO UPDATE SET {} WHERE {}",
        columns.join(", "),
        values.join(", "),
        target.stage.name,
        set.join(", "),
        differs.join(" OR ")
    )
}

/// Removes stored children a replacing row no longer lists.
pub(super) fn delete_children_sql(child: &Child) -> String {
    format!(
        "DELETE FROM {table} WHERE {parent} IN (SELECT {parent} FROM {stage}) AND NOT EXISTS (SELECT 1 FROM {stage} m WHERE {})",
        same_child(child, child.table),
        table = child.table,
        parent = child.parent,
        stage = child.stage.name
    )
}

/// Adds the staged children that are not stored yet.
pub(super) fn insert_children_sql(child: &Child, time: &str) -> String {
    let mut columns = vec![child.parent.to_owned()];
    columns.extend(child.items.iter().map(|c| (*c).to_owned()));
    let mut values: Vec<String> = columns.iter().map(|c| format!("m.{c}")).collect();
    if let Some(added_at) = child.added_at {
        columns.push(added_at.to_owned());
        values.push(time.to_owned());
    }
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM {} m WHERE true ON CONFLICT DO NOTHING",
        child.table,
        columns.join(", "),
        values.join(", "),
        child.stage.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_touch_only_the_columns_a_format_carries() {
        let sql = upsert_sql(&PORTAL_USERS, "$1");
        assert!(sql.contains("kind = excluded.kind"), "{sql}");
        assert!(!sql.contains("company_id"), "{sql}");
        assert!(!sql.contains("suspended"), "{sql}");
        assert!(!sql.contains("created_at ="), "{sql}");
        let sql = upsert_sql(&ITSM_USERS, "$1");
        assert!(!sql.contains("ticket_access"), "{sql}");
        assert!(!sql.contains("default_organisation_id"), "{sql}");
    }
}
