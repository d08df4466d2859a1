//! A model-based concurrency test in the style of Jepsen and TigerBeetle's VOPR: seeded random
//! operations from concurrent clients, through the API router and the worker, against DynamoDB Local
//! and moto with the `mixed` faults (throttling, 500s, slow calls, conflicts, lost replies, clients
//! that give up, duplicated deliveries, killed invocations), checked against a sequential model.
//!
//! Each client owns two accounts without overdraft; every client also moves money from the shared
//! funding account (`bank`) and into one shared account (`fees`), both hot (their balances in
//! shards, `ledger::shard`): credits and the bounded debits of reversals out of `fees` race on its
//! shards, which gather funds from each other under the faults, and the routes contend on the
//! same items. A client's operations on its own accounts are decided by nothing but its own history,
//! so the model predicts each outcome exactly: sync, respond-async and batch transfers, replays with
//! the same fields (same outcome) and with other fields (409 naming them, nothing changed), reads;
//! holds (two-phase transfers) with their posts and voids on every route, in batches beside the
//! holds they resolve, raced against each other (one wins, the others learn who), and holds that
//! expire while posts race the deadline, released by whoever meets them first (a post, a read of
//! the account, a refusal, or a background sweeper): the first read after the deadline shows the
//! money free; reversals (full
//! and partial, on every route, and raced against each other: they land in some order, and each
//! refused one asked for more than was left); linked chains on the sync and async routes and inside
//! batches, failing midway (the failing member's code, the others `linked_failed`, nothing moved);
//! account changes (freezes of debits or of all, unfreezes, new overdraft limits and maximums, each
//! refused when the balances do not admit it), after which every route obeys the new policy; and
//! empty accounts closed while transfers into them race the close on both routes (closed first,
//! all refused `account_closed`; or the close refused `account_not_empty`); and freezes raced by a
//! payment, a hold and a reversal out of the account (each ordered before the freeze, as decided,
//! or after it, `account_frozen`).
//! Each request is served by an API instance of its own at that moment (`Api::fleet`): requests at
//! once meet only in the table, as Lambda's instances do.
//! Queued work is applied by up to 10 concurrent worker invocations that run all along, with extra
//! copies of each batch's message sent at random (duplicates, late and "redriven" deliveries).
//!
//! Checked: every acknowledged outcome against the model; batch counters exactly; every read of all
//! balances conserves the total, balances pending debits against pending credits, and shows no
//! account below its floor or above its maximum as that read states them; afterwards every id's stored status, every
//! balance and pending total, every balance read during the run read again as of the instant it
//! was read, and every account's gapless entries replaying to its totals, in time order.
//!
//! The seed (`LEDGER_MODEL_SEED`, default below) decides the operations and the faults and is
//! printed; `LEDGER_MODEL_OPS` sets the operations per client (CI runs the default).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use harness::client::transfer_body;
use harness::{Api, FaultPlan, Reply, StackOptions, fresh_stack_with};
use http::StatusCode;
use ledger::port::{TransferQueue, Work};
use ledger::{BatchId, Submission, TenantId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const CLIENTS: usize = 8;
/// The shards of the shared accounts (`ledger::shard`).
const HOT_SHARDS: u16 = 4;
const DEFAULT_OPS: usize = 30;
const DEFAULT_SEED: u64 = 0x5eed_0009;
const TENANT: &str = "acme";

/// Where a hold the model knows stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HoldState {
    Open,
    Posted,
    Voided,
    Expired,
}

/// A committed transfer that posted money, as far as reversals go.
#[derive(Clone, Debug)]
struct Posted {
    from: String,
    to: String,
    amount: i64,
    reversed: i64,
}

#[derive(Clone, Debug)]
struct Hold {
    from: String,
    to: String,
    amount: i64,
    state: HoldState,
}

/// What an account's balance obeys, as the client's changes left it.
#[derive(Clone, Debug, Default)]
struct Policy {
    /// `open`, `debits_frozen`, `frozen` or `closed`.
    status: &'static str,
    /// How far below zero `available` may go.
    limit: i64,
    /// The most the balance with pending credits may reach.
    max: Option<i64>,
    /// How many changes the account has had (each one an event).
    revision: u64,
    /// The largest `limit` it ever had: no entry takes `available` below minus this.
    deepest: i64,
}

/// A change a client makes to one of its accounts.
#[derive(Clone, Debug)]
enum Change {
    Freeze { debits_only: bool },
    Unfreeze,
    Bounds { limit: i64, max: Option<i64> },
}

/// The sequential model of one client's accounts, and what each of its ids holds.
#[derive(Clone, Default)]
struct Model {
    /// Posted balances of the client's accounts.
    balances: BTreeMap<String, i64>,
    /// Pending debits of the client's accounts (holds on them, open).
    pending: BTreeMap<String, i64>,
    /// Pending credits of the client's accounts (holds into them, open).
    incoming: BTreeMap<String, i64>,
    /// The client's accounts' policies.
    policies: BTreeMap<String, Policy>,
    /// The events of the client's account changes (`{type}:{account}-{revision}`).
    changes: Vec<String>,
    /// Freezes raced by money out of the account: the transfers ordered before each (committed)
    /// and after it (`account_frozen`).
    freeze_races: Vec<(usize, usize)>,
    /// The client's applied holds.
    holds: BTreeMap<String, Hold>,
    /// The client's committed transfers and posts: what reversals can move back.
    posted: BTreeMap<String, Posted>,
    /// Each id used: its request body and its outcome ("committed" or a rule's code).
    ids: BTreeMap<String, (Value, String)>,
    /// The client's balances as read at an instant (`Op::Read`).
    snapshots: Vec<(time::OffsetDateTime, BTreeMap<String, i64>)>,
    /// The client's batches, each settled whole.
    batches: Vec<String>,
    /// Money moved into `fees` and out of `bank` by committed transfers.
    fees: i64,
    funded: i64,
}

impl Model {
    fn open(&mut self, account: String) {
        self.balances.insert(account.clone(), 0);
        self.pending.insert(account.clone(), 0);
        self.incoming.insert(account.clone(), 0);
        self.policies.insert(account, Policy { status: "open", ..Policy::default() });
    }

    /// The rule that refuses moving `amount` from `from` to `to` (a posting or a hold, `bounded`;
    /// otherwise the post of a hold, which only a freeze stops), in the ledger's order: the debit
    /// account's status, the credit account's, the floor, the maximum. Only the client's own
    /// accounts have a policy (`bank` and `fees` are open and unbounded).
    fn refusal(&self, from: &str, to: &str, amount: i64, bounded: bool) -> Option<String> {
        let status = |account: &str| self.policies.get(account).map_or("open", |p| p.status);
        let blocked = |status: &str| if status == "closed" { "account_closed" } else { "account_frozen" };
        if status(from) != "open" {
            return Some(blocked(status(from)).to_owned());
        }
        if !["open", "debits_frozen"].contains(&status(to)) {
            return Some(blocked(status(to)).to_owned());
        }
        if !bounded {
            return None;
        }
        if let Some(policy) = self.policies.get(from)
            && self.balances[from] - self.pending[from] - amount < -policy.limit
        {
            return Some("insufficient_funds".to_owned());
        }
        if let Some(max) = self.policies.get(to).and_then(|p| p.max)
            && self.balances[to] + self.incoming[to] + amount > max
        {
            return Some("max_balance_exceeded".to_owned());
        }
        None
    }

    /// A change of `account` as the ledger decides it: `Ok(true)` if it changed the account (an
    /// event), `Ok(false)` if it changed nothing, or the rule that refused it.
    fn change(&mut self, account: &str, change: &Change) -> Result<bool, String> {
        let mut policy = self.policies[account].clone();
        match change {
            Change::Freeze { debits_only } => {
                policy.status = if *debits_only { "debits_frozen" } else { "frozen" }
            }
            Change::Unfreeze => policy.status = "open",
            Change::Bounds { limit, max } => {
                if self.balances[account] - self.pending[account] < -limit {
                    return Err("insufficient_funds".to_owned());
                }
                if max.is_some_and(|max| self.balances[account] + self.incoming[account] > max) {
                    return Err("max_balance_exceeded".to_owned());
                }
                (policy.limit, policy.max) = (*limit, *max);
                policy.deepest = policy.deepest.max(*limit);
            }
        }
        let old = &self.policies[account];
        if (old.status, old.limit, old.max) == (policy.status, policy.limit, policy.max) {
            return Ok(false);
        }
        policy.revision += 1;
        let kind = match change {
            Change::Freeze { .. } => "account.frozen",
            Change::Unfreeze => "account.unfrozen",
            Change::Bounds { .. } => "account.updated",
        };
        self.changes.push(format!("{kind}:{account}-{}", policy.revision));
        self.policies.insert(account.to_owned(), policy);
        Ok(true)
    }

