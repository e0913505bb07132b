//! A mapping's rows, every value as text, turned into our data: each
//! column read by its kind (an integer or a datetime as time, a non-zero
//! integer as true), names HTML-decoded once where the mapping says so, and
//! references the source does not resolve kept out, as
//! source-integria.md asks: an unknown requester is nobody, an unknown
//! assignee, group, parent, owner or company is none, and grants, people
//! and memberships naming something unknown count for nothing.

use std::collections::BTreeMap;

/// Ids are hashed millions of times in a load: foldhash, as the snapshot
/// build does (seeded per process).
type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use crate::flags::{Flag, FlagSet};
use crate::mapping::Entity;
use crate::model::{
    Company, Dataset, Domain, Grant, GrantScope, Group, MAX_ID_BYTES, OrgAccess, Organisation,
    Partnership, Profile, Status, Ticket, User, UserAccess, UserKind,
};
use crate::time::Timestamp;

/// The rows one entity's query gave, every value as text (`None`: NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rows {
    /// The columns the query gives, in its order.
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// Why rows could not be read into our data: a value no reading makes
/// sense of. The text names the entity, the row's key and the column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity} `{key}`: column {column}: {problem}")]
pub struct DecodeError {
    pub entity: &'static str,
    pub key: String,
    pub column: &'static str,
    pub problem: String,
}

/// How many references named something unknown, by entity holding them.
pub type Unresolved = BTreeMap<&'static str, u64>;

/// The entities others refer to, whose ids a reference resolves against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Parent {
    Organisations,
    Groups,
    Profiles,
    Companies,
    Users,
}

impl Parent {
    pub const ALL: [Parent; 5] = [
        Parent::Organisations,
        Parent::Groups,
        Parent::Profiles,
        Parent::Companies,
        Parent::Users,
    ];

    /// Its table name (docs/schema.md).
    pub fn entity(self) -> &'static str {
        match self {
            Parent::Organisations => "organisations",
            Parent::Groups => "groups",
            Parent::Profiles => "profiles",
            Parent::Companies => "companies",
            Parent::Users => "users",
        }
    }

    pub fn of(entity: &str) -> Option<Parent> {
        Parent::ALL.into_iter().find(|p| p.entity() == entity)
    }
}

/// The ids of every parent entity that the source holds.
#[derive(Debug, Clone, Default)]
pub struct Known {
    sets: [HashSet<String>; 5],
}

impl Known {
    fn set(&self, parent: Parent) -> &HashSet<String> {
        &self.sets[parent as usize]
    }

    pub fn contains(&self, parent: Parent, id: &str) -> bool {
        self.set(parent).contains(id)
    }

    pub fn insert(&mut self, parent: Parent, id: String) -> bool {
        self.sets[parent as usize].insert(id)
    }

    pub fn remove(&mut self, parent: Parent, id: &str) -> bool {
        self.sets[parent as usize].remove(id)
    }
}

/// References left out: counted by the entity holding them, and kept by
/// what they name, so that the rows holding one can be read again when
/// that id appears.
#[derive(Debug, Clone, Default)]
pub struct Misses {
    /// (entity, key of the row) → references of that row left out.
    pub rows: HashMap<(&'static str, String), u32>,
    pub ids: HashSet<(Parent, String)>,
}

impl Misses {
    /// The references left out, by entity holding them.
    pub fn counts(&self) -> Unresolved {
        let mut out = Unresolved::new();
        for ((entity, _), n) in &self.rows {
            *out.entry(*entity).or_default() += u64::from(*n);
        }
        out
    }

    /// Forgets what the rows of `entity` with `key` left out, before they
    /// are read again.
    pub fn forget(&mut self, entity: &'static str, key: &str) {
        self.rows.remove(&(entity, key.to_owned()));
    }

    fn count(&mut self, entity: &'static str, key: &str) {
        *self.rows.entry((entity, key.to_owned())).or_default() += 1;
    }
}

/// Resolves references against what is known, noting every miss.
struct Resolve<'a> {
    known: &'a Known,
    misses: &'a mut Misses,
}

