//! What the load generator asks: pools of requests built from the
//! generated dataset, and the weighted mix of RPCs drawn from them.

use crate::generate::{AGENT_USER, NARROW_USER, WIDE_USER};
use crate::grpc::pb;
use crate::model::Dataset;

/// The RPCs the load generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Check,
    Batch,
    List,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Check, Kind::Batch, Kind::List];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Check => "CheckAccess",
            Kind::Batch => "CheckAccessBatch",
            Kind::List => "ListVisibleTickets",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Kind::Check => 0,
            Kind::Batch => 1,
            Kind::List => 2,
        }
    }
}

/// Relative weights of the RPCs, parsed from `check=8,batch=1,list=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    weights: [u32; 3],
}

impl Mix {
    pub fn parse(text: &str) -> Result<Mix, String> {
        let mut weights = [0u32; 3];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("--mix: `{part}` is not NAME=WEIGHT"))?;
            let kind = match name.trim() {
                "check" => Kind::Check,
                "batch" => Kind::Batch,
                "list" => Kind::List,
                other => {
                    return Err(format!(
                        "--mix: unknown rpc `{other}` (expected check, batch or list)"
                    ));
                }
            };
            weights[kind.index()] = weight
                .trim()
                .parse()
                .map_err(|_| format!("--mix: the weight of `{name}` is not a whole number"))?;
        }
        if weights.iter().all(|w| *w == 0) {
            return Err("--mix: at least one weight must be above zero".into());
        }
        Ok(Mix { weights })
    }

    /// The weight of `kind` (0: never sent).
    pub fn weight(&self, kind: Kind) -> u32 {
        self.weights[kind.index()]
    }

    /// The kind whose share of the total weight holds `roll`.
    pub fn pick(&self, rng: &mut fastrand::Rng) -> Kind {
        let total: u32 = self.weights.iter().sum();
        let mut roll = rng.u32(0..total);
        for kind in Kind::ALL {
            let w = self.weights[kind.index()];
            if roll < w {
                return kind;
            }
            roll -= w;
        }
        Kind::Check
    }

    pub fn describe(&self) -> String {
        Kind::ALL
            .iter()
            .filter(|k| self.weights[k.index()] > 0)
            .map(|k| format!("{}={}", k.name(), self.weights[k.index()]))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Requests prepared before the clock starts, so that building them is
/// not measured.
#[derive(Debug)]
pub struct Workload {
    pub checks: Vec<pb::CheckAccessRequest>,
    pub batches: Vec<pb::CheckAccessBatchRequest>,
    pub lists: Vec<pb::ListVisibleTicketsRequest>,
    /// `--cold-checks`: checks that ask about a ticket of the whole
    /// dataset instead of the pool's.
    pub cold: Option<ColdChecks>,
}

/// A share of checks whose ticket is drawn from every ticket of the
/// dataset when it is sent: with the ticket cache, the tickets outside
/// the (small, soon cached) pool, so the share sets the miss ratio.
#[derive(Debug)]
pub struct ColdChecks {
    /// Per million checks.
    per_million: usize,
    tickets: Vec<String>,
}

impl ColdChecks {
    /// `share` (0 to 1) of checks on a ticket drawn from `data`'s.
    pub fn new(data: &Dataset, share: f64) -> ColdChecks {
        ColdChecks {
            per_million: (share.clamp(0.0, 1.0) * 1e6).round() as usize,
            tickets: data.tickets.iter().map(|t| t.id.clone()).collect(),
        }
    }

    /// The ticket the check drawn as `pick` (a random number) asks about
    /// instead of its pooled one, if it is cold.
    pub fn ticket(&self, pick: usize) -> Option<&str> {
        let (roll, rest) = (pick % 1_000_000, pick / 1_000_000);
        (roll < self.per_million && !self.tickets.is_empty())
            .then(|| self.tickets[rest % self.tickets.len()].as_str())
    }
}

/// Sizes of the request pools.
const CHECKS: usize = 8192;
const LISTS: usize = 1024;
const BATCHES: usize = 64;

impl Workload {
    /// Checks rotate over ticket actions and over users who reach the
    /// ticket by different rules (its requester, a random agent, an agent
    /// with a lead profile, a random user), as a sidecar serving many users
    /// sees them; lists are first pages of users from the one who sees
    /// nearly everything to ones who see a handful.
    pub fn new(data: &Dataset, batch_size: usize, page_size: u32, seed: u64) -> Workload {
        let mut rng = fastrand::Rng::with_seed(seed);
        let agents = crate::generate::agent_ids(data);
        let random_user = |rng: &mut fastrand::Rng| -> String {
            if data.users.is_empty() {
                NARROW_USER.to_owned()
            } else {
                data.users[rng.usize(0..data.users.len())].id.clone()
            }
        };
        let random_agent = |rng: &mut fastrand::Rng| -> String {
            if agents.is_empty() {
                AGENT_USER.to_owned()
            } else {
                agents[rng.usize(0..agents.len())].to_owned()
            }
        };
        let actions = [
            pb::Action::View,
            pb::Action::Comment,
            pb::Action::Edit,
            pb::Action::Close,
        ];
        let checks: Vec<pb::CheckAccessRequest> = (0..CHECKS)
            .map(|i| {
                let (ticket_id, requester) = match data.tickets.len() {
                    0 => (String::from("missing"), NARROW_USER.to_owned()),
                    n => {
                        let t = &data.tickets[rng.usize(0..n)];
                        (t.id.clone(), t.requester.clone())
                    }
                };
                let user_id = match i % 4 {
                    0 => requester,
                    1 => random_agent(&mut rng),
                    2 => AGENT_USER.to_owned(),
                    _ => random_user(&mut rng),
                };
                pb::CheckAccessRequest {
                    user_id,
                    action: actions[(i / 4) % actions.len()] as i32,
                    ticket_id,
                    ..Default::default()
                }
            })
            .collect();
        let batch_size = batch_size.max(1);
        let batches = (0..BATCHES)
            .map(|b| pb::CheckAccessBatchRequest {
                checks: (0..batch_size)
                    .map(|i| checks[(b * batch_size + i) % checks.len()].clone())
                    .collect(),
                min_revision: 0,
            })
            .collect();
        let lists = (0..LISTS)
            .map(|i| {
                let user_id = match i % 8 {
                    0 => WIDE_USER.to_owned(),
                    1 => NARROW_USER.to_owned(),
                    2 | 3 => random_agent(&mut rng),
                    _ => random_user(&mut rng),
                };
                pb::ListVisibleTicketsRequest {
                    user_id,
                    page_size,
                    ..Default::default()
                }
            })
            .collect();
        Workload {
            checks,
            batches,
            lists,
            cold: None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cold_checks_take_their_share_from_every_ticket() {
        let data = crate::generate::generate(&crate::generate::Spec::scaled(1000));
        let cold = ColdChecks::new(&data, 0.25);
        let mut rng = fastrand::Rng::with_seed(3);
        let mut seen = std::collections::HashSet::new();
        let mut drawn = 0usize;
        for _ in 0..40_000 {
            if let Some(t) = cold.ticket(rng.usize(..)) {
                drawn += 1;
                seen.insert(t.to_owned());
            }
        }
        let share = drawn as f64 / 40_000.0;
        assert!((0.23..0.27).contains(&share), "cold share {share}");
        assert!(seen.len() > 900, "{} distinct tickets", seen.len());
        assert!(ColdChecks::new(&data, 0.0).ticket(0).is_none());
    }

    #[test]
    fn mix_parses_weights_and_names_the_flag_on_error() {
        let mix = Mix::parse("check=8, batch=1,list=1").unwrap();
        assert_eq!(mix.weights, [8, 1, 1]);
        assert!(Mix::parse("check=0").unwrap_err().contains("--mix"));
        assert!(Mix::parse("lookup=1").unwrap_err().contains("lookup"));
        assert!(Mix::parse("check").unwrap_err().contains("NAME=WEIGHT"));
        assert!(Mix::parse("check=x").unwrap_err().contains("check"));
    }

    #[test]
    fn mix_picks_only_weighted_kinds_in_proportion() {
        let mix = Mix::parse("check=3,list=1").unwrap();
        let mut rng = fastrand::Rng::with_seed(1);
        let mut seen = [0usize; 3];
        for _ in 0..40_000 {
            seen[mix.pick(&mut rng).index()] += 1;
        }
        assert_eq!(seen[Kind::Batch.index()], 0);
        let share = seen[Kind::Check.index()] as f64 / 40_000.0;
        assert!((0.72..0.78).contains(&share), "check share {share}");
    }
}
