//! Reads the service-desk section tables (access model §8) into
//! `model::Sections`, inside the consistent read of `load.rs`: entities in
//! id order, then their lists attached by id. Both load scopes read them
//! (sections are part of the permission graph).

use sqlx::{Executor, FromRow, IntoArguments};

use super::load::{attach, choice, positions};
use super::{DbError, Dialect};
use crate::model::{
    AgendaEvent, Download, DownloadCategory, InventoryItem, Invoice, Lead, MemberRole, Project,
    SectionMember, Sections, Task, WikiPage,
};

/// Every row of one of this module's queries (constant text, no input).
async fn all<D, T>(conn: &mut D::Connection, sql: &'static str) -> Result<Vec<T>, DbError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'r> T: FromRow<'r, D::Row> + Send + Unpin,
{
    Ok(sqlx::query_as::<_, T>(sql).fetch_all(conn).await?)
}

/// A member of a project or task from its link row.
fn member(table: &str, id: &str, user: String, role: &str) -> Result<SectionMember, DbError> {
    Ok(SectionMember {
        role: choice(table, id, "role", role, MemberRole::parse)?,
        user,
    })
}

type Text2 = (String, String);
type Text3 = (String, String, String);

/// Reads every section table.
pub(super) async fn load_sections<D>(conn: &mut D::Connection) -> Result<Sections, DbError>
where
    D: Dialect,
    for<'c> &'c mut D::Connection: Executor<'c, Database = D>,
    D::Arguments: IntoArguments<D>,
    for<'r> Text2: FromRow<'r, D::Row>,
    for<'r> Text3: FromRow<'r, D::Row>,
    for<'r> (String, String, Option<String>): FromRow<'r, D::Row>,
    for<'r> (String, String, String, Option<String>): FromRow<'r, D::Row>,
    for<'r> (String, String, Option<String>, Option<String>): FromRow<'r, D::Row>,
    for<'r> (String, String, Option<String>, bool): FromRow<'r, D::Row>,
{
    let mut s = Sections::default();
    let rows: Vec<(String, String, Option<String>)> =
        all::<D, _>(conn, "SELECT id, name, owner_id FROM projects ORDER BY id").await?;
    s.projects = rows
        .into_iter()
        .map(|(id, name, owner)| Project {
            id,
            name,
            owner,
            members: Vec::new(),
        })
        .collect();
    let at = positions(&s.projects, |p| p.id.as_str());
    let rows: Vec<Text3> = all::<D, _>(
        conn,
        "SELECT project_id, user_id, role FROM project_members ORDER BY project_id, user_id",
    )
    .await?;
    for (project, user, role) in rows {
        let m = member("project_members", &project, user, &role)?;
        attach(&mut s.projects, &at, &project, "project_members")?
            .members
            .push(m);
    }

    let rows: Vec<(String, String, String, Option<String>)> = all::<D, _>(
        conn,
        "SELECT id, name, project_id, parent_id FROM tasks ORDER BY id",
    )
    .await?;
    s.tasks = rows
        .into_iter()
        .map(|(id, name, project, parent)| Task {
            id,
            name,
            project,
            parent,
            members: Vec::new(),
        })
        .collect();
    let at = positions(&s.tasks, |t| t.id.as_str());
    let rows: Vec<Text3> = all::<D, _>(
        conn,
        "SELECT task_id, user_id, role FROM task_members ORDER BY task_id, user_id",
    )
    .await?;
    for (task, user, role) in rows {
        let m = member("task_members", &task, user, &role)?;
        attach(&mut s.tasks, &at, &task, "task_members")?
            .members
            .push(m);
    }

    let rows: Vec<Text2> = all::<D, _>(conn, "SELECT id, name FROM wiki_pages ORDER BY id").await?;
    s.wiki_pages = rows
        .into_iter()
        .map(|(id, name)| WikiPage {
            id,
            name,
            read_groups: Vec::new(),
            write_groups: Vec::new(),
        })
        .collect();
    let at = positions(&s.wiki_pages, |w| w.id.as_str());
    let rows: Vec<Text3> = all::<D, _>(
        conn,
        "SELECT wiki_page_id, group_id, access FROM wiki_page_groups ORDER BY wiki_page_id, group_id",
    )
    .await?;
    for (page, group, access) in rows {
        let w = attach(&mut s.wiki_pages, &at, &page, "wiki_page_groups")?;
        match access.as_str() {
            "read" => w.read_groups.push(group),
            "write" => w.write_groups.push(group),
            other => {
                return Err(DbError::Invalid(format!(
                    "wiki_page_groups `{page}`: field access: unknown value `{other}`"
                )));
            }
        }
    }

    let rows: Vec<(String, String, Option<String>, bool)> = all::<D, _>(
        conn,
        "SELECT id, name, owner_id, public FROM inventory_items ORDER BY id",
    )
    .await?;
    s.inventory_items = rows
        .into_iter()
        .map(|(id, name, owner, public)| InventoryItem {
            id,
            name,
            owner,
            public,
            companies: Vec::new(),
            users: Vec::new(),
        })
        .collect();
    let at = positions(&s.inventory_items, |i| i.id.as_str());
    let rows: Vec<Text2> = all::<D, _>(
        conn,
        "SELECT inventory_item_id, company_id FROM inventory_item_companies \
         ORDER BY inventory_item_id, company_id",
    )
    .await?;
    for (item, company) in rows {
        attach(
            &mut s.inventory_items,
            &at,
            &item,
            "inventory_item_companies",
        )?
        .companies
        .push(company);
    }
    let rows: Vec<Text2> = all::<D, _>(
        conn,
        "SELECT inventory_item_id, user_id FROM inventory_item_users \
         ORDER BY inventory_item_id, user_id",
    )
    .await?;
    for (item, user) in rows {
        attach(&mut s.inventory_items, &at, &item, "inventory_item_users")?
            .users
            .push(user);
    }

    let rows: Vec<Text2> =
        all::<D, _>(conn, "SELECT id, company_id FROM invoices ORDER BY id").await?;
    s.invoices = rows
        .into_iter()
        .map(|(id, company)| Invoice { id, company })
        .collect();

    let rows: Vec<(String, String, Option<String>, Option<String>)> = all::<D, _>(
        conn,
        "SELECT id, name, company_id, owner_id FROM leads ORDER BY id",
    )
    .await?;
    s.leads = rows
        .into_iter()
        .map(|(id, name, company, owner)| Lead {
            id,
            name,
            company,
            owner,
        })
        .collect();

    let rows: Vec<(String, String, Option<String>, bool)> = all::<D, _>(
        conn,
        "SELECT id, name, owner_id, public FROM agenda_events ORDER BY id",
    )
    .await?;
    s.agenda_events = rows
        .into_iter()
        .map(|(id, name, owner, public)| AgendaEvent {
            id,
            name,
            owner,
            public,
            groups: Vec::new(),
        })
        .collect();
    let at = positions(&s.agenda_events, |e| e.id.as_str());
    let rows: Vec<Text2> = all::<D, _>(
        conn,
        "SELECT agenda_event_id, group_id FROM agenda_event_groups \
         ORDER BY agenda_event_id, group_id",
    )
    .await?;
    for (event, group) in rows {
        attach(&mut s.agenda_events, &at, &event, "agenda_event_groups")?
            .groups
            .push(group);
    }

    let rows: Vec<Text2> =
        all::<D, _>(conn, "SELECT id, name FROM download_categories ORDER BY id").await?;
    s.download_categories = rows
        .into_iter()
        .map(|(id, name)| DownloadCategory {
            id,
            name,
            groups: Vec::new(),
        })
        .collect();
    let at = positions(&s.download_categories, |c| c.id.as_str());
    let rows: Vec<Text2> = all::<D, _>(
        conn,
        "SELECT download_category_id, group_id FROM download_category_groups \
         ORDER BY download_category_id, group_id",
    )
    .await?;
    for (category, group) in rows {
        attach(
            &mut s.download_categories,
            &at,
            &category,
            "download_category_groups",
        )?
        .groups
        .push(group);
    }

    let rows: Vec<Text3> = all::<D, _>(
        conn,
        "SELECT id, name, category_id FROM downloads ORDER BY id",
    )
    .await?;
    s.downloads = rows
        .into_iter()
        .map(|(id, name, category)| Download { id, name, category })
        .collect();
    Ok(s)
}
