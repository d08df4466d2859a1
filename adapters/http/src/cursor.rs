//! Opaque list cursors. A cursor holds only the position inside the caller's own list (an account
//! id or an entry sequence); the store rebuilds the key with the caller's tenant, so a cursor can
//! never reach another tenant's items.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ledger::AccountId;

use crate::extract::invalid;
use crate::problem::ApiError;

const ACCOUNT_PREFIX: &str = "a1:";
const ENTRY_PREFIX: &str = "e1:";

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

pub fn entry_cursor(before_sequence: u64) -> String {
    encode(format!("{ENTRY_PREFIX}{before_sequence}"))
}

pub fn parse_entry_cursor(cursor: &str) -> Result<u64, ApiError> {
    let mut buf = String::new();
    let raw = decode(cursor, ENTRY_PREFIX, &mut buf)?;
    raw.parse().map_err(|_| invalid("cursor", "is not a cursor this list returned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_do_not_cross_lists() {
        let id = AccountId::parse("alice").unwrap();
        assert_eq!(parse_account_cursor(&account_cursor(&id)).unwrap(), id);
        assert_eq!(parse_entry_cursor(&entry_cursor(17)).unwrap(), 17);
        assert!(parse_entry_cursor(&account_cursor(&id)).is_err());
        assert!(parse_account_cursor("not base64!").is_err());
        assert!(parse_account_cursor(&encode("a1:bad id".into())).is_err());
    }
}