impl Resolve<'_> {
    /// Counts a reference that the row of `holder` with `key` lost.
    fn count(&mut self, (holder, key): (&'static str, &str)) {
        self.misses.count(holder, key);
    }

    /// Counts a reference `row` lost.
    fn lost(&mut self, row: &Row<'_>) {
        self.count((row.entity.name, &row.key()));
    }

    /// A link row's two ends, each to be a known id of its parent; `None`,
    /// counted, when either is missing or unknown. Both ends are looked
    /// up, so that each miss is noted.
    fn pair(
        &mut self,
        row: &Row<'_>,
        (a, of_a): (&'static str, Parent),
        (b, of_b): (&'static str, Parent),
    ) -> Result<Option<(String, String)>, DecodeError> {
        let (Some(x), Some(y)) = (row.id(a)?, row.id(b)?) else {
            self.lost(row);
            return Ok(None);
        };
        let known_x = self.has(of_a, &x);
        let known_y = self.has(of_b, &y);
        if known_x && known_y {
            Ok(Some((x, y)))
        } else {
            self.lost(row);
            Ok(None)
        }
    }

    /// Whether `id` is known; if not, the miss is noted (not counted).
    fn has(&mut self, parent: Parent, id: &str) -> bool {
        let known = self.known.contains(parent, id);
        if !known {
            self.misses.ids.insert((parent, id.to_owned()));
        }
        known
    }

    /// `id` if known; else none, counted and noted.
    fn id(
        &mut self,
        holder: (&'static str, &str),
        parent: Parent,
        id: Option<String>,
    ) -> Option<String> {
        match id {
            Some(id) if self.has(parent, &id) => Some(id),
            Some(_) => {
                self.count(holder);
                None
            }
            None => None,
        }
    }
}

/// One row with its columns, read by name.
struct Row<'a> {
    entity: &'static Entity,
    columns: &'a [&'static str],
    values: &'a [Option<String>],
    html: bool,
}

impl Row<'_> {
    fn raw(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| *c == column)?;
        self.values.get(i)?.as_deref()
    }

    fn key(&self) -> String {
        self.raw(self.entity.key).unwrap_or_default().to_owned()
    }

    fn error(&self, column: &'static str, problem: impl Into<String>) -> DecodeError {
        DecodeError {
            entity: self.entity.name,
            key: self.key(),
            column,
            problem: problem.into(),
        }
    }

    /// An id, or none for NULL or empty (a source's "no reference").
    fn id(&self, column: &'static str) -> Result<Option<String>, DecodeError> {
        match self.raw(column) {
            None | Some("") => Ok(None),
            Some(id) if id.len() > MAX_ID_BYTES => Err(self.error(
                column,
                format!("an id of {} bytes (at most {MAX_ID_BYTES})", id.len()),
            )),
            Some(id) => Ok(Some(id.to_owned())),
        }
    }

    fn text(&self, column: &str) -> Option<String> {
        let raw = self.raw(column)?;
        Some(if self.html {
            html_escape::decode_html_entities(raw).into_owned()
        } else {
            raw.to_owned()
        })
    }

    fn time(&self, column: &'static str) -> Result<Timestamp, DecodeError> {
        let Some(raw) = self.raw(column) else {
            return Ok(Timestamp::from_nanos(0));
        };
        parse_time(raw).ok_or_else(|| {
            self.error(
                column,
                format!("`{raw}` is neither Unix seconds nor a datetime"),
            )
        })
    }

    fn boolean(&self, column: &'static str) -> Result<bool, DecodeError> {
        match self.raw(column) {
            None => Ok(false),
            Some(raw) => parse_bool(raw)
                .ok_or_else(|| self.error(column, format!("`{raw}` is not a boolean"))),
        }
    }

    fn count(&self, column: &'static str) -> Result<u32, DecodeError> {
        let Some(raw) = self.raw(column) else {
            return Ok(0);
        };
        match raw.trim().parse::<i128>() {
            Ok(n) if n >= 0 => Ok(u32::try_from(n).unwrap_or(u32::MAX)),
            _ => Err(self.error(column, format!("`{raw}` is not a count"))),
        }
    }

    fn word<T>(
        &self,
        column: &'static str,
        default: T,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, DecodeError> {
        match self.raw(column) {
            None => Ok(default),
            Some(raw) => parse(raw.trim())
                .ok_or_else(|| self.error(column, format!("unknown value `{raw}`"))),
        }
    }
}

