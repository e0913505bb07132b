//! Incremental changes (tickets, CCs, participants, users, memberships,
//! grants) give the same answers as a fresh build of the changed data, and
//! leave the snapshot they started from untouched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use ticket_authz::core::{self, Action, ActionInput, CheckRequest, Context, TicketFilter};
use ticket_authz::generate::{Spec, generate};
use ticket_authz::model::{Dataset, Grant, GrantScope, Status, User, UserAccess, UserKind};
use ticket_authz::snapshot::{Role, Snapshot, TicketFields, UserFields};
use ticket_authz::time::Timestamp;

#[derive(Debug, Clone)]
enum Change {
    Upsert {
        ticket: usize,
        requester: usize,
        org: Option<usize>,
        group: Option<usize>,
        assignee: Option<usize>,
        status: usize,
        day: i64,
    },
    Delete {
        ticket: usize,
    },
    Person {
        ticket: usize,
        user: usize,
        cc: bool,
        present: bool,
    },
    User {
        user: usize,
        suspended: bool,
        org_access: bool,
        kind: usize,
        company: Option<usize>,
        scoped: bool,
        email_org: Option<usize>,
        day: i64,
    },
    Membership {
        user: usize,
        org: usize,
        present: bool,
    },
    Grant {
        user: usize,
        profile: usize,
        group: Option<usize>,
        present: bool,
    },
    DeleteUser {
        user: usize,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (
            0usize..320,
            0usize..210,
            proptest::option::of(0usize..12),
            proptest::option::of(0usize..15),
            proptest::option::of(0usize..210),
            0usize..6,
            0i64..500
        )
            .prop_map(|(ticket, requester, org, group, assignee, status, day)| {
                Change::Upsert {
                    ticket,
                    requester,
                    org,
                    group,
                    assignee,
                    status,
                    day,
                }
            }),
        (0usize..320).prop_map(|ticket| Change::Delete { ticket }),
        (0usize..320, 0usize..210, any::<bool>(), any::<bool>()).prop_map(
            |(ticket, user, cc, present)| Change::Person {
                ticket,
                user,
                cc,
                present
            }
        ),
        (
            0usize..210,
            any::<bool>(),
            any::<bool>(),
            0usize..3,
            proptest::option::of(0usize..8),
            any::<bool>(),
            proptest::option::of(0usize..12),
            -400i64..500
        )
            .prop_map(
                |(user, suspended, org_access, kind, company, scoped, email_org, day)| {
                    Change::User {
                        user,
                        suspended,
                        org_access,
                        kind,
                        company,
                        scoped,
                        email_org,
                        day,
                    }
                }
            ),
        (0usize..210, 0usize..12, any::<bool>())
            .prop_map(|(user, org, present)| Change::Membership { user, org, present }),
        (
            0usize..210,
            0usize..8,
            proptest::option::of(0usize..15),
            any::<bool>()
        )
            .prop_map(|(user, profile, group, present)| Change::Grant {
                user,
                profile,
                group,
                present
            }),
        (0usize..210).prop_map(|user| Change::DeleteUser { user }),
    ]
}

fn ticket_id(i: usize) -> String {
    format!("T{:08}", i)
}

/// Users 0..200 are generated; 200..210 are new ids.
fn user_id(i: usize) -> String {
    if i < 200 {
        format!("u-{i:07}")
    } else {
        format!("new-user-{i}")
    }
}

fn exists(data: &Dataset, id: &str) -> bool {
    data.users.iter().any(|u| u.id == id)
}

