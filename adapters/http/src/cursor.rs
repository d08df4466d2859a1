//! Opaque list cursors. A cursor holds only the position inside the caller's own list (an account
//! id, an entry's instant and sequence, an event's instant and id); the store rebuilds the key with
//! the caller's tenant, so a cursor can never reach another tenant's items.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ledger::port::{DeliveryPosition, EntryPosition, EventPosition};
use ledger::{AccountId, EndpointId, EventId, SearchPosition, TransferId};
use time::OffsetDateTime;

use crate::extract::invalid;
use crate::problem::ApiError;

const ACCOUNT_PREFIX: &str = "a1:";
const ENTRY_PREFIX: &str = "e2:";
const STATEMENT_PREFIX: &str = "s1:";
const EVENT_PREFIX: &str = "v1:";
const ENDPOINT_PREFIX: &str = "w1:";
const DELIVERY_PREFIX: &str = "d1:";
const SEARCH_PREFIX: &str = "t1:";

fn encode(raw: String) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode<'a>(cursor: &str, prefix: &str, buf: &'a mut String) -> Result<&'a str, ApiError> {
    let bad = || invalid("cursor", "is not a cursor this list returned");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    *buf = String::from_utf8(bytes).map_err(|_| bad())?;
    buf.strip_prefix(prefix).ok_or_else(bad)
}

pub fn account_cursor(after: &AccountId) -> String {
    encode(format!("{ACCOUNT_PREFIX}{after}"))
}

pub fn parse_account_cursor(cursor: &str) -> Result<AccountId, ApiError> {
    let mut buf = String::new();
    let raw = decode(cursor, ACCOUNT_PREFIX, &mut buf)?;
    AccountId::parse(raw).map_err(|_| invalid("cursor", "is not a cursor this list returned"))
}

/// An entry's position as text: `at:sequence`, and `:shard` for a hot account's shard other
/// than its main one.
fn entry_position(position: EntryPosition) -> String {
    match position.shard {
        0 => format!("{}:{}", position.at_nanos, position.sequence),
        shard => format!("{}:{}:{shard}", position.at_nanos, position.sequence),
    }
}

/// The position `entry_position` wrote, from its parts (`None` if one does not parse).
fn parse_entry_position<'a>(mut parts: impl Iterator<Item = &'a str>) -> Option<EntryPosition> {
    let at_nanos = parts.next()?.parse().ok()?;
    let sequence = parts.next()?.parse().ok()?;
    let shard = parts.next().map_or(Some(0), |shard| shard.parse().ok())?;
    parts.next().is_none().then_some(EntryPosition { at_nanos, shard, sequence })
}

pub fn entry_cursor(position: EntryPosition) -> String {
    encode(format!("{ENTRY_PREFIX}{}", entry_position(position)))
}

pub fn parse_entry_cursor(cursor: &str) -> Result<EntryPosition, ApiError> {
    let mut buf = String::new();
    let raw = decode(cursor, ENTRY_PREFIX, &mut buf)?;
    parse_entry_position(raw.split(':'))
        .ok_or_else(|| invalid("cursor", "is not a cursor this list returned"))
}

/// A statement's cursor: the position after which its next page starts, and the statement's `to`
/// (so every page of a statement "up to now" ends at the same instant).
pub fn statement_cursor(to: OffsetDateTime, after: EntryPosition) -> String {
    encode(format!("{STATEMENT_PREFIX}{}:{}", to.unix_timestamp_nanos(), entry_position(after)))
}

pub fn parse_statement_cursor(cursor: &str) -> Result<(OffsetDateTime, EntryPosition), ApiError> {
    let mut buf = String::new();
    let raw = decode(cursor, STATEMENT_PREFIX, &mut buf)?;
    let bad = || invalid("cursor", "is not a cursor this statement returned");
    let mut parts = raw.split(':');
    let to = parts
        .next()
        .and_then(|n| n.parse().ok())
        .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
        .ok_or_else(bad)?;
    Ok((to, parse_entry_position(parts).ok_or_else(bad)?))
}

/// An events list's cursor: the position of the last event it covered.
pub fn event_cursor(position: &EventPosition) -> String {
    encode(format!("{EVENT_PREFIX}{:020}#{}", position.at_nanos.max(0), position.id))
}

pub fn parse_event_cursor(cursor: &str) -> Result<EventPosition, ApiError> {
    let mut buf = String::new();
    let raw = decode(cursor, EVENT_PREFIX, &mut buf)?;
    let (at_nanos, id) =
        instant_and_event(raw).ok_or_else(|| invalid("cursor", "is not a cursor this list returned"))?;
    Ok(EventPosition { at_nanos, id })
}

/// `{20-digit instant}#{event id}`, as event and delivery cursors hold them.
fn instant_and_event(raw: &str) -> Option<(i128, EventId)> {
    let (at, id) = raw.split_once('#')?;
    if at.len() != 20 || !at.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((at.parse().ok()?, EventId::parse(id).ok()?))
}

pub fn endpoint_cursor(after: &EndpointId) -> String {
    encode(format!("{ENDPOINT_PREFIX}{after}"))
}

pub fn parse_endpoint_cursor(cursor: &str) -> Result<EndpointId, ApiError> {
    let mut buf = String::new();
    let raw = decode(cursor, ENDPOINT_PREFIX, &mut buf)?;
    EndpointId::parse(raw).map_err(|_| invalid("cursor", "is not a cursor this list returned"))
}

