//! The change capture `migrate --mapping` installs beside a PostgreSQL
//! source, on the schema the connection's search path creates in: the
//! same commit-time numbering as our own schema's change log
//! (migrations/postgres), so that the revision statement, `prune` and the
//! `NOTIFY` wake-up are the same; two triggers per followed table record
//! the columns the rules read.
//!
//! Why the numbering follows commit order: a writing transaction registers
//! itself on its first captured row; a deferred constraint trigger on that
//! registration runs as the transaction commits, takes a transaction-scoped
//! advisory lock and only then draws the next revision. The lock is held
//! until the commit is visible, so the next transaction draws after it; a
//! rollback never draws. Writers wait on one another only for the instant
//! of their commits, not for their whole transactions as on MariaDB.
//!
//! PostgreSQL runs triggers for rows a foreign key's action changes, so no
//! cascade needs capturing (unlike `cascade.rs` on MariaDB).

use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Connection};

use super::{Installed, Log, Logged, Removed, plain};
use crate::db::Pruned;
use crate::mapped::MappedError;
use crate::mapped::conn::Conn;
use crate::mapping::{Mapping, SourceTable};

/// The revision statement writers use for `min_revision` (the same as our
/// own schema's).
pub const REVISION_SQL: &str = "SELECT ticket_authz_revision()";

/// The capture's tables, sequence and functions, each created or replaced
/// with the same definition: an install is repeatable.
const SETUP_SQL: &str = r#"
CREATE SEQUENCE IF NOT EXISTS ticket_authz_revision_seq;
CREATE TABLE IF NOT EXISTS ticket_authz_transactions (
    xid          xid8 PRIMARY KEY,
    revision     bigint UNIQUE,
    bulk         boolean NOT NULL DEFAULT false,
    committed_at timestamptz
);
CREATE TABLE IF NOT EXISTS ticket_authz_changes (
    seq        bigserial PRIMARY KEY,
    xid        xid8 NOT NULL DEFAULT pg_current_xact_id(),
    table_name text NOT NULL,
    op         char(1) NOT NULL,
    old_row    jsonb,
    new_row    jsonb
);
CREATE INDEX IF NOT EXISTS ticket_authz_changes_xid ON ticket_authz_changes (xid);
CREATE TABLE IF NOT EXISTS ticket_authz_pruned (
    id       integer PRIMARY KEY CHECK (id = 1),
    revision bigint NOT NULL
);
INSERT INTO ticket_authz_pruned (id, revision) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS ticket_authz_capture (
    id   integer PRIMARY KEY CHECK (id = 1),
    spec text NOT NULL
);
CREATE OR REPLACE FUNCTION ticket_authz_register_transaction() RETURNS void LANGUAGE sql AS $$
    INSERT INTO ticket_authz_transactions (xid) VALUES (pg_current_xact_id())
    ON CONFLICT (xid) DO NOTHING
$$;
CREATE OR REPLACE FUNCTION ticket_authz_capture_row() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    image jsonb;
    old_image jsonb;
    new_image jsonb;
BEGIN
    PERFORM ticket_authz_register_transaction();
    IF current_setting('ticket_authz.bulk', true) = 'on' THEN
        RETURN NULL;
    END IF;
    -- The trigger's arguments name the columns the rules read; each is
    -- kept as text, as the follower's re-reads read every value.
    IF TG_OP <> 'INSERT' THEN
        image := to_jsonb(OLD);
        SELECT jsonb_object_agg(c, image ->> c) INTO old_image FROM unnest(TG_ARGV) AS c;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        image := to_jsonb(NEW);
        SELECT jsonb_object_agg(c, image ->> c) INTO new_image FROM unnest(TG_ARGV) AS c;
    END IF;
    INSERT INTO ticket_authz_changes (table_name, op, old_row, new_row)
    VALUES (TG_TABLE_NAME, left(TG_OP, 1), old_image, new_image);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION ticket_authz_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ticket_authz_register_transaction();
    PERFORM set_config('ticket_authz.bulk', 'on', true);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION ticket_authz_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rev bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(7316846221029813);
    rev := nextval('ticket_authz_revision_seq');
    UPDATE ticket_authz_transactions
       SET revision = rev,
           committed_at = clock_timestamp(),
           bulk = coalesce(current_setting('ticket_authz.bulk', true), '') = 'on'
     WHERE xid = NEW.xid;
    PERFORM pg_notify('ticket_authz', rev::text);
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION ticket_authz_revision() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT coalesce(max(revision), 0) FROM ticket_authz_transactions
$$;
DROP TRIGGER IF EXISTS ticket_authz_commit ON ticket_authz_transactions;
CREATE CONSTRAINT TRIGGER ticket_authz_commit
    AFTER INSERT ON ticket_authz_transactions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ticket_authz_commit();
