//! The shared scenarios through the gRPC wire, for every test that serves
//! them (from a dataset, a database, the ticket cache): checks (single,
//! batched, and with the stored ticket's attributes inline), visible
//! tickets at small page sizes, filters against the data, and viewers.

use std::collections::HashMap;
use std::path::Path;

use tonic::Code;
use tonic::transport::Channel;

use ticket_authz::core::{Action, TicketFilter};
use ticket_authz::dataset::{self, Assertion, Expect};
use ticket_authz::grpc::convert::{reason_code, resource_kind_code};
use ticket_authz::grpc::pb;
use ticket_authz::grpc::pb::ticket_authz_client::TicketAuthzClient;
use ticket_authz::model::{Dataset, ResourceKind};

pub type Client = TicketAuthzClient<Channel>;

pub fn attributes(t: &ticket_authz::model::Ticket) -> pb::TicketAttributes {
    pb::TicketAttributes {
        requester_id: t.requester.clone(),
        organisation_id: t.organisation.clone().unwrap_or_default(),
        group_id: t.group.clone().unwrap_or_default(),
        assignee_id: t.assignee.clone().unwrap_or_default(),
        cc_ids: t.ccs.clone(),
        participant_ids: t.participants.clone(),
        status: t.status.name().to_owned(),
        created_at: t.created_at.to_string(),
    }
}

pub async fn all_visible(c: &mut Client, user: &str, page_size: u32) -> Vec<String> {
    all_visible_with(c, user, &TicketFilter::default(), page_size, 0).await
}

/// All pages of a user's visible tickets under `filter`, each answered at
/// `min_revision` or later.
pub async fn all_visible_with(
    c: &mut Client,
    user: &str,
    filter: &TicketFilter,
    page_size: u32,
    min_revision: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .list_visible_tickets(pb::ListVisibleTicketsRequest {
                user_id: user.to_owned(),
                page_size,
                page_token: token,
                organisation_id: filter.organisation.clone().unwrap_or_default(),
                group_id: filter.group.clone().unwrap_or_default(),
                statuses: filter
                    .statuses
                    .iter()
                    .map(|s| s.name().to_owned())
                    .collect(),
                min_revision,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.ticket_ids.len() <= page_size as usize);
        assert!(r.revision >= min_revision);
        out.extend(r.ticket_ids);
        if r.next_page_token.is_empty() {
            return out;
        }
        token = r.next_page_token;
    }
}

pub async fn all_viewers(c: &mut Client, ticket: &str, page_size: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .list_ticket_viewers(pb::ListTicketViewersRequest {
                ticket_id: ticket.to_owned(),
                page_size,
                page_token: token,
                min_revision: 0,
            })
            .await
            .unwrap()
            .into_inner();
        out.extend(r.user_ids);
        if r.next_page_token.is_empty() {
            return out;
        }
        token = r.next_page_token;
    }
}

/// Every page of `ListVisibleResources`, each at `revision`.
pub async fn all_resources(
    c: &mut Client,
    user: &str,
    kind: ResourceKind,
    page_size: u32,
    revision: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let r = c
            .list_visible_resources(pb::ListVisibleResourcesRequest {
                user_id: user.to_owned(),
                kind: resource_kind_code(kind),
                page_size,
                page_token: token,
                min_revision: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.resource_ids.len() <= page_size as usize);
        assert_eq!(r.revision, revision);
        out.extend(r.resource_ids);
        if r.next_page_token.is_empty() {
            return out;
        }
        token = r.next_page_token;
    }
}

