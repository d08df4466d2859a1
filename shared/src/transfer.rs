//! Transfers: what a client asks to move, and what the ledger records about it.
//!
//! Four kinds, one request shape (TigerBeetle's two-phase transfers):
//! - an immediate transfer moves the amount now;
//! - a pending transfer (`pending: true`, a hold) reserves it on the accounts' pending totals,
//!   optionally for `timeout_seconds`, after which it expires;
//! - a post (`post_pending_id`) resolves a hold by posting up to its amount and releasing the rest;
//! - a void (`void_pending_id`) resolves a hold by releasing all of it;
//! - a reversal (`reverses_transfer_id`) moves back all or part of what a committed transfer
//!   posted; the reversals of a transfer never sum to more than it posted.
//!
//! Posts, voids and reversals are transfers of their own, with their own ids; they name the
//! transfer they act on, whose accounts and currency they take (a reversal's the other way round).

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::field::{FieldError, WholeNumber};
use crate::ids::{AccountId, TransferId};
use crate::metadata::Metadata;
use crate::money::{Amount, Currency};
use crate::rule::RuleViolation;

/// What a transfer moves: from the debit account to the credit account, `amount` of `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: Amount,
    pub currency: Currency,
}

/// How long a hold lasts before it expires: 1 second to 30 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "WholeNumber", into = "u64")]
pub struct Timeout(u32);

impl Timeout {
    pub const MAX_SECONDS: u32 = 30 * 24 * 3600;

    pub fn new(seconds: u64) -> Result<Self, FieldError> {
        u32::try_from(seconds)
            .ok()
            .filter(|s| (1..=Self::MAX_SECONDS).contains(s))
            .map(Self)
            .ok_or_else(|| FieldError::new(format!("must be an integer from 1 to {}", Self::MAX_SECONDS)))
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

impl TryFrom<u64> for Timeout {
    type Error = FieldError;
    fn try_from(raw: u64) -> Result<Self, Self::Error> {
        Self::new(raw)
    }
}

impl TryFrom<WholeNumber> for Timeout {
    type Error = FieldError;
    fn try_from(raw: WholeNumber) -> Result<Self, Self::Error> {
        Self::new(u64::try_from(raw.0).unwrap_or(0))
    }
}

impl From<Timeout> for u64 {
    fn from(t: Timeout) -> u64 {
        t.0.into()
    }
}

/// What a transfer request does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferKind {
    /// Moves the amount now.
    Immediate(Movement),
    /// Holds the amount: the accounts' pending totals carry it until a post, a void, or expiry.
    Pending { movement: Movement, timeout: Option<Timeout> },
    /// Posts the hold `pending_id`: `amount` (at most the held amount; `None`: all of it), releasing
    /// the rest.
    PostPending { pending_id: TransferId, amount: Option<Amount> },
    /// Releases the hold `pending_id` entirely.
    VoidPending { pending_id: TransferId },
    /// Moves back `amount` (`None`: all that is not reversed yet) of what the committed transfer
    /// `reversed_id` posted, from its credit account to its debit account.
    Reversal { reversed_id: TransferId, amount: Option<Amount> },
}

/// One reversal of a transfer, as the reversed transfer lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    pub id: TransferId,
    pub amount: Amount,
}

pub use crate::rule::MAX_REVERSALS;

/// A request to move money. Its id is the idempotency key of the request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TransferFields", into = "TransferFields")]
pub struct NewTransfer {
    pub id: TransferId,
    pub kind: TransferKind,
    pub metadata: Metadata,
    /// Linked to the next transfer of the same request: the chain they form (up to the first
    /// transfer not linked) commits whole or not at all (see `linked`).
    pub linked: bool,
    /// Imported history: the past instant its entries take effect at (none: when it is decided).
    /// Never in the future, never before either account's latest entry (`posting::apply`).
    pub effective_at: Option<OffsetDateTime>,
}

/// What became of a transfer. A rejected transfer's id is spent: the ledger records the rejection
/// once and answers every retry of the same request with it (as TigerBeetle and Stripe do). A hold
/// is `pending` until a post, a void or its expiry resolves it, once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TransferStatus {
    /// Accepted for asynchronous application and not applied yet.
    Queued,
    Committed,
    Rejected {
        reason: RuleViolation,
    },
    /// A hold, applied and not resolved.
    Pending,
    /// A hold that the transfer `resolved_by` posted, `posted_amount` of it.
    Posted {
        resolved_by: TransferId,
        posted_amount: Amount,
    },
    /// A hold that the transfer `resolved_by` voided.
    Voided {
        resolved_by: TransferId,
    },
    /// A hold whose timeout passed before any post or void.
    Expired,
}

