//! Batches of transfers submitted for asynchronous application.

use std::collections::BTreeSet;

use crate::error::LedgerError;
use crate::field::FieldError;
use crate::ids::{BatchId, TransferId};
use crate::transfer::NewTransfer;

pub const MAX_BATCH_TRANSFERS: usize = 1_000;

/// 1 to 1,000 transfers with distinct ids, in the order they are to be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferBatch {
    id: BatchId,
    transfers: Vec<NewTransfer>,
}

impl TransferBatch {
    pub fn new(id: BatchId, transfers: Vec<NewTransfer>) -> Result<Self, LedgerError> {
        if transfers.is_empty() || transfers.len() > MAX_BATCH_TRANSFERS {
            let reason = format!("must hold 1 to {MAX_BATCH_TRANSFERS} transfers");
            return Err(LedgerError::invalid("transfers", FieldError::new(reason)));
        }
        if let Err((i, error)) = crate::linked::check(&transfers) {
            return Err(LedgerError::invalid(format!("transfers[{i}].linked"), error));
        }
        let mut seen = BTreeSet::new();
        for (i, t) in transfers.iter().enumerate() {
            if !seen.insert(&t.id) {
                let reason = format!("{} appears twice in the batch", t.id);
                return Err(LedgerError::invalid(format!("transfers[{i}].id"), FieldError::new(reason)));
            }
        }
        Ok(Self { id, transfers })
    }

    pub fn id(&self) -> &BatchId {
        &self.id
    }

    pub fn transfers(&self) -> &[NewTransfer] {
        &self.transfers
    }
}

/// Where the transfers of a batch stand: `total` = `queued` + `committed` + `rejected`, each
/// transfer counted once, in the order the batch applies them.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchCounts {
    pub total: u64,
    pub queued: u64,
    pub committed: u64,
    pub rejected: u64,
    /// Rejections by the rule's code.
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
}

/// A batch as the ledger reports it (`GET /v1/transfer-batches/{id}`): its counts, with where to
/// follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    pub id: BatchId,
    pub created_at: time::OffsetDateTime,
    pub counts: BatchCounts,
}

#[derive(serde::Serialize)]
struct BatchView<'a> {
    id: &'a BatchId,
    status_url: String,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(flatten)]
    counts: &'a BatchCounts,
}

impl Batch {
    /// Where the batch's status is read.
    pub fn status_url(&self) -> String {
        format!("/v1/transfer-batches/{}", self.id)
    }
}

impl serde::Serialize for Batch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        BatchView {
            id: &self.id,
            status_url: self.status_url(),
            created_at: self.created_at,
            counts: &self.counts,
        }
        .serialize(serializer)
    }
}

impl BatchCounts {
    /// These counts with `outcomes` (an outcome code, `committed` or a rule's, and how many) more
    /// settled: each moves from queued to committed or rejected.
    pub fn settle(&mut self, outcomes: &std::collections::BTreeMap<String, u64>) {
        for (code, n) in outcomes {
            if code == "committed" {
                self.committed += n;
            } else {
                self.rejected += n;
                *self.rejected_by_reason.entry(code.clone()).or_default() += n;
            }
            self.queued = self.queued.saturating_sub(*n);
        }
    }
}

/// What was submitted for asynchronous application: a batch, or one transfer sent with
/// `Prefer: respond-async`. Their ids live in separate namespaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Submission {
    Batch(BatchId),
    Transfer(TransferId),
    /// A linked chain queued with `Prefer: respond-async`: its ids, in order.
    Linked(Vec<TransferId>),
}

impl Submission {
    /// The transfers a single or linked submission settles, in order (none for a batch, whose ids
    /// the store keeps).
    pub fn transfer_ids(&self) -> &[TransferId] {
        match self {
            Submission::Batch(_) => &[],
            Submission::Transfer(id) => std::slice::from_ref(id),
            Submission::Linked(ids) => ids,
        }
    }
}

/// Who claimed a transfer's id for asynchronous application: position `position` of a batch (an
/// owner unique to it), a linked chain (an owner unique to it, named by its first id: only the
/// chain's own message settles its members, whole), or a single transfer sent with
/// `Prefer: respond-async` (one owner they all share: their fields, not their owner, tell a replay
/// from another request).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    Batch { batch: BatchId, position: u32 },
    Linked(TransferId),
    Async,
}

