//! Events: what the ledger tells the world it did. Each state change (an account opened, a transfer
//! committed or rejected, a hold created, posted, voided or expired, a reversal) is exactly one
//! event, decided here from what the change wrote, so the store can write it in the change's own
//! transaction.
//!
//! An event's id is derived from the change (`{type}:{resource id}`): the same change always has the
//! same id, so a consumer that sees an event twice can tell.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::account::Account;
use crate::batch::Batch;
use crate::books::BooksChecked;
use crate::event_type::{EventId, EventType};
use crate::ids::TenantId;
use crate::plan::Decision;
use crate::transfer::{Transfer, TransferKind, TransferStatus};
use crate::webhook::WebhookEndpoint;

/// The shape of `data.object`: the resources as `/v1` returns them.
pub const API_VERSION: &str = "v1";

/// How long the ledger keeps an event listable (`GET /v1/events`).
pub const RETENTION: time::Duration = time::Duration::days(30);

/// The resource an event carries, as the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EventObject {
    Account(Box<Account>),
    Transfer(Box<Transfer>),
    Endpoint(Box<WebhookEndpoint>),
    Batch(Box<Batch>),
    Books(Box<BooksChecked>),
}

/// One event: `{id, type, created, tenant, api_version, data: {object}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub id: EventId,
    pub created: OffsetDateTime,
    pub tenant: TenantId,
    pub object: EventObject,
}

impl Event {
    pub fn kind(&self) -> EventType {
        self.id.kind()
    }

    /// An account opened.
    pub fn account_opened(tenant: &TenantId, account: &Account) -> Self {
        Self {
            id: EventId::new(EventType::AccountOpened, account.id.as_str()),
            created: account.created_at,
            tenant: tenant.clone(),
            object: EventObject::Account(Box::new(account.clone())),
        }
    }

    /// A change of an account (`kind`: frozen, unfrozen, closed or updated) at `now`: the account
    /// as changed. One event per change (its id names the account's revision).
    pub fn account_changed(
        tenant: &TenantId,
        kind: EventType,
        account: &Account,
        now: OffsetDateTime,
    ) -> Self {
        let resource = format!("{}-{}", account.id, account.revision);
        Self {
            id: EventId::new(kind, &resource),
            created: now,
            tenant: tenant.clone(),
            object: EventObject::Account(Box::new(account.clone())),
        }
    }

    /// A change of a transfer's metadata at `now`: the transfer as changed. One event per change
    /// (its id names the transfer's revision).
    pub fn transfer_updated(tenant: &TenantId, transfer: &Transfer, now: OffsetDateTime) -> Self {
        let resource = format!("{}-{}", transfer.request.id, transfer.revision);
        Self {
            id: EventId::new(EventType::TransferUpdated, &resource),
            created: now,
            tenant: tenant.clone(),
            object: EventObject::Transfer(Box::new(transfer.clone())),
        }
    }

    /// A batch whose every transfer is settled (committed or rejected), at `at`: the batch with its
    /// final counts.
    pub fn batch_settled(tenant: &TenantId, batch: &Batch, at: OffsetDateTime) -> Self {
        Self {
            id: EventId::new(EventType::BatchSettled, batch.id.as_str()),
            created: at,
            tenant: tenant.clone(),
            object: EventObject::Batch(Box::new(batch.clone())),
        }
    }

    /// An endpoint the ledger disabled (it answered 410, or failed every delivery for days), at
    /// `now`; one event per disabling (its id names the instant).
    pub fn endpoint_disabled(tenant: &TenantId, endpoint: &WebhookEndpoint, now: OffsetDateTime) -> Self {
        let resource = format!("{}-{}", endpoint.id, now.unix_timestamp());
        Self {
            id: EventId::new(EventType::WebhookEndpointDisabled, &resource),
            created: now,
            tenant: tenant.clone(),
            object: EventObject::Endpoint(Box::new(endpoint.clone())),
        }
    }

    /// A run of the continuous check of the books (`crate::books`): one per run (its id names the
    /// run), as of the instant its digest was taken.
    pub fn books_checked(tenant: &TenantId, checked: BooksChecked) -> Self {
        Self {
            id: EventId::new(EventType::BooksChecked, &checked.run.to_string()),
            created: checked.signed.digest.taken_at,
            tenant: tenant.clone(),
            object: EventObject::Books(Box::new(checked)),
        }
    }

