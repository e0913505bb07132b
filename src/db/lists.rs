//! Lists and ticket limits answered in SQL, for the ticket-cache mode where
//! tickets stay in the database: one page of the tickets a visibility plan
//! selects (keyset paging by id in byte order), and the counts a group's
//! ticket limits compare with. Each is one statement, so one consistent
//! view, and returns the revision it read at and whether the tickets are
//! unchanged since the graph's (see `fresh`).
//!
//! The semantics are the in-memory ones (`core::visible_tickets_after`,
//! `LimitIndex::count`) on the same data; `tests/suite/cached_lists.rs` holds them
//! to it.

// Dynamic SQL here is assembled from this file's and the dialect's
// constants only: which clauses a statement has depends on which parts of
// the plan and filter are present, never on their values, which are all
// bound.
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

use super::fresh::{self, ReadAt, Scope};
use super::{Database, DbError, Dialect, TimeWindow};
pub use crate::core::LimitCounts;
use crate::core::{TicketFilter, VisibilityFilter};
use crate::model::Status;
use crate::time::Timestamp;

/// How many pages (and one) of tickets in id order a list probes before
/// it walks organisations and groups one by one.
const PROBE_PAGES: usize = 16;

/// A value bound to a statement.
enum Param<D: Dialect> {
    Int(i64),
    Text(Option<String>),
    Ids(D::IdsArg),
    Time(D::TimeKey),
}

/// Numbers placeholders in the order values are added; `$1` is the graph's
/// revision, as `fresh::columns` expects.
struct Params<D: Dialect> {
    values: Vec<Param<D>>,
}

impl<D: Dialect> Params<D> {
    fn new(graph_revision: u64) -> Self {
        Self {
            values: vec![Param::Int(
                i64::try_from(graph_revision).unwrap_or(i64::MAX),
            )],
        }
    }

    /// Adds a value, returning its placeholder number.
    fn add(&mut self, value: Param<D>) -> usize {
        self.values.push(value);
        self.values.len()
    }

    fn text(&mut self, value: Option<&str>) -> String {
        format!("${}", self.add(Param::Text(value.map(str::to_owned))))
    }

    fn ids(&mut self, ids: Vec<String>) -> usize {
        self.add(Param::Ids(D::ids_arg(ids)))
    }

    fn time(&mut self, key: D::TimeKey) -> String {
        D::time_param(self.add(Param::Time(key)))
    }
}