    /// Applies one transfer (of any kind) as the ledger must, returning its outcome.
    fn apply(&mut self, body: &Value) -> String {
        let id = body["id"].as_str().unwrap().to_owned();
        let outcome = if let Some(pending) = body["post_pending_id"].as_str() {
            let outcome = self.resolve(pending, Some(body["amount"].as_i64()));
            if outcome == "committed" {
                let hold = &self.holds[pending];
                let amount = body["amount"].as_i64().unwrap_or(hold.amount);
                let posted = Posted { from: hold.from.clone(), to: hold.to.clone(), amount, reversed: 0 };
                self.posted.insert(id.clone(), posted);
            }
            outcome
        } else if let Some(reversed) = body["reverses_transfer_id"].as_str() {
            self.reverse(reversed, body["amount"].as_i64())
        } else if let Some(pending) = body["void_pending_id"].as_str() {
            self.resolve(pending, None)
        } else {
            let (from, to) =
                (body["debit_account_id"].as_str().unwrap(), body["credit_account_id"].as_str().unwrap());
            let amount = body["amount"].as_i64().unwrap();
            if let Some(rule) = self.refusal(from, to, amount, true) {
                rule
            } else if body["pending"] == true {
                if from != "bank" {
                    *self.pending.get_mut(from).unwrap() += amount;
                }
                if let Some(incoming) = self.incoming.get_mut(to) {
                    *incoming += amount;
                }
                let hold = Hold { from: from.into(), to: to.into(), amount, state: HoldState::Open };
                self.holds.insert(id.clone(), hold);
                "committed".to_owned()
            } else {
                self.move_money(from, to, amount);
                let posted = Posted { from: from.into(), to: to.into(), amount, reversed: 0 };
                self.posted.insert(id.clone(), posted);
                "committed".to_owned()
            }
        };
        self.ids.insert(id, (body.clone(), outcome.clone()));
        outcome
    }

    /// A linked chain: all of it, in order, or none (the failing member's code, the others
    /// `linked_failed`, nothing moved).
    fn apply_chain(&mut self, chain: &[Value]) -> Vec<String> {
        let mut trial = self.clone();
        let outcomes: Vec<String> = chain.iter().map(|body| trial.apply(body)).collect();
        let Some(failed) = outcomes.iter().position(|o| o != "committed") else {
            *self = trial;
            return outcomes;
        };
        chain
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let outcome = if i == failed { outcomes[i].clone() } else { "linked_failed".to_owned() };
                self.ids.insert(body["id"].as_str().unwrap().to_owned(), (body.clone(), outcome.clone()));
                outcome
            })
            .collect()
    }

    /// A sequence with linked chains in it (a batch), in order.
    fn apply_sequence(&mut self, transfers: &[Value]) -> Vec<String> {
        let mut outcomes = Vec::new();
        let mut start = 0;
        for (i, body) in transfers.iter().enumerate() {
            if body["linked"] != true {
                outcomes.extend(self.apply_chain(&transfers[start..=i]));
                start = i + 1;
            }
        }
        outcomes
    }

    /// A reversal of `reversed`: `amount`, or all that is left.
    fn reverse(&mut self, reversed: &str, amount: Option<i64>) -> String {
        let Some(original) = self.posted.get(reversed).cloned() else {
            let known = self.ids.get(reversed).is_some_and(|(_, o)| o != "queued");
            return if known { "not_reversible" } else { "reversed_transfer_not_found" }.to_owned();
        };
        let left = original.amount - original.reversed;
        let amount = amount.unwrap_or(left);
        if amount == 0 || amount > left {
            return "exceeds_reversible_amount".to_owned();
        }
        let (from, to) = (original.to.as_str(), original.from.as_str());
        if let Some(rule) = self.refusal(from, to, amount, true) {
            return rule;
        }
        if from == "fees" {
            self.fees -= amount;
        } else if from != "bank" {
            *self.balances.get_mut(from).unwrap() -= amount;
        } else {
            self.funded += amount;
        }
        if to == "bank" {
            self.funded -= amount;
        } else {
            *self.balances.get_mut(to).unwrap() += amount;
        }
        self.posted.get_mut(reversed).unwrap().reversed += amount;
        "committed".to_owned()
    }

    fn move_money(&mut self, from: &str, to: &str, amount: i64) {
        if from == "bank" {
            self.funded += amount;
        } else {
            *self.balances.get_mut(from).unwrap() -= amount;
        }
        if to == "fees" {
            self.fees += amount;
        } else {
            *self.balances.get_mut(to).unwrap() += amount;
        }
    }

    /// A post (`Some(amount)`, `Some(None)`: all of it) or a void (`None`) of hold `pending`.
    fn resolve(&mut self, pending: &str, post: Option<Option<i64>>) -> String {
        let Some(hold) = self.holds.get(pending).cloned() else {
            let known = self.ids.contains_key(pending);
            return if known { "not_pending" } else { "pending_not_found" }.to_owned();
        };
        match hold.state {
            HoldState::Posted => return "pending_already_posted".to_owned(),
            HoldState::Voided => return "pending_already_voided".to_owned(),
            HoldState::Expired => return "pending_expired".to_owned(),
            HoldState::Open => {}
        }
        let state = match post {
            Some(requested) => {
                let amount = requested.unwrap_or(hold.amount);
                if amount > hold.amount {
                    return "exceeds_pending_amount".to_owned();
                }
                if let Some(rule) = self.refusal(&hold.from, &hold.to, amount, false) {
                    return rule;
                }
                self.release(&hold);
                self.move_money(&hold.from, &hold.to, amount);
                HoldState::Posted
            }
            None => {
                self.release(&hold);
                HoldState::Voided
            }
        };
        self.holds.get_mut(pending).unwrap().state = state;
        "committed".to_owned()
    }

    fn release(&mut self, hold: &Hold) {
        if hold.from != "bank" {
            *self.pending.get_mut(&hold.from).unwrap() -= hold.amount;
        }
        if let Some(incoming) = self.incoming.get_mut(&hold.to) {
            *incoming -= hold.amount;
        }
    }

    /// Hold `id` passed its timeout unresolved.
    fn expire(&mut self, id: &str) {
        let hold = self.holds[id].clone();
        assert_eq!(hold.state, HoldState::Open, "{id} expired once resolved");
        self.release(&hold);
        self.holds.get_mut(id).unwrap().state = HoldState::Expired;
    }

    /// The client's holds that could still be resolved, and any of its holds.
    fn holds_to_name(&self) -> Vec<String> {
        self.holds.keys().cloned().collect()
    }

    fn open_holds(&self) -> Vec<String> {
        self.holds.iter().filter(|(_, h)| h.state == HoldState::Open).map(|(id, _)| id.clone()).collect()
    }
}

/// What a client does next.
enum Op {
    Sync(Value),
    Async(Value),
    Batch(String, Vec<Value>),
    /// An earlier request sent again: the same outcome.
    Replay(Value),
    /// An earlier id with another amount: 409 naming `amount`, nothing changed.
    Differing(Value),
    /// Posts and voids of one open hold, sent at once on the sync and async routes: one resolves it.
    Race(String, Vec<Value>),
    /// A hold that expires in a second, posts racing its deadline, and the one of them, or the
    /// sweeper, that meets it expired releasing it.
    Expiring(Value, Vec<Value>),
    /// Reversals of one committed transfer, sent at once on the sync and async routes.
    ReversalRace(String, Vec<Value>),
    /// A linked chain, on the sync route (`true`) or the async one.
    Linked(Vec<Value>, bool),
    /// A change of one of the client's accounts: frozen, unfrozen, or new bounds.
    Govern(String, Change),
    /// A fresh empty account closed while transfers into it are sent at once, on both routes:
    /// closed first (every one refused `account_closed`) or not (the close refused, every one in).
    CloseRace(String, Vec<Value>),
    /// The client's account frozen for debits while money is sent out of it at once (a payment, a
    /// hold, a reversal of what paid into it), on both routes: each ordered before the freeze
    /// (decided as it was) or after it (`account_frozen`); then unfrozen.
    FreezeRace(String, Vec<Value>),
    Read,
}