/// A transfer as the ledger records it. Its request never changes; a hold's status moves once,
/// from `pending` to `posted`, `voided` or `expired`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub request: NewTransfer,
    /// What the transfer moved, held or released: the request's own movement, or for a post or
    /// void the hold's accounts and currency with the amount posted or released. `None` only for a
    /// post or void rejected before its hold was found.
    pub movement: Option<Movement>,
    pub created_at: OffsetDateTime,
    pub status: TransferStatus,
    /// The reversals applied to this transfer, in the order applied.
    pub reversals: Vec<Reversal>,
    /// How many times its metadata was changed (`transfer_change`): the version a change is
    /// conditioned on.
    pub revision: u64,
}

impl TransferKind {
    /// A hold: a pending transfer, posted, voided or expired later.
    pub fn is_hold(&self) -> bool {
        matches!(self, TransferKind::Pending { .. })
    }

    /// The movement the request names itself (immediate and pending transfers).
    pub fn movement(&self) -> Option<&Movement> {
        match self {
            TransferKind::Immediate(movement) | TransferKind::Pending { movement, .. } => Some(movement),
            TransferKind::PostPending { .. }
            | TransferKind::VoidPending { .. }
            | TransferKind::Reversal { .. } => None,
        }
    }

    /// The transfer a post, void or reversal acts on: what must be read to decide it.
    pub fn acts_on(&self) -> Option<&TransferId> {
        match self {
            TransferKind::Reversal { reversed_id, .. } => Some(reversed_id),
            _ => self.pending_id(),
        }
    }

    /// The hold a post or void resolves.
    pub fn pending_id(&self) -> Option<&TransferId> {
        match self {
            TransferKind::PostPending { pending_id, .. } | TransferKind::VoidPending { pending_id } => {
                Some(pending_id)
            }
            TransferKind::Immediate(_) | TransferKind::Pending { .. } | TransferKind::Reversal { .. } => None,
        }
    }
}

impl NewTransfer {
    /// The rules that need no account: checked before any read.
    pub fn check_static(&self) -> Result<(), RuleViolation> {
        match self.kind.movement() {
            Some(m) if m.debit_account_id == m.credit_account_id => Err(RuleViolation::SameAccount),
            _ => Ok(()),
        }
    }

    /// The client-supplied fields on which `existing` differs from this request, in a fixed order.
    /// Empty means the request replays the one that created `existing`.
    pub fn differing_fields(&self, existing: &NewTransfer) -> Vec<&'static str> {
        let (mine, theirs) = (TransferFields::from(self.clone()), TransferFields::from(existing.clone()));
        let mut fields = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                fields.push(name);
            }
        };
        check("debit_account_id", mine.debit_account_id != theirs.debit_account_id);
        check("credit_account_id", mine.credit_account_id != theirs.credit_account_id);
        check("amount", mine.amount != theirs.amount);
        check("currency", mine.currency != theirs.currency);
        check("pending", mine.pending != theirs.pending);
        check("timeout_seconds", mine.timeout_seconds != theirs.timeout_seconds);
        check("post_pending_id", mine.post_pending_id != theirs.post_pending_id);
        check("void_pending_id", mine.void_pending_id != theirs.void_pending_id);
        check("reverses_transfer_id", mine.reverses_transfer_id != theirs.reverses_transfer_id);
        check("linked", mine.linked != theirs.linked);
        check("metadata", mine.metadata != theirs.metadata);
        check("effective_at", mine.effective_at != theirs.effective_at);
        fields
    }

    fn recorded(self, movement: Option<Movement>, now: OffsetDateTime, status: TransferStatus) -> Transfer {
        Transfer { request: self, movement, created_at: now, status, reversals: Vec::new(), revision: 0 }
    }

    /// The transfer as applied: committed, or `pending` for a hold. `movement` is what it moved (for
    /// a post or void, taken from the hold).
    pub fn applied(self, movement: Movement, now: OffsetDateTime) -> Transfer {
        let status = match self.kind {
            TransferKind::Pending { .. } => TransferStatus::Pending,
            _ => TransferStatus::Committed,
        };
        self.recorded(Some(movement), now, status)
    }

    pub fn queued(self, now: OffsetDateTime) -> Transfer {
        let movement = self.kind.movement().cloned();
        self.recorded(movement, now, TransferStatus::Queued)
    }

    /// The transfer as refused by `reason`; `movement`: the hold's, for a post or void whose hold
    /// was found (an immediate or pending transfer records its own).
    pub fn rejected(
        self,
        reason: RuleViolation,
        movement: Option<Movement>,
        now: OffsetDateTime,
    ) -> Transfer {
        let movement = self.kind.movement().cloned().or(movement);
        self.recorded(movement, now, TransferStatus::Rejected { reason })
    }
}

