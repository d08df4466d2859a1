//! Faults on demand, for the local stack (`cargo stack up --faults …`) and the tests: the failures
//! AWS produces now and then, produced here at a chosen rate, from a seed so that a failing run can
//! be replayed.
//!
//! - DynamoDB, through a proxy in front of DynamoDB Local (`proxy`): calls throttled, failed with a
//!   500, slowed, transactions cancelled for a conflict (none of them applied), and writes applied
//!   whose answer is lost (a 500 after the write landed).
//! - SQS, in the local event source: messages delivered twice, and worker invocations killed
//!   mid-batch (nothing deleted, so every message of the batch comes back).
//! - The API, in the local gateway: the client gives up (504) while the request runs on to the end.
//!
//! Each kind has its own random stream from the seed, so the faults of one kind do not move with
//! the traffic of another. With concurrent callers, which call meets a given fault depends on
//! scheduling; the sequence of decisions, and so the counts over a run of the same size, do not.

pub mod proxy;

use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What to inject, each as a share of the calls it can apply to (0 = never, 1 = always).
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    pub seed: u64,
    /// DynamoDB calls answered `ProvisionedThroughputExceededException`, not applied.
    pub throttle: f64,
    /// DynamoDB calls answered `500 InternalServerError`, not applied.
    pub error: f64,
    /// DynamoDB calls held for `slow_by` before they are forwarded.
    pub slow: f64,
    pub slow_by: Duration,
    /// Transactions (TransactWriteItems, TransactGetItems) cancelled with `TransactionConflict` on
    /// one of their items, not applied. DynamoDB Local never cancels for a conflict by itself.
    pub conflict: f64,
    /// DynamoDB writes applied, then answered `500`: the caller cannot tell that they landed.
    pub lost_reply: f64,
    /// SQS messages delivered again: a copy goes back to the queue as soon as it is received.
    pub duplicate: f64,
    /// Worker invocations killed at a random moment of their batch: nothing of it is deleted.
    pub kill: f64,
    /// API requests the client gives up on after `slow_by` (the gateway answers 504) while the
    /// request runs on to its end, as a Lambda invocation outlives API Gateway's timeout.
    pub gave_up: f64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::none()
    }
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> Self {
        Self {
            seed: 0,
            throttle: 0.0,
            error: 0.0,
            slow: 0.0,
            slow_by: Duration::from_millis(300),
            conflict: 0.0,
            lost_reply: 0.0,
            duplicate: 0.0,
            kill: 0.0,
            gave_up: 0.0,
        }
    }

    /// Some of every fault: what `--faults mixed` and the bank test run with.
    pub fn mixed(seed: u64) -> Self {
        Self {
            seed,
            throttle: 0.03,
            error: 0.02,
            slow: 0.03,
            slow_by: Duration::from_millis(300),
            conflict: 0.05,
            lost_reply: 0.02,
            duplicate: 0.05,
            kill: 0.05,
            gave_up: 0.02,
        }
    }

    /// Whether any DynamoDB call can meet a fault (the store then goes through the proxy).
    pub fn touches_dynamodb(&self) -> bool {
        self.throttle + self.error + self.slow + self.conflict + self.lost_reply > 0.0
    }
}

/// `mixed`, `mixed:SEED`, or `name=share,…` with the names of `FaultPlan`'s fields in kebab case
/// (`throttle=0.05,lost-reply=0.01,slow-ms=500,seed=7`). Unnamed kinds stay at 0.
impl FromStr for FaultPlan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text == "none" {
            return Ok(Self::none());
        }
        if let Some(rest) = text.strip_prefix("mixed") {
            let seed = match rest.strip_prefix(':') {
                Some(seed) => seed.parse().map_err(|_| format!("`{seed}` is not a seed"))?,
                None if rest.is_empty() => 1,
                None => return Err(format!("`{text}`: say `mixed` or `mixed:SEED`")),
            };
            return Ok(Self::mixed(seed));
        }
        let mut plan = Self::none();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (name, value) =
                pair.split_once('=').ok_or_else(|| format!("`{pair}`: expected name=value"))?;
            let (name, value) = (name.trim(), value.trim());
            let share = || -> Result<f64, String> {
                match value.parse::<f64>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
                    _ => Err(format!("{name}: `{value}` is not a share from 0 to 1")),
                }
            };
            match name {
                "seed" => {
                    plan.seed = value.parse().map_err(|_| format!("seed: `{value}` is not a number"))?
                }
                "slow-ms" => {
                    plan.slow_by = Duration::from_millis(
                        value.parse().map_err(|_| format!("slow-ms: `{value}` is not a number"))?,
                    )
                }
                "throttle" => plan.throttle = share()?,
                "error" => plan.error = share()?,
                "slow" => plan.slow = share()?,
                "conflict" => plan.conflict = share()?,
                "lost-reply" => plan.lost_reply = share()?,
                "duplicate" => plan.duplicate = share()?,
                "kill" => plan.kill = share()?,
                "gave-up" => plan.gave_up = share()?,
                other => return Err(format!("unknown fault `{other}`")),
            }
        }
        Ok(plan)
    }
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed={},throttle={},error={},slow={},slow-ms={},conflict={},lost-reply={},duplicate={},kill={},gave-up={}",
            self.seed,
            self.throttle,
            self.error,
            self.slow,
            self.slow_by.as_millis(),
            self.conflict,
            self.lost_reply,
            self.duplicate,
            self.kill,
            self.gave_up
        )
    }
}