    /// The event of a decision that changes the ledger (`None` for a replay or a conflict, which
    /// change nothing). Its object is the transfer the decision wrote: for a post, a void or a
    /// reversal, that transfer (which names the hold or transfer it acted on); for an expiry, the
    /// hold.
    pub fn of_decision(tenant: &TenantId, decision: &Decision) -> Option<Self> {
        let (kind, transfer, created) = match decision {
            Decision::Commit { transfer, .. } => {
                let kind = match transfer.request.kind {
                    TransferKind::Immediate(_) => EventType::TransferCommitted,
                    TransferKind::Pending { .. } => EventType::HoldCreated,
                    TransferKind::PostPending { .. } => EventType::HoldPosted,
                    TransferKind::VoidPending { .. } => EventType::HoldVoided,
                    TransferKind::Reversal { .. } => EventType::TransferReversed,
                };
                (kind, transfer, transfer.created_at)
            }
            Decision::Reject(transfer) => (EventType::TransferRejected, transfer, transfer.created_at),
            Decision::Expire { hold, debit, .. } => (EventType::HoldExpired, hold, debit.created_at),
            Decision::Replay(_) | Decision::Conflict { .. } => return None,
        };
        debug_assert!(!matches!(transfer.status, TransferStatus::Queued));
        Some(Self {
            id: EventId::new(kind, transfer.request.id.as_str()),
            created,
            tenant: tenant.clone(),
            object: EventObject::Transfer(Box::new(transfer.clone())),
        })
    }
}

#[derive(Serialize)]
struct EventView<'a> {
    id: &'a EventId,
    #[serde(rename = "type")]
    kind: EventType,
    #[serde(with = "time::serde::rfc3339")]
    created: OffsetDateTime,
    tenant: &'a TenantId,
    api_version: &'static str,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    object: &'a EventObject,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EventView {
            id: &self.id,
            kind: self.kind(),
            created: self.created,
            tenant: &self.tenant,
            api_version: API_VERSION,
            data: Data { object: &self.object },
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{self, transfer};
    use crate::plan::Planner;
    use crate::transfer::NewTransfer;

    const NOW: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

    fn tenant() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    fn planner() -> Planner {
        let accounts =
            ["bank", "a", "b"].map(|id| fixtures::account(id, id == "bank").open(NOW).balance_state());
        Planner::new(accounts, NOW)
    }

    fn kind_of(planner: &mut Planner, request: &NewTransfer) -> Option<EventType> {
        Event::of_decision(&tenant(), &planner.decide(request, None)).map(|e| e.kind())
    }

    #[test]
    fn each_decision_that_changes_the_ledger_is_one_event_named_by_what_it_wrote() {
        use fixtures::{hold, post, reversal, void};
        let mut planner = planner();
        let pay = transfer("t1", "bank", "a", 10);
        assert_eq!(kind_of(&mut planner, &pay), Some(EventType::TransferCommitted));
        assert_eq!(
            kind_of(&mut planner, &transfer("t2", "a", "b", 1_000)),
            Some(EventType::TransferRejected)
        );
        assert_eq!(kind_of(&mut planner, &hold("h1", "bank", "b", 5, None)), Some(EventType::HoldCreated));
        assert_eq!(kind_of(&mut planner, &post("p1", "h1", None)), Some(EventType::HoldPosted));
        assert_eq!(kind_of(&mut planner, &hold("h2", "bank", "b", 5, None)), Some(EventType::HoldCreated));
        assert_eq!(kind_of(&mut planner, &void("v1", "h2")), Some(EventType::HoldVoided));
        assert_eq!(kind_of(&mut planner, &reversal("r1", "t1", None)), Some(EventType::TransferReversed));
        // The same request again replays: nothing changes, no event.
        let stored = fixtures::committed(pay.clone(), NOW);
        assert_eq!(Event::of_decision(&tenant(), &planner.decide(&pay, Some(&stored))), None);
    }

    #[test]
    fn ids_are_type_and_resource_and_parse_back() {
        let event = Event::account_opened(&tenant(), &fixtures::account("alice", false).open(NOW));
        assert_eq!(event.id.to_string(), "account.opened:alice");
        assert_eq!(EventId::parse("account.opened:alice").unwrap(), event.id);
        let long = format!("{}-12", "a".repeat(64));
        assert!(EventId::parse(&format!("account.closed:{long}")).is_ok());
        for bad in ["account.opened", "account.archived:alice", "hold.posted:", "hold.posted:a#b", ""] {
            assert!(EventId::parse(bad).is_err(), "{bad:?}");
        }
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()).unwrap(), *kind);
        }
    }

    #[test]
    fn an_event_serialises_with_its_resource_as_the_api_returns_it() {
        let account = fixtures::account("alice", false).open(NOW);
        let json = serde_json::to_value(Event::account_opened(&tenant(), &account)).unwrap();
        assert_eq!(json["type"], "account.opened");
        assert_eq!(json["tenant"], "acme");
        assert_eq!(json["api_version"], API_VERSION);
        assert_eq!(json["created"], "1970-01-01T00:00:00Z");
        assert_eq!(json["data"]["object"], serde_json::to_value(&account).unwrap());
    }
}