impl Owner {
    /// Its stored form: `B#{batch}#{position}`, `L#{first id}` or `A` (ids never hold `#`).
    pub fn key(&self) -> String {
        match self {
            Owner::Batch { batch, position } => format!("B#{batch}#{position}"),
            Owner::Linked(first) => format!("L#{first}"),
            Owner::Async => "A".to_owned(),
        }
    }

    /// The owner a stored form names, if it names one.
    pub fn parse(key: &str) -> Option<Self> {
        match key.split('#').collect::<Vec<_>>()[..] {
            ["A"] => Some(Owner::Async),
            ["L", first] => TransferId::parse(first).ok().map(Owner::Linked),
            ["B", batch, position] => {
                Some(Owner::Batch { batch: BatchId::parse(batch).ok()?, position: position.parse().ok()? })
            }
            _ => None,
        }
    }

    /// Whether this owner is unique to one claim (a batch position) rather than shared.
    pub fn is_unique(&self) -> bool {
        matches!(self, Owner::Batch { .. })
    }
}

impl Submission {
    /// The owner of the claim of the transfer at `position` of this submission.
    pub fn owner(&self, position: u32) -> Owner {
        match self {
            Submission::Batch(batch) => Owner::Batch { batch: batch.clone(), position },
            Submission::Linked(ids) => match ids.first() {
                Some(first) => Owner::Linked(first.clone()),
                None => Owner::Async,
            },
            Submission::Transfer(_) => Owner::Async,
        }
    }
}

impl std::fmt::Display for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Submission::Batch(id) => write!(f, "batch {id}"),
            Submission::Transfer(id) => write!(f, "transfer {id}"),
            Submission::Linked(ids) => {
                let ids: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
                write!(f, "linked transfers {}", ids.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::transfer;

    fn t(id: &str) -> NewTransfer {
        transfer(id, "a", "b", 1)
    }

    #[test]
    fn settling_moves_transfers_from_queued_to_their_outcome() {
        let mut counts = BatchCounts { total: 5, queued: 5, ..BatchCounts::default() };
        let outcomes = |list: &[(&str, u64)]| list.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect();
        counts.settle(&outcomes(&[("committed", 2), ("insufficient_funds", 1)]));
        counts.settle(&outcomes(&[("committed", 1), ("insufficient_funds", 1)]));
        assert_eq!((counts.queued, counts.committed, counts.rejected), (0, 3, 2));
        assert_eq!(counts.rejected_by_reason["insufficient_funds"], 2);
        let batch =
            Batch { id: BatchId::parse("b1").unwrap(), created_at: time::OffsetDateTime::UNIX_EPOCH, counts };
        let json = serde_json::to_value(&batch).unwrap();
        assert_eq!(
            (json["status_url"].as_str(), json["total"].as_u64()),
            (Some("/v1/transfer-batches/b1"), Some(5))
        );
    }

    #[test]
    fn owners_round_trip_through_their_stored_form() {
        let batch = Submission::Batch(BatchId::parse("b1").unwrap());
        let linked = Submission::Linked(vec![t("x").id, t("y").id]);
        let single = Submission::Transfer(t("z").id);
        for owner in [batch.owner(3), linked.owner(0), single.owner(0)] {
            assert_eq!(Owner::parse(&owner.key()), Some(owner));
        }
        assert_eq!(batch.owner(3).key(), "B#b1#3");
        assert_eq!(linked.owner(0).key(), "L#x");
        assert_eq!(single.owner(0).key(), "A");
        assert_eq!(Owner::parse("B#b1"), None);
    }

    #[test]
    fn a_batch_holds_1_to_1000_distinct_transfers() {
        let id = BatchId::parse("b1").unwrap();
        assert!(TransferBatch::new(id.clone(), vec![]).is_err());
        assert!(TransferBatch::new(id.clone(), (0..1000).map(|i| t(&format!("t{i}"))).collect()).is_ok());
        assert!(TransferBatch::new(id.clone(), (0..1001).map(|i| t(&format!("t{i}"))).collect()).is_err());
        match TransferBatch::new(id, vec![t("x"), t("y"), t("x")]) {
            Err(LedgerError::InvalidField { field, .. }) => assert_eq!(field, "transfers[2].id"),
            other => panic!("{other:?}"),
        }
    }
}
