//! What events are: their types (what a consumer filters and subscribes on) and their ids
//! (`{type}:{resource id}`, derived from the change, so the same change always has the same id).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::field::FieldError;

macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        /// What happened. `as_str` is the `type` a consumer filters and subscribes on.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType {
            $($variant,)*
        }

        impl EventType {
            pub const ALL: &[EventType] = &[$(EventType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name,)*
                }
            }
        }
    };
}

event_types! {
    AccountOpened => "account.opened",
    AccountFrozen => "account.frozen",
    AccountUnfrozen => "account.unfrozen",
    AccountClosed => "account.closed",
    AccountUpdated => "account.updated",
    TransferCommitted => "transfer.committed",
    TransferRejected => "transfer.rejected",
    TransferReversed => "transfer.reversed",
    TransferUpdated => "transfer.updated",
    HoldCreated => "hold.created",
    HoldPosted => "hold.posted",
    HoldVoided => "hold.voided",
    HoldExpired => "hold.expired",
    BatchSettled => "batch.settled",
    WebhookEndpointDisabled => "webhook_endpoint.disabled",
    BooksChecked => "books.checked",
}

impl EventType {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::ALL.iter().copied().find(|t| t.as_str() == raw).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
            FieldError::new(format!("must be one of {}", names.join(", ")))
        })
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An event's id: its type and the id of the resource the change wrote, `{type}:{resource}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId {
    kind: EventType,
    resource: String,
}

impl EventId {
    pub fn new(kind: EventType, resource: &str) -> Self {
        Self { kind, resource: resource.to_owned() }
    }

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("must be an event id: `{type}:{resource id}`");
        let (kind, resource) = raw.split_once(':').ok_or_else(invalid)?;
        let kind = EventType::parse(kind).map_err(|_| invalid())?;
        // Every resource id has the same alphabet (`ids`); a change of a resource that changes
        // more than once adds a suffix to its id (`-{number}`).
        let suffixed = resource.rsplit_once('-').filter(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()));
        let id = match suffixed {
            Some((id, _)) if resource.len() > crate::ids::MAX_ID_LEN => id,
            _ => resource,
        };
        crate::ids::TransferId::parse(id).map_err(|_| invalid())?;
        Ok(Self::new(kind, resource))
    }

    pub fn kind(&self) -> EventType {
        self.kind
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.resource)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EventId::parse(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}
