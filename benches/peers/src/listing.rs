//! Listing one user's visible tickets with a peer: neither Cedar nor Rego
//! has an index from a user to the tickets it may see, so a peer checks
//! each ticket. On a large dataset the peers check an evenly spread subset
//! of the tickets and the benchmark scales the time to the full count.

use cedar_policy::Request;
use regorus::Value;
use ticket_authz::core::Action;
use ticket_authz::model::Dataset;

use crate::Error;
use crate::cedar::CedarPeer;
use crate::rego::RegoPeer;

/// `n` ticket ids spread evenly over the dataset (all of them when it holds
/// no more than `n`).
pub fn spread(data: &Dataset, n: usize) -> Vec<String> {
    let len = data.tickets.len();
    if n == 0 || len == 0 {
        return Vec::new();
    }
    let stride = len.div_ceil(n).max(1);
    data.tickets
        .iter()
        .step_by(stride)
        .map(|t| t.id.clone())
        .collect()
}

/// One user's `view` question on each ticket of a list, built once for
/// both peers (before timing, in their favour).
#[derive(Debug)]
pub struct PeerList {
    pub user: String,
    pub tickets: Vec<String>,
    cedar: Vec<Request>,
    rego: Vec<Value>,
}

impl PeerList {
    pub fn new(cedar: &CedarPeer, user: &str, tickets: Vec<String>) -> Result<PeerList, Error> {
        let requests = tickets
            .iter()
            .map(|t| cedar.request(user, Action::View, t))
            .collect::<Result<Vec<_>, _>>()?;
        let inputs = tickets.iter().map(|t| RegoPeer::input(user, t)).collect();
        Ok(PeerList {
            user: user.to_owned(),
            tickets,
            cedar: requests,
            rego: inputs,
        })
    }

    /// The tickets of the list Cedar allows the user to view, in order.
    pub fn cedar_visible(&self, cedar: &CedarPeer) -> Vec<&str> {
        self.tickets
            .iter()
            .zip(&self.cedar)
            .filter(|(_, request)| cedar.is_allowed(request))
            .map(|(t, _)| t.as_str())
            .collect()
    }

    /// The tickets of the list Rego allows the user to view, in order.
    pub fn rego_visible(&self, rego: &mut RegoPeer) -> Result<Vec<&str>, Error> {
        let mut out = Vec::new();
        for (t, input) in self.tickets.iter().zip(&self.rego) {
            if rego.is_allowed(Action::View, input)? {
                out.push(t.as_str());
            }
        }
        Ok(out)
    }
}