/// Applies a change to the dataset (the reference) and to the snapshot.
fn apply(data: &mut Dataset, snap: &mut Snapshot, c: &Change) {
    match c {
        Change::Upsert {
            ticket,
            requester,
            org,
            group,
            assignee,
            status,
            day,
        } => {
            let requester = user_id(*requester);
            let assignee = assignee.map(user_id);
            if !exists(data, &requester) || assignee.as_ref().is_some_and(|a| !exists(data, a)) {
                return;
            }
            let fields = TicketFields {
                id: ticket_id(*ticket),
                created_at: Timestamp::from_unix_seconds(1_735_689_600 + day * 86_400),
                requester,
                organisation: org.map(|o| data.organisations[o].id.clone()),
                group: group.map(|g| data.groups[g].id.clone()),
                assignee,
                status: Status::ALL[*status],
            };
            snap.upsert_ticket(&fields).unwrap();
            match data.tickets.iter_mut().find(|t| t.id == fields.id) {
                Some(t) => {
                    t.created_at = fields.created_at;
                    t.requester = fields.requester;
                    t.organisation = fields.organisation;
                    t.group = fields.group;
                    t.assignee = fields.assignee;
                    t.status = fields.status;
                }
                None => data.tickets.push(ticket_authz::model::Ticket {
                    id: fields.id,
                    created_at: fields.created_at,
                    requester: fields.requester,
                    organisation: fields.organisation,
                    group: fields.group,
                    assignee: fields.assignee,
                    ccs: Vec::new(),
                    participants: Vec::new(),
                    status: fields.status,
                }),
            }
        }
        Change::Delete { ticket } => {
            snap.delete_ticket(&ticket_id(*ticket));
            data.tickets.retain(|t| t.id != ticket_id(*ticket));
        }
        Change::Person {
            ticket,
            user,
            cc,
            present,
        } => {
            let id = ticket_id(*ticket);
            let user = user_id(*user);
            if !exists(data, &user) {
                return;
            }
            let role = if *cc { Role::Cc } else { Role::Participant };
            let result = snap.set_ticket_person(&id, &user, role, *present);
            match data.tickets.iter_mut().find(|t| t.id == id) {
                Some(t) => {
                    result.unwrap();
                    let list = if *cc { &mut t.ccs } else { &mut t.participants };
                    list.retain(|u| *u != user);
                    if *present {
                        list.push(user);
                    }
                }
                None => assert_eq!(result.is_err(), *present),
            }
        }
        Change::User {
            user,
            suspended,
            org_access,
            kind,
            company,
            scoped,
            email_org,
            day,
        } => {
            let id = user_id(*user);
            let fields = UserFields {
                id: id.clone(),
                email: email_org.map(|o| format!("{id}@org{o}.example")),
                name: None,
                created_at: Timestamp::from_unix_seconds(1_735_689_600 + day * 86_400),
                kind: UserKind::ALL[*kind],
                suspended: *suspended,
                ticket_access: if *org_access {
                    UserAccess::Organisation
                } else {
                    UserAccess::Own
                },
                default_organisation: None,
                company: company.map(|c| data.companies[c].id.clone()),
                company_scoped: *scoped,
            };
            snap.upsert_user(&fields).unwrap();
            if !exists(data, &id) {
                data.users.push(User {
                    id: id.clone(),
                    email: None,
                    name: None,
                    created_at: fields.created_at,
                    kind: fields.kind,
                    suspended: false,
                    ticket_access: UserAccess::Own,
                    organisations: Vec::new(),
                    default_organisation: None,
                    company: None,
                    company_scoped: false,
                    grants: Vec::new(),
                });
            }
            let u = data.users.iter_mut().find(|u| u.id == id).unwrap();
            u.email = fields.email;
            u.created_at = fields.created_at;
            u.kind = fields.kind;
            u.suspended = fields.suspended;
            u.ticket_access = fields.ticket_access;
            u.default_organisation = None;
            u.company = fields.company;
            u.company_scoped = fields.company_scoped;
        }
        Change::Membership { user, org, present } => {
            let (id, org_id) = (user_id(*user), data.organisations[*org].id.clone());
            let Some(u) = data.users.iter_mut().find(|u| u.id == id) else {
                return;
            };
            snap.set_membership(&id, &org_id, *present).unwrap();
            u.organisations.retain(|o| *o != org_id);
            if *present {
                u.organisations.push(org_id);
            }
        }
        Change::Grant {
            user,
            profile,
            group,
            present,
        } => {
            let id = user_id(*user);
            let profile_id = data.profiles[*profile].id.clone();
            let group_id = group.map(|g| data.groups[g].id.clone());
            let Some(u) = data.users.iter_mut().find(|u| u.id == id) else {
                return;
            };
            snap.set_grant(&id, &profile_id, group_id.as_deref(), *present)
                .unwrap();
            let scope = group_id.map_or(GrantScope::All, GrantScope::Group);
            u.grants
                .retain(|g| !(g.profile == profile_id && g.group == scope));
            if *present {
                u.grants.push(Grant {
                    profile: profile_id,
                    group: scope,
                });
            }
        }
        Change::DeleteUser { user } => {
            let id = user_id(*user);
            // The database refuses to delete a requester.
            if !exists(data, &id) || data.tickets.iter().any(|t| t.requester == id) {
                return;
            }
            snap.delete_user(&id);
            data.users.retain(|u| u.id != id);
            for t in &mut data.tickets {
                t.ccs.retain(|u| *u != id);
                t.participants.retain(|u| *u != id);
                if t.assignee.as_deref() == Some(id.as_str()) {
                    t.assignee = None;
                }
            }
            for o in &mut data.organisations {
                o.access_managers.retain(|u| *u != id);
            }
        }
    }
}