/// A fault met by one DynamoDB call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DynamoDbFault {
    Throttle,
    Error,
    Slow,
    Conflict,
    LostReply,
}

/// How many of each fault were injected so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub throttled: u64,
    pub errors: u64,
    pub slowed: u64,
    pub conflicts: u64,
    pub lost_replies: u64,
    pub duplicates: u64,
    pub kills: u64,
    pub gave_up: u64,
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} throttled, {} 500s, {} slowed, {} conflicts, {} lost replies, {} duplicate deliveries, \
             {} killed invocations, {} clients gave up",
            self.throttled,
            self.errors,
            self.slowed,
            self.conflicts,
            self.lost_replies,
            self.duplicates,
            self.kills,
            self.gave_up
        )
    }
}

/// The plan, its random streams and its counters; shared by the proxy, the event source and the
/// gateway of one stack.
pub struct Faults {
    plan: FaultPlan,
    /// One-off faults a test asked for: each meets the next call of its operation.
    scripted: Mutex<Vec<(String, DynamoDbFault)>>,
    /// DynamoDB calls the proxy saw, by operation.
    calls: Mutex<std::collections::BTreeMap<String, u64>>,
    dynamodb: Mutex<StdRng>,
    sqs: Mutex<StdRng>,
    gateway: Mutex<StdRng>,
    counts: [AtomicU64; 8],
}

const THROTTLED: usize = 0;
const ERRORS: usize = 1;
const SLOWED: usize = 2;
const CONFLICTS: usize = 3;
const LOST_REPLIES: usize = 4;
const DUPLICATES: usize = 5;
const KILLS: usize = 6;
const GAVE_UP: usize = 7;

/// DynamoDB operations that write (a lost reply only makes sense for those).
const WRITES: [&str; 5] = ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"];
const TRANSACTIONS: [&str; 2] = ["TransactWriteItems", "TransactGetItems"];

impl Faults {
    pub fn new(plan: FaultPlan) -> Self {
        let stream = |n: u64| Mutex::new(StdRng::seed_from_u64(plan.seed.wrapping_mul(4).wrapping_add(n)));
        Self {
            scripted: Mutex::new(Vec::new()),
            calls: Mutex::default(),
            dynamodb: stream(0),
            sqs: stream(1),
            gateway: stream(2),
            plan,
            counts: Default::default(),
        }
    }

    pub fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    pub fn counts(&self) -> FaultCounts {
        let c = |i: usize| self.counts[i].load(Ordering::Relaxed);
        FaultCounts {
            throttled: c(THROTTLED),
            errors: c(ERRORS),
            slowed: c(SLOWED),
            conflicts: c(CONFLICTS),
            lost_replies: c(LOST_REPLIES),
            duplicates: c(DUPLICATES),
            kills: c(KILLS),
            gave_up: c(GAVE_UP),
        }
    }

    fn count(&self, which: usize) {
        self.counts[which].fetch_add(1, Ordering::Relaxed);
    }

    fn draw(stream: &Mutex<StdRng>) -> f64 {
        stream.lock().unwrap_or_else(|e| e.into_inner()).random()
    }

