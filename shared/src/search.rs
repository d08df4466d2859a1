//! Transfer search: what a query selects ([`TransferQuery`]), decided on a transfer as it stands,
//! and where a page of results stops ([`SearchPosition`]). Stores answer a query from indexes of
//! their own; this module is the one definition of what matches, which both stores apply to the
//! records they read, and which the tests' reference model applies too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::field::FieldError;
use crate::ids::{AccountId, BatchId, TransferId};
use crate::metadata::{MAX_KEY_CHARS, MAX_VALUE_CHARS};
use crate::transfer::{Transfer, TransferKind, TransferStatus};

/// A transfer's kind, as a search names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    /// An immediate transfer.
    Payment,
    Hold,
    Post,
    Void,
    Reversal,
}

impl KindName {
    pub const ALL: [KindName; 5] =
        [KindName::Payment, KindName::Hold, KindName::Post, KindName::Void, KindName::Reversal];

    pub fn of(kind: &TransferKind) -> KindName {
        match kind {
            TransferKind::Immediate(_) => KindName::Payment,
            TransferKind::Pending { .. } => KindName::Hold,
            TransferKind::PostPending { .. } => KindName::Post,
            TransferKind::VoidPending { .. } => KindName::Void,
            TransferKind::Reversal { .. } => KindName::Reversal,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KindName::Payment => "payment",
            KindName::Hold => "hold",
            KindName::Post => "post",
            KindName::Void => "void",
            KindName::Reversal => "reversal",
        }
    }

    pub fn parse(raw: &str) -> Result<KindName, FieldError> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == raw)
            .ok_or_else(|| FieldError::new("must be one of payment, hold, post, void, reversal"))
    }
}

/// A transfer's status, as a search names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusName {
    Queued,
    Committed,
    Rejected,
    Pending,
    Posted,
    Voided,
    Expired,
}

impl StatusName {
    pub const ALL: [StatusName; 7] = [
        StatusName::Queued,
        StatusName::Committed,
        StatusName::Rejected,
        StatusName::Pending,
        StatusName::Posted,
        StatusName::Voided,
        StatusName::Expired,
    ];

