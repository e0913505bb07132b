//! The dataset as Cedar entities, and the `view` and `comment` rules as the
//! Cedar policies of `policies/tickets.cedar`, answered by
//! `cedar_policy::Authorizer`.
//!
//! Entities: `User` (its parents are the organisations it is a member of),
//! `Org`, `Group` (its parents are the grant scopes that reach it: its
//! propagating ancestors and `Group::"*"`), `Ticket`. A ticket without a
//! group points at `Group::"*"`, which only `*` grants reach.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression,
};
use ticket_authz::core::Action;
use ticket_authz::model::{ALL_GROUPS, Dataset, UserAccess};

use crate::Error;
use crate::facts::Facts;

/// The policies, one per allow rule plus the suspension `forbid`, each
/// annotated with the reason code of its rule.
pub const POLICIES: &str = include_str!("../policies/tickets.cedar");

/// What Cedar answered, with the reason codes of the policies that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CedarAnswer {
    pub allowed: bool,
    pub reasons: Vec<String>,
}

/// A Cedar authoriser loaded with the dataset.
#[derive(Debug)]
pub struct CedarPeer {
    authorizer: Authorizer,
    policies: PolicySet,
    entities: Entities,
    reasons: HashMap<PolicyId, String>,
    types: Types,
    view: EntityUid,
    comment: EntityUid,
}

#[derive(Debug, Clone)]
struct Types {
    user: EntityTypeName,
    ticket: EntityTypeName,
    org: EntityTypeName,
    group: EntityTypeName,
}