fn answers(snap: &Snapshot, data: &Dataset) -> Vec<String> {
    let now = Context::at(data.now.unwrap());
    let mut out = Vec::new();
    for (i, user) in data.users.iter().enumerate() {
        out.push(format!(
            "{} filter {:?}",
            user.id,
            core::visibility_filter(snap, &user.id)
        ));
        if i % 5 == 0 {
            let page =
                core::list_visible_tickets(snap, &user.id, &TicketFilter::default(), 1000, "")
                    .unwrap();
            out.push(format!("{} sees {:?}", user.id, page.ids));
        }
        for group in &data.groups {
            let req = CheckRequest {
                user: &user.id,
                action: ActionInput::Known(Action::Create),
                group: &group.id,
                ..CheckRequest::default()
            };
            let d = core::check(snap, &req, now).unwrap();
            out.push(format!(
                "{} create in {}: {} {:?} {:?}",
                user.id, group.id, d.allowed, d.reason, d.warning
            ));
        }
    }
    for i in (0..320).step_by(7) {
        let page = core::list_ticket_viewers(snap, &ticket_id(i), 1000, "").unwrap();
        out.push(format!("{} viewers {:?}", ticket_id(i), page.ids));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn incremental_changes_equal_a_fresh_build(seed in any::<u64>(), changes in proptest::collection::vec(change(), 1..60)) {
        let mut data = generate(&Spec { users: 200, organisations: 12, companies: 8, groups: 15, profiles: 8, tickets: 300, seed });
        // Limits near what end-users (few tickets each) and agents (the
        // whole group, ~20) count, so every count shows in the decisions.
        for (i, g) in data.groups.iter_mut().enumerate() {
            let i = i as u32;
            if i.is_multiple_of(2) {
                g.open_ticket_limit = i % 3 + 1;
                g.total_ticket_limit = (i % 4) * 2;
            } else {
                g.open_ticket_limit = 8 + i % 7;
                g.total_ticket_limit = 14 + i % 9;
            }
            g.enforce_open_limit = i % 4 < 2;
        }
        let mut snap = Snapshot::build(&data).unwrap();
        let original = snap.clone();
        let before = answers(&original, &data);
        let original_data = data.clone();
        for c in &changes {
            apply(&mut data, &mut snap, c);
        }
        let fresh = Snapshot::build(&data).unwrap();
        prop_assert_eq!(answers(&snap, &data), answers(&fresh, &data));
        prop_assert_eq!(answers(&original, &original_data), before);
    }
}