fn random_transfer(rng: &mut StdRng, client: usize, id: String) -> Value {
    let (a, b) = (format!("c{client}-a"), format!("c{client}-b"));
    let amount = rng.random_range(1..=400u64);
    let (from, to) = match rng.random_range(0..6) {
        0 => ("bank".to_owned(), a),
        1 => ("bank".to_owned(), b),
        2 => (a, b),
        3 => (b, a),
        4 => (a, "fees".to_owned()),
        _ => (b, "fees".to_owned()),
    };
    transfer_body(&id, &from, &to, amount)
}

fn hold_body(rng: &mut StdRng, client: usize, id: String, timeout: Option<u64>) -> Value {
    let mut body = random_transfer(rng, client, id);
    body["pending"] = json!(true);
    if let Some(timeout) = timeout {
        body["timeout_seconds"] = json!(timeout);
    }
    body
}

/// A reversal of all that is left of `reversed`, or of a random part of it (maybe too much).
fn reversal(rng: &mut StdRng, id: String, reversed: &str) -> Value {
    if rng.random_bool(0.3) {
        json!({"id": id, "reverses_transfer_id": reversed})
    } else {
        json!({"id": id, "reverses_transfer_id": reversed, "amount": rng.random_range(1..=250u64)})
    }
}

/// A post (of a random part, all, or too much) or a void of `pending`.
fn resolution(rng: &mut StdRng, id: String, pending: &str) -> Value {
    match rng.random_range(0..4) {
        0 => json!({"id": id, "void_pending_id": pending}),
        1 => json!({"id": id, "post_pending_id": pending}),
        _ => json!({"id": id, "post_pending_id": pending, "amount": rng.random_range(1..=420u64)}),
    }
}

/// Any transfer a client may send: immediate, a hold (without a timeout, or one that outlives the
/// test), or a post or void of one of its holds, or of a hold `earlier` in the same batch.
fn random_kind(rng: &mut StdRng, client: usize, id: String, model: &Model, earlier: &[String]) -> Value {
    let names: Vec<String> = model.holds_to_name().into_iter().chain(earlier.iter().cloned()).collect();
    match rng.random_range(0..12) {
        10.. if !model.ids.is_empty() => {
            // Mostly what posted money; now and then a hold, a void, a reversal or a rejection.
            let posted: Vec<&String> = model.posted.keys().collect();
            let any: Vec<&String> = model.ids.keys().collect();
            let reversed = if !posted.is_empty() && rng.random_bool(0.8) {
                posted[rng.random_range(0..posted.len())].clone()
            } else {
                any[rng.random_range(0..any.len())].clone()
            };
            reversal(rng, id, &reversed)
        }
        0..5 => random_transfer(rng, client, id),
        5..7 => {
            let timeout = rng.random_bool(0.5).then_some(3600);
            hold_body(rng, client, id, timeout)
        }
        _ if !names.is_empty() => {
            let pending = names[rng.random_range(0..names.len())].clone();
            resolution(rng, id, &pending)
        }
        _ => random_transfer(rng, client, id),
    }
}

fn plan_op(rng: &mut StdRng, client: usize, n: usize, used: &[Value], model: &Model) -> Op {
    let id = |k: usize| format!("c{client}-{n}-{k}");
    let open = model.open_holds();
    match rng.random_range(0..110) {
        100..106 => {
            let account = format!("c{client}-{}", if rng.random_bool(0.5) { "a" } else { "b" });
            let change = match rng.random_range(0..20) {
                0..3 => Change::Freeze { debits_only: true },
                3..5 => Change::Freeze { debits_only: false },
                5..14 => Change::Unfreeze,
                _ => Change::Bounds {
                    limit: [0, 0, 100, 300][rng.random_range(0..4)],
                    max: [None, None, Some(500), Some(2_000)][rng.random_range(0..4)],
                },
            };
            Op::Govern(account, change)
        }
        108..110 => {
            let (account, other) = (format!("c{client}-a"), format!("c{client}-b"));
            let mut hold = transfer_body(&id(1), &account, "fees", rng.random_range(1..=200u64));
            hold["pending"] = json!(true);
            let mut race = vec![transfer_body(&id(0), &account, &other, rng.random_range(1..=200u64)), hold];
            let paid_in = model.posted.iter().find(|(_, p)| p.to == account && p.reversed < p.amount);
            if let Some((reversed, _)) = paid_in {
                race.push(json!({"id": id(2), "reverses_transfer_id": reversed, "amount": 1}));
            }
            Op::FreezeRace(account, race)
        }
        106..108 => {
            let account = format!("c{client}-z{n}");
            let into = |k: usize| transfer_body(&id(k), "bank", &account, 1);
            Op::CloseRace(account.clone(), vec![into(0), into(1)])
        }
        0..30 => Op::Sync(random_kind(rng, client, id(0), model, &[])),
        30..42 => Op::Async(random_kind(rng, client, id(0), model, &[])),
        42..55 => {
            let size = rng.random_range(1..=25);
            let mut transfers: Vec<Value> = Vec::new();
            let mut holds = Vec::new();
            for k in 0..size {
                let mut t = random_kind(rng, client, id(k), model, &holds);
                if t["pending"] == true {
                    holds.push(t["id"].as_str().unwrap().to_owned());
                }
                // About one in five linked to the next: chains of a few inside the batch.
                if k + 1 < size && rng.random_bool(0.2) {
                    t["linked"] = json!(true);
                }
                transfers.push(t);
            }
            Op::Batch(format!("c{client}-b{n}"), transfers)
        }
        88..94 => {
            let size = rng.random_range(2..=5);
            let mut chain: Vec<Value> = Vec::new();
            let mut holds = Vec::new();
            for k in 0..size {
                let t = random_kind(rng, client, id(k), model, &holds);
                if t["pending"] == true {
                    holds.push(t["id"].as_str().unwrap().to_owned());
                }
                chain.push(t);
            }
            Op::Linked(chain, rng.random_bool(0.6))
        }
        94..97 if !model.posted.is_empty() => {
            let posted: Vec<&String> = model.posted.keys().collect();
            let reversed = posted[rng.random_range(0..posted.len())].clone();
            let race = (0..4).map(|k| {
                json!({"id": id(k), "reverses_transfer_id": reversed, "amount": rng.random_range(1..=150u64)})
            });
            Op::ReversalRace(reversed.clone(), race.collect())
        }
        55..62 if !open.is_empty() => {
            let pending = open[rng.random_range(0..open.len())].clone();
            Op::Race(pending.clone(), (0..4).map(|k| resolution(rng, id(k), &pending)).collect())
        }
        62..66 => {
            // Up to 3 posts racing the deadline; with none (2 in 5), only the sweeper releases it.
            let posts = [0, 0, 1, 2, 3][rng.random_range(0..5)];
            Op::Expiring(
                hold_body(rng, client, id(0), Some(1)),
                (1..=posts).map(|k| json!({"id": id(k), "post_pending_id": id(0)})).collect(),
            )
        }
        66..78 if !used.is_empty() => Op::Replay(used[rng.random_range(0..used.len())].clone()),
        78..88 => {
            // Another amount for an earlier id (a void has none to change).
            let amounts: Vec<&Value> = used.iter().filter(|b| b["void_pending_id"].is_null()).collect();
            if amounts.is_empty() {
                return Op::Read;
            }
            let mut body = amounts[rng.random_range(0..amounts.len())].clone();
            body["amount"] = json!(body["amount"].as_u64().unwrap_or(0) + 1);
            Op::Differing(body)
        }
        _ => Op::Read,
    }
}

/// Sends `request` (built afresh each time) until its answer is definite.
async fn definite(api: &Api, request: impl Fn() -> http::Request<axum::body::Body>) -> Reply {
    for _ in 0..20 {
        let reply = api.send_request(request()).await;
        if !reply.is_indefinite() {
            return reply;
        }
    }
    panic!("{} {} stayed indefinite", request().method(), request().uri());
}

/// A freeze, unfreeze or close (`path`), until definite: each is idempotent.
async fn lifecycle(api: &Api, path: &str) -> Reply {
    definite(api, || {
        http::Request::post(path)
            .header("authorization", format!("Bearer {}", api.token(TENANT)))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(json!({"mode": "all"}).to_string()))
            .unwrap()
    })
    .await
}