impl Transfer {
    /// The hold's timeout, for a pending transfer that has one.
    pub fn timeout(&self) -> Option<Timeout> {
        match &self.request.kind {
            TransferKind::Pending { timeout, .. } => *timeout,
            _ => None,
        }
    }

    /// When a hold with a timeout expires.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        self.timeout().map(|t| self.created_at + Duration::seconds(t.seconds().into()))
    }

    /// Whether this is a hold still recorded `pending` whose timeout has passed at `now`.
    pub fn is_due(&self, now: OffsetDateTime) -> bool {
        self.status == TransferStatus::Pending && self.expires_at().is_some_and(|at| at <= now)
    }

    /// The fields on which `request`, sent again under this transfer's id, differs from the request
    /// that made it: empty for a replay. Once its metadata was changed, metadata no longer tells.
    pub fn differences(&self, request: &NewTransfer) -> Vec<&'static str> {
        let mut fields = request.differing_fields(&self.request);
        if self.revision > 0 {
            fields.retain(|f| *f != "metadata");
        }
        fields
    }

    /// The sum of the amounts reversed so far: never more than the transfer posted, so it fits.
    pub fn reversed_amount(&self) -> u64 {
        self.reversals.iter().map(|r| r.amount.get()).sum()
    }

    /// The transfer as it stands at `now`: a pending hold whose timeout has passed is `expired`,
    /// whether or not the sweeper has released it yet.
    pub fn observed(mut self, now: OffsetDateTime) -> Transfer {
        if self.is_due(now) {
            self.status = TransferStatus::Expired;
        }
        self
    }
}

/// The one JSON shape of a transfer request: every field of every kind, flat. Converting it into a
/// [`NewTransfer`] checks that the fields present make exactly one kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferFields {
    pub id: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debit_account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_account_id: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Timeout>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_pending_id: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void_pending_id: Option<TransferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses_transfer_id: Option<TransferId>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub linked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub effective_at: Option<OffsetDateTime>,
}

impl TransferFields {
    /// Refuses the fields of a movement of its own (and `amount`, unless `amount_allowed`) on a
    /// transfer that takes its movement from the transfer it acts on, naming the first present.
    fn refuse_own_movement(&self, amount_allowed: bool, with: &str) -> Result<(), FieldError> {
        let present = [
            ("debit_account_id", self.debit_account_id.is_some()),
            ("credit_account_id", self.credit_account_id.is_some()),
            ("currency", self.currency.is_some()),
            ("pending", self.pending),
            ("timeout_seconds", self.timeout_seconds.is_some()),
            ("amount", !amount_allowed && self.amount.is_some()),
        ];
        match present.iter().find(|(_, present)| *present) {
            Some((name, _)) => Err(not_allowed(name, with)),
            None => Ok(()),
        }
    }
}

/// Why a set of fields makes no transfer. Worded as serde words a missing field, so the HTTP layer
/// names the field in its problem document.
fn missing(field: &str) -> FieldError {
    FieldError::new(format!("missing field `{field}`"))
}

fn not_allowed(field: &str, with: &str) -> FieldError {
    FieldError::new(format!("field `{field}` is not allowed {with}"))
}

impl TryFrom<TransferFields> for NewTransfer {
    type Error = FieldError;