"#;

/// The capture's tables, for removal and the start-up check.
const OUR_TABLES: [&str; 4] = [
    "ticket_authz_changes",
    "ticket_authz_transactions",
    "ticket_authz_pruned",
    "ticket_authz_capture",
];

/// What an uninstall drops besides the tables.
const OUR_ROUTINES: &str = "DROP FUNCTION IF EXISTS ticket_authz_capture_row();
DROP FUNCTION IF EXISTS ticket_authz_truncate();
DROP FUNCTION IF EXISTS ticket_authz_commit();
DROP FUNCTION IF EXISTS ticket_authz_register_transaction();
DROP FUNCTION IF EXISTS ticket_authz_revision();
DROP SEQUENCE IF EXISTS ticket_authz_revision_seq;";

/// Our two triggers on each table: (trigger, the function it runs).
const TRIGGERS: [(&str, &str); 2] = [
    ("ticket_authz_capture", "ticket_authz_capture_row"),
    ("ticket_authz_capture_truncate", "ticket_authz_truncate"),
];

/// The tables that have one of our triggers, with the trigger's name.
const OUR_TRIGGERS: &str = "SELECT c.relname::text, t.tgname::text FROM pg_trigger t \
     JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid \
     WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace \
       AND (t.tgname, p.proname) IN (('ticket_authz_capture', 'ticket_authz_capture_row'), \
                                     ('ticket_authz_capture_truncate', 'ticket_authz_truncate')) \
     ORDER BY 1, 2";

/// The two triggers of one table. Names and columns passed the mapping's
/// identifier check, so they can be written into DDL.
fn triggers(table: &SourceTable) -> Vec<String> {
    let t = &table.name;
    let args: Vec<String> = table
        .captured_columns()
        .iter()
        .map(|c| format!("'{c}'"))
        .collect();
    let mut out = Vec::new();
    for (name, _) in TRIGGERS {
        out.push(format!("DROP TRIGGER IF EXISTS {name} ON \"{t}\""));
    }
    out.push(format!(
        "CREATE TRIGGER ticket_authz_capture AFTER INSERT OR UPDATE OR DELETE ON \"{t}\" \
         FOR EACH ROW EXECUTE FUNCTION ticket_authz_capture_row({})",
        args.join(", ")
    ));
    out.push(format!(
        "CREATE TRIGGER ticket_authz_capture_truncate AFTER TRUNCATE ON \"{t}\" \
         FOR EACH STATEMENT EXECUTE FUNCTION ticket_authz_truncate()"
    ));
    out
}

async fn execute(conn: &mut PgConnection, sql: String) -> Result<(), MappedError> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

async fn our_triggers(conn: &mut PgConnection) -> Result<Vec<(String, String)>, MappedError> {
    Ok(sqlx::query_as(OUR_TRIGGERS).fetch_all(conn).await?)
}

async fn table_exists(conn: &mut PgConnection, table: &str) -> Result<bool, MappedError> {
    Ok(
        sqlx::query_scalar("SELECT to_regclass(quote_ident($1)) IS NOT NULL")
            .bind(table)
            .fetch_one(conn)
            .await?,
    )
}