    /// How many calls of DynamoDB `operation` went through the proxy.
    pub fn calls(&self, operation: &str) -> u64 {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).get(operation).copied().unwrap_or(0)
    }

    /// Makes the next call of DynamoDB `operation` meet `fault` (through the proxy), whatever the
    /// plan: how a test puts one fault exactly where it wants it.
    pub fn inject_next(&self, operation: &str, fault: DynamoDbFault) {
        self.scripted.lock().unwrap_or_else(|e| e.into_inner()).push((operation.to_owned(), fault));
    }

    /// The fault, if any, that a call of DynamoDB `operation` meets: a scripted one, else one draw
    /// from the plan (at most one fault a call).
    pub fn dynamodb_call(&self, operation: &str) -> Option<DynamoDbFault> {
        *self.calls.lock().unwrap_or_else(|e| e.into_inner()).entry(operation.to_owned()).or_default() += 1;
        let scripted = {
            let mut scripted = self.scripted.lock().unwrap_or_else(|e| e.into_inner());
            let at = scripted.iter().position(|(op, _)| op == operation);
            at.map(|at| scripted.remove(at).1)
        };
        let p = &self.plan;
        let fault = scripted.or_else(|| {
            let mut x = Self::draw(&self.dynamodb);
            let candidates = [
                (DynamoDbFault::Throttle, p.throttle, true),
                (DynamoDbFault::Error, p.error, true),
                (DynamoDbFault::Conflict, p.conflict, TRANSACTIONS.contains(&operation)),
                (DynamoDbFault::LostReply, p.lost_reply, WRITES.contains(&operation)),
                (DynamoDbFault::Slow, p.slow, true),
            ];
            candidates.into_iter().filter(|(_, _, applies)| *applies).find_map(|(fault, share, _)| {
                let hit = x < share;
                x -= share;
                hit.then_some(fault)
            })
        })?;
        self.count(match fault {
            DynamoDbFault::Throttle => THROTTLED,
            DynamoDbFault::Error => ERRORS,
            DynamoDbFault::Slow => SLOWED,
            DynamoDbFault::Conflict => CONFLICTS,
            DynamoDbFault::LostReply => LOST_REPLIES,
        });
        Some(fault)
    }

    /// Whether a received message is delivered again.
    pub fn duplicate_delivery(&self) -> bool {
        let hit = self.plan.duplicate > 0.0 && Self::draw(&self.sqs) < self.plan.duplicate;
        if hit {
            self.count(DUPLICATES);
        }
        hit
    }

    /// If this worker invocation is to be killed: after how long (up to `within`).
    pub fn kill_after(&self, within: Duration) -> Option<Duration> {
        if self.plan.kill == 0.0 {
            return None;
        }
        let mut rng = self.sqs.lock().unwrap_or_else(|e| e.into_inner());
        if rng.random::<f64>() >= self.plan.kill {
            return None;
        }
        self.count(KILLS);
        Some(within.mul_f64(rng.random::<f64>()))
    }

    /// Whether the client of this API request gives up before the answer.
    pub fn client_gives_up(&self) -> bool {
        let hit = self.plan.gave_up > 0.0 && Self::draw(&self.gateway) < self.plan.gave_up;
        if hit {
            self.count(GAVE_UP);
        }
        hit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_parse_by_name_and_preset() {
        let plan: FaultPlan = "throttle=0.1, lost-reply=0.02,slow-ms=50,seed=9".parse().unwrap();
        assert_eq!((plan.throttle, plan.lost_reply, plan.seed), (0.1, 0.02, 9));
        assert_eq!(plan.slow_by, Duration::from_millis(50));
        assert_eq!(plan.kill, 0.0);
        assert_eq!("mixed:5".parse::<FaultPlan>().unwrap(), FaultPlan::mixed(5));
        assert_eq!(plan.to_string().parse::<FaultPlan>().unwrap(), plan);
        assert!("throttle=2".parse::<FaultPlan>().is_err());
        assert!("thottle=0.1".parse::<FaultPlan>().is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_faults_and_shares_hold() {
        let run = || {
            let faults = Faults::new(FaultPlan { throttle: 0.1, conflict: 0.2, ..FaultPlan::mixed(3) });
            (0..10_000).map(|_| faults.dynamodb_call("TransactWriteItems")).collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b);
        let throttled = a.iter().filter(|f| **f == Some(DynamoDbFault::Throttle)).count();
        let conflicts = a.iter().filter(|f| **f == Some(DynamoDbFault::Conflict)).count();
        assert!((800..1200).contains(&throttled), "{throttled} throttles of 10,000 at 10%");
        assert!((1700..2300).contains(&conflicts), "{conflicts} conflicts of 10,000 at 20%");
    }

    #[test]
    fn faults_apply_only_where_they_can_happen() {
        let faults = Faults::new(FaultPlan { conflict: 1.0, lost_reply: 1.0, ..FaultPlan::none() });
        assert_eq!(faults.dynamodb_call("GetItem"), None);
        assert_eq!(faults.dynamodb_call("PutItem"), Some(DynamoDbFault::LostReply));
        assert_eq!(faults.dynamodb_call("TransactGetItems"), Some(DynamoDbFault::Conflict));
        assert_eq!((faults.counts().conflicts, faults.counts().lost_replies), (1, 1));
    }
}