fn type_name(name: &str) -> Result<EntityTypeName, Error> {
    EntityTypeName::from_str(name).map_err(|e| Error::Cedar(e.to_string()))
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

fn entity_ref(ty: &EntityTypeName, id: &str) -> RestrictedExpression {
    RestrictedExpression::new_entity_uid(uid(ty, id))
}

fn entity(
    uid: EntityUid,
    attrs: HashMap<String, RestrictedExpression>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, Error> {
    Entity::new(uid, attrs, parents).map_err(|e| Error::Cedar(e.to_string()))
}

impl CedarPeer {
    /// Builds every entity of the dataset and parses the policies.
    pub fn build(data: &Dataset, facts: &Facts) -> Result<CedarPeer, Error> {
        let types = Types {
            user: type_name("User")?,
            ticket: type_name("Ticket")?,
            org: type_name("Org")?,
            group: type_name("Group")?,
        };
        let action = type_name("Action")?;
        let mut entities = Vec::with_capacity(
            data.users.len() + data.tickets.len() + data.organisations.len() + data.groups.len(),
        );

        for org in &data.organisations {
            let attrs = HashMap::from([(
                "access".to_owned(),
                RestrictedExpression::new_string(org.ticket_access.name().to_owned()),
            )]);
            entities.push(entity(uid(&types.org, &org.id), attrs, HashSet::new())?);
        }

        let scopes = |group: Option<&str>| -> HashSet<EntityUid> {
            facts
                .scopes_of(group)
                .iter()
                .filter(|s| Some(s.as_str()) != group)
                .map(|s| uid(&types.group, s))
                .collect()
        };
        for group in &data.groups {
            entities.push(Entity::new_no_attrs(
                uid(&types.group, &group.id),
                scopes(Some(&group.id)),
            ));
        }
        entities.push(Entity::new_no_attrs(
            uid(&types.group, ALL_GROUPS),
            HashSet::new(),
        ));

        for (i, user) in data.users.iter().enumerate() {
            let groups = |scopes: Option<&std::collections::BTreeSet<String>>| {
                RestrictedExpression::new_set(
                    scopes
                        .into_iter()
                        .flatten()
                        .map(|s| entity_ref(&types.group, s)),
                )
            };
            let mut attrs = HashMap::from([
                (
                    "kind".to_owned(),
                    RestrictedExpression::new_string(user.kind.name().to_owned()),
                ),
                (
                    "suspended".to_owned(),
                    RestrictedExpression::new_bool(user.suspended),
                ),
                (
                    "org_access".to_owned(),
                    RestrictedExpression::new_bool(user.ticket_access == UserAccess::Organisation),
                ),
                (
                    "company_scoped".to_owned(),
                    RestrictedExpression::new_bool(user.company_scoped),
                ),
                ("ir_groups".to_owned(), groups(facts.ir_scopes.get(i))),
                ("iw_groups".to_owned(), groups(facts.iw_scopes.get(i))),
            ]);
            if let Some(company) = &user.company {
                attrs.insert(
                    "company".to_owned(),
                    RestrictedExpression::new_string(company.clone()),
                );
            }
            let parents = facts
                .memberships
                .get(i)
                .into_iter()
                .flatten()
                .map(|o| uid(&types.org, o))
                .collect();
            entities.push(entity(uid(&types.user, &user.id), attrs, parents)?);
        }

        for ticket in &data.tickets {
            let users = |ids: &[String]| {
                RestrictedExpression::new_set(ids.iter().map(|u| entity_ref(&types.user, u)))
            };
            let mut attrs = HashMap::from([
                (
                    "requester".to_owned(),
                    entity_ref(&types.user, &ticket.requester),
                ),
                ("ccs".to_owned(), users(&ticket.ccs)),
                ("participants".to_owned(), users(&ticket.participants)),
                (
                    "group".to_owned(),
                    entity_ref(&types.group, ticket.group.as_deref().unwrap_or(ALL_GROUPS)),
                ),
            ]);
            if let Some(assignee) = &ticket.assignee {
                attrs.insert("assignee".to_owned(), entity_ref(&types.user, assignee));
            }
            if let Some(org) = &ticket.organisation {
                attrs.insert("organisation".to_owned(), entity_ref(&types.org, org));
            }
            entities.push(entity(
                uid(&types.ticket, &ticket.id),
                attrs,
                HashSet::new(),
            )?);
        }

        let entities =
            Entities::from_entities(entities, None).map_err(|e| Error::Cedar(e.to_string()))?;
        let policies = PolicySet::from_str(POLICIES).map_err(|e| Error::Cedar(e.to_string()))?;
        let reasons = policies
            .policies()
            .map(|p| {
                let reason = p.annotation("reason").unwrap_or("(no reason annotation)");
                (p.id().clone(), reason.to_owned())
            })
            .collect();
        Ok(CedarPeer {
            authorizer: Authorizer::new(),
            policies,
            entities,
            reasons,
            view: uid(&action, "view"),
            comment: uid(&action, "comment"),
            types,
        })
    }

    /// The Cedar request for one question (built once per question, before
    /// timing: in Cedar's favour).
    pub fn request(&self, user: &str, action: Action, ticket: &str) -> Result<Request, Error> {
        let action = match action {
            Action::View => self.view.clone(),
            Action::Comment => self.comment.clone(),
            other => return Err(Error::Cedar(format!("no policy for action {other}"))),
        };
        Request::new(
            uid(&self.types.user, user),
            action,
            uid(&self.types.ticket, ticket),
            Context::empty(),
            None,
        )
        .map_err(|e| Error::Cedar(e.to_string()))
    }

    /// The decision alone: what the benchmark times.
    pub fn is_allowed(&self, request: &Request) -> bool {
        self.authorizer
            .is_authorized(request, &self.policies, &self.entities)
            .decision()
            == Decision::Allow
    }

    /// The decision with the reason codes of the matching policies; an
    /// evaluation error in any policy (a mistranslation) is an error.
    pub fn decide(&self, request: &Request) -> Result<CedarAnswer, Error> {
        let response = self
            .authorizer
            .is_authorized(request, &self.policies, &self.entities);
        if let Some(error) = response.diagnostics().errors().next() {
            return Err(Error::Cedar(format!(
                "policy evaluation error on {request}: {error}"
            )));
        }
        let mut reasons: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| {
                self.reasons
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| id.to_string())
            })
            .collect();
        reasons.sort_unstable();
        reasons.dedup();
        Ok(CedarAnswer {
            allowed: response.decision() == Decision::Allow,
            reasons,
        })
    }
}
