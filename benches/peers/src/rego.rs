//! The dataset as a Rego data document, and the `view` and `comment` rules
//! as the Rego policy of `policies/tickets.rego`, compiled to a regorus RVM
//! program (the compiled virtual machine, regorus's fast path).
//!
//! Data: `users[id]` (kind, flags of the user row, company, the set of its
//! organisations, its IR and IW grant scopes as sets), `tickets[id]`,
//! `orgs[id]` (the access setting) and `groups[id]` (the grant scopes that
//! reach the group; `groups["*"]` for tickets without a group).

use regorus::Value;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
use serde_json::{Map, json};
use ticket_authz::core::Action;
use ticket_authz::model::{ALL_GROUPS, Dataset, UserAccess};

use crate::Error;
use crate::facts::Facts;

/// The policy: package `helpdesk`, rules `view` and `comment`.
pub const POLICY: &str = include_str!("../policies/tickets.rego");

const VIEW: &str = "data.helpdesk.view";
const COMMENT: &str = "data.helpdesk.comment";

fn rego_error(e: impl std::fmt::Display) -> Error {
    Error::Rego(e.to_string())
}

/// A regorus VM loaded with the compiled policy and the dataset.
#[derive(Debug)]
pub struct RegoPeer {
    vm: RegoVM,
}

/// `{key: true, …}`: a set Rego can test with `set[key]`.
fn set_of<'a>(keys: impl IntoIterator<Item = &'a String>) -> serde_json::Value {
    serde_json::Value::Object(keys.into_iter().map(|k| (k.clone(), json!(true))).collect())
}

/// The data document of a dataset.
pub fn data_document(data: &Dataset, facts: &Facts) -> serde_json::Value {
    let mut users = Map::with_capacity(data.users.len());
    for (i, user) in data.users.iter().enumerate() {
        users.insert(
            user.id.clone(),
            json!({
                "kind": user.kind.name(),
                "suspended": user.suspended,
                "org_access": user.ticket_access == UserAccess::Organisation,
                "company": user.company,
                "company_scoped": user.company_scoped,
                "orgs": set_of(facts.memberships.get(i).into_iter().flatten()),
                "ir": set_of(facts.ir_scopes.get(i).into_iter().flatten()),
                "iw": set_of(facts.iw_scopes.get(i).into_iter().flatten()),
            }),
        );
    }
    let mut tickets = Map::with_capacity(data.tickets.len());
    for ticket in &data.tickets {
        tickets.insert(
            ticket.id.clone(),
            json!({
                "requester": ticket.requester,
                "assignee": ticket.assignee,
                "ccs": ticket.ccs,
                "participants": ticket.participants,
                "organisation": ticket.organisation,
                "group": ticket.group.as_deref().unwrap_or(ALL_GROUPS),
            }),
        );
    }
    let orgs: Map<String, serde_json::Value> = data
        .organisations
        .iter()
        .map(|o| (o.id.clone(), json!(o.ticket_access.name())))
        .collect();
    let groups: Map<String, serde_json::Value> = facts
        .group_scopes
        .iter()
        .map(|(id, scopes)| (id.clone(), json!(scopes)))
        .collect();
    json!({ "users": users, "tickets": tickets, "orgs": orgs, "groups": groups })
}

impl RegoPeer {
    /// Compiles the policy for the RVM and loads the data document.
    pub fn build(data: &Dataset, facts: &Facts) -> Result<RegoPeer, Error> {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("tickets.rego".to_owned(), POLICY.to_owned())
            .map_err(rego_error)?;
        let compiled = engine
            .compile_with_entrypoint(&VIEW.into())
            .map_err(rego_error)?;
        let program =
            Compiler::compile_from_policy(&compiled, &[VIEW, COMMENT]).map_err(rego_error)?;
        let document = Value::from(data_document(data, facts));
        if document == Value::Undefined {
            return Err(Error::Rego(
                "the data document did not convert to a regorus value".to_owned(),
            ));
        }
        let mut vm = RegoVM::new();
        vm.load_program(program);
        vm.set_data(document).map_err(rego_error)?;
        Ok(RegoPeer { vm })
    }

    /// The input document of one question (built once per question, before
    /// timing: in Rego's favour).
    pub fn input(user: &str, ticket: &str) -> Value {
        Value::from(json!({ "user": user, "ticket": ticket }))
    }

    /// Evaluates `view` or `comment` for an input.
    pub fn is_allowed(&mut self, action: Action, input: &Value) -> Result<bool, Error> {
        let entry = match action {
            Action::View => VIEW,
            Action::Comment => COMMENT,
            other => return Err(Error::Rego(format!("no rule for action {other}"))),
        };
        self.vm.set_input(input.clone());
        let result = self
            .vm
            .execute_entry_point_by_name(entry)
            .map_err(rego_error)?;
        match result {
            Value::Bool(allowed) => Ok(allowed),
            other => Err(Error::Rego(format!("{entry} gave {other}, not a boolean"))),
        }
    }
}