/// Runs `sql` with `params` bound and returns its one row.
async fn fetch_row<D>(pool: &Pool<D>, sql: &str, params: Params<D>) -> Result<D::Row, DbError>
where
    D: Dialect,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'a> D::Arguments: IntoArguments<D>,
    i64: for<'q> Encode<'q, D> + Type<D>,
    Option<String>: for<'q> Encode<'q, D> + Type<D>,
{
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for value in params.values {
        query = match value {
            Param::Int(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
            Param::Ids(v) => query.bind(v),
            Param::Time(v) => query.bind(v),
        };
    }
    Ok(query.fetch_one(pool).await?)
}

/// The visible-ticket page statement for `plan` and `filter`.
fn page_statement<D: Dialect>(
    params: &mut Params<D>,
    plan: &VisibilityFilter,
    filter: &TicketFilter,
    after: Option<&str>,
    limit: usize,
) -> String {
    let c = D::BYTE_ORDER;
    // Ids are never empty, so every id comes after ''.
    let after = params.text(Some(after.unwrap_or("")));
    let take = params.add(Param::Int(
        i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX),
    ));
    let mut pushed = String::new();
    if let Some(org) = filter.organisation.as_deref() {
        pushed += &format!(" AND t.organisation_id = {}", params.text(Some(org)));
    }
    if let Some(group) = filter.group.as_deref() {
        pushed += &format!(" AND t.group_id = {}", params.text(Some(group)));
    }
    if !filter.statuses.is_empty() {
        let names = filter
            .statuses
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        let n = params.ids(names);
        pushed += &format!(
            " AND t.status IN (SELECT st.value FROM {})",
            D::each(n, "st")
        );
    }
    // One relation's tickets, in byte order from `after`, at most a page
    // and one: `from` names `t` (tickets) and ends in its WHERE terms.
    let tickets = |from: &str| {
        format!(
            "SELECT t.id AS id FROM {from} AND t.id{c} > {after}{pushed} \
             ORDER BY t.id{c} LIMIT ${take}"
        )
    };
    // IR on `*` without a company scope reaches every ticket, as
    // `everything` does (`visibility_filter` renders it as `everything`;
    // a filter built by hand may not).
    let every_group = plan
        .group_clauses
        .iter()
        .any(|g| g.any_group && g.requester_company_id.is_none());
    let mut with = String::new();
    let branches: Vec<String> = if plan.everything || every_group {
        vec![tickets("tickets t WHERE true")]
    } else {
        let user = params.text(plan.user_id.as_deref());
        // CCs and participants are walked in their own index's order; the
        // ticket row is joined only when the filter needs its fields.
        let people = |table: &str| {
            if pushed.is_empty() {
                format!(
                    "SELECT p.ticket_id AS id FROM {table} p WHERE p.user_id = {user} \
                     AND p.ticket_id{c} > {after} ORDER BY p.ticket_id{c} LIMIT ${take}"
                )
            } else {
                format!(
                    "SELECT t.id AS id FROM {table} p JOIN tickets t ON t.id = p.ticket_id \
                     WHERE p.user_id = {user} AND p.ticket_id{c} > {after}{pushed} \
                     ORDER BY p.ticket_id{c} LIMIT ${take}"
                )
            }
        };
        let orgs = params.ids(plan.organisation_ids.clone());
        let mut groups = Vec::new();
        let (mut scoped_groups, mut scoped_companies) = (Vec::new(), Vec::new());
        let mut companies = Vec::new();
        for clause in &plan.group_clauses {
            match (&clause.requester_company_id, clause.any_group) {
                (None, _) => groups.extend(clause.group_ids.iter().cloned()),
                (Some(company), true) => companies.push(company.clone()),
                (Some(company), false) => {
                    for group in &clause.group_ids {
                        scoped_groups.push(group.clone());
                        scoped_companies.push(company.clone());
                    }
                }
            }
        }
        let groups_empty = groups.is_empty();
        let groups = params.ids(groups);
        let scoped_groups = params.ids(scoped_groups);
        let scoped_companies = params.ids(scoped_companies);
        let companies = params.ids(companies);
        // Organisations and groups a user sees may hold most tickets, and
        // walking a page and one of each of hundreds costs more than the
        // page. So the next few pages' worth of tickets in id order are
        // probed first (`dense`): when a page and one of them match, those
        // are exactly the first ones of every organisation and group range
        // together, and the per-organisation and per-group ranges are
        // skipped (a condition the databases evaluate once, before them).
        let (orgs_and_groups, gate) = if plan.organisation_ids.is_empty() && groups_empty {
            (Vec::new(), String::new())
        } else {
            let window = params.add(Param::Int(
                i64::try_from(limit.saturating_add(1).saturating_mul(PROBE_PAGES))
                    .unwrap_or(i64::MAX),
            ));
            with = format!(
                "WITH dense AS (SELECT t.id AS id FROM \
                 (SELECT t.id, t.organisation_id, t.group_id, t.status FROM tickets t \
                  WHERE t.id{c} > {after} ORDER BY t.id{c} LIMIT ${window}) t \
                 WHERE (t.organisation_id IN (SELECT po.value FROM {po}) \
                        OR t.group_id IN (SELECT pg.value FROM {pg})){pushed} \
                 ORDER BY t.id{c} LIMIT ${take}) ",
                po = D::each(orgs, "po"),
                pg = D::each(groups, "pg"),
            );
            (
                vec!["SELECT id FROM dense".to_owned()],
                format!(" WHERE (SELECT count(*) FROM dense) < ${take}"),
            )
        };
        let gated = |select: String| format!("SELECT id FROM ({select}) r{gate}");
        let mut branches = vec![
            tickets(&format!("tickets t WHERE t.requester_id = {user}")),
            tickets(&format!("tickets t WHERE t.assignee_id = {user}")),
            people("ticket_ccs"),
            people("ticket_participants"),
            gated(D::per_row(
                &D::each(orgs, "o"),
                &tickets("tickets t WHERE t.organisation_id = o.value"),
            )),
            gated(D::per_row(
                &D::each(groups, "g"),
                &tickets("tickets t WHERE t.group_id = g.value"),
            )),
            D::per_row(
                &D::each_pair(scoped_groups, scoped_companies, "sg"),
                &tickets(
                    "tickets t JOIN users u ON u.id = t.requester_id \
                     WHERE t.group_id = sg.first AND u.company_id = sg.second",
                ),
            ),
            D::per_row(
                &format!(
                    "{} JOIN users cu ON cu.company_id = cc.value",
                    D::each(companies, "cc")
                ),
                &tickets("tickets t WHERE t.requester_id = cu.id"),
            ),
        ];
        branches.extend(orgs_and_groups);
        branches
    };
    let union: Vec<String> = branches
        .iter()
        .enumerate()
        .map(|(i, b)| format!("SELECT id FROM ({b}) b{i}"))
        .collect();
    let page = format!(
        "FROM (SELECT id FROM ({}) u ORDER BY id{c} LIMIT ${take}) page",
        union.join(" UNION ")
    );
    format!(
        "{with}SELECT {fresh}, {ids} FROM (SELECT 1 AS one) one",
        fresh = fresh::columns::<D>(Scope::AllTickets),
        ids = D::id_list("id", &page),
    )
}