/// Unix seconds (an integer or a decimal), or a MySQL/PostgreSQL datetime
/// as UTC; a zero date is the epoch.
fn parse_time(raw: &str) -> Option<Timestamp> {
    let raw = raw.trim();
    if let Ok(seconds) = raw.parse::<f64>() {
        if !seconds.is_finite() {
            return None;
        }
        // Sub-microsecond digits are beyond every source's datetimes.
        let micros = (seconds * 1e6).round();
        return Some(Timestamp::from_nanos((micros as i64).saturating_mul(1000)));
    }
    if raw.starts_with("0000-00-00") {
        return Some(Timestamp::from_nanos(0));
    }
    let (date, time) = raw.split_once([' ', 'T'])?;
    let time = time.trim_end_matches('Z');
    // PostgreSQL writes a `timestamptz` with its offset, hours only when
    // whole (`10:00:00+00`, `10:00:00.5+05:30`).
    let offset = time.rfind(['+', '-']).map(|at| time.split_at(at));
    match offset {
        Some((clock, zone)) if zone.len() == 3 => format!("{date}T{clock}{zone}:00").parse().ok(),
        Some((clock, zone)) if zone.len() == 6 => format!("{date}T{clock}{zone}").parse().ok(),
        Some(_) => None,
        None => format!("{date}T{time}Z").parse().ok(),
    }
}

fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim() {
        "t" | "true" | "TRUE" => Some(true),
        "f" | "false" | "FALSE" => Some(false),
        n => n.parse::<i128>().ok().map(|n| n != 0),
    }
}

/// `local@domain`, else none: a source's free-text e-mail field.
fn email(raw: Option<String>) -> Option<String> {
    raw.map(|e| e.trim().to_owned())
        .filter(|e| crate::dataset::valid_email(e))
}

/// The rows of entity `name`, read by column name.
fn each<'a>(
    rows: &'a BTreeMap<&'static str, Rows>,
    name: &'static str,
    html: bool,
) -> Vec<Row<'a>> {
    let (Some(r), Some(entity)) = (rows.get(name), crate::mapping::entity(name)) else {
        return Vec::new();
    };
    r.rows
        .iter()
        .map(|values| Row {
            entity,
            columns: &r.columns,
            values,
            html,
        })
        .collect()
}

/// The parent entities' rows, their references not yet resolved; one row
/// per id.
#[derive(Debug, Default)]
pub struct Parents {
    pub organisations: Vec<Organisation>,
    pub groups: Vec<Group>,
    pub profiles: Vec<Profile>,
    pub companies: Vec<Company>,
    pub users: Vec<User>,
}

impl Parents {
    /// Reads the parent entities of `rows`.
    pub fn read(rows: &BTreeMap<&'static str, Rows>, html: bool) -> Result<Parents, DecodeError> {
        let mut out = Parents::default();
        for row in each(rows, "organisations", html) {
            // A row without an id is no row (source data is not ours to refuse).
            let Some(id) = row.id("id")? else {
                continue;
            };
            out.organisations.push(Organisation {
                id,
                name: row.text("name").unwrap_or_default(),
                ticket_access: row.word("ticket_access", OrgAccess::Own, OrgAccess::parse)?,
                domains: Vec::new(),
                access_managers: Vec::new(),
            });
        }
        for row in each(rows, "groups", html) {
            // A row without an id is no row (source data is not ours to refuse).
            let Some(id) = row.id("id")? else {
                continue;
            };
            out.groups.push(Group {
                id,
                name: row.text("name").unwrap_or_default(),
                parent: row.id("parent_id")?,
                propagate: row.boolean("propagate")?,
                open_ticket_limit: row.count("open_ticket_limit")?,
                enforce_open_limit: row.boolean("enforce_open_limit")?,
                total_ticket_limit: row.count("total_ticket_limit")?,
            });
        }
        for row in each(rows, "profiles", html) {
            // A row without an id is no row (source data is not ours to refuse).
            let Some(id) = row.id("id")? else {
                continue;
            };
            out.profiles.push(Profile {
                id,
                name: row.text("name").unwrap_or_default(),
                flags: FlagSet::EMPTY,
            });
        }
        for row in each(rows, "companies", html) {
            // A row without an id is no row (source data is not ours to refuse).
            let Some(id) = row.id("id")? else {
                continue;
            };
            out.companies.push(Company {
                id,
                name: row.text("name").unwrap_or_default(),
                parent: row.id("parent_id")?,
                owner: row.id("owner_id")?,
            });
        }
        for row in each(rows, "users", html) {
            // A row without an id is no row (source data is not ours to refuse).
            let Some(id) = row.id("id")? else {
                continue;
            };
            out.users.push(User {
                id,
                email: email(row.text("email")),
                name: row.text("name"),
                created_at: row.time("created_at")?,
                kind: row.word("kind", UserKind::EndUser, UserKind::parse)?,
                suspended: row.boolean("suspended")?,
                ticket_access: row.word("ticket_access", UserAccess::Own, UserAccess::parse)?,
                organisations: Vec::new(),
                default_organisation: row.id("default_organisation_id")?,
                company: row.id("company_id")?,
                company_scoped: row.boolean("company_scoped")?,
                grants: Vec::new(),
            });
        }
        out.organisations.dedup_ids();
        out.groups.dedup_ids();
        out.profiles.dedup_ids();
        out.companies.dedup_ids();
        out.users.dedup_ids();
        Ok(out)
    }