/// A client's change of its account, until definite. Bounds are patched under `If-Match: *`, so
/// sending the same patch again after a lost answer sets what is there.
async fn govern(api: &Api, account: &str, change: &Change) -> Reply {
    let (method, path, body) = match change {
        Change::Freeze { debits_only } => {
            let mode = if *debits_only { "debits" } else { "all" };
            ("POST", format!("/v1/accounts/{account}/freeze"), json!({ "mode": mode }))
        }
        Change::Unfreeze => ("POST", format!("/v1/accounts/{account}/unfreeze"), json!({})),
        Change::Bounds { limit, max } => (
            "PATCH",
            format!("/v1/accounts/{account}"),
            json!({"overdraft_limit": (*limit > 0).then_some(limit), "max_balance": max}),
        ),
    };
    definite(api, || {
        http::Request::builder()
            .method(method)
            .uri(&path)
            .header("authorization", format!("Bearer {}", api.token(TENANT)))
            .header("content-type", "application/json")
            .header("if-match", "*")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap()
    })
    .await
}

async fn post_async(api: &Api, body: &Value) -> Reply {
    post_async_to(api, "/v1/transfers", body).await
}

async fn post_async_to(api: &Api, path: &str, body: &Value) -> Reply {
    for _ in 0..20 {
        let reply = api.post_async(path, TENANT, body).await;
        if !reply.is_indefinite() {
            return reply;
        }
    }
    panic!("respond-async POST of {body} stayed indefinite");
}

/// Sends `bodies` at once, alternately on the sync and the respond-async route.
async fn send_at_once(api: &Arc<Api>, bodies: &[Value]) {
    let sends = bodies.iter().enumerate().map(|(k, body)| {
        let api = api.clone();
        async move {
            if k % 2 == 0 {
                api.post_definite("/v1/transfers", TENANT, body.clone()).await;
            } else {
                let reply = post_async(&api, body).await;
                assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
            }
        }
    });
    futures::future::join_all(sends).await;
}

