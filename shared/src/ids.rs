//! Identifiers. Each newtype can only hold a valid value: build one with `parse` (or serde, which
//! goes through `parse`), never by hand.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::FieldError;

/// The longest identifier accepted, in bytes (all accepted characters are ASCII).
pub const MAX_ID_LEN: usize = 64;

fn check_id(raw: &str) -> Result<(), FieldError> {
    if raw.is_empty() || raw.len() > MAX_ID_LEN {
        return Err(FieldError::new(format!("must be 1 to {MAX_ID_LEN} characters long")));
    }
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(FieldError::new("may only contain A-Z, a-z, 0-9, '_' and '-'"));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier: 1-64 characters of `[A-Za-z0-9_-]`.
            pub fn parse(raw: impl Into<String>) -> Result<Self, FieldError> {
                let raw = raw.into();
                check_id(&raw)?;
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(raw)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// The tenant that owns a piece of data. Every stored key carries it.
    TenantId
);
id_type!(
    /// An account's id, chosen by the client or generated.
    AccountId
);
id_type!(
    /// A transfer's id, chosen by the client: it is the transfer's idempotency key.
    TransferId
);
id_type!(
    /// A batch of queued transfers, chosen by the client: the batch's idempotency key.
    BatchId
);

id_type!(
    /// A webhook endpoint's id, generated (`we_` and a UUIDv7).
    EndpointId
);

impl EndpointId {
    pub fn generate() -> Self {
        Self(format!("we_{}", uuid::Uuid::now_v7().simple()))
    }
}

impl AccountId {
    /// A fresh id for an account created without one: a UUIDv7, so generated ids sort by time.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}

impl TransferId {
    /// A fresh id a client picks once for a transfer and keeps across its retries: a UUIDv7.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}

impl BatchId {
    /// A fresh id a client picks once for a batch and keeps across its retries: a UUIDv7.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().simple().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet_and_lengths() {
        assert!(AccountId::parse("a").is_ok());
        assert!(AccountId::parse("Acc_01-x").is_ok());
        assert!(AccountId::parse("x".repeat(64)).is_ok());
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert!(AccountId::parse("").is_err());
        assert!(AccountId::parse("x".repeat(65)).is_err());
        for bad in ["a b", "a/b", "a#b", "é", "a.b"] {
            assert!(TransferId::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let (a, b) = (AccountId::generate(), AccountId::generate());
        assert_ne!(a, b);
        assert!(AccountId::parse(a.as_str()).is_ok());
    }

    #[test]
    fn serde_goes_through_parse() {
        let ok: AccountId = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(ok.as_str(), "abc");
        assert!(serde_json::from_str::<AccountId>("\"a b\"").is_err());
    }
}