    /// Adds every id these rows give to `known`.
    pub fn add_to(&self, known: &mut Known) {
        let ids: [Vec<&String>; 5] = [
            self.organisations.iter().map(|x| &x.id).collect(),
            self.groups.iter().map(|x| &x.id).collect(),
            self.profiles.iter().map(|x| &x.id).collect(),
            self.companies.iter().map(|x| &x.id).collect(),
            self.users.iter().map(|x| &x.id).collect(),
        ];
        for (parent, ids) in Parent::ALL.into_iter().zip(ids) {
            for id in ids {
                known.insert(parent, id.clone());
            }
        }
    }

    /// Resolves the rows' references against `known`.
    pub fn resolve(&mut self, known: &Known, misses: &mut Misses) {
        let mut r = Resolve { known, misses };
        for g in &mut self.groups {
            g.parent = r.id(("groups", &g.id), Parent::Groups, g.parent.take());
        }
        for c in &mut self.companies {
            c.parent = r.id(("companies", &c.id), Parent::Companies, c.parent.take());
            c.owner = r.id(("companies", &c.id), Parent::Users, c.owner.take());
        }
        for u in &mut self.users {
            u.company = r.id(("users", &u.id), Parent::Companies, u.company.take());
            u.default_organisation = r.id(
                ("users", &u.id),
                Parent::Organisations,
                u.default_organisation.take(),
            );
        }
    }
}

/// The other entities' rows, each reference resolved: what does not
/// resolve is left out (a link) or none (a ticket's reference).
#[derive(Debug, Default)]
pub struct Children {
    pub profile_flags: Vec<(String, Flag)>,
    /// (user, profile, group or every group).
    pub grants: Vec<(String, String, Option<String>)>,
    /// (user, organisation).
    pub memberships: Vec<(String, String)>,
    /// (organisation, user).
    pub access_managers: Vec<(String, String)>,
    /// (organisation, domain).
    pub domains: Vec<(String, Domain)>,
    pub partnerships: Vec<Partnership>,
    pub tickets: Vec<Ticket>,
    /// (ticket, user), of `ticket_ccs` and of `ticket_participants`.
    pub ccs: Vec<(String, String)>,
    pub participants: Vec<(String, String)>,
}