    fn try_from(f: TransferFields) -> Result<Self, FieldError> {
        let id = f.id.clone().ok_or_else(|| missing("id"))?;
        let post = f.void_pending_id.is_none();
        let named = [
            ("post_pending_id", f.post_pending_id.is_some()),
            ("void_pending_id", f.void_pending_id.is_some()),
            ("reverses_transfer_id", f.reverses_transfer_id.is_some()),
        ];
        if let [(first, _), (second, _), ..] =
            named.iter().filter(|(_, present)| *present).collect::<Vec<_>>()[..]
        {
            return Err(not_allowed(second, &format!("with {first}")));
        }
        let kind = match (&f.post_pending_id, &f.void_pending_id, &f.reverses_transfer_id) {
            (None, None, Some(reversed_id)) => {
                f.refuse_own_movement(
                    true,
                    "when reversing a transfer: its accounts and currency apply, the other way round",
                )?;
                TransferKind::Reversal { reversed_id: reversed_id.clone(), amount: f.amount }
            }
            (Some(pending_id), _, _) | (None, Some(pending_id), _) => {
                let pending_id = pending_id.clone();
                f.refuse_own_movement(
                    post,
                    "when posting or voiding a hold: the hold's accounts and currency apply",
                )?;
                if post {
                    TransferKind::PostPending { pending_id, amount: f.amount }
                } else {
                    TransferKind::VoidPending { pending_id }
                }
            }
            (None, None, None) => {
                let movement = Movement {
                    debit_account_id: f.debit_account_id.ok_or_else(|| missing("debit_account_id"))?,
                    credit_account_id: f.credit_account_id.ok_or_else(|| missing("credit_account_id"))?,
                    amount: f.amount.ok_or_else(|| missing("amount"))?,
                    currency: f.currency.ok_or_else(|| missing("currency"))?,
                };
                match (f.pending, f.timeout_seconds) {
                    (true, timeout) => TransferKind::Pending { movement, timeout },
                    (false, None) => TransferKind::Immediate(movement),
                    (false, Some(_)) => return Err(not_allowed("timeout_seconds", "without pending: true")),
                }
            }
        };
        Ok(NewTransfer { id, kind, metadata: f.metadata, linked: f.linked, effective_at: f.effective_at })
    }
}

impl From<NewTransfer> for TransferFields {
    fn from(t: NewTransfer) -> Self {
        let mut f = TransferFields {
            id: Some(t.id),
            metadata: t.metadata,
            linked: t.linked,
            effective_at: t.effective_at,
            ..TransferFields::default()
        };
        let mut moves = |m: Movement| {
            f.debit_account_id = Some(m.debit_account_id);
            f.credit_account_id = Some(m.credit_account_id);
            f.amount = Some(m.amount);
            f.currency = Some(m.currency);
        };
        match t.kind {
            TransferKind::Immediate(m) => moves(m),
            TransferKind::Pending { movement, timeout } => {
                moves(movement);
                f.pending = true;
                f.timeout_seconds = timeout;
            }
            TransferKind::PostPending { pending_id, amount } => {
                f.post_pending_id = Some(pending_id);
                f.amount = amount;
            }
            TransferKind::VoidPending { pending_id } => f.void_pending_id = Some(pending_id),
            TransferKind::Reversal { reversed_id, amount } => {
                f.reverses_transfer_id = Some(reversed_id);
                f.amount = amount;
            }
        }
        f
    }
}

/// A transfer's JSON: the request's fields, with the movement's accounts, amount and currency (for
/// a post or void, the hold's, and the amount posted or released), then when and what became of it.
#[derive(Serialize)]
struct TransferView<'a> {
    id: &'a TransferId,
    #[serde(flatten)]
    movement: Option<&'a Movement>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pending: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_seconds: Option<Timeout>,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    expires_at: Option<OffsetDateTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    post_pending_id: Option<&'a TransferId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    void_pending_id: Option<&'a TransferId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reverses_transfer_id: Option<&'a TransferId>,
    metadata: &'a Metadata,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    linked: bool,
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    effective_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(flatten)]
    status: &'a TransferStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    reversed_amount: Option<u64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    reversals: &'a [Reversal],
}