/// The tickets a wire filter selects, evaluated from ticket fields alone.
pub fn select(filter: &pb::VisibilityFilter, data: &Dataset) -> Vec<String> {
    let companies: HashMap<&str, Option<&str>> = data
        .users
        .iter()
        .map(|u| (u.id.as_str(), u.company.as_deref()))
        .collect();
    let mut out: Vec<String> = data
        .tickets
        .iter()
        .filter(|t| {
            let user = &filter.user_id;
            filter.everything
                || (!user.is_empty()
                    && (&t.requester == user
                        || t.assignee.as_ref() == Some(user)
                        || t.ccs.contains(user)
                        || t.participants.contains(user)))
                || t.organisation
                    .as_ref()
                    .is_some_and(|o| filter.organisation_ids.contains(o))
                || filter.group_clauses.iter().any(|c| {
                    (c.any_group || t.group.as_ref().is_some_and(|g| c.group_ids.contains(g)))
                        && (c.requester_company_id.is_empty()
                            || companies.get(t.requester.as_str()).copied().flatten()
                                == Some(c.requester_company_id.as_str()))
                })
        })
        .map(|t| t.id.clone())
        .collect();
    out.sort();
    out
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Every assertion of `loaded` (from `file`) through `c`, answered at
/// `revision`; lists are walked at each of `page_sizes`.
pub async fn conform(
    c: &mut Client,
    file: &Path,
    loaded: &dataset::Loaded,
    revision: u64,
    page_sizes: &[u32],
) {
    let mut batch = Vec::new();
    let mut answers = Vec::new();
    let (mut inline_batch, mut inline_answers) = (Vec::new(), Vec::new());
    for assertion in &loaded.assertions {
        match assertion {
            Assertion::Check {
                index,
                request,
                expect,
                reason,
                warning,
            } => {
                let msg = super::wire_check(request);
                let answer = c.check_access(msg.clone()).await;
                let at = format!("{}: assertions[{index}] {request}", file.display());
                match (expect, answer) {
                    (Expect::Invalid, Err(status)) => {
                        assert_eq!(status.code(), Code::InvalidArgument, "{at}")
                    }
                    (Expect::Allow | Expect::Deny, Ok(r)) => {
                        let r = r.into_inner();
                        assert_eq!(r.allowed, *expect == Expect::Allow, "{at}: {r:?}");
                        if let Some(reason) = reason {
                            assert_eq!(r.reason, reason_code(*reason), "{at}: {r:?}");
                        }
                        assert_eq!(r.warning, warning.map_or(0, reason_code), "{at}: {r:?}");
                        assert_eq!(r.revision, revision, "{at}");
                        // The same question with the stored ticket's
                        // attributes inline, without its id and under an
                        // id nothing stores, gets the same answer.
                        let stored = loaded
                            .dataset
                            .tickets
                            .iter()
                            .find(|t| t.id == msg.ticket_id);
                        let ticket_action = Action::parse(request.action.as_deref().unwrap_or(""))
                            .is_some_and(Action::is_ticket_action);
                        if let Some(t) = stored.filter(|_| ticket_action) {
                            for id in ["", "not-stored-anywhere"] {
                                let inline = pb::CheckAccessRequest {
                                    ticket_id: id.to_owned(),
                                    ticket: Some(attributes(t)),
                                    ..msg.clone()
                                };
                                let i = c.check_access(inline.clone()).await.unwrap().into_inner();
                                assert_eq!(
                                    (i.allowed, i.reason, i.warning),
                                    (r.allowed, r.reason, r.warning),
                                    "{at}: inline as `{id}`"
                                );
                                inline_batch.push(inline);
                                inline_answers.push(i);
                            }
                        }
                        batch.push(msg);
                        answers.push(r);
                    }
                    (_, other) => panic!("{at}: unexpected {other:?}"),
                }
            }
            Assertion::VisibleTickets { user, tickets, .. } => {
                let want = sorted(tickets.clone());
                for &size in page_sizes {
                    let listed = all_visible(c, user, size).await;
                    assert_eq!(
                        listed,
                        want,
                        "{}: visible tickets of {user} (page size {size})",
                        file.display()
                    );
                }
                let filter = c
                    .get_visibility_filter(pb::GetVisibilityFilterRequest {
                        user_id: user.clone(),
                        min_revision: 0,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                assert_eq!(filter.revision, revision);
                assert_eq!(
                    select(&filter.filter.unwrap(), &loaded.dataset),
                    want,
                    "{}: filter of {user}",
                    file.display()
                );
            }
            Assertion::Viewers { ticket, users, .. } => {
                for &size in page_sizes {
                    assert_eq!(
                        all_viewers(c, ticket, size).await,
                        sorted(users.clone()),
                        "{}: viewers of {ticket} (page size {size})",
                        file.display()
                    );
                }
            }
            Assertion::VisibleResources {
                user, kind, ids, ..
            } => {
                for &size in page_sizes {
                    assert_eq!(
                        all_resources(c, user, *kind, size, revision).await,
                        sorted(ids.clone()),
                        "{}: visible {kind} resources of {user} (page size {size})",
                        file.display()
                    );
                }
            }
        }
    }
    let batched = c
        .check_access_batch(pb::CheckAccessBatchRequest {
            checks: batch,
            min_revision: revision,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(batched.revision, revision);
    assert_eq!(
        batched.results,
        answers,
        "{}: batch answers differ from single checks",
        file.display()
    );
    if !inline_batch.is_empty() {
        let batched = c
            .check_access_batch(pb::CheckAccessBatchRequest {
                checks: inline_batch,
                min_revision: revision,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            batched.results,
            inline_answers,
            "{}: inline batch",
            file.display()
        );
    }
}
