//! Request buckets: each write atomic and conditioned, so instances at once never move one bucket
//! past what its conditions allow.

use std::sync::Arc;

use futures::future::join_all;
use ledger::port::{BucketWrite, BucketWritten, Store};

use super::tenant;

pub async fn a_bucket_moves_only_as_its_condition_allows(store: Arc<dyn Store>) {
    let t = tenant("acme");
    assert!(matches!(
        store.write_bucket(&t, BucketWrite::FromFull { now: 100, tat: 150 }).await.unwrap(),
        BucketWritten::Moved { .. }
    ));
    // Not full at 120 (its TAT is 150): refused, and the TAT told.
    assert_eq!(
        store.write_bucket(&t, BucketWrite::FromFull { now: 120, tat: 170 }).await.unwrap(),
        BucketWritten::Refused { held: Some(150) }
    );
    let spent =
        store.write_bucket(&t, BucketWrite::Spend { now: 120, spend: 10, latest: 150 }).await.unwrap();
    assert!(matches!(spent, BucketWritten::Moved { tat: Some(160) | None }), "{spent:?}");
    // No room: its TAT (160) is past the latest the spend allows.
    assert_eq!(
        store.write_bucket(&t, BucketWrite::Spend { now: 120, spend: 10, latest: 155 }).await.unwrap(),
        BucketWritten::Refused { held: Some(160) }
    );
    // Full again by 200.
    assert!(matches!(
        store.write_bucket(&t, BucketWrite::FromFull { now: 200, tat: 210 }).await.unwrap(),
        BucketWritten::Moved { .. }
    ));
    // Another tenant's bucket is its own.
    assert_eq!(
        store
            .write_bucket(&tenant("globex"), BucketWrite::Spend { now: 0, spend: 1, latest: 10 })
            .await
            .unwrap(),
        BucketWritten::Refused { held: None }
    );
}

pub async fn concurrent_writes_to_one_bucket_move_it_once_each(store: Arc<dyn Store>) {
    let t = tenant("acme");
    // Eight instances fill the bucket at once from the same view: one moves it, seven are refused.
    let writes = (0..8).map(|_| {
        let (store, t) = (store.clone(), t.clone());
        tokio::spawn(
            async move { store.write_bucket(&t, BucketWrite::FromFull { now: 1_000, tat: 1_010 }).await },
        )
    });
    let outcomes: Vec<BucketWritten> =
        join_all(writes).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let moved = outcomes.iter().filter(|o| matches!(o, BucketWritten::Moved { .. })).count();
    assert_eq!(moved, 1, "{outcomes:?}");
    // Spends with room for four: exactly four move it.
    let spends = (0..8).map(|_| {
        let (store, t) = (store.clone(), t.clone());
        tokio::spawn(async move {
            store.write_bucket(&t, BucketWrite::Spend { now: 1_000, spend: 10, latest: 1_040 }).await
        })
    });
    let outcomes: Vec<BucketWritten> =
        join_all(spends).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
    let moved = outcomes.iter().filter(|o| matches!(o, BucketWritten::Moved { .. })).count();
    assert_eq!(moved, 4, "1,010 to 1,050 in steps of 10: {outcomes:?}");
}