impl Children {
    /// Reads the child entities of `rows`, resolving against `known`.
    pub fn read(
        rows: &BTreeMap<&'static str, Rows>,
        html: bool,
        known: &Known,
        misses: &mut Misses,
    ) -> Result<Children, DecodeError> {
        let mut r = Resolve { known, misses };
        let mut out = Children::default();
        let mut seen_flags = HashSet::default();
        for row in each(rows, "profile_flags", html) {
            let Some(profile) = row.id("profile_id")? else {
                r.lost(&row);
                continue;
            };
            let flag = row.word("flag", Flag::IR, Flag::parse)?;
            if !r.has(Parent::Profiles, &profile) {
                r.lost(&row);
            } else if seen_flags.insert((profile.clone(), flag)) {
                out.profile_flags.push((profile, flag));
            }
        }
        let mut seen_grants = HashSet::default();
        for row in each(rows, "grants", html) {
            // The group is looked up first, so that its miss is noted even
            // when the user or profile is unknown too.
            let group = row.id("group_id")?;
            let group_known = group.as_ref().is_none_or(|g| r.has(Parent::Groups, g));
            let user = ("user_id", Parent::Users);
            let Some((user, profile)) = r.pair(&row, user, ("profile_id", Parent::Profiles))?
            else {
                continue;
            };
            if !group_known {
                r.lost(&row);
            } else if seen_grants.insert((user.clone(), profile.clone(), group.clone())) {
                out.grants.push((user, profile, group));
            }
        }
        let mut seen = HashSet::default();
        for row in each(rows, "user_organisations", html) {
            let link = ("user_id", Parent::Users);
            if let Some(pair) = r.pair(&row, link, ("organisation_id", Parent::Organisations))?
                && seen.insert(pair.clone())
            {
                out.memberships.push(pair);
            }
        }
        let mut seen = HashSet::default();
        for row in each(rows, "organisation_access_managers", html) {
            let link = ("organisation_id", Parent::Organisations);
            if let Some(pair) = r.pair(&row, link, ("user_id", Parent::Users))?
                && seen.insert(pair.clone())
            {
                out.access_managers.push(pair);
            }
        }
        let mut seen = HashSet::default();
        for row in each(rows, "organisation_domains", html) {
            let Some(org) = row.id("organisation_id")? else {
                r.lost(&row);
                continue;
            };
            let domain = row.text("domain").unwrap_or_default().to_ascii_lowercase();
            let added_at = row.time("added_at")?;
            if !r.has(Parent::Organisations, &org) || domain.is_empty() {
                r.lost(&row);
            } else if seen.insert((org.clone(), domain.clone())) {
                out.domains.push((org, Domain { domain, added_at }));
            }
        }
        for row in each(rows, "partnerships", html) {
            let orgs = ("partner_id", Parent::Organisations);
            let Some((partner, client)) =
                r.pair(&row, orgs, ("client_id", Parent::Organisations))?
            else {
                continue;
            };
            out.partnerships.push(Partnership {
                partner,
                client,
                since: row.time("since")?,
            });
        }
        for row in each(rows, "tickets", html) {
            let requester = match row.id("requester_id")? {
                Some(id) if r.has(Parent::Users, &id) => id,
                Some(_) => {
                    r.count(("tickets", &row.key()));
                    String::new()
                }
                // No requester at all: nobody, and nothing unresolved.
                None => String::new(),
            };
            let Some(id) = row.id("id")? else {
                continue;
            };
            out.tickets.push(Ticket {
                id,
                created_at: row.time("created_at")?,
                requester,
                organisation: r.id(
                    ("tickets", &row.key()),
                    Parent::Organisations,
                    row.id("organisation_id")?,
                ),
                group: r.id(("tickets", &row.key()), Parent::Groups, row.id("group_id")?),
                assignee: r.id(
                    ("tickets", &row.key()),
                    Parent::Users,
                    row.id("assignee_id")?,
                ),
                ccs: Vec::new(),
                participants: Vec::new(),
                status: row.word("status", Status::New, Status::parse)?,
            });
        }
        out.tickets.dedup_ids();
        for (entity, cc) in [("ticket_ccs", true), ("ticket_participants", false)] {
            let mut seen = HashSet::default();
            for row in each(rows, entity, html) {
                let Some(ticket) = row.id("ticket_id")? else {
                    r.lost(&row);
                    continue;
                };
                // A NULL person (an outer join's gap) is no row.
                let Some(user) = row.id("user_id")? else {
                    continue;
                };
                if !r.has(Parent::Users, &user) {
                    r.count((entity, &ticket));
                } else if seen.insert((ticket.clone(), user.clone())) {
                    let list = if cc {
                        &mut out.ccs
                    } else {
                        &mut out.participants
                    };
                    list.push((ticket, user));
                }
            }
        }
        Ok(out)
    }
}

