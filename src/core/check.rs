//! The rules of access model §3: one access question in, one decision out.

use crate::flags::{Flag, FlagSet};
use crate::model::{OrgAccess, UserAccess, UserKind};
use crate::snapshot::{ALL, Idx, NONE, Snapshot, TicketFacts, TicketRow, UNKNOWN, UserRow};
use crate::time::Timestamp;

use super::decision::{Decision, Explain, Reason};
use super::derive::{
    company_allows, explain_flag, explain_membership, flags_on, group_name, has_flag_anywhere,
    in_reach,
};
use super::request::{Action, CheckRequest, GroupArg, RequestError, ValidRequest};

/// What a decision may depend on besides the data: the clock for ticket
/// limits, whether to explain, and ticket-limit counts the caller made.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    pub now: Timestamp,
    pub explain: bool,
    /// The counts of [`limit_query`], made by the caller where the
    /// snapshot holds no tickets (the ticket cache counts in SQL); `None`
    /// counts from the snapshot's own index.
    pub limits: Option<LimitCounts>,
}

impl Context {
    pub fn at(now: Timestamp) -> Self {
        Self {
            now,
            explain: false,
            limits: None,
        }
    }
}

/// Tickets of one group created in the limit window: all, and the open
/// ones; of one requester, or of everyone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitCounts {
    pub total: u64,
    pub open: u64,
}

/// The ticket-limit counts a `create` decision may read: tickets of
/// `group` created in `[from, to]`, of `requester` (an end user asking) or
/// of everyone (an agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitQuery<'a> {
    pub group: &'a str,
    pub requester: Option<&'a str>,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// What [`LimitCounts`] a decision of `req` at `now` may read, for a
/// caller whose snapshot holds no tickets: `None` when it reads none (not
/// a `create`, no such user or group, or a group without limits). It may
/// name counts the decision then does not read (it stops earlier).
pub fn limit_query<'a>(
    snap: &'a Snapshot,
    req: &ValidRequest<'a>,
    now: Timestamp,
) -> Option<LimitQuery<'a>> {
    if req.action != Action::Create {
        return None;
    }
    let (_, user) = snap.users.get(req.user)?;
    let Some(GroupArg::Id(group)) = req.group else {
        return None;
    };
    let (_, g) = snap.groups.get(group)?;
    if g.total_ticket_limit == 0 && g.open_ticket_limit == 0 {
        return None;
    }
    Some(LimitQuery {
        group,
        requester: (user.kind != UserKind::Agent).then_some(req.user),
        from: now.minus_limit_window(),
        to: now,
    })
}

/// The id an explanation gives a ticket sent inline without one.
const INLINE_ID: &str = "(inline)";

/// Validates and decides one access question.
pub fn check(
    snap: &Snapshot,
    request: &CheckRequest<'_>,
    ctx: Context,
) -> Result<Decision, RequestError> {
    let valid = request.validate()?;
    Ok(decide(snap, &valid, ctx))
}

/// The ids an action uses, resolved.
struct Resolved<'s> {
    ticket: Option<&'s TicketRow>,
    org: Idx,
    /// A group handle, `ALL` for `*`, or `NONE`.
    group: Idx,
    company: Idx,
    /// The resource of a section action that names one (§8).
    resource: Idx,
}

/// Resolves the ids the action uses; the first unknown one is returned as
/// (field, id). `ticket` is the row of `req.ticket`, found by the caller.
fn resolve<'s, 'r>(
    snap: &'s Snapshot,
    req: &ValidRequest<'r>,
    ticket: Option<&'s TicketRow>,
) -> Result<Resolved<'s>, (&'static str, &'r str)> {
    let mut out = Resolved {
        ticket: None,
        org: NONE,
        group: NONE,
        company: NONE,
        resource: NONE,
    };
    if req.action.is_ticket_action() {
        // A row the caller found (stored, cached or sent inline) decides;
        // without one, the ticket named is unknown.
        match (ticket, req.ticket) {
            (Some(row), _) => out.ticket = Some(row),
            (None, Some(id)) => return Err(("ticket", id)),
            (None, None) => {}
        }
    }
    if matches!(
        req.action,
        Action::Reassign | Action::Create | Action::HasFlag
    ) {
        match req.group {
            Some(GroupArg::All) => out.group = ALL,
            Some(GroupArg::Id(id)) => out.group = snap.groups.lookup(id).ok_or(("group", id))?,
            None => {}
        }
    }
    if let Some(id) = req
        .organisation
        .filter(|_| matches!(req.action, Action::Create | Action::ManageAccess))
    {
        out.org = snap.orgs.lookup(id).ok_or(("organisation", id))?;
    }
    if let Some(id) = req.company.filter(|_| req.action.is_company_action()) {
        out.company = snap.companies.lookup(id).ok_or(("company", id))?;
    }
    if let Some(id) = req.resource.filter(|_| req.action.needs_resource()) {
        out.resource = super::sections::lookup(snap, req.action, id)
            .ok_or((super::sections::what(req.action), id))?;
    }
    Ok(out)
}

