//! Our entities as a mapping sees them: the table name of docs/schema.md,
//! the key a re-read selects by, and the columns a query must or may give.

/// How a column's value is read from whatever SQL type the query gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// An id: text, or an integer read as decimal text.
    Id,
    /// Display text.
    Text,
    /// A point in time: a datetime or timestamp (read as UTC; a zero or
    /// NULL date is 1970-01-01T00:00:00Z), or Unix seconds.
    Time,
    /// A boolean, or an integer (non-zero is true).
    Bool,
    /// A non-negative integer.
    Count,
    /// One of the entity's fixed words (`kind`, `status`, a flag).
    Word,
}

/// One column of an entity.
#[derive(Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnKind,
    /// A query must give it; the others take docs/schema.md's default.
    pub required: bool,
}

/// One of our entities.
#[derive(Debug, PartialEq, Eq)]
pub struct Entity {
    /// The table name of docs/schema.md, which the mapping file uses.
    pub name: &'static str,
    /// The column a change's re-read selects by: every row of the entity
    /// with that key is read again and replaces what was held for it.
    pub key: &'static str,
    pub columns: &'static [Column],
}

impl Entity {
    pub fn column(&self, name: &str) -> Option<&'static Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

const fn req(name: &'static str, kind: ColumnKind) -> Column {
    Column {
        name,
        kind,
        required: true,
    }
}

const fn opt(name: &'static str, kind: ColumnKind) -> Column {
    Column {
        name,
        kind,
        required: false,
    }
}

use ColumnKind::{Bool, Count, Id, Text, Time, Word};

/// The entities of the ticket model (access model §1–§7), parents before
/// children.
pub const ENTITIES: [Entity; 14] = [
    Entity {
        name: "organisations",
        key: "id",
        columns: &[req("id", Id), req("name", Text), opt("ticket_access", Word)],
    },
    Entity {
        name: "organisation_domains",
        key: "organisation_id",
        columns: &[
            req("organisation_id", Id),
            req("domain", Text),
            req("added_at", Time),
        ],
    },
    Entity {
        name: "partnerships",
        key: "partner_id",
        columns: &[
            req("partner_id", Id),
            req("client_id", Id),
            req("since", Time),
        ],
    },
    Entity {
        name: "groups",
        key: "id",
        columns: &[
            req("id", Id),
            req("name", Text),
            opt("parent_id", Id),
            opt("propagate", Bool),
            opt("open_ticket_limit", Count),
            opt("enforce_open_limit", Bool),
            opt("total_ticket_limit", Count),
        ],
    },
    Entity {
        name: "profiles",
        key: "id",
        columns: &[req("id", Id), req("name", Text)],
    },
    Entity {
        name: "profile_flags",
        key: "profile_id",
        columns: &[req("profile_id", Id), req("flag", Word)],
    },
    Entity {
        name: "companies",
        key: "id",
        columns: &[
            req("id", Id),
            req("name", Text),
            opt("parent_id", Id),
            opt("owner_id", Id),
        ],
    },
    Entity {
        name: "users",
        key: "id",
        columns: &[
            req("id", Id),
            opt("email", Text),
            opt("name", Text),
            req("created_at", Time),
            opt("kind", Word),
            opt("suspended", Bool),
            opt("ticket_access", Word),
            opt("default_organisation_id", Id),
            opt("company_id", Id),
            opt("company_scoped", Bool),
        ],
    },
    Entity {
        name: "user_organisations",
        key: "user_id",
        columns: &[req("user_id", Id), req("organisation_id", Id)],
    },
    Entity {
        name: "organisation_access_managers",
        key: "organisation_id",
        columns: &[req("organisation_id", Id), req("user_id", Id)],
    },
    Entity {
        name: "grants",
        key: "user_id",
        columns: &[
            req("user_id", Id),
            req("profile_id", Id),
            opt("group_id", Id),
        ],
    },
    Entity {
        name: "tickets",
        key: "id",
        columns: &[
            req("id", Id),
            req("created_at", Time),
            req("requester_id", Id),
            opt("organisation_id", Id),
            opt("group_id", Id),
            opt("assignee_id", Id),
            opt("status", Word),
        ],
    },
    Entity {
        name: "ticket_ccs",
        key: "ticket_id",
        columns: &[req("ticket_id", Id), req("user_id", Id)],
    },
    Entity {
        name: "ticket_participants",
        key: "ticket_id",
        columns: &[req("ticket_id", Id), req("user_id", Id)],
    },
];

/// The entity of that table name.
pub fn entity(name: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.name == name)
}
