//! The `Prefer` request header (RFC 7240): `respond-async`, and `wait` in seconds, among any other
//! preferences (which are ignored, as the RFC asks), across one or several header lines.
//!
//! Grammar: `preference *( "," preference )`, `preference = token [ "=" word ] *( ";" parameter )`,
//! names case-insensitive, values tokens or quoted strings.

use std::time::Duration;

use http::HeaderMap;

/// The longest `wait` honoured: the function's timeout must leave room for the answer.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prefer {
    pub respond_async: bool,
    /// How long the client will wait for the outcome (capped at `MAX_WAIT`).
    pub wait: Option<Duration>,
}

impl Prefer {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut prefer = Prefer::default();
        let lines = headers.get_all(http::header::HeaderName::from_static("prefer"));
        for line in lines.iter().filter_map(|v| v.to_str().ok()) {
            for preference in split_outside_quotes(line, ',') {
                // The preference's own name and value come first; parameters after ';' may carry
                // `wait` too, as in `respond-async; wait=5`.
                for (i, part) in split_outside_quotes(preference, ';').into_iter().enumerate() {
                    let (name, value) = match part.split_once('=') {
                        Some((name, value)) => (name.trim(), Some(value.trim().trim_matches('"'))),
                        None => (part.trim(), None),
                    };
                    if i == 0 && name.eq_ignore_ascii_case("respond-async") {
                        prefer.respond_async = true;
                    } else if name.eq_ignore_ascii_case("wait") {
                        if let Some(seconds) = value.and_then(|v| v.parse::<u64>().ok()) {
                            prefer.wait = Some(Duration::from_secs(seconds).min(MAX_WAIT));
                        }
                    }
                }
            }
        }
        prefer
    }
}

/// Splits on `separator` outside double-quoted strings.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Prefer {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("prefer", line.parse().unwrap());
        }
        Prefer::from_headers(&headers)
    }

    #[test]
    fn respond_async_is_found_among_preferences_and_parameters() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(parse(&["respond-async"]), Prefer { respond_async: true, wait: None });
        assert_eq!(parse(&["Respond-Async; wait=5"]), Prefer { respond_async: true, wait: secs(5) });
        assert_eq!(
            parse(&["return=minimal, respond-async, wait=2"]),
            Prefer { respond_async: true, wait: secs(2) }
        );
        assert!(parse(&["handling=lenient", "RESPOND-ASYNC"]).respond_async);
        assert_eq!(parse(&["respond-async, wait=600"]).wait, Some(MAX_WAIT));
        assert_eq!(parse(&["wait=\"3\""]), Prefer { respond_async: false, wait: secs(3) });
    }

    #[test]
    fn lookalikes_are_not_respond_async() {
        for line in [
            "respond-asynchronously",
            "x=respond-async",
            "foo; respond-async",
            "\"respond-async\"",
            "wait=soon",
        ] {
            assert_eq!(parse(&[line]), Prefer { respond_async: false, wait: None }, "{line}");
        }
        assert!(!parse(&["x=\"a,respond-async\""]).respond_async);
    }
}
