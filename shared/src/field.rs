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

/// A JSON number that is a whole number, however it is written: `2500`, `-3` or `2500.0` (JSON
/// Schema, and so the OpenAPI document, counts `2500.0` as an integer). Integer newtypes
/// deserialize through it and judge the range themselves, so every out-of-range value gets the
/// newtype's own message. A number written with a fraction or an exponent is read as a float, so
/// it is taken only below 2^53, where every whole float is the number written: `9007199254740993.0`
/// reads as ...992, and money must never change on the way in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholeNumber(pub i128);

/// 2^53: below it, every whole number is a float and every whole float is exact.
const EXACT_FLOATS: f64 = 9_007_199_254_740_992.0;

impl<'de> serde::Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WholeNumber;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(i128::from(v)))
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(i128::from(v)))
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WholeNumber, E> {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < EXACT_FLOATS {
                    Ok(WholeNumber(v as i128))
                } else if v.fract() == 0.0 && v.is_finite() {
                    Err(E::custom(format_args!(
                        "{v} is written with a fraction or an exponent and is 2^53 or more, where a \
                         float is not exact: write it as an integer"
                    )))
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<WholeNumber, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_number_may_be_written_as_an_integer_or_a_float_without_fraction() {
        assert_eq!(parse("2865587"), Ok(WholeNumber(2_865_587)));
        assert_eq!(parse("2865587.0"), Ok(WholeNumber(2_865_587)));
        assert_eq!(parse("-3"), Ok(WholeNumber(-3)));
        assert_eq!(parse("1e3"), Ok(WholeNumber(1000)));
        assert_eq!(parse("18446744073709551615"), Ok(WholeNumber(i128::from(u64::MAX))));
        assert!(parse("2.5").is_err());
        assert!(parse("\"12\"").is_err());
        assert!(parse("1e40").is_err());
        // Floats of 2^53 or more may not be the number written: refused, never rounded.
        assert_eq!(parse("9007199254740991.0"), Ok(WholeNumber(9_007_199_254_740_991)));
        assert!(parse("9007199254740993.0").unwrap_err().contains("write it as an integer"));
        assert!(parse("9223372036854775807.0").is_err());
        assert_eq!(parse("9223372036854775807"), Ok(WholeNumber(i128::from(i64::MAX))));
    }

    proptest::proptest! {
        /// Below 2^53, a whole number written as a float is read as exactly that number (serde_json
        /// parses floats correctly rounded: its `float_roundtrip` feature; without it, ...991.0
        /// read as ...990).
        #[test]
        fn a_whole_float_below_2_53_is_read_exactly(n in 0i64..9_007_199_254_740_992) {
            proptest::prop_assert_eq!(parse(&format!("{n}.0")), Ok(WholeNumber(i128::from(n))));
            proptest::prop_assert_eq!(parse(&format!("{n}e0")), Ok(WholeNumber(i128::from(n))));
        }
    }
}