/// Our own schema's capture records whole rows of our tables; a mapping
/// over a database holding it would share its log and confuse both.
async fn refuse_own_schema(conn: &mut PgConnection) -> Result<(), MappedError> {
    let own: bool =
        sqlx::query_scalar("SELECT to_regprocedure('ticket_authz_capture()') IS NOT NULL")
            .fetch_one(conn)
            .await?;
    if own {
        return Err(MappedError::Capture(
            "this database holds ticket-authz's own schema (function ticket_authz_capture()): \
             serve it with --database-url alone; a mapping follows a helpdesk's own tables"
                .to_owned(),
        ));
    }
    Ok(())
}

/// Installs the whole capture in one transaction: a failure leaves the
/// database as it was, and writers never see half of it.
pub(super) async fn install(pool: &PgPool, mapping: &Mapping) -> Result<Installed, MappedError> {
    let mut conn = pool.acquire().await?;
    refuse_own_schema(&mut conn).await?;
    crate::mapped::check::check(&mut Conn::Postgres(&mut conn), mapping).await?;
    let mut tx = conn.begin().await?;
    execute(&mut tx, SETUP_SQL.to_owned()).await?;
    let mut dropped = 0;
    for (table, name) in our_triggers(&mut tx).await? {
        if plain(&table) && !mapping.tables.contains_key(&table) {
            execute(
                &mut tx,
                format!("DROP TRIGGER IF EXISTS {name} ON \"{table}\""),
            )
            .await?;
            dropped += usize::from(name == TRIGGERS[0].0);
        }
    }
    let mut count = 0;
    for table in mapping.tables.values() {
        for sql in triggers(table) {
            execute(&mut tx, sql).await?;
        }
        count += TRIGGERS.len();
    }
    // One revision for the install itself, recorded as the pruned floor:
    // a follower of the old capture cannot know what changed under it.
    // Numbered now (the lock is held to the commit), so that the floor is
    // written in the same transaction.
    sqlx::query("SELECT ticket_authz_register_transaction()")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET CONSTRAINTS ticket_authz_commit IMMEDIATE")
        .execute(&mut *tx)
        .await?;
    let revision: i64 = sqlx::query_scalar(
        "SELECT revision FROM ticket_authz_transactions WHERE xid = pg_current_xact_id()",
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE ticket_authz_pruned SET revision = $1 WHERE id = 1")
        .bind(revision)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO ticket_authz_capture (id, spec) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec",
    )
    .bind(mapping.capture_spec())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Installed {
        tables: mapping.tables.len(),
        triggers: count,
        dropped,
        revision: u64::try_from(revision).unwrap_or(0),
    })
}

pub(super) async fn uninstall(pool: &PgPool) -> Result<Removed, MappedError> {
    let mut conn = pool.acquire().await?;
    refuse_own_schema(&mut conn).await?;
    let mut tx = conn.begin().await?;
    let mut triggers = 0;
    for (table, name) in our_triggers(&mut tx).await? {
        if plain(&table) {
            execute(
                &mut tx,
                format!("DROP TRIGGER IF EXISTS {name} ON \"{table}\""),
            )
            .await?;
            triggers += 1;
        }
    }
    let mut tables = 0;
    for table in OUR_TABLES {
        if table_exists(&mut tx, table).await? {
            execute(&mut tx, format!("DROP TABLE {table} CASCADE")).await?;
            tables += 1;
        }
    }
    execute(&mut tx, OUR_ROUTINES.to_owned()).await?;
    tx.commit().await?;
    Ok(Removed { triggers, tables })
}

/// Whether this database holds a mapping's capture.
pub(super) async fn present(pool: &PgPool) -> Result<bool, MappedError> {
    let mut conn = pool.acquire().await?;
    table_exists(&mut conn, "ticket_authz_capture").await
}

