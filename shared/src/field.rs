//! Why a raw value could not be parsed into a domain newtype. A leaf module: every newtype's
//! constructor returns it, and `error` pairs it with the field's name.

/// Why a raw value is not a valid instance of a newtype. The caller knows which field it parsed and
/// pairs the two (see [`crate::LedgerError::InvalidField`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct FieldError {
    reason: String,
}

impl FieldError {
    pub fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}