/// Decides a validated question. Pure: reads only the snapshot and context.
pub fn decide(snap: &Snapshot, req: &ValidRequest<'_>, ctx: Context) -> Decision {
    if let Some(inline) = req.inline.filter(|_| req.action.is_ticket_action()) {
        let row = snap.detached_ticket(&TicketFacts {
            id: req.ticket.unwrap_or(INLINE_ID),
            created_at: inline.created_at,
            requester: inline.requester,
            organisation: inline.organisation,
            group: inline.group,
            assignee: inline.assignee,
            status: inline.status,
            ccs: inline.ccs,
            participants: inline.participants,
        });
        return decide_with(snap, req, Some(&row), ctx);
    }
    let ticket = req
        .ticket
        .filter(|_| req.action.is_ticket_action())
        .and_then(|id| snap.tickets.get(id))
        .map(|(_, row)| row);
    decide_with(snap, req, ticket, ctx)
}

/// Decides a validated question about a ticket row the caller found itself
/// (`None`: there is no such ticket): a row read through a cache or sent
/// inline, resolved against this snapshot with [`Snapshot::detached_ticket`].
/// Everything else comes from the snapshot, exactly as in [`decide`], which
/// is this with the snapshot's own row. Actions on no ticket ignore `ticket`.
pub fn decide_with(
    snap: &Snapshot,
    req: &ValidRequest<'_>,
    ticket: Option<&TicketRow>,
    ctx: Context,
) -> Decision {
    let mut ex = Explain::new(ctx.explain);
    let Some((uidx, user)) = snap.users.get(req.user) else {
        ex.step(|| format!("no user {}", req.user));
        return ex.finish(false, Reason::UnknownUser, None);
    };
    let res = match resolve(snap, req, ticket) {
        Ok(res) => res,
        Err((what, id)) => {
            ex.step(|| format!("no {what} {id}"));
            return ex.finish(false, Reason::UnknownResource, None);
        }
    };
    if user.suspended {
        ex.step(|| format!("{} is suspended", user.id));
        return ex.finish(false, Reason::Suspended, None);
    }
    if user.kind == UserKind::Superadmin {
        ex.step(|| format!("{} is a superadmin", user.id));
        return ex.finish(true, Reason::Superadmin, None);
    }
    if req.action.is_section_action() {
        let asker = super::sections::Asker { snap, uidx, user };
        return super::sections::decide(&asker, req.action, res.resource, ex);
    }
    let actor = Actor { snap, uidx, user };
    match (req.action, res.ticket) {
        (Action::Create, _) => actor.create(res.org, res.group, ctx, ex),
        (Action::ManageAccess, _) => actor.manage_access(res.org, ex),
        (Action::CompanyView | Action::CompanyEdit | Action::CompanyManage, _) => {
            actor.company(req.action, res.company, ex)
        }
        (Action::HasFlag, _) => actor.has_flag(req.flag, res.group, ex),
        (action, Some(ticket)) => actor.ticket(action, ticket, res.group, ex),
        // Validation guarantees a ticket for ticket actions.
        (_, None) => ex.finish(false, Reason::NoMatchingRule, None),
    }
}

/// One allow rule of a ticket action (the table of access model §3).
#[derive(Debug, Clone, Copy)]
enum Rule {
    Requester,
    /// The requester, if an agent (edit).
    AgentRequester,
    Assignee,
    Cc,
    Participant,
    Grp(Flag),
    /// grp(IM), or grp(IW) while the ticket has no assignee.
    EditFlags,
    OrgView,
    OrgComment,
}