/// Polls until `path`'s answer satisfies `settled` (the worker runs in the background).
async fn wait_for(api: &Api, path: &str, settled: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let reply = api.get_definite(path, TENANT).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        if settled(&reply.body) {
            return reply.body;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "{path} never settled: {}", reply.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn transfer_outcome(api: &Api, id: &str) -> String {
    let body = wait_for(api, &format!("/v1/transfers/{id}"), |t| t["status"] != "queued").await;
    outcome_of(&body)
}

/// "committed" for an applied transfer of any kind (a hold in any of its states), else the rule.
fn outcome_of(transfer: &Value) -> String {
    match transfer["status"].as_str() {
        Some("rejected") => transfer["reason"]["code"].as_str().unwrap().to_owned(),
        Some("queued") | None => panic!("not settled: {transfer}"),
        Some(_) => "committed".to_owned(),
    }
}

/// The escrow of a hot account without overdraft, as stored (`ledger::shard`): the funds moved
/// between its shards sum to zero, and none is below its part of the floor.
async fn check_shards(api: &Api, account: &str) {
    let tenant = TenantId::parse(TENANT).unwrap();
    let id = ledger::AccountId::parse(account).unwrap();
    let (mut moved, mut written, mut gathered) = (0i128, 0, 0);
    for shard in 0..HOT_SHARDS {
        let pk = ledger_dynamodb::keys::shard_pk(&tenant, &id, shard);
        let item = api.stack.dynamodb.get_item().table_name(&api.stack.table);
        let item = item.set_key(Some(ledger_dynamodb::keys::key(pk, ledger_dynamodb::keys::BALANCE_SK)));
        let item = item.consistent_read(true).send().await.unwrap().item.unwrap();
        let balance = ledger_dynamodb::items::balance_from(&item).unwrap();
        assert!(balance.headroom().unwrap() >= 0, "shard {shard} of {account} below its floor: {balance:?}");
        moved += balance.moved;
        written += usize::from(balance.entry_count > 0);
        gathered += usize::from(balance.moved != 0);
    }
    assert_eq!(moved, 0, "the funds moved between {account}'s shards sum to zero");
    eprintln!(
        "{account}: {written} of {HOT_SHARDS} shards written, {gathered} holding funds moved by gathers"
    );
}

/// One read of all balances: every account there, the total exactly conserved, no account without
/// overdraft below zero.
async fn check_read(api: &Api) {
    let reply = api.get_definite("/v1/accounts?limit=100", TENANT).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let accounts = reply.body["data"].as_array().unwrap();
    // The clients' accounts, bank and fees, and the accounts opened to be closed.
    assert!(accounts.len() >= 2 + 2 * CLIENTS, "{} accounts", accounts.len());
    let (mut total, mut debits_pending, mut credits_pending) = (0, 0, 0);
    for account in accounts {
        let (balance, available) =
            (account["balance"].as_i64().unwrap(), account["available"].as_i64().unwrap());
        // No bound crossed, as the same read states the bounds.
        let floor = -account["overdraft_limit"].as_i64().unwrap_or(0);
        assert!(
            account["allow_overdraft"] == true || available >= floor,
            "below its floor in a read: {account}"
        );
        if let Some(max) = account["max_balance"].as_i64() {
            let ceiling = balance + account["credits_pending"].as_i64().unwrap();
            assert!(ceiling <= max, "above its maximum in a read: {account}");
        }
        assert_eq!(available, balance - account["debits_pending"].as_i64().unwrap(), "{account}");
        total += balance;
        debits_pending += account["debits_pending"].as_i64().unwrap();
        credits_pending += account["credits_pending"].as_i64().unwrap();
    }
    let shown: Vec<String> = accounts.iter().map(|a| format!("{}={}", a["id"], a["balance"])).collect();
    assert_eq!(total, 0, "a read saw money created or lost: {}", shown.join(" "));
    assert_eq!(debits_pending, credits_pending, "a read saw pending debits without their credits");
}

/// Runs one client's operations, checking each acknowledged outcome against its model.
async fn client(
    api: Arc<Api>,
    client: usize,
    ops: usize,
    seed: u64,
    copies: Arc<tokio::sync::Mutex<Vec<String>>>,
) -> (Model, usize) {
    let mut rng = StdRng::seed_from_u64(seed ^ (client as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut model = Model::default();
    for account in [format!("c{client}-a"), format!("c{client}-b")] {
        model.open(account);
    }
    let mut used: Vec<Value> = Vec::new();
    let mut batches: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut reads = 0;
    for n in 0..ops {
        match plan_op(&mut rng, client, n, &used, &model) {
            Op::Sync(body) => {
                let (reply, _) = api.post_definite("/v1/transfers", TENANT, body.clone()).await;
                let expected = model.apply(&body);
                assert_sync_outcome(&reply, &expected, false);
                used.push(body);
            }
            Op::Async(body) => {
                let reply = post_async(&api, &body).await;
                assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
                let id = body["id"].as_str().unwrap();
                let outcome = transfer_outcome(&api, id).await;
                assert_eq!(outcome, model.apply(&body), "async {id}");
                used.push(body);
            }
            Op::Batch(id, transfers) => {
                let request = json!({"id": id, "transfers": transfers});
                let (reply, _) = api.post_definite("/v1/transfer-batches", TENANT, request).await;
                assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
                if rng.random_bool(0.5) {
                    copies.lock().await.push(id.clone());
                }
                let path = format!("/v1/transfer-batches/{id}");
                let status = wait_for(&api, &path, |b| b["queued"] == 0).await;
                model.batches.push(id.clone());
                // In submitted order, each linked chain whole, exactly as the model applies them.
                let mut expected: BTreeMap<String, u64> = BTreeMap::new();
                for outcome in model.apply_sequence(&transfers) {
                    *expected.entry(outcome).or_default() += 1;
                }
                for t in &transfers {
                    let stored = transfer_outcome(&api, t["id"].as_str().unwrap()).await;
                    assert_eq!(
                        stored,
                        model.ids[t["id"].as_str().unwrap()].1,
                        "{t} of batch {id}: {transfers:?}"
                    );
                }
                let committed = expected.remove("committed").unwrap_or(0);
                assert_eq!(status["committed"].as_u64(), Some(committed), "batch {id}: {status}");
                assert_eq!(status["rejected_by_reason"], json!(expected), "batch {id}");
                // A linked member cannot be sent alone: replays take the others.
                used.extend(transfers.iter().filter(|t| t["linked"] != true).cloned());
                batches.insert(id, transfers);
            }
            Op::Replay(body) => {
                let id = body["id"].as_str().unwrap();
                let expected = model.ids[id].1.clone();
                if rng.random_bool(0.5) {
                    let (reply, _) = api.post_definite("/v1/transfers", TENANT, body.clone()).await;
                    assert_sync_outcome(&reply, &expected, true);
                } else {
                    let reply = post_async(&api, &body).await;
                    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
                    assert!(reply.replayed(), "async replay of {id}");
                    assert_eq!(
                        outcome_of(&reply.body) == "committed",
                        expected == "committed",
                        "async replay of {id}"
                    );
                }
            }
            Op::Differing(body) => {
                let (reply, _) = if rng.random_bool(0.5) {
                    api.post_definite("/v1/transfers", TENANT, body.clone()).await
                } else {
                    (post_async(&api, &body).await, 0)
                };
                assert_eq!(
                    (reply.status, reply.code()),
                    (StatusCode::CONFLICT, "idempotency_conflict"),
                    "{}",
                    reply.body
                );
                assert_eq!(reply.body["fields"], json!(["amount"]));
            }
            Op::Race(pending, resolutions) => {
                send_at_once(&api, &resolutions).await;
                let mut outcomes = Vec::new();
                for body in &resolutions {
                    outcomes.push((body.clone(), transfer_outcome(&api, body["id"].as_str().unwrap()).await));
                }
                // The one that resolved the hold is what the hold names; the others were decided
                // after it, and the model decides them so too (some may be refused before the hold
                // is even read: an amount over the hold's).
                let hold = api.get_definite(&format!("/v1/transfers/{pending}"), TENANT).await.body;
                let winner = hold["resolved_by"].as_str().map(str::to_owned);
                let mut ordered: Vec<&(Value, String)> = outcomes.iter().collect();
                ordered.sort_by_key(|(body, _)| Some(body["id"].as_str().unwrap().to_owned()) != winner);
                let unresolved = model.clone();
                for (body, outcome) in ordered {
                    let expected = model.apply(body);
                    if outcome == &expected {
                        continue;
                    }
                    // Refused before the winner resolved the hold (a post over the hold's amount,
                    // or one a freeze stops): as the model decides it with the hold still open.
                    let id = body["id"].as_str().unwrap().to_owned();
                    let before = unresolved.clone().apply(body);
                    assert!(
                        Some(&id) != winner.as_ref() && outcome == &before && before != "committed",
                        "race on {pending}: {body} {outcome}, the model says {expected} after the winner \
                         {winner:?} and {before} before it"
                    );
                    model.ids.get_mut(&id).unwrap().1 = outcome.clone();
                }
                assert_eq!(winner.is_some(), model.holds[&pending].state != HoldState::Open, "{hold}");
                used.extend(resolutions);
            }
            Op::Expiring(hold, posts) => {
                let (reply, _) = api.post_definite("/v1/transfers", TENANT, hold.clone()).await;
                let id = hold["id"].as_str().unwrap().to_owned();
                let expected = model.apply(&hold);
                assert_sync_outcome(&reply, &expected, false);
                if expected != "committed" {
                    continue;
                }
                let expires_at = rfc3339(&reply.body["expires_at"]);
                // Posts sent from just before the deadline to just after it.
                let sends = posts.iter().enumerate().map(|(k, body)| {
                    let api = api.clone();
                    let at = expires_at - time::Duration::milliseconds(40)
                        + time::Duration::milliseconds(40 * k as i64);
                    async move {
                        let wait = (at - time::OffsetDateTime::now_utc()).max(time::Duration::ZERO);
                        tokio::time::sleep(wait.unsigned_abs()).await;
                        let (reply, _) = api.post_definite("/v1/transfers", TENANT, body.clone()).await;
                        (reply, time::OffsetDateTime::now_utc())
                    }
                });
                let replies = futures::future::join_all(sends).await;
                // Whatever the posts did, the deadline is behind us before the model moves on.
                let left = expires_at - time::OffsetDateTime::now_utc();
                if left.is_positive() {
                    tokio::time::sleep(left.unsigned_abs() + Duration::from_millis(10)).await;
                }
                let winner = replies.iter().zip(&posts).find(|((r, _), _)| r.body["status"] == "committed");
                if let Some(((reply, _), body)) = winner {
                    assert!(
                        rfc3339(&reply.body["created_at"]) < expires_at,
                        "posted after expiry: {}",
                        reply.body
                    );
                    assert_eq!(model.apply(body), "committed");
                } else {
                    model.expire(&id);
                }
                for ((reply, answered), body) in replies.iter().zip(&posts) {
                    if winner.is_some_and(|(_, w)| w["id"] == body["id"]) {
                        continue;
                    }
                    let expected = model.apply(body);
                    assert_eq!(reply.code(), expected, "{body}: {}", reply.body);
                    if expected == "pending_expired" {
                        assert!(*answered >= expires_at, "expired before its time: {}", reply.body);
                    }
                }
                // An expired hold counts for nothing at once: the first read of its account shows
                // it released (the read releases it if nobody did), whatever the sweeper did.
                let from = hold["debit_account_id"].as_str().unwrap().to_owned();
                if from != "bank" {
                    let read = api.get_definite(&format!("/v1/accounts/{from}"), TENANT).await;
                    assert_eq!(read.body["debits_pending"], model.pending[&from], "{}", read.body);
                }
                used.push(hold);
                used.extend(posts);
            }
            Op::Linked(mut chain, sync) => {
                let last = chain.len() - 1;
                for member in &mut chain[..last] {
                    member["linked"] = json!(true);
                }
                let expected = model.apply_chain(&chain);
                let request = json!({ "transfers": chain });
                if sync {
                    let (reply, _) = api.post_definite("/v1/linked-transfers", TENANT, request).await;
                    match expected.iter().position(|o| o != "committed" && o != "linked_failed") {
                        None => {
                            assert!(
                                reply.status == StatusCode::CREATED || reply.status == StatusCode::OK,
                                "{}",
                                reply.body
                            );
                        }
                        Some(failed) => assert_eq!(
                            (reply.status, reply.code(), &reply.body["transfer_id"]),
                            (
                                StatusCode::UNPROCESSABLE_ENTITY,
                                expected[failed].as_str(),
                                &chain[failed]["id"]
                            ),
                            "{}",
                            reply.body
                        ),
                    }
                } else {
                    let reply = post_async_to(&api, "/v1/linked-transfers", &request).await;
                    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
                }
                for (member, expected) in chain.iter().zip(&expected) {
                    let outcome = transfer_outcome(&api, member["id"].as_str().unwrap()).await;
                    assert_eq!(&outcome, expected, "chain {chain:?}");
                }
                used.push(chain[last].clone());
            }
            Op::ReversalRace(reversed, race) => {
                send_at_once(&api, &race).await;
                let mut outcomes = BTreeMap::new();
                for body in &race {
                    let id = body["id"].as_str().unwrap().to_owned();
                    outcomes.insert(id.clone(), transfer_outcome(&api, &id).await);
                }
                // Those that landed, in the order the original lists them, are what the model
                // applies in that order; each refused one asked for more than was left (or than its
                // debit account had) at some point of that order, so at least at its end.
                let original = api.get_definite(&format!("/v1/transfers/{reversed}"), TENANT).await.body;
                let listed: Vec<String> = original["reversals"]
                    .as_array()
                    .map(|l| l.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect())
                    .unwrap_or_default();
                for id in listed.iter().filter(|id| outcomes.contains_key(*id)) {
                    let body = race.iter().find(|b| b["id"] == id.as_str()).unwrap();
                    assert_eq!(outcomes[id], "committed", "{id}");
                    assert_eq!(
                        model.apply(body),
                        "committed",
                        "race on {reversed}: {id} landed, listed {listed:?}"
                    );
                }
                let posted = model.posted[&reversed].clone();
                for body in race.iter().filter(|b| !listed.contains(&b["id"].as_str().unwrap().to_owned())) {
                    let id = body["id"].as_str().unwrap().to_owned();
                    let amount = body["amount"].as_i64().unwrap();
                    match outcomes[&id].as_str() {
                        "exceeds_reversible_amount" => {
                            assert!(amount > posted.amount - posted.reversed, "{id}: {amount} of {posted:?}");
                        }
                        "insufficient_funds" => {
                            let available = model.balances[&posted.to] - model.pending[&posted.to];
                            let limit = model.policies.get(&posted.to).map_or(0, |p| p.limit);
                            assert!(amount > available + limit, "{id}: {amount} from {available}");
                        }
                        // Refused by a freeze or a maximum: as it would be now.
                        code @ ("account_frozen" | "account_closed" | "max_balance_exceeded") => {
                            let now = model.refusal(&posted.to, &posted.from, amount, true);
                            assert_eq!(now.as_deref(), Some(code), "{id}: {amount} of {posted:?}");
                        }
                        other => panic!("race on {reversed}: {id} {other}"),
                    }
                    model.ids.insert(id.clone(), (body.clone(), outcomes[&id].clone()));
                }
                assert_eq!(original["reversed_amount"].as_i64().unwrap_or(0), posted.reversed, "{original}");
                used.extend(race);
            }
            Op::Govern(account, change) => {
                let reply = govern(&api, &account, &change).await;
                match model.change(&account, &change) {
                    Ok(_) => {
                        assert_eq!(reply.status, StatusCode::OK, "{change:?} of {account}: {}", reply.body);
                        let policy = &model.policies[&account];
                        let stored = (
                            reply.body["status"].as_str(),
                            reply.body["overdraft_limit"].as_i64().unwrap_or(0),
                            reply.body["max_balance"].as_i64(),
                        );
                        assert_eq!(stored, (Some(policy.status), policy.limit, policy.max), "{account}");
                    }
                    Err(rule) => assert_eq!(
                        (reply.status, reply.code()),
                        (StatusCode::UNPROCESSABLE_ENTITY, rule.as_str()),
                        "{change:?} of {account}: {}",
                        reply.body
                    ),
                }
            }
            Op::CloseRace(account, transfers) => {
                api.open_account(TENANT, &account, false).await;
                model.open(account.clone());
                let close = {
                    let (api, account) = (api.clone(), account.clone());
                    tokio::spawn(
                        async move { lifecycle(&api, &format!("/v1/accounts/{account}/close")).await },
                    )
                };
                send_at_once(&api, &transfers).await;
                let closed = close.await.unwrap();
                let mut outcomes = Vec::new();
                for body in &transfers {
                    outcomes.push(transfer_outcome(&api, body["id"].as_str().unwrap()).await);
                }
                if closed.status == StatusCode::OK {
                    // Closed first: nothing got in.
                    let policy = model.policies.get_mut(&account).unwrap();
                    policy.status = "closed";
                    policy.revision += 1;
                    model.changes.push(format!("account.closed:{account}-1"));
                } else {
                    assert_eq!(closed.code(), "account_not_empty", "{}", closed.body);
                }
                for (body, outcome) in transfers.iter().zip(&outcomes) {
                    assert_eq!(outcome, &model.apply(body), "{body} racing the close of {account}");
                }
                // Refused, the close met a transfer: at least one got in.
                assert!(closed.status == StatusCode::OK || outcomes.iter().any(|o| o == "committed"));
                used.extend(transfers);
            }
            Op::FreezeRace(account, race) => {
                let freeze = Change::Freeze { debits_only: true };
                // Sent after a random moment, so that it lands before, among or after the others.
                let delay = Duration::from_millis(rng.random_range(0..150));
                let frozen = {
                    let (api, account, freeze) = (api.clone(), account.clone(), freeze.clone());
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        govern(&api, &account, &freeze).await
                    })
                };
                send_at_once(&api, &race).await;
                let frozen = frozen.await.unwrap();
                assert_eq!(frozen.status, StatusCode::OK, "{}", frozen.body);
                let mut outcomes = Vec::new();
                for body in &race {
                    outcomes.push(transfer_outcome(&api, body["id"].as_str().unwrap()).await);
                }
                // What committed was ordered before the freeze (only money out: any order fits).
                for (body, outcome) in race.iter().zip(&outcomes).filter(|(_, o)| *o == "committed") {
                    assert_eq!(model.apply(body), *outcome, "{body} before the freeze of {account}");
                }
                let before = model.clone();
                model.change(&account, &freeze).expect("a freeze is never refused");
                for (body, outcome) in race.iter().zip(&outcomes).filter(|(_, o)| *o != "committed") {
                    // Refused by the freeze after it; by another rule before it (with no more spent
                    // than the model has spent, so refused by the model too).
                    let expected = if outcome == "account_frozen" {
                        model.apply(body)
                    } else {
                        before.clone().apply(body)
                    };
                    assert_eq!(outcome, &expected, "{body} racing the freeze of {account}");
                    model
                        .ids
                        .insert(body["id"].as_str().unwrap().to_owned(), (body.clone(), outcome.clone()));
                }
                let after = outcomes.iter().filter(|o| *o == "account_frozen").count();
                let landed = outcomes.iter().filter(|o| *o == "committed").count();
                model.freeze_races.push((landed, after));
                // Open again, for the client's later operations.
                let reply = govern(&api, &account, &Change::Unfreeze).await;
                assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                model.change(&account, &Change::Unfreeze).expect("an unfreeze is never refused");
                used.extend(race);
            }
            Op::Read => {
                check_read(&api).await;
                for (account, balance) in &model.balances {
                    assert_eq!(
                        api.balance(TENANT, account).await,
                        *balance,
                        "{account} differs from the model"
                    );
                }
                // Kept, to read the same balances again as of this instant at the end.
                model.snapshots.push((time::OffsetDateTime::now_utc(), model.balances.clone()));
                reads += 1;
            }
        }
    }
    // A batch posted again after it settled replays with the same counters.
    for (id, transfers) in batches.iter().take(2) {
        let (reply, _) = api
            .post_definite("/v1/transfer-batches", TENANT, json!({"id": id, "transfers": transfers}))
            .await;
        assert_eq!(reply.status, StatusCode::ACCEPTED);
        assert!(reply.replayed());
        assert_eq!(reply.body["queued"], 0);
    }
    (model, reads)
}

fn rfc3339(value: &Value) -> time::OffsetDateTime {
    let raw = value.as_str().unwrap_or_else(|| panic!("not an instant: {value}"));
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).unwrap()
}

fn assert_sync_outcome(reply: &Reply, expected: &str, replay: bool) {
    match expected {
        "committed" => {
            let status = if replay { StatusCode::OK } else { StatusCode::CREATED };
            // A lost answer retried is a replay of what landed.
            assert!(
                reply.status == status || reply.status == StatusCode::OK,
                "{} {}",
                reply.status,
                reply.body
            );
            assert_eq!(outcome_of(&reply.body), "committed");
        }
        code => {
            assert_eq!(
                (reply.status, reply.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, code),
                "{}",
                reply.body
            );
        }
    }
    if replay {
        assert!(reply.replayed(), "{}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_outcome_matches_the_sequential_model_under_concurrency_and_faults() {
    let _turn = super::one_at_a_time().await;
    // `LEDGER_TEST_LOG=warn` shows the functions' own lines (why a submission was not settled).
    if let Ok(filter) = std::env::var("LEDGER_TEST_LOG") {
        let _ =
            tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).try_init();
    }
    let seed = std::env::var("LEDGER_MODEL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_SEED);
    let ops = std::env::var("LEDGER_MODEL_OPS").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_OPS);
    println!(
        "model test: seed {seed}, {CLIENTS} clients x {ops} operations (LEDGER_MODEL_SEED, LEDGER_MODEL_OPS)"
    );
    // The visibility timeout outlasts a worker run here, even slowed by faults on two cores, as the
    // template's 180 s outlasts the worker's 30 s timeout: a shorter one hands a batch still
    // running to other invocations until its receives run out (to the DLQ).
    let options = StackOptions {
        faults: FaultPlan::mixed(seed),
        visibility_timeout: Some(8),
        events_out: true,
        ..StackOptions::default()
    };
    let api = Arc::new(Api::fleet(fresh_stack_with(options).await));
    // The two accounts every client shares are hot: their writes spread over shards, and what
    // leaves `fees` (reversals of payments into it) is gathered from its shards when one runs short.
    api.open_hot_account(TENANT, "bank", true, HOT_SHARDS).await;
    api.open_hot_account(TENANT, "fees", false, HOT_SHARDS).await;
    for c in 0..CLIENTS {
        api.open_account(TENANT, &format!("c{c}-a"), false).await;
        api.open_account(TENANT, &format!("c{c}-b"), false).await;
    }

    // The worker, all along: up to the template's concurrency of invocations at once.
    let stop = Arc::new(AtomicBool::new(false));
    let source = api.stack.event_source.clone();
    let pollers: Vec<_> = (0..source.spec().max_concurrency)
        .map(|_| {
            let (source, handler, stop) = (source.clone(), api.stack.worker(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if source.invoke_once(&handler).await.map(|i| i.received).unwrap_or(0) == 0 {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            })
        })
        .collect();
    // The publisher, all along, on the table's stream (its invocations killed as often as the
    // worker's).
    let publisher = {
        let (stack, stop) = (api.stack.clone(), stop.clone());
        tokio::spawn(async move {
            let handler = stack.publisher();
            while !stop.load(Ordering::Relaxed) {
                let Ok(stream) = stack.stream() else { return };
                if stream.pass(&handler).await.map(|p| p.read).unwrap_or(0) == 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
    };
    // The sweeper on a short schedule; a failed tick (faults) is made up by the next.
    let sweeper = {
        let (api, stop) = (api.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut expired, mut failed) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                match api.stack.sweep(time::OffsetDateTime::now_utc()).await {
                    Ok(sweep) => expired += sweep.expired,
                    Err(_) => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            (expired, failed)
        })
    };
    // Extra deliveries of batches' messages, late and out of order, as duplicates and redrives are.
    let copies = Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let redeliver = {
        let (api, copies, stop) = (api.clone(), copies.clone(), stop.clone());
        tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                let batch = copies.lock().await.pop();
                match batch {
                    Some(id) => {
                        let work = Work {
                            tenant: TenantId::parse(TENANT).unwrap(),
                            submission: Submission::Batch(BatchId::parse(id).unwrap()),
                        };
                        api.stack.queue.send(&work).await.unwrap();
                        sent += 1;
                    }
                    None => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
            sent
        })
    };

    let started = Instant::now();
    let clients = (0..CLIENTS).map(|c| tokio::spawn(client(api.clone(), c, ops, seed, copies.clone())));
    let mut models = Vec::new();
    let mut reads = 0;
    for handle in clients.collect::<Vec<_>>() {
        let (model, r) = handle.await.unwrap();
        models.push(model);
        reads += r;
    }
    stop.store(true, Ordering::Relaxed);
    let redelivered = redeliver.await.unwrap();
    let (swept, failed_sweeps) = sweeper.await.unwrap();
    for poller in pollers {
        poller.await.unwrap();
    }
    let drained = api.stack.drain().await.unwrap();
    publisher.await.unwrap();
    let published = api.stack.publish().await.unwrap();
    assert_eq!(published.dead_lettered, 0, "events given up on: {published:?}");
    let elapsed = started.elapsed();
    check_read(&api).await;
    let dead = api.stack.sqs.receive_message().queue_url(&api.stack.dead_letter_url).send().await.unwrap();
    let dead: Vec<String> = dead.messages.unwrap_or_default().into_iter().filter_map(|m| m.body).collect();
    assert!(dead.is_empty(), "work ended in the dead-letter queue: {dead:?}");

    // Afterwards: every id as the model says, every balance, every account's history.
    let mut committed_ids = BTreeSet::new();
    let mut expired_holds = BTreeSet::new();
    let (mut fees, mut funded, mut ids, mut as_of_reads) = (0, 0, 0, 0);
    for model in &models {
        for (id, (_, outcome)) in &model.ids {
            assert_eq!(&transfer_outcome(&api, id).await, outcome, "{id}");
            if outcome == "committed" {
                committed_ids.insert(id.clone());
            }
            ids += 1;
        }
        for (id, hold) in &model.holds {
            let stored = api.get_definite(&format!("/v1/transfers/{id}"), TENANT).await.body;
            let state = match hold.state {
                HoldState::Open => "pending",
                HoldState::Posted => "posted",
                HoldState::Voided => "voided",
                HoldState::Expired => "expired",
            };
            assert_eq!(stored["status"], state, "hold {id}");
            if hold.state == HoldState::Expired {
                expired_holds.insert(id.clone());
            }
        }
        // Every balance read during the run, read again as of the instant it was read.
        for (instant, balances) in &model.snapshots {
            let at = instant.format(&time::format_description::well_known::Rfc3339).unwrap();
            for (account, balance) in balances {
                let then =
                    api.get_definite(&format!("/v1/accounts/{account}/balance?at={at}"), TENANT).await.body;
                assert_eq!(then["balance"].as_i64(), Some(*balance), "{account} as of {at}: {then}");
                as_of_reads += 1;
            }
        }
        for (account, balance) in &model.balances {
            let stored = api.get_definite(&format!("/v1/accounts/{account}"), TENANT).await.body;
            assert_eq!(stored["balance"].as_i64(), Some(*balance), "{account}");
            assert_eq!(stored["debits_pending"].as_i64(), Some(model.pending[account]), "{account}");
        }
        fees += model.fees;
        funded += model.funded;
    }
    assert_eq!(api.balance(TENANT, "fees").await, fees);
    assert_eq!(api.balance(TENANT, "bank").await, -funded);
    check_shards(&api, "fees").await;
    let mut sides: BTreeMap<String, u32> = BTreeMap::new();
    let floors: BTreeMap<String, i64> =
        models.iter().flat_map(|m| m.policies.iter().map(|(a, p)| (a.clone(), -p.deepest))).collect();
    let accounts =
        models.iter().flat_map(|m| m.balances.keys().cloned()).chain(["fees".into(), "bank".into()]);
    for account in accounts {
        let entries = api.all_entries(TENANT, &account).await;
        // Pending debits and pending credits, each replayed on its own side.
        let (mut running, mut pending) = (0i64, [0i64; 2]);
        let mut previous = time::OffsetDateTime::UNIX_EPOCH;
        for (n, entry) in entries.iter().rev().enumerate() {
            assert_eq!(entry["sequence"].as_u64(), Some(n as u64 + 1), "{account}: a gap");
            let at = rfc3339(&entry["created_at"]);
            assert!(previous <= at, "{account}: entry {} took effect before its predecessor", n + 1);
            previous = at;
            let amount = entry["amount"].as_i64().unwrap();
            let credit = entry["direction"] == "credit";
            let (sign, side) = if credit { (1, 1) } else { (-1, 0) };
            match entry["effect"].as_str().unwrap() {
                "posted" => running += sign * amount,
                "held" => pending[side] += amount,
                "released" => pending[side] -= amount,
                "posted_from_hold" => {
                    pending[side] -= entry["held"].as_i64().unwrap();
                    running += sign * amount;
                }
                other => panic!("effect {other}"),
            }
            assert_eq!(entry["balance_after"].as_i64(), Some(running), "{account}");
            let totals = (entry["debits_pending"].as_i64(), entry["credits_pending"].as_i64());
            assert_eq!(totals, (Some(pending[0]), Some(pending[1])), "{account}: {entry}");
            let available = entry["available_after"].as_i64().unwrap();
            let floor = floors.get(&account).copied().unwrap_or(0);
            assert!(account == "bank" || available >= floor, "{account} went below its floor");
            *sides.entry(entry["transfer_id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        assert_eq!(running, api.balance(TENANT, &account).await, "{account}");
        // Every shard's history chains to its head, under the same faults and races.
        let tenant = ledger::TenantId::parse(TENANT).unwrap();
        let chains =
            api.stack.chain_faults(&tenant, &ledger::AccountId::parse(&account).unwrap()).await.unwrap();
        assert_eq!(chains.faults, vec![], "{account}: its chains");
        assert_eq!(chains.entries, entries.len(), "{account}: entries on its shards");
    }
    // The books, checked as the auditor checks them, from the first entry: every chain, every
    // entry's other side, every currency summing to zero; nothing open once all is settled.
    let tenant = ledger::TenantId::parse(TENANT).unwrap();
    let notary = ledger_kms::LocalNotary::new();
    let now = time::OffsetDateTime::now_utc();
    let (_, books) = ledger::notarize::check_books(api.stack.store.as_ref(), &notary, &tenant, None, 7, now)
        .await
        .unwrap();
    assert_eq!(books.faults, vec![], "the books");
    assert_eq!(books.open, 0, "every entry met its other side");
    assert_eq!(books.entries as u32, sides.values().sum::<u32>(), "the books read every entry");
    // The offline verifier on an export of the table, against a digest signed now: every chain,
    // and every transfer record saying what its entries did.
    let (signed, tree) =
        ledger::notarize::take_digest(api.stack.store.as_ref(), &notary, &tenant, now).await.unwrap();
    let mut export = Vec::new();
    ledger_dynamodb::export::write_export(&api.stack.dynamodb, &api.stack.table, &mut export).await.unwrap();
    let items = ledger_dynamodb::export::read_export(export.as_slice()).unwrap();
    let histories = ledger_dynamodb::export::shard_histories(&items, &tenant).unwrap();
    let transfers = ledger_dynamodb::export::transfers(&items, &tenant).unwrap();
    let public_key = ledger::port::Notary::public_key(&notary).await.unwrap();
    let document = ledger::audit::DigestDocument::new(signed, &tree);
    let report = ledger::audit::audit(&histories, &transfers, &document, &public_key);
    assert_eq!((report.findings.len(), report.transfer_findings.len()), (0, 0), "{report:?}");
    assert!(report.passed(), "the offline verifier");
    assert_eq!(report.entries, books.entries, "the verifier read every entry");
    assert!(transfers.len() >= committed_ids.len(), "every committed transfer has its record");
    for (id, n) in &sides {
        // An expired hold has its release entries under its own id as well.
        let expected = if expired_holds.contains(id) { 4 } else { 2 };
        assert_eq!(*n, expected, "{id}: entries per side");
    }
    assert_eq!(
        sides.keys().cloned().collect::<BTreeSet<_>>(),
        committed_ids,
        "entries and committed transfers differ"
    );
    events_replay_the_ledger(&api, &models).await;
    let bodies = || models.iter().flat_map(|m| m.ids.values());
    let reversals =
        bodies().filter(|(b, o)| b["reverses_transfer_id"].is_string() && o == "committed").count();
    let linked_failed = bodies().filter(|(_, o)| o == "linked_failed").count();
    let linked = bodies().filter(|(b, o)| b["linked"] == true && o == "committed").count();
    let changes: Vec<&String> = models.iter().flat_map(|m| &m.changes).collect();
    let of = |kind: &str| changes.iter().filter(|c| c.starts_with(kind)).count();
    let governed = bodies()
        .filter(|(_, o)| ["account_frozen", "account_closed", "max_balance_exceeded"].contains(&o.as_str()))
        .count();
    let races: Vec<&(usize, usize)> = models.iter().flat_map(|m| &m.freeze_races).collect();
    println!(
        "model test: account changes: {} frozen, {} unfrozen, {} bounds, {} closed (racing transfers into them); {governed} transfers refused by a freeze, a close or a maximum; {} freezes raced by money out: {} transfers ordered before, {} after",
        of("account.frozen"),
        of("account.unfrozen"),
        of("account.updated"),
        of("account.closed"),
        races.len(),
        races.iter().map(|r| r.0).sum::<usize>(),
        races.iter().map(|r| r.1).sum::<usize>()
    );
    println!(
        "model test: {reversals} reversals committed; {linked} linked members committed (not counting chains' last members), {linked_failed} refused linked_failed; {as_of_reads} balances read again as of the instant they were read"
    );
    let faults = api.stack.faults.counts();
    assert!(faults.throttled > 0 && faults.conflicts > 0 && faults.duplicates > 0, "{faults}");
    println!(
        "model test: seed {seed}: {ids} ids ({} committed, {} holds: {} expired, {swept} released by the sweeper, {failed_sweeps} sweeps failed by faults) \
         by {CLIENTS} clients x {ops} operations in {:.1} s, {reads} model reads, {redelivered} extra batch \
         deliveries, final drain {} invocations; faults: {faults}",
        committed_ids.len(),
        models.iter().map(|m| m.holds.len()).sum::<usize>(),
        expired_holds.len(),
        elapsed.as_secs_f64(),
        drained.invocations.len()
    );
}

/// The events of the run are exactly its changes, once each: an account opened per account, an
/// event per id the model applied or refused (its type by the request's kind and outcome), an
/// expiry per expired hold, nothing else; replayed, they give every account's balance and pending
/// debits as the API reads them. And the bus got every one of them, and nothing else.
async fn events_replay_the_ledger(api: &Api, models: &[Model]) {
    let mut events: BTreeMap<String, Value> = BTreeMap::new();
    let mut path = "/v1/events?limit=100".to_owned();
    loop {
        let page = api.get_definite(&path, TENANT).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for event in page.body["data"].as_array().unwrap() {
            let id = event["id"].as_str().unwrap().to_owned();
            assert!(events.insert(id.clone(), event.clone()).is_none(), "{id} listed twice");
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/events?limit=100&cursor={cursor}"),
            None => break,
        }
    }
    let accounts: Vec<String> = models
        .iter()
        .flat_map(|m| m.balances.keys().cloned())
        .chain(["fees".into(), "bank".into()])
        .collect();
    let mut expected: BTreeSet<String> = accounts.iter().map(|a| format!("account.opened:{a}")).collect();
    for model in models {
        expected.extend(model.changes.iter().cloned());
        for (id, (body, outcome)) in &model.ids {
            let kind = if outcome != "committed" {
                "transfer.rejected"
            } else if body["pending"] == true {
                "hold.created"
            } else if body["post_pending_id"].is_string() {
                "hold.posted"
            } else if body["void_pending_id"].is_string() {
                "hold.voided"
            } else if body["reverses_transfer_id"].is_string() {
                "transfer.reversed"
            } else {
                "transfer.committed"
            };
            expected.insert(format!("{kind}:{id}"));
        }
        for (id, hold) in &model.holds {
            if hold.state == HoldState::Expired {
                expected.insert(format!("hold.expired:{id}"));
            }
        }
        expected.extend(model.batches.iter().map(|id| format!("batch.settled:{id}")));
    }
    let listed: BTreeSet<String> = events.keys().cloned().collect();
    assert_eq!(
        listed.difference(&expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "events of no change"
    );
    assert_eq!(
        expected.difference(&listed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "changes without their event"
    );

    // Replay: posted balances (credits - debits) and pending debits, from the events alone.
    let (mut balance, mut pending): (BTreeMap<String, i64>, BTreeMap<String, i64>) = Default::default();
    let held =
        |hold: &str| events[&format!("hold.created:{hold}")]["data"]["object"]["amount"].as_i64().unwrap();
    for event in events.values() {
        let object = &event["data"]["object"];
        let (debit, credit) = (object["debit_account_id"].as_str(), object["credit_account_id"].as_str());
        let amount = object["amount"].as_i64().unwrap_or_default();
        let mut post = |amount: i64| {
            *balance.entry(debit.unwrap().to_owned()).or_default() -= amount;
            *balance.entry(credit.unwrap().to_owned()).or_default() += amount;
        };
        match event["type"].as_str().unwrap() {
            "transfer.committed" | "transfer.reversed" => post(amount),
            "hold.created" => *pending.entry(debit.unwrap().to_owned()).or_default() += amount,
            "hold.posted" => {
                post(amount);
                *pending.entry(debit.unwrap().to_owned()).or_default() -=
                    held(object["post_pending_id"].as_str().unwrap());
            }
            "hold.voided" => {
                *pending.entry(debit.unwrap().to_owned()).or_default() -=
                    held(object["void_pending_id"].as_str().unwrap())
            }
            "hold.expired" => *pending.entry(debit.unwrap().to_owned()).or_default() -= amount,
            "batch.settled" => {
                let counts =
                    (object["queued"].as_u64(), object["committed"].as_u64(), object["rejected"].as_u64());
                let (Some(0), Some(committed), Some(rejected)) = counts else { panic!("{event}") };
                assert_eq!(object["total"].as_u64(), Some(committed + rejected), "{event}");
            }
            "account.opened" | "account.frozen" | "account.unfrozen" | "account.updated"
            | "account.closed" | "transfer.rejected" => {}
            other => panic!("event type {other}"),
        }
    }
    for account in &accounts {
        let stored = api.get_definite(&format!("/v1/accounts/{account}"), TENANT).await.body;
        let replayed = (
            balance.get(account).copied().unwrap_or_default(),
            pending.get(account).copied().unwrap_or_default(),
        );
        assert_eq!(
            (stored["balance"].as_i64(), stored["debits_pending"].as_i64()),
            (Some(replayed.0), Some(replayed.1)),
            "{account}: replayed from the events"
        );
    }

    // The bus: every event, at least once (a killed publisher publishes some again), none other.
    let mut on_bus: BTreeMap<String, usize> = BTreeMap::new();
    for event in api.stack.on_the_bus().await.unwrap() {
        *on_bus.entry(event.event_id().to_owned()).or_default() += 1;
    }
    assert_eq!(
        on_bus.keys().cloned().collect::<BTreeSet<_>>(),
        listed,
        "the bus has every event, and only those"
    );
    println!(
        "model test: {} events listed and replayed to every balance; {} published, {} of them again",
        listed.len(),
        on_bus.values().sum::<usize>(),
        on_bus.values().sum::<usize>() - listed.len()
    );
}