impl Serialize for Transfer {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let kind = &self.request.kind;
        TransferView {
            id: &self.request.id,
            movement: self.movement.as_ref(),
            pending: kind.is_hold(),
            timeout_seconds: self.timeout(),
            expires_at: self.expires_at(),
            post_pending_id: match kind {
                TransferKind::PostPending { pending_id, .. } => Some(pending_id),
                _ => None,
            },
            void_pending_id: match kind {
                TransferKind::VoidPending { pending_id } => Some(pending_id),
                _ => None,
            },
            reverses_transfer_id: match kind {
                TransferKind::Reversal { reversed_id, .. } => Some(reversed_id),
                _ => None,
            },
            metadata: &self.request.metadata,
            linked: self.request.linked,
            effective_at: self.request.effective_at,
            created_at: self.created_at,
            status: &self.status,
            reversed_amount: (!self.reversals.is_empty()).then(|| self.reversed_amount()),
            reversals: &self.reversals,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn transfer(debit: &str, credit: &str, amount: u64) -> NewTransfer {
        fixtures::transfer("t1", debit, credit, amount)
    }

    fn parse(json: serde_json::Value) -> Result<NewTransfer, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn same_account_is_refused_before_any_read() {
        assert_eq!(transfer("a", "a", 1).check_static(), Err(RuleViolation::SameAccount));
        assert_eq!(transfer("a", "b", 1).check_static(), Ok(()));
    }

    #[test]
    fn differing_fields_names_each_change() {
        let original = transfer("a", "b", 5);
        assert!(original.differing_fields(&original.clone()).is_empty());
        let other = transfer("b", "a", 6);
        assert_eq!(
            other.differing_fields(&original),
            vec!["debit_account_id", "credit_account_id", "amount"]
        );
        let hold = fixtures::hold("t1", "a", "b", 5, Some(60));
        assert_eq!(hold.differing_fields(&original), vec!["pending", "timeout_seconds"]);
    }

    #[test]
    fn an_immediate_transfer_serialises_as_it_always_did() {
        let json = serde_json::to_value(transfer("a", "b", 5)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "t1", "debit_account_id": "a", "credit_account_id": "b",
                "amount": 5, "currency": "EUR", "metadata": {}})
        );
    }

    #[test]
    fn each_kind_parses_from_its_fields_and_round_trips() {
        let base = serde_json::json!({"id": "h", "debit_account_id": "a", "credit_account_id": "b",
            "amount": 5, "currency": "EUR"});
        let mut hold = base.clone();
        hold["pending"] = true.into();
        hold["timeout_seconds"] = 60.into();
        for json in [
            base.clone(),
            hold,
            serde_json::json!({"id": "p", "post_pending_id": "h", "amount": 3}),
            serde_json::json!({"id": "p", "post_pending_id": "h"}),
            serde_json::json!({"id": "v", "void_pending_id": "h"}),
            serde_json::json!({"id": "r", "reverses_transfer_id": "t", "amount": 2}),
            serde_json::json!({"id": "r", "reverses_transfer_id": "t"}),
        ] {
            let parsed = parse(json.clone()).unwrap();
            let mut back = serde_json::to_value(&parsed).unwrap();
            back.as_object_mut().unwrap().remove("metadata");
            assert_eq!(back, json);
        }
    }

    #[test]
    fn fields_of_two_kinds_are_refused_naming_the_field() {
        for (json, field) in [
            (
                serde_json::json!({"id": "p", "post_pending_id": "h", "void_pending_id": "h"}),
                "void_pending_id",
            ),
            (serde_json::json!({"id": "p", "post_pending_id": "h", "currency": "EUR"}), "currency"),
            (serde_json::json!({"id": "v", "void_pending_id": "h", "amount": 1}), "amount"),
            (
                serde_json::json!({"id": "r", "reverses_transfer_id": "t", "post_pending_id": "h"}),
                "reverses_transfer_id",
            ),
            (
                serde_json::json!({"id": "r", "reverses_transfer_id": "t", "debit_account_id": "a"}),
                "debit_account_id",
            ),
            (
                serde_json::json!({"id": "x", "debit_account_id": "a", "credit_account_id": "b",
                "amount": 1, "currency": "EUR", "timeout_seconds": 5}),
                "timeout_seconds",
            ),
            (
                serde_json::json!({"id": "x", "credit_account_id": "b", "amount": 1, "currency": "EUR"}),
                "debit_account_id",
            ),
            (
                serde_json::json!({"id": "x", "debit_account_id": "a", "credit_account_id": "b",
                "amount": 1, "currency": "EUR", "pending": true, "timeout_seconds": 0}),
                "from 1 to 2592000",
            ),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn a_hold_reads_expired_once_its_timeout_has_passed() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let hold = fixtures::hold("h", "a", "b", 5, Some(60));
        let movement = hold.kind.movement().cloned().unwrap();
        let applied = hold.applied(movement, at);
        assert_eq!(applied.expires_at(), Some(at + Duration::seconds(60)));
        assert_eq!(applied.clone().observed(at + Duration::seconds(59)).status, TransferStatus::Pending);
        assert_eq!(applied.observed(at + Duration::seconds(60)).status, TransferStatus::Expired);
    }

    #[test]
    fn serialises_flat_with_status() {
        let t = transfer("a", "b", 5).rejected(RuleViolation::SameAccount, None, OffsetDateTime::UNIX_EPOCH);
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["status"], "rejected");
        assert_eq!(json["reason"]["code"], "same_account");
        assert_eq!(json["amount"], 5);
    }
}
