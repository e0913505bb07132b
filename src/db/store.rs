//! Writes a dataset into the database in one transaction (`import`).

use sqlx::Pool;

use super::dialect::Column;
use super::{Database, DbError, Dialect, TABLES};
use crate::model::{Dataset, GrantScope, SectionMember, Sections};

/// The rows of one table, column by column.
struct Rows {
    table: &'static str,
    columns: Vec<(&'static str, Column)>,
}

fn text<T>(items: &[T], f: impl Fn(&T) -> Option<String>) -> Column {
    Column::Text(items.iter().map(f).collect())
}

/// Keeps the first of each repeated entry. A file may list a grant, a
/// membership, a CC or a flag twice, which means what listing it once does
/// (the rules read them as sets); the tables' keys hold each once.
fn distinct<T: std::hash::Hash + Eq + Clone>(mut items: Vec<T>) -> Vec<T> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.retain(|item| seen.insert(item.clone()));
    items
}

/// The dataset as table rows, parents before children. Company owners are
/// written after users (the two tables reference each other).
fn rows(data: &Dataset) -> Vec<Rows> {
    let org_domains: Vec<(&str, &crate::model::Domain)> = data
        .organisations
        .iter()
        .flat_map(|o| o.domains.iter().map(move |d| (o.id.as_str(), d)))
        .collect();
    let managers: Vec<(&str, &str)> = distinct(
        data.organisations
            .iter()
            .flat_map(|o| {
                o.access_managers
                    .iter()
                    .map(move |u| (o.id.as_str(), u.as_str()))
            })
            .collect(),
    );
    let flags: Vec<(&str, &str)> = distinct(
        data.profiles
            .iter()
            .flat_map(|p| p.flags.iter().map(move |f| (p.id.as_str(), f.name())))
            .collect(),
    );
    let memberships: Vec<(&str, &str)> = distinct(
        data.users
            .iter()
            .flat_map(|u| {
                u.organisations
                    .iter()
                    .map(move |o| (u.id.as_str(), o.as_str()))
            })
            .collect(),
    );
    let grants: Vec<(&str, &str, Option<&str>)> = distinct(
        data.users
            .iter()
            .flat_map(|u| {
                u.grants.iter().map(move |g| {
                    let group = match &g.group {
                        GrantScope::All => None,
                        GrantScope::Group(id) => Some(id.as_str()),
                    };
                    (u.id.as_str(), g.profile.as_str(), group)
                })
            })
            .collect(),
    );
    let pairs = |list: &dyn Fn(&crate::model::Ticket) -> &Vec<String>| -> Vec<(String, String)> {
        data.tickets
            .iter()
            .flat_map(|t| list(t).iter().map(move |u| (t.id.clone(), u.clone())))
            .collect()
    };
    let ccs = distinct(pairs(&|t| &t.ccs));
    let participants = distinct(pairs(&|t| &t.participants));
    let s = |v: &str| Some(v.to_owned());
    vec![
        Rows {
            table: "organisations",
            columns: vec![
                ("id", text(&data.organisations, |o| s(&o.id))),
                ("name", text(&data.organisations, |o| s(&o.name))),
                (
                    "ticket_access",
                    text(&data.organisations, |o| s(o.ticket_access.name())),
                ),
            ],
        },
        Rows {
            table: "organisation_domains",
            columns: vec![
                ("organisation_id", text(&org_domains, |(o, _)| s(o))),
                ("domain", text(&org_domains, |(_, d)| s(&d.domain))),
                (
                    "added_at",
                    Column::Time(
                        org_domains
                            .iter()
                            .map(|(_, d)| d.added_at.to_string())
                            .collect(),
                    ),
                ),
            ],
        },
        Rows {
            table: "partnerships",
            columns: vec![
                ("partner_id", text(&data.partnerships, |p| s(&p.partner))),
                ("client_id", text(&data.partnerships, |p| s(&p.client))),
                (
                    "since",
                    Column::Time(
                        data.partnerships
                            .iter()
                            .map(|p| p.since.to_string())
                            .collect(),
                    ),
                ),
            ],
        },
        Rows {
            table: "groups",
            columns: vec![
                ("id", text(&data.groups, |g| s(&g.id))),
                ("name", text(&data.groups, |g| s(&g.name))),
                ("parent_id", text(&data.groups, |g| g.parent.clone())),
                (
                    "propagate",
                    Column::Bool(data.groups.iter().map(|g| g.propagate).collect()),
                ),
                (
                    "open_ticket_limit",
                    Column::Int(
                        data.groups
                            .iter()
                            .map(|g| i64::from(g.open_ticket_limit))
                            .collect(),
                    ),
                ),
                (
                    "enforce_open_limit",
                    Column::Bool(data.groups.iter().map(|g| g.enforce_open_limit).collect()),
                ),
                (
                    "total_ticket_limit",
                    Column::Int(
                        data.groups
                            .iter()
                            .map(|g| i64::from(g.total_ticket_limit))
                            .collect(),
                    ),
                ),
            ],
        },
        Rows {
            table: "profiles",
            columns: vec![
                ("id", text(&data.profiles, |p| s(&p.id))),
                ("name", text(&data.profiles, |p| s(&p.name))),
            ],
        },
        Rows {
            table: "profile_flags",
            columns: vec![
                ("profile_id", text(&flags, |(p, _)| s(p))),
                ("flag", text(&flags, |(_, f)| s(f))),
            ],
        },
        Rows {
            table: "companies",
            columns: vec![
                ("id", text(&data.companies, |c| s(&c.id))),
                ("name", text(&data.companies, |c| s(&c.name))),
                ("parent_id", text(&data.companies, |c| c.parent.clone())),
            ],
        },
        Rows {
            table: "users",
            columns: vec![
                ("id", text(&data.users, |u| s(&u.id))),
                ("email", text(&data.users, |u| u.email.clone())),
                ("name", text(&data.users, |u| u.name.clone())),
                (
                    "created_at",
                    Column::Time(
                        data.users
                            .iter()
                            .map(|u| u.created_at.to_string())
                            .collect(),
                    ),
                ),
                ("kind", text(&data.users, |u| s(u.kind.name()))),
                (
                    "suspended",
                    Column::Bool(data.users.iter().map(|u| u.suspended).collect()),
                ),
                (
                    "ticket_access",
                    text(&data.users, |u| s(u.ticket_access.name())),
                ),
                (
                    "default_organisation_id",
                    text(&data.users, |u| u.default_organisation.clone()),
                ),
                ("company_id", text(&data.users, |u| u.company.clone())),
                (
                    "company_scoped",
                    Column::Bool(data.users.iter().map(|u| u.company_scoped).collect()),
                ),
            ],
        },
        Rows {
            table: "user_organisations",
            columns: vec![
                ("user_id", text(&memberships, |(u, _)| s(u))),
                ("organisation_id", text(&memberships, |(_, o)| s(o))),
            ],
        },
        Rows {
            table: "organisation_access_managers",
            columns: vec![
                ("organisation_id", text(&managers, |(o, _)| s(o))),
                ("user_id", text(&managers, |(_, u)| s(u))),
            ],
        },
        Rows {
            table: "grants",
            columns: vec![
                ("user_id", text(&grants, |(u, _, _)| s(u))),
                ("profile_id", text(&grants, |(_, p, _)| s(p))),
                ("group_id", text(&grants, |(_, _, g)| g.map(str::to_owned))),
            ],
        },
        Rows {
            table: "tickets",
            columns: vec![
                ("id", text(&data.tickets, |t| s(&t.id))),
                (
                    "created_at",
                    Column::Time(
                        data.tickets
                            .iter()
                            .map(|t| t.created_at.to_string())
                            .collect(),
                    ),
                ),
                ("requester_id", text(&data.tickets, |t| s(&t.requester))),
                (
                    "organisation_id",
                    text(&data.tickets, |t| t.organisation.clone()),
                ),
                ("group_id", text(&data.tickets, |t| t.group.clone())),
                ("assignee_id", text(&data.tickets, |t| t.assignee.clone())),
                ("status", text(&data.tickets, |t| s(t.status.name()))),
            ],
        },
        Rows {
            table: "ticket_ccs",
            columns: vec![
                ("ticket_id", text(&ccs, |(t, _)| s(t))),
                ("user_id", text(&ccs, |(_, u)| s(u))),
            ],
        },
        Rows {
            table: "ticket_participants",
            columns: vec![
                ("ticket_id", text(&participants, |(t, _)| s(t))),
                ("user_id", text(&participants, |(_, u)| s(u))),
            ],
        },
    ]
}