async fn page<D>(
    pool: &Pool<D>,
    plan: &VisibilityFilter,
    filter: &TicketFilter,
    after: Option<&str>,
    limit: usize,
    graph_revision: u64,
) -> Result<ReadAt<(Vec<String>, bool)>, DbError>
where
    D: Dialect,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'a> D::Arguments: IntoArguments<D>,
    D::Row: Row<Database = D>,
    usize: ColumnIndex<D::Row>,
    i64: for<'q> Encode<'q, D> + for<'r> Decode<'r, D> + Type<D>,
    bool: for<'r> Decode<'r, D> + Type<D>,
    Option<String>: for<'q> Encode<'q, D> + Type<D>,
{
    let limit = limit.max(1);
    let mut params = Params::new(graph_revision);
    let sql = page_statement::<D>(&mut params, plan, filter, after, limit);
    let row = fetch_row(pool, &sql, params).await?;
    let (revision, unchanged) = freshness(&row)?;
    let mut ids = D::ids(row.try_get::<D::IdList, _>(2)?)?;
    // Rust orders strings by their bytes: the order the page was cut in.
    ids.sort_unstable();
    let more = ids.len() > limit;
    ids.truncate(limit);
    Ok(ReadAt {
        value: (ids, more),
        revision,
        unchanged,
    })
}

fn freshness<R>(row: &R) -> Result<(u64, bool), DbError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: for<'r> Decode<'r, R::Database> + Type<R::Database>,
    bool: for<'r> Decode<'r, R::Database> + Type<R::Database>,
{
    let revision: i64 = row.try_get(0)?;
    let unchanged: bool = row.try_get(1)?;
    Ok((u64::try_from(revision).unwrap_or(0), unchanged))
}

/// The ticket-limit statement: the rows keyed inside the window counted,
/// and those keyed at its edges listed as `status time` for an exact
/// comparison.
fn limit_statement<D: Dialect>(
    params: &mut Params<D>,
    group: &str,
    requester: Option<&str>,
    window: TimeWindow<D::TimeKey>,
) -> String {
    let mut whose = format!("t.group_id = {}", params.text(Some(group)));
    if requester.is_some() {
        whose += &format!(" AND t.requester_id = {}", params.text(requester));
    }
    let open: Vec<String> = Status::ALL
        .iter()
        .filter(|s| s.is_open())
        .map(|s| s.name().to_owned())
        .collect();
    let open = D::each(params.ids(open), "st");
    let key = D::time_key("t.created_at");
    let (lo, hi) = window.inside;
    let inside = format!(
        "{whose} AND {key} BETWEEN {} AND {}",
        params.time(lo),
        params.time(hi)
    );
    let mut columns = format!(
        "{fresh}, w.total, w.open",
        fresh = fresh::columns::<D>(Scope::AllTickets)
    );
    if let Some([(a, b), (c, d)]) = window.edges {
        // One index range per edge; the union keeps a ticket in both once.
        let edge = |lo: String, hi: String| {
            format!(
                "SELECT t.id, t.status || ' ' || t.created_at AS edge FROM tickets t \
                 WHERE {whose} AND {key} BETWEEN {lo} AND {hi}"
            )
        };
        let (first, second) = (
            edge(params.time(a), params.time(b)),
            edge(params.time(c), params.time(d)),
        );
        columns += ", ";
        columns += &D::id_list("edge", &format!("FROM ({first} UNION {second}) e"));
    }
    // Both counts from one walk of the window.
    format!(
        "SELECT {columns} FROM \
         (SELECT count(*) AS total, \
                 count(CASE WHEN t.status IN (SELECT st.value FROM {open}) THEN 1 END) AS open \
          FROM tickets t WHERE {inside}) w"
    )
}