/// Everything a mapping read, turned into a dataset of what resolves; the
/// ids it holds; and the references left out.
pub fn dataset(
    rows: &BTreeMap<&'static str, Rows>,
    html: bool,
) -> Result<(Dataset, Known, Misses), DecodeError> {
    let mut parents = Parents::read(rows, html)?;
    let mut known = Known::default();
    parents.add_to(&mut known);
    let mut misses = Misses::default();
    parents.resolve(&known, &mut misses);
    let children = Children::read(rows, html, &known, &mut misses)?;

    let Parents {
        mut organisations,
        groups,
        mut profiles,
        companies,
        mut users,
    } = parents;
    let mut flags: BTreeMap<String, FlagSet> = BTreeMap::new();
    for (profile, flag) in children.profile_flags {
        flags.entry(profile).or_default().insert(flag);
    }
    for p in &mut profiles {
        p.flags = flags.remove(&p.id).unwrap_or_default();
    }
    let user_at: HashMap<String, usize> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id.clone(), i))
        .collect();
    for (user, profile, group) in children.grants {
        if let Some(u) = user_at.get(&user).and_then(|i| users.get_mut(*i)) {
            u.grants.push(Grant {
                profile,
                group: group.map_or(GrantScope::All, GrantScope::Group),
            });
        }
    }
    for (user, org) in children.memberships {
        if let Some(u) = user_at.get(&user).and_then(|i| users.get_mut(*i)) {
            u.organisations.push(org);
        }
    }
    let org_at: HashMap<String, usize> = organisations
        .iter()
        .enumerate()
        .map(|(i, o)| (o.id.clone(), i))
        .collect();
    for (org, user) in children.access_managers {
        if let Some(o) = org_at.get(&org).and_then(|i| organisations.get_mut(*i)) {
            o.access_managers.push(user);
        }
    }
    for (org, domain) in children.domains {
        if let Some(o) = org_at.get(&org).and_then(|i| organisations.get_mut(*i)) {
            o.domains.push(domain);
        }
    }
    let mut tickets = children.tickets;
    let ticket_at: HashMap<String, usize> = tickets
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), i))
        .collect();
    for (list, entity, cc) in [
        (children.ccs, "ticket_ccs", true),
        (children.participants, "ticket_participants", false),
    ] {
        for (ticket, user) in list {
            match ticket_at.get(&ticket).and_then(|i| tickets.get_mut(*i)) {
                Some(t) if cc => t.ccs.push(user),
                Some(t) => t.participants.push(user),
                None => misses.count(entity, &ticket),
            }
        }
    }
    let out = Dataset {
        organisations,
        partnerships: children.partnerships,
        companies,
        groups,
        profiles,
        users,
        tickets,
        ..Dataset::default()
    };
    Ok((out, known, misses))
}

/// Rows of one id kept once: two source rows giving one id (ids that
/// differ only by case, say, in a case-insensitive source) keep the first.
trait Dedup {
    fn dedup_ids(&mut self);
}

macro_rules! dedup_by_id {
    ($($t:ty),*) => {$(
        impl Dedup for Vec<$t> {
            fn dedup_ids(&mut self) {
                let mut seen = HashSet::default();
                self.retain(|x| seen.insert(x.id.clone()));
            }
        }
    )*};
}

dedup_by_id!(Organisation, Group, Profile, Company, User, Ticket);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_time;
    use crate::time::Timestamp;

    fn at(rfc3339: &str) -> Option<Timestamp> {
        Some(rfc3339.parse().unwrap())
    }

    #[test]
    fn datetimes_of_either_database_read_as_the_same_instant() {
        let ten = at("2024-01-01T10:00:00Z");
        assert_eq!(parse_time("2024-01-01 10:00:00"), ten);
        assert_eq!(parse_time("2024-01-01 10:00:00+00"), ten);
        assert_eq!(parse_time("2024-01-01 12:00:00+02"), ten);
        assert_eq!(parse_time("2024-01-01 15:30:00+05:30"), ten);
        assert_eq!(parse_time("1704103200"), ten);
        assert_eq!(
            parse_time("2024-01-01 10:00:00.25-01"),
            at("2024-01-01T11:00:00.25Z")
        );
        assert_eq!(
            parse_time("0000-00-00 00:00:00"),
            at("1970-01-01T00:00:00Z")
        );
        assert_eq!(parse_time("2024-01-01 10:00:00+0"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