    pub fn of(status: &TransferStatus) -> StatusName {
        match status {
            TransferStatus::Queued => StatusName::Queued,
            TransferStatus::Committed => StatusName::Committed,
            TransferStatus::Rejected { .. } => StatusName::Rejected,
            TransferStatus::Pending => StatusName::Pending,
            TransferStatus::Posted { .. } => StatusName::Posted,
            TransferStatus::Voided { .. } => StatusName::Voided,
            TransferStatus::Expired => StatusName::Expired,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StatusName::Queued => "queued",
            StatusName::Committed => "committed",
            StatusName::Rejected => "rejected",
            StatusName::Pending => "pending",
            StatusName::Posted => "posted",
            StatusName::Voided => "voided",
            StatusName::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Result<StatusName, FieldError> {
        Self::ALL.into_iter().find(|s| s.name() == raw).ok_or_else(|| {
            FieldError::new("must be one of queued, committed, rejected, pending, posted, voided, expired")
        })
    }
}

/// The most metadata pairs one query names.
pub const MAX_METADATA_PAIRS: usize = 5;

/// Metadata a query requires: each key with exactly its value (1 to [`MAX_METADATA_PAIRS`] pairs,
/// within metadata's own limits).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataMatch(BTreeMap<String, String>);

impl MetadataMatch {
    pub fn parse(pairs: BTreeMap<String, String>) -> Result<Self, FieldError> {
        if pairs.len() > MAX_METADATA_PAIRS {
            return Err(FieldError::new(format!(
                "a search names at most {MAX_METADATA_PAIRS} metadata keys"
            )));
        }
        for (key, value) in &pairs {
            let chars = key.chars().count();
            if chars == 0 || chars > MAX_KEY_CHARS || value.chars().count() > MAX_VALUE_CHARS {
                return Err(FieldError::new(format!(
                    "metadata keys are 1 to {MAX_KEY_CHARS} characters, values at most {MAX_VALUE_CHARS}"
                )));
            }
        }
        Ok(Self(pairs))
    }

    pub fn pairs(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a search selects; every filter given must hold. `created` runs from `created_from`
/// (inclusive) to `created_to` (exclusive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferQuery {
    /// Either side: the debit or the credit account of what the transfer moved.
    pub account: Option<AccountId>,
    pub status: Option<StatusName>,
    pub kind: Option<KindName>,
    pub created_from: Option<OffsetDateTime>,
    pub created_to: Option<OffsetDateTime>,
    /// The transfers of one batch, queued ones included.
    pub batch: Option<BatchId>,
    /// The members of one linked chain, named by its first member's id.
    pub chain: Option<TransferId>,
    pub metadata: MetadataMatch,
}

impl TransferQuery {
    /// Whether `transfer`, as it stands at `now` (a hold past its time reads `expired`), is
    /// selected. Batch and chain membership are the store's to know: they are not checked here.
    pub fn matches(&self, transfer: &Transfer, now: OffsetDateTime) -> bool {
        let status = StatusName::of(&transfer.clone().observed(now).status);
        let moved = transfer.movement.as_ref();
        self.account.as_ref().is_none_or(|account| {
            moved.is_some_and(|m| &m.debit_account_id == account || &m.credit_account_id == account)
        }) && self.status.is_none_or(|s| s == status)
            && self.kind.is_none_or(|k| k == KindName::of(&transfer.request.kind))
            && self.created_from.is_none_or(|from| transfer.created_at >= from)
            && self.created_to.is_none_or(|to| transfer.created_at < to)
            && self.metadata.pairs().iter().all(|(k, v)| transfer.request.metadata.as_map().get(k) == Some(v))
    }

    /// The one index the query reads: its candidates, newest first. The other filters are
    /// checked on each candidate ([`TransferQuery::matches`]).
    pub fn index(&self) -> SearchIndex<'_> {
        if let Some(batch) = &self.batch {
            SearchIndex::Batch(batch)
        } else if let Some(chain) = &self.chain {
            SearchIndex::Chain(chain)
        } else if let Some((key, value)) = self.metadata.pairs().iter().next() {
            SearchIndex::Metadata(key, value)
        } else if let Some(account) = &self.account {
            SearchIndex::Account(account)
        } else {
            SearchIndex::Tenant
        }
    }
}

/// Where a search finds its candidates. Every decided transfer (committed, rejected, a hold) is
/// listed in its tenant's index, in the index of each account it moved, in the index of each of its
/// metadata pairs, and, a member of a linked chain of two or more, in its chain's; a queued one is
/// listed only in its batch, until it is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchIndex<'q> {
    Batch(&'q BatchId),
    /// A linked chain, by its first member's id.
    Chain(&'q TransferId),
    Metadata(&'q str, &'q str),
    Account(&'q AccountId),
    Tenant,
}

impl SearchIndex<'_> {
    /// Whether a decided `transfer` is listed in this index (a batch's or a chain's membership is
    /// the store's).
    pub fn lists(&self, transfer: &Transfer) -> bool {
        match self {
            SearchIndex::Batch(_) | SearchIndex::Chain(_) => true,
            SearchIndex::Metadata(key, value) => {
                transfer.request.metadata.as_map().get(*key).is_some_and(|v| v == value)
            }
            SearchIndex::Account(account) => transfer
                .movement
                .as_ref()
                .is_some_and(|m| &m.debit_account_id == *account || &m.credit_account_id == *account),
            SearchIndex::Tenant => true,
        }
    }
}

/// Where a page of results stopped; the next page starts below it. Results come newest first: by
/// creation instant, then id, both descending. A batch's come last submitted first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SearchPosition {
    Before {
        at_nanos: i128,
        id: TransferId,
    },
    /// Below this position (0-based) in the batch's order of submission.
    BatchBefore(u32),
}

impl SearchPosition {
    /// Where `transfer` sits in a search by time.
    pub fn of(transfer: &Transfer) -> SearchPosition {
        SearchPosition::Before {
            at_nanos: transfer.created_at.unix_timestamp_nanos(),
            id: transfer.request.id.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::transfer::NewTransfer;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);

    fn with_metadata(mut t: NewTransfer, pairs: &[(&str, &str)]) -> NewTransfer {
        let map = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        t.metadata = crate::Metadata::parse(map).unwrap();
        t
    }

    fn pairs(pairs: &[(&str, &str)]) -> MetadataMatch {
        MetadataMatch::parse(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()).unwrap()
    }

    fn committed(t: NewTransfer) -> Transfer {
        let movement = t.kind.movement().cloned().unwrap();
        t.applied(movement, NOW)
    }

    #[test]
    fn each_filter_selects_on_its_own_field_and_all_must_hold() {
        let paid = committed(with_metadata(fixtures::transfer("t1", "alice", "bob", 5), &[("order", "42")]));
        let any = TransferQuery::default();
        assert!(any.matches(&paid, NOW));
        let account =
            |id: &str| TransferQuery { account: Some(AccountId::parse(id).unwrap()), ..any.clone() };
        assert!(account("alice").matches(&paid, NOW) && account("bob").matches(&paid, NOW));
        assert!(!account("carol").matches(&paid, NOW));
        let status = |s| TransferQuery { status: Some(s), ..any.clone() };
        assert!(status(StatusName::Committed).matches(&paid, NOW));
        assert!(!status(StatusName::Rejected).matches(&paid, NOW));
        let kind = |k| TransferQuery { kind: Some(k), ..any.clone() };
        assert!(kind(KindName::Payment).matches(&paid, NOW) && !kind(KindName::Hold).matches(&paid, NOW));
        let range = |from, to| TransferQuery { created_from: from, created_to: to, ..any.clone() };
        assert!(range(Some(NOW), None).matches(&paid, NOW), "from is inclusive");
        assert!(!range(None, Some(NOW)).matches(&paid, NOW), "to is exclusive");
        let meta = |p: &[(&str, &str)]| TransferQuery { metadata: pairs(p), ..any.clone() };
        assert!(meta(&[("order", "42")]).matches(&paid, NOW));
        assert!(!meta(&[("order", "4")]).matches(&paid, NOW));
        assert!(!meta(&[("order", "42"), ("shop", "x")]).matches(&paid, NOW));
        let both = TransferQuery { metadata: pairs(&[("order", "42")]), ..account("carol") };
        assert!(!both.matches(&paid, NOW));
    }

    #[test]
    fn a_hold_past_its_time_is_searched_as_expired() {
        let hold = committed(fixtures::hold("h1", "alice", "bob", 5, Some(60)));
        let status = |s| TransferQuery { status: Some(s), ..TransferQuery::default() };
        assert!(status(StatusName::Pending).matches(&hold, NOW));
        let later = NOW + time::Duration::seconds(60);
        assert!(status(StatusName::Expired).matches(&hold, later));
        assert!(!status(StatusName::Pending).matches(&hold, later));
    }

    #[test]
    fn names_parse_back_and_unknown_ones_are_refused() {
        for kind in KindName::ALL {
            assert_eq!(KindName::parse(kind.name()).unwrap(), kind);
        }
        for status in StatusName::ALL {
            assert_eq!(StatusName::parse(status.name()).unwrap(), status);
        }
        assert!(KindName::parse("transfer").is_err() && StatusName::parse("done").is_err());
        let many = (0..=MAX_METADATA_PAIRS).map(|i| (i.to_string(), String::new())).collect();
        assert!(MetadataMatch::parse(many).is_err());
        assert!(MetadataMatch::parse([(String::new(), "v".into())].into()).is_err());
    }
}