async fn limit_counts<D>(
    pool: &Pool<D>,
    group: &str,
    requester: Option<&str>,
    from: Timestamp,
    to: Timestamp,
    graph_revision: u64,
) -> Result<ReadAt<LimitCounts>, DbError>
where
    D: Dialect,
    for<'c> &'c Pool<D>: Executor<'c, Database = D>,
    for<'a> D::Arguments: IntoArguments<D>,
    D::Row: Row<Database = D>,
    usize: ColumnIndex<D::Row>,
    i64: for<'q> Encode<'q, D> + for<'r> Decode<'r, D> + Type<D>,
    bool: for<'r> Decode<'r, D> + Type<D>,
    Option<String>: for<'q> Encode<'q, D> + Type<D>,
{
    let mut params = Params::new(graph_revision);
    let window = D::time_window(from, to);
    let exact_edges = window.edges.is_some();
    let sql = limit_statement::<D>(&mut params, group, requester, window);
    let row = fetch_row(pool, &sql, params).await?;
    let (revision, unchanged) = freshness(&row)?;
    let count = |i: usize| -> Result<u64, DbError> {
        Ok(u64::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
    };
    let mut counts = LimitCounts {
        total: count(2)?,
        open: count(3)?,
    };
    if exact_edges {
        for edge in D::ids(row.try_get::<D::IdList, _>(4)?)? {
            let (status, time) = edge.split_once(' ').ok_or_else(|| {
                DbError::Invalid(format!("group `{group}`: ticket limit row `{edge}`"))
            })?;
            let time: Timestamp = time
                .parse()
                .map_err(|e| DbError::Invalid(format!("group `{group}`: field created_at: {e}")))?;
            let status = Status::parse(status).ok_or_else(|| {
                DbError::Invalid(format!(
                    "group `{group}`: field status: unknown value `{status}`"
                ))
            })?;
            if from <= time && time <= to {
                counts.total += 1;
                counts.open += u64::from(status.is_open());
            }
        }
    }
    Ok(ReadAt {
        value: counts,
        revision,
        unchanged,
    })
}

impl Database {
    /// One page of the visible tickets: at most `limit` ids in byte order
    /// after `after`, and whether more follow. `plan` is the user's
    /// visibility filter at the graph's revision `graph_revision`; the
    /// page is the database's at the returned revision.
    pub async fn visible_ticket_page(
        &self,
        plan: &VisibilityFilter,
        filter: &TicketFilter,
        after: Option<&str>,
        limit: usize,
        graph_revision: u64,
    ) -> Result<ReadAt<(Vec<String>, bool)>, DbError> {
        match self {
            Database::Postgres(pool) => {
                page(pool, plan, filter, after, limit, graph_revision).await
            }
            Database::Sqlite(pool) => page(pool, plan, filter, after, limit, graph_revision).await,
        }
    }

    /// Tickets of `group` created in [from, to] (inclusive, as
    /// `LimitIndex::count`), all and open ones, of `requester` or of
    /// everyone.
    pub async fn ticket_limit_counts(
        &self,
        group: &str,
        requester: Option<&str>,
        from: Timestamp,
        to: Timestamp,
        graph_revision: u64,
    ) -> Result<ReadAt<LimitCounts>, DbError> {
        match self {
            Database::Postgres(pool) => {
                limit_counts(pool, group, requester, from, to, graph_revision).await
            }
            Database::Sqlite(pool) => {
                limit_counts(pool, group, requester, from, to, graph_revision).await
            }
        }
    }
}