/// A deliveries list's cursor: the position of the last delivery it covered, in its endpoint.
pub fn delivery_cursor(position: &DeliveryPosition) -> String {
    encode(format!("{DELIVERY_PREFIX}D#{:020}#{}", position.at_nanos.max(0), position.event))
}

pub fn parse_delivery_cursor(cursor: &str) -> Result<DeliveryPosition, ApiError> {
    let mut buf = String::new();
    let raw = decode(cursor, DELIVERY_PREFIX, &mut buf)?;
    let found = raw.strip_prefix("D#").and_then(instant_and_event);
    let (at_nanos, event) = found.ok_or_else(|| invalid("cursor", "is not a cursor this list returned"))?;
    Ok(DeliveryPosition { at_nanos, event })
}

/// A transfer search's cursor: the instant and id of the last candidate it read, or its position
/// in the batch searched.
pub fn search_cursor(position: &SearchPosition) -> String {
    match position {
        SearchPosition::Before { at_nanos, id } => {
            encode(format!("{SEARCH_PREFIX}{:020}#{id}", at_nanos.max(&0)))
        }
        SearchPosition::BatchBefore(i) => encode(format!("{SEARCH_PREFIX}b{i}")),
    }
}

pub fn parse_search_cursor(cursor: &str) -> Result<SearchPosition, ApiError> {
    let mut buf = String::new();
    let raw = decode(cursor, SEARCH_PREFIX, &mut buf)?;
    let bad = || invalid("cursor", "is not a cursor this search returned");
    if let Some(i) = raw.strip_prefix('b') {
        return i.parse().map(SearchPosition::BatchBefore).map_err(|_| bad());
    }
    let (at, id) = raw.split_once('#').ok_or_else(bad)?;
    if at.len() != 20 || !at.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let id = TransferId::parse(id).map_err(|_| bad())?;
    Ok(SearchPosition::Before { at_nanos: at.parse().map_err(|_| bad())?, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_do_not_cross_lists() {
        let id = AccountId::parse("alice").unwrap();
        assert_eq!(parse_account_cursor(&account_cursor(&id)).unwrap(), id);
        let position = EntryPosition { at_nanos: 1_795_860_935_000_000_001, shard: 0, sequence: 17 };
        assert_eq!(parse_entry_cursor(&entry_cursor(position)).unwrap(), position);
        assert!(parse_entry_cursor(&encode("e2:17".into())).is_err());
        let to = OffsetDateTime::from_unix_timestamp_nanos(1_795_860_999_000_000_000).unwrap();
        assert_eq!(parse_statement_cursor(&statement_cursor(to, position)).unwrap(), (to, position));
        assert!(parse_statement_cursor(&entry_cursor(position)).is_err());
        // A hot account's shard rides along.
        let on_shard = EntryPosition { shard: 5, ..position };
        assert_eq!(parse_entry_cursor(&entry_cursor(on_shard)).unwrap(), on_shard);
        assert_eq!(parse_statement_cursor(&statement_cursor(to, on_shard)).unwrap(), (to, on_shard));
        assert!(parse_entry_cursor(&encode(format!("{ENTRY_PREFIX}1:2:3:4"))).is_err());
        assert!(parse_entry_cursor(&statement_cursor(to, position)).is_err());
        assert!(parse_entry_cursor(&account_cursor(&id)).is_err());
        assert!(parse_account_cursor("not base64!").is_err());
        assert!(parse_account_cursor(&encode("a1:bad id".into())).is_err());
        let event_id = EventId::parse("transfer.committed:t1").unwrap();
        let event = EventPosition { at_nanos: 1_795_860_935_000_000_001, id: event_id };
        assert_eq!(parse_event_cursor(&event_cursor(&event)).unwrap(), event);
        assert!(parse_event_cursor(&encode("v1:17#transfer.committed:t1".into())).is_err());
        assert!(parse_event_cursor(&encode("v1:01795860935000000001#nope:t1".into())).is_err());
        assert!(parse_event_cursor(&account_cursor(&id)).is_err());
        let delivery = DeliveryPosition {
            at_nanos: 1_795_860_935_000_000_001,
            event: EventId::parse("hold.created:h1").unwrap(),
        };
        assert_eq!(parse_delivery_cursor(&delivery_cursor(&delivery)).unwrap(), delivery);
        assert!(parse_delivery_cursor(&encode("d1:D#17#hold.created:h1".into())).is_err());
        assert!(parse_delivery_cursor(&event_cursor(&event)).is_err());
        let endpoint = EndpointId::generate();
        assert_eq!(parse_endpoint_cursor(&endpoint_cursor(&endpoint)).unwrap(), endpoint);
        for position in [
            SearchPosition::Before {
                at_nanos: 1_795_860_935_000_000_001,
                id: TransferId::parse("t1").unwrap(),
            },
            SearchPosition::BatchBefore(17),
        ] {
            assert_eq!(parse_search_cursor(&search_cursor(&position)).unwrap(), position);
        }
        assert!(parse_search_cursor(&encode("t1:17#t1".into())).is_err());
        assert!(parse_search_cursor(&encode("t1:bx".into())).is_err());
        assert!(parse_search_cursor(&event_cursor(&event)).is_err());
    }
}
