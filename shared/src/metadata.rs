//! Free-form metadata: a small string map a client attaches to an account or a transfer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::field::FieldError;

pub const MAX_KEYS: usize = 50;
pub const MAX_KEY_CHARS: usize = 40;
pub const MAX_VALUE_CHARS: usize = 500;

/// At most 50 keys of 1-40 characters, each value at most 500 characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<String, String>", into = "BTreeMap<String, String>")]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub fn parse(map: BTreeMap<String, String>) -> Result<Self, FieldError> {
        if map.len() > MAX_KEYS {
            return Err(FieldError::new(format!("may hold at most {MAX_KEYS} keys")));
        }
        for (key, value) in &map {
            let key_chars = key.chars().count();
            if key_chars == 0 || key_chars > MAX_KEY_CHARS {
                return Err(FieldError::new(format!(
                    "key '{key}' must be 1 to {MAX_KEY_CHARS} characters long"
                )));
            }
            if value.chars().count() > MAX_VALUE_CHARS {
                return Err(FieldError::new(format!(
                    "value of '{key}' must be at most {MAX_VALUE_CHARS} characters long"
                )));
            }
        }
        Ok(Self(map))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// This metadata with `patch` merged in (RFC 7396): each key set, or removed when `None`.
    pub fn merged(&self, patch: &BTreeMap<String, Option<String>>) -> Result<Self, FieldError> {
        let mut map = self.0.clone();
        for (key, value) in patch {
            match value {
                Some(value) => map.insert(key.clone(), value.clone()),
                None => map.remove(key),
            };
        }
        Self::parse(map)
    }
}

impl TryFrom<BTreeMap<String, String>> for Metadata {
    type Error = FieldError;
    fn try_from(map: BTreeMap<String, String>) -> Result<Self, Self::Error> {
        Self::parse(map)
    }
}

impl From<Metadata> for BTreeMap<String, String> {
    fn from(m: Metadata) -> Self {
        m.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: impl IntoIterator<Item = (String, String)>) -> BTreeMap<String, String> {
        pairs.into_iter().collect()
    }

    #[test]
    fn limits_are_inclusive() {
        let full = map((0..MAX_KEYS).map(|i| (format!("{i:0>40}"), "v".repeat(MAX_VALUE_CHARS))));
        assert!(Metadata::parse(full).is_ok());
    }

    #[test]
    fn rejects_past_each_limit() {
        let too_many = map((0..=MAX_KEYS).map(|i| (i.to_string(), String::new())));
        assert!(Metadata::parse(too_many).is_err());
        assert!(Metadata::parse(map([("k".repeat(41), String::new())])).is_err());
        assert!(Metadata::parse(map([(String::new(), String::new())])).is_err());
        assert!(Metadata::parse(map([("k".into(), "v".repeat(501))])).is_err());
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(Metadata::parse(map([("é".repeat(40), "€".repeat(500))])).is_ok());
    }
}