/// The section lists (access model §8) as table rows, entities before
/// their lists; tasks in one statement, so a parent may follow its child.
fn section_rows(data: &Sections) -> Vec<Rows> {
    let s = |v: &str| Some(v.to_owned());
    // (entity, other id, third column) of a list.
    type Link = (String, String, String);
    let links = |pairs: Vec<Link>| distinct(pairs);
    let members = |of: &mut dyn Iterator<Item = (&String, &Vec<SectionMember>)>| -> Vec<Link> {
        links(
            of.flat_map(|(id, ms)| {
                ms.iter()
                    .map(move |m| (id.clone(), m.user.clone(), m.role.name().to_owned()))
            })
            .collect(),
        )
    };
    let project_members = members(&mut data.projects.iter().map(|p| (&p.id, &p.members)));
    let task_members = members(&mut data.tasks.iter().map(|t| (&t.id, &t.members)));
    let wiki_groups = links(
        data.wiki_pages
            .iter()
            .flat_map(|w| {
                let read = w
                    .read_groups
                    .iter()
                    .map(move |g| (w.id.clone(), g.clone(), "read".to_owned()));
                let write = w
                    .write_groups
                    .iter()
                    .map(move |g| (w.id.clone(), g.clone(), "write".to_owned()));
                read.chain(write)
            })
            .collect(),
    );
    let pairs = |of: &mut dyn Iterator<Item = (&String, &Vec<String>)>| -> Vec<Link> {
        links(
            of.flat_map(|(id, list)| {
                list.iter()
                    .map(move |x| (id.clone(), x.clone(), String::new()))
            })
            .collect(),
        )
    };
    let item_companies = pairs(&mut data.inventory_items.iter().map(|i| (&i.id, &i.companies)));
    let item_users = pairs(&mut data.inventory_items.iter().map(|i| (&i.id, &i.users)));
    let event_groups = pairs(&mut data.agenda_events.iter().map(|e| (&e.id, &e.groups)));
    let category_groups = pairs(&mut data.download_categories.iter().map(|c| (&c.id, &c.groups)));
    let link = |table, first, second, rows: &[Link], third: Option<&'static str>| {
        let mut columns = vec![
            (first, text(rows, |(a, _, _)| s(a))),
            (second, text(rows, |(_, b, _)| s(b))),
        ];
        if let Some(third) = third {
            columns.push((third, text(rows, |(_, _, c)| s(c))));
        }
        Rows { table, columns }
    };
    vec![
        Rows {
            table: "projects",
            columns: vec![
                ("id", text(&data.projects, |p| s(&p.id))),
                ("name", text(&data.projects, |p| s(&p.name))),
                ("owner_id", text(&data.projects, |p| p.owner.clone())),
            ],
        },
        link(
            "project_members",
            "project_id",
            "user_id",
            &project_members,
            Some("role"),
        ),
        Rows {
            table: "tasks",
            columns: vec![
                ("id", text(&data.tasks, |t| s(&t.id))),
                ("name", text(&data.tasks, |t| s(&t.name))),
                ("project_id", text(&data.tasks, |t| s(&t.project))),
                ("parent_id", text(&data.tasks, |t| t.parent.clone())),
            ],
        },
        link(
            "task_members",
            "task_id",
            "user_id",
            &task_members,
            Some("role"),
        ),
        Rows {
            table: "wiki_pages",
            columns: vec![
                ("id", text(&data.wiki_pages, |w| s(&w.id))),
                ("name", text(&data.wiki_pages, |w| s(&w.name))),
            ],
        },
        link(
            "wiki_page_groups",
            "wiki_page_id",
            "group_id",
            &wiki_groups,
            Some("access"),
        ),
        Rows {
            table: "inventory_items",
            columns: vec![
                ("id", text(&data.inventory_items, |i| s(&i.id))),
                ("name", text(&data.inventory_items, |i| s(&i.name))),
                ("owner_id", text(&data.inventory_items, |i| i.owner.clone())),
                (
                    "public",
                    Column::Bool(data.inventory_items.iter().map(|i| i.public).collect()),
                ),
            ],
        },
        link(
            "inventory_item_companies",
            "inventory_item_id",
            "company_id",
            &item_companies,
            None,
        ),
        link(
            "inventory_item_users",
            "inventory_item_id",
            "user_id",
            &item_users,
            None,
        ),
        Rows {
            table: "invoices",
            columns: vec![
                ("id", text(&data.invoices, |v| s(&v.id))),
                ("company_id", text(&data.invoices, |v| s(&v.company))),
            ],
        },
        Rows {
            table: "leads",
            columns: vec![
                ("id", text(&data.leads, |l| s(&l.id))),
                ("name", text(&data.leads, |l| s(&l.name))),
                ("company_id", text(&data.leads, |l| l.company.clone())),
                ("owner_id", text(&data.leads, |l| l.owner.clone())),
            ],
        },
        Rows {
            table: "agenda_events",
            columns: vec![
                ("id", text(&data.agenda_events, |e| s(&e.id))),
                ("name", text(&data.agenda_events, |e| s(&e.name))),
                ("owner_id", text(&data.agenda_events, |e| e.owner.clone())),
                (
                    "public",
                    Column::Bool(data.agenda_events.iter().map(|e| e.public).collect()),
                ),
            ],
        },
        link(
            "agenda_event_groups",
            "agenda_event_id",
            "group_id",
            &event_groups,
            None,
        ),
        Rows {
            table: "download_categories",
            columns: vec![
                ("id", text(&data.download_categories, |c| s(&c.id))),
                ("name", text(&data.download_categories, |c| s(&c.name))),
            ],
        },
        link(
            "download_category_groups",
            "download_category_id",
            "group_id",
            &category_groups,
            None,
        ),
        Rows {
            table: "downloads",
            columns: vec![
                ("id", text(&data.downloads, |d| s(&d.id))),
                ("name", text(&data.downloads, |d| s(&d.name))),
                ("category_id", text(&data.downloads, |d| s(&d.category))),
            ],
        },
    ]
}

fn owners(data: &Dataset) -> Vec<(String, String)> {
    data.companies
        .iter()
        .filter_map(|c| c.owner.clone().map(|o| (c.id.clone(), o)))
        .collect()
}

impl Database {
    /// Writes `data` in one transaction, all or nothing; `replace` deletes
    /// everything first. Readers see one bulk change and reload in full.
    /// Returns the revision after the import.
    pub async fn import(&self, data: &Dataset, replace: bool) -> Result<u64, DbError> {
        match self {
            Database::Postgres(pool) => import(pool, data, replace).await?,
            Database::Sqlite(pool) => import(pool, data, replace).await?,
        }
        self.revision().await
    }
}

async fn import<D: Dialect>(pool: &Pool<D>, data: &Dataset, replace: bool) -> Result<(), DbError> {
    let mut tables = rows(data);
    tables.extend(section_rows(&data.sections));
    let mut tx = pool.begin().await?;
    D::begin_import(&mut tx).await?;
    if replace {
        D::clear(&mut tx, &TABLES).await?;
    }
    for rows in &tables {
        D::insert_columns(&mut tx, rows.table, &rows.columns).await?;
    }
    D::set_owners(&mut tx, owners(data)).await?;
    D::end_bulk(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}
