//! Changes to a recorded transfer: its metadata, the one thing of it a client may change after it
//! is decided. Decided here, pure; the store writes it only while the transfer is as read.

use std::collections::BTreeMap;

use crate::error::LedgerError;
use crate::transfer::{Transfer, TransferStatus};

/// `transfer` with `patch` merged into its metadata (RFC 7396: each key set, or removed when
/// `None`) and its revision moved on, or `None` if the patch sets what is there. A transfer still
/// queued has no record to change yet (`InFlight`).
pub fn with_metadata(
    transfer: &Transfer,
    patch: &BTreeMap<String, Option<String>>,
) -> Result<Option<Transfer>, LedgerError> {
    if transfer.status == TransferStatus::Queued {
        return Err(LedgerError::InFlight { id: transfer.request.id.to_string() });
    }
    let metadata =
        transfer.request.metadata.merged(patch).map_err(|e| LedgerError::invalid("metadata", e))?;
    if metadata == transfer.request.metadata {
        return Ok(None);
    }
    let mut changed = transfer.clone();
    changed.request.metadata = metadata;
    changed.revision += 1;
    Ok(Some(changed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use time::OffsetDateTime;

    fn patch(pairs: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.map(str::to_owned))).collect()
    }

    #[test]
    fn metadata_merges_and_moves_the_revision_and_a_replay_ignores_it_then() {
        let request = fixtures::transfer("t", "a", "b", 5);
        let recorded = fixtures::committed(request.clone(), OffsetDateTime::UNIX_EPOCH);
        let changed = with_metadata(&recorded, &patch(&[("k", Some("v"))])).unwrap().unwrap();
        assert_eq!((changed.request.metadata.as_map().len(), changed.revision), (1, 1));
        assert_eq!(with_metadata(&changed, &patch(&[("k", Some("v"))])).unwrap(), None);
        // The original request sent again still replays; before any change, other metadata differs.
        assert!(changed.differences(&request).is_empty());
        let mut other = request.clone();
        other.metadata = changed.request.metadata.clone();
        assert_eq!(recorded.differences(&other), ["metadata"]);
        let removed = with_metadata(&changed, &patch(&[("k", None)])).unwrap().unwrap();
        assert_eq!((removed.request.metadata.as_map().len(), removed.revision), (0, 2));
        let queued = request.queued(OffsetDateTime::UNIX_EPOCH);
        assert!(matches!(with_metadata(&queued, &patch(&[])), Err(LedgerError::InFlight { .. })));
    }
}