impl Rule {
    fn reason(self) -> Reason {
        match self {
            Rule::Requester | Rule::AgentRequester => Reason::Requester,
            Rule::Assignee => Reason::Assignee,
            Rule::Cc => Reason::Cc,
            Rule::Participant => Reason::Participant,
            Rule::Grp(_) | Rule::EditFlags => Reason::GroupFlag,
            Rule::OrgView | Rule::OrgComment => Reason::Organisation,
        }
    }
}

/// The allow rules of each ticket action, in reporting order; `reassign`
/// starts from `edit`'s.
fn rules_of(action: Action) -> &'static [Rule] {
    use Rule::*;
    match action {
        Action::View => &[Requester, Assignee, Cc, Participant, Grp(Flag::IR), OrgView],
        Action::Comment => &[Requester, Assignee, Cc, Grp(Flag::IW), OrgComment],
        Action::Edit | Action::Reassign => &[AgentRequester, Assignee, EditFlags],
        Action::Close => &[Requester, Assignee, Grp(Flag::IC)],
        Action::Delete => &[Grp(Flag::IM)],
        _ => &[],
    }
}

/// The asking user, resolved.
struct Actor<'s> {
    snap: &'s Snapshot,
    uidx: Idx,
    user: &'s UserRow,
}

impl Actor<'_> {
    /// grp(F) on a ticket; `cache` keeps flags(U, G) of the ticket's group
    /// so that one decision computes it at most once.
    fn grp(&self, ticket: &TicketRow, flag: Flag, cache: &mut Option<FlagSet>) -> bool {
        self.user.kind == UserKind::Agent
            && cache
                .get_or_insert_with(|| flags_on(self.snap, self.user, ticket.group))
                .contains(flag)
            && company_allows(self.snap, self.user, ticket)
    }

    fn explain_grp(&self, ticket: &TicketRow, flag: Flag, ex: &mut Explain) {
        if !ex.enabled() || self.user.kind != UserKind::Agent {
            return;
        }
        explain_flag(self.snap, self.user, ticket.group, flag, ex);
        if self.user.company_scoped && !company_allows(self.snap, self.user, ticket) {
            ex.step(|| {
                format!(
                    "{} is grouped only by company: requester {} is not in its company",
                    self.user.id,
                    self.snap.users.id(ticket.requester)
                )
            });
        }
    }

    fn org_view(&self, ticket: &TicketRow) -> bool {
        self.user.is_member(ticket.organisation)
            && (self.user.access == UserAccess::Organisation
                || self.snap.orgs[ticket.organisation].access.is_shared())
    }

    fn org_comment(&self, ticket: &TicketRow) -> bool {
        self.user.is_member(ticket.organisation)
            && self.snap.orgs[ticket.organisation].access == OrgAccess::CommentAll
    }

    fn explain_org(&self, ticket: &TicketRow, ex: &mut Explain) {
        if !ex.enabled() || matches!(ticket.organisation, NONE | UNKNOWN) {
            return;
        }
        explain_membership(self.snap, self.user, ticket.organisation, ex);
        let org = &self.snap.orgs[ticket.organisation];
        ex.step(|| {
            format!(
                "organisation {} is set to {}; {} is set to {}",
                org.id, org.access, self.user.id, self.user.access
            )
        });
    }

    /// The first allow rule of a ticket action that matches, in reporting
    /// order. `flags` caches flags(U, G) of the ticket's group.
    fn ticket_rule(
        &self,
        action: Action,
        t: &TicketRow,
        flags: &mut Option<FlagSet>,
    ) -> Option<Reason> {
        let me = self.uidx;
        rules_of(action).iter().find_map(|rule| {
            let matched = match rule {
                Rule::Requester => t.requester == me,
                Rule::AgentRequester => t.requester == me && self.user.kind == UserKind::Agent,
                Rule::Assignee => t.assignee == me,
                Rule::Cc => t.ccs().contains(&me),
                Rule::Participant => t.participants().contains(&me),
                Rule::Grp(flag) => self.grp(t, *flag, flags),
                Rule::EditFlags => {
                    self.grp(t, Flag::IM, flags)
                        || (t.assignee == NONE && self.grp(t, Flag::IW, flags))
                }
                Rule::OrgView => self.org_view(t),
                Rule::OrgComment => self.org_comment(t),
            };
            matched.then(|| rule.reason())
        })
    }

    fn explain_ticket(&self, action: Action, t: &TicketRow, ex: &mut Explain) {
        if !ex.enabled() {
            return;
        }
        let snap = self.snap;
        let who = |idx: Idx| match idx {
            NONE => "nobody",
            UNKNOWN => "someone the data does not know",
            idx => snap.users.id(idx),
        };
        ex.step(|| {
            format!(
                "ticket {}: requester {}, assignee {}, organisation {}, group {}",
                t.id,
                who(t.requester),
                who(t.assignee),
                match t.organisation {
                    NONE => "(none)",
                    UNKNOWN => "(one the data does not know)",
                    org => snap.orgs.id(org),
                },
                group_name(snap, t.group),
            )
        });
        let me = self.uidx;
        if t.ccs().contains(&me) {
            ex.step(|| format!("{} is CC'd", self.user.id));
        }
        if t.participants().contains(&me) {
            ex.step(|| format!("{} took part in the ticket", self.user.id));
        }
        match action {
            Action::View => {
                self.explain_grp(t, Flag::IR, ex);
                self.explain_org(t, ex);
            }
            Action::Comment => {
                self.explain_grp(t, Flag::IW, ex);
                self.explain_org(t, ex);
            }
            Action::Edit | Action::Reassign => {
                self.explain_grp(t, Flag::IM, ex);
                if t.assignee == NONE {
                    self.explain_grp(t, Flag::IW, ex);
                }
            }
            Action::Close => self.explain_grp(t, Flag::IC, ex),
            Action::Delete => self.explain_grp(t, Flag::IM, ex),
            _ => {}
        }
    }

    fn ticket(&self, action: Action, t: &TicketRow, target: Idx, mut ex: Explain) -> Decision {
        self.explain_ticket(action, t, &mut ex);
        let mut group_flags = None;
        let rule = self.ticket_rule(action, t, &mut group_flags);
        if action != Action::Reassign {
            return match rule {
                Some(reason) => ex.finish(true, reason, None),
                None => ex.finish(false, Reason::NoMatchingRule, None),
            };
        }
        // Reassign: edit rights, then IW on the target or SI on the current
        // group, neither company-scoped.
        if rule.is_none() {
            ex.step(|| format!("{} may not edit ticket {}", self.user.id, t.id));
            return ex.finish(false, Reason::NoMatchingRule, None);
        }
        if flags_on(self.snap, self.user, target).contains(Flag::IW) {
            explain_flag(self.snap, self.user, target, Flag::IW, &mut ex);
            return ex.finish(true, Reason::GroupFlag, None);
        }
        let current = group_flags.unwrap_or_else(|| flags_on(self.snap, self.user, t.group));
        if current.contains(Flag::SI) {
            explain_flag(self.snap, self.user, t.group, Flag::SI, &mut ex);
            return ex.finish(true, Reason::GroupFlag, None);
        }
        explain_flag(self.snap, self.user, target, Flag::IW, &mut ex);
        explain_flag(self.snap, self.user, t.group, Flag::SI, &mut ex);
        ex.finish(false, Reason::NoMatchingRule, None)
    }

    fn create(&self, org: Idx, group: Idx, ctx: Context, mut ex: Explain) -> Decision {
        let (user, now) = (self.user, ctx.now);
        // 1. Organisation.
        let with_org = if org != NONE {
            explain_membership(self.snap, user, org, &mut ex);
            if !user.is_member(org) {
                return ex.finish(false, Reason::NotAMember, None);
            }
            true
        } else {
            match user.orgs.as_slice() {
                [] => false,
                [only] => {
                    ex.step(|| {
                        format!(
                            "the ticket goes to {}, the user's only organisation",
                            self.snap.orgs.id(*only)
                        )
                    });
                    true
                }
                several => {
                    ex.step(|| {
                        format!(
                            "{} belongs to {} organisations and named none",
                            user.id,
                            several.len()
                        )
                    });
                    return ex.finish(false, Reason::OrganisationRequired, None);
                }
            }
        };
        if group == NONE {
            let reason = if with_org {
                Reason::Member
            } else {
                Reason::SelfService
            };
            return ex.finish(true, reason, None);
        }
        // 2. Group.
        let agent = user.kind == UserKind::Agent;
        if agent {
            explain_flag(self.snap, user, group, Flag::IW, &mut ex);
            if !flags_on(self.snap, user, group).contains(Flag::IW) {
                return ex.finish(false, Reason::NoMatchingRule, None);
            }
        }
        // 3. Limits over the rolling window.
        let g = &self.snap.groups[group];
        let from = now.minus_limit_window();
        let requester = (!agent).then_some(self.uidx);
        let whose = if agent {
            "of the group"
        } else {
            "of this user in the group"
        };
        if g.total_ticket_limit > 0 {
            let count = ctx.limits.map_or_else(
                || g.limits.count(requester, false, from, now),
                |c| usize::try_from(c.total).unwrap_or(usize::MAX),
            );
            ex.step(|| {
                format!(
                    "{count} tickets {whose} {} in the last 365 days; total limit {}",
                    g.id, g.total_ticket_limit
                )
            });
            if count >= g.total_ticket_limit as usize {
                return ex.finish(false, Reason::TotalTicketLimit, None);
            }
        }
        let mut warning = None;
        if g.open_ticket_limit > 0 {
            let count = ctx.limits.map_or_else(
                || g.limits.count(requester, true, from, now),
                |c| usize::try_from(c.open).unwrap_or(usize::MAX),
            );
            ex.step(|| {
                format!(
                    "{count} open tickets {whose} {} in the last 365 days; open limit {}",
                    g.id, g.open_ticket_limit
                )
            });
            if count >= g.open_ticket_limit as usize {
                if g.enforce_open_limit {
                    return ex.finish(false, Reason::OpenTicketLimit, None);
                }
                warning = Some(Reason::OpenTicketLimit);
            }
        }
        // 4. Reason.
        let reason = if with_org {
            Reason::Member
        } else if agent {
            Reason::GroupFlag
        } else {
            Reason::SelfService
        };
        ex.finish(true, reason, warning)
    }

    fn manage_access(&self, org: Idx, mut ex: Explain) -> Decision {
        let o = &self.snap.orgs[org];
        if o.access_managers.binary_search(&self.uidx).is_ok() {
            ex.step(|| format!("{} is an access manager of {}", self.user.id, o.id));
            ex.finish(true, Reason::AccessManager, None)
        } else {
            ex.step(|| format!("{} is not an access manager of {}", self.user.id, o.id));
            ex.finish(false, Reason::NoMatchingRule, None)
        }
    }

    fn company(&self, action: Action, company: Idx, mut ex: Explain) -> Decision {
        let snap = self.snap;
        let user = self.user;
        let c = snap.companies.id(company);
        if user.kind != UserKind::Agent {
            if action == Action::CompanyView && user.company == company {
                ex.step(|| format!("{c} is the user's own company"));
                return ex.finish(true, Reason::Company, None);
            }
            ex.step(|| "end-users may only view their own company".to_owned());
            return ex.finish(false, Reason::NoMatchingRule, None);
        }
        let flag = match action {
            Action::CompanyView => Flag::CR,
            Action::CompanyEdit => Flag::CW,
            _ => Flag::CM,
        };
        if !has_flag_anywhere(snap, user, flag) {
            ex.step(|| format!("no grant of {} holds flag {flag}", user.id));
            return ex.finish(false, Reason::NoMatchingRule, None);
        }
        ex.step(|| format!("{} holds flag {flag} through a grant", user.id));
        if in_reach(snap, self.uidx, user, company) {
            ex.step(|| {
                format!("{c} is within the user's company or a company it owns, or below one")
            });
            ex.finish(true, Reason::Company, None)
        } else {
            ex.step(|| format!("{c} is outside the user's company tree and owned companies"));
            ex.finish(false, Reason::NoMatchingRule, None)
        }
    }

    fn has_flag(&self, flag: Option<Flag>, group: Idx, mut ex: Explain) -> Decision {
        let Some(flag) = flag else {
            return ex.finish(false, Reason::NoMatchingRule, None);
        };
        explain_flag(self.snap, self.user, group, flag, &mut ex);
        if flags_on(self.snap, self.user, group).contains(flag) {
            ex.finish(true, Reason::GroupFlag, None)
        } else {
            ex.finish(false, Reason::NoMatchingRule, None)
        }
    }
}

/// Whether `view` is allowed on a ticket, for the list properties and the
/// filtered list drivers; the same rules as [`decide`], minus the lookups.
pub(crate) fn can_view(snap: &Snapshot, uidx: Idx, user: &UserRow, ticket: &TicketRow) -> bool {
    if user.suspended {
        return false;
    }
    if user.kind == UserKind::Superadmin {
        return true;
    }
    Actor { snap, uidx, user }
        .ticket_rule(Action::View, ticket, &mut None)
        .is_some()
}
