//! One ticket by primary key, with its CCs and participants, in one
//! statement (one round trip) that also says at which revision it read
//! and whether the ticket changed since the graph's: the ticket cache's
//! read-through.

// Dynamic SQL here is assembled from the dialect's constants only; the
// ticket id and the revision are bound.
use sqlx::{AssertSqlSafe, Decode, Executor, IntoArguments, Pool, Type};

use super::fresh::{self, ReadAt, Scope};
use super::{Database, DbError, Dialect};
use crate::model::{Status, Ticket};

/// The columns of one ticket read; `None`s when there is no such ticket.
type Row<T, L> = (
    i64,
    bool,
    Option<T>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    L,
    L,
);

fn statement<D: Dialect>() -> String {
    format!(
        "SELECT {fresh}, {created_at}, t.requester_id, t.organisation_id, t.group_id, \
         t.assignee_id, t.status, {ccs}, {participants} \
         FROM (SELECT 1 AS one) one LEFT JOIN tickets t ON t.id = $2",
        fresh = fresh::columns::<D>(Scope::Ticket),
        created_at = D::time_column("t.created_at"),
        ccs = D::id_list("user_id", "FROM ticket_ccs WHERE ticket_id = $2"),
        participants = D::id_list("user_id", "FROM ticket_participants WHERE ticket_id = $2"),
    )
}

async fn read<D>(
    pool: &Pool<D>,
    id: &str,
    graph_revision: u64,
) -> Result<ReadAt<Option<Ticket>>, DbError>
where
    D: Dialect,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'a> D::Arguments: IntoArguments<D>,
    for<'r> Row<D::Time, D::IdList>: sqlx::FromRow<'r, D::Row>,
    i64: for<'q> sqlx::Encode<'q, D> + Type<D>,
    for<'q> &'q str: sqlx::Encode<'q, D> + Type<D>,
    for<'r> String: Decode<'r, D>,
{
    let sql = statement::<D>();
    let graph = i64::try_from(graph_revision).unwrap_or(i64::MAX);
    let (
        revision,
        unchanged,
        created_at,
        requester,
        organisation,
        group,
        assignee,
        status,
        ccs,
        participants,
    ): Row<D::Time, D::IdList> = sqlx::query_as(AssertSqlSafe(sql.as_str()))
        .bind(graph)
        .bind(id)
        .fetch_one(pool)
        .await?;
    let ticket = match (created_at, requester, status) {
        (Some(created_at), Some(requester), Some(status)) => Some(Ticket {
            id: id.to_owned(),
            created_at: D::time(created_at)?,
            requester,
            organisation,
            group,
            assignee,
            status: Status::parse(&status).ok_or_else(|| {
                DbError::Invalid(format!(
                    "ticket `{id}`: field status: unknown value `{status}`"
                ))
            })?,
            ccs: sorted(D::ids(ccs)?),
            participants: sorted(D::ids(participants)?),
        }),
        _ => None,
    };
    Ok(ReadAt {
        value: ticket,
        revision: u64::try_from(revision).unwrap_or(0),
        unchanged,
    })
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort_unstable();
    ids
}

impl Database {
    /// The ticket `id` as the database holds it now (`None`: no such
    /// ticket), with the revision read at and whether it is unchanged
    /// since `graph_revision`.
    pub async fn read_ticket(
        &self,
        id: &str,
        graph_revision: u64,
    ) -> Result<ReadAt<Option<Ticket>>, DbError> {
        match self {
            Database::Postgres(pool) => read(pool, id, graph_revision).await,
            Database::Sqlite(pool) => read(pool, id, graph_revision).await,
        }
    }
}

impl crate::ticket_cache::TicketReader for Database {
    fn ticket<'a>(
        &'a self,
        id: &'a str,
        graph_revision: u64,
    ) -> crate::ticket_cache::Read<'a, Option<Ticket>> {
        Box::pin(async move {
            self.read_ticket(id, graph_revision)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn visible_page<'a>(
        &'a self,
        plan: &'a crate::core::VisibilityFilter,
        filter: &'a crate::core::TicketFilter,
        after: Option<&'a str>,
        limit: usize,
        graph_revision: u64,
    ) -> crate::ticket_cache::Read<'a, (Vec<String>, bool)> {
        Box::pin(async move {
            self.visible_ticket_page(plan, filter, after, limit, graph_revision)
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn limit_counts<'a>(
        &'a self,
        query: &'a crate::core::LimitQuery<'a>,
        graph_revision: u64,
    ) -> crate::ticket_cache::Read<'a, crate::core::LimitCounts> {
        Box::pin(async move {
            self.ticket_limit_counts(
                query.group,
                query.requester,
                query.from,
                query.to,
                graph_revision,
            )
            .await
            .map_err(|e| e.to_string())
        })
    }
}