pub(super) async fn verify(pool: &PgPool, mapping: &Mapping) -> Result<(), MappedError> {
    let mut conn = pool.acquire().await?;
    let hint = format!(
        "run `ticket-authz migrate --mapping {} --database-url …` first",
        mapping.file
    );
    refuse_own_schema(&mut conn).await?;
    for table in OUR_TABLES {
        if !table_exists(&mut conn, table).await? {
            return Err(MappedError::Capture(format!(
                "--mapping {}: the change capture is not installed (no table {table}); {hint}",
                mapping.file
            )));
        }
    }
    let spec: Option<String> =
        sqlx::query_scalar("SELECT spec FROM ticket_authz_capture WHERE id = 1")
            .fetch_optional(&mut *conn)
            .await?;
    let spec = spec.unwrap_or_default();
    if spec != mapping.capture_spec() {
        return Err(MappedError::Capture(format!(
            "--mapping {}: the installed change capture is another mapping's (it records `{spec}`); {hint}",
            mapping.file
        )));
    }
    let present = our_triggers(&mut conn).await?;
    for table in mapping.tables.keys() {
        for (name, _) in TRIGGERS {
            if !present.iter().any(|(t, n)| t == table && n == name) {
                return Err(MappedError::Capture(format!(
                    "--mapping {}: trigger {name} on `{table}` is missing; {hint}",
                    mapping.file
                )));
            }
        }
    }
    Ok(())
}

/// The same tables as our own schema's log, so the same prune: what every
/// follower has long applied goes, the latest revision stays.
pub(super) async fn prune(pool: &PgPool, older_than: Duration) -> Result<Pruned, MappedError> {
    crate::db::Database::Postgres(pool.clone())
        .prune(older_than)
        .await
        .map_err(|e| MappedError::Capture(e.to_string()))
}

/// The log after `after` in the caller's snapshot. A transaction is
/// numbered only as it commits, so every revision the snapshot shows is
/// whole, and every lower one is visible too.
pub(super) async fn read_log(
    conn: &mut PgConnection,
    after: u64,
    max_rows: u64,
) -> Result<Option<Log>, MappedError> {
    let revision: i64 = sqlx::query_scalar(REVISION_SQL)
        .fetch_one(&mut *conn)
        .await?;
    let revision = u64::try_from(revision).unwrap_or(0);
    if revision <= after {
        return Ok(None);
    }
    let floor: i64 = sqlx::query_scalar("SELECT revision FROM ticket_authz_pruned WHERE id = 1")
        .fetch_one(&mut *conn)
        .await?;
    let after_i = i64::try_from(after).unwrap_or(i64::MAX);
    let to = i64::try_from(revision).unwrap_or(i64::MAX);
    let (bulk, committed_at): (Option<bool>, Option<f64>) = sqlx::query_as(
        "SELECT bool_or(bulk), extract(epoch FROM max(committed_at))::float8 \
         FROM ticket_authz_transactions WHERE revision > $1 AND revision <= $2",
    )
    .bind(after_i)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    let mut log = Log {
        revision,
        floor: u64::try_from(floor).unwrap_or(0),
        bulk: bulk.unwrap_or(false),
        rows: Vec::new(),
        committed_at,
    };
    if log.floor > after || log.bulk {
        return Ok(Some(log));
    }
    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT c.table_name, c.old_row::text, c.new_row::text \
         FROM ticket_authz_changes c JOIN ticket_authz_transactions t ON t.xid = c.xid \
         WHERE t.revision > $1 AND t.revision <= $2 ORDER BY t.revision, c.seq LIMIT $3",
    )
    .bind(after_i)
    .bind(to)
    .bind(
        i64::try_from(max_rows)
            .unwrap_or(i64::MAX)
            .saturating_add(1),
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.len() as u64 > max_rows {
        log.bulk = true;
        return Ok(Some(log));
    }
    log.rows = rows
        .into_iter()
        .map(|(table, old, new)| Logged { table, old, new })
        .collect();
    Ok(Some(log))
}
