//! Events: each change writes exactly one, in the change's own write; read by id; listed newest
//! first, by type and time, page after page with none skipped.

use std::collections::BTreeSet;
use std::sync::Arc;

use ledger::fixtures::{account, hold, post, transfer};
use ledger::port::{EventFilter, Store};
use ledger::{EventId, EventType};

use super::{funded, now, tenant};

/// Every event of the tenant `filter` selects, following the cursor `page_size` at a time.
async fn all_events(
    store: &dyn Store,
    t: &ledger::TenantId,
    filter: &EventFilter,
    page_size: u16,
) -> Vec<String> {
    let (mut ids, mut before) = (Vec::new(), None);
    loop {
        let page = store.list_events(t, filter, page_size, before.as_ref(), now()).await.unwrap();
        assert!(page.items.len() <= usize::from(page_size));
        ids.extend(page.items.iter().map(|e| e.id.to_string()));
        match page.next {
            Some(next) => before = Some(next),
            None => return ids,
        }
    }
}

pub async fn each_change_writes_exactly_one_event_listed_newest_first(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 100).await;
    store.create_transfer(&t, transfer("t1", "alice", "bob", 10), now()).await.unwrap();
    store.create_transfer(&t, transfer("t1", "alice", "bob", 10), now()).await.unwrap();
    store.create_transfer(&t, transfer("t2", "alice", "bob", 1_000), now()).await.unwrap();
    store.create_transfer(&t, hold("h1", "alice", "bob", 5, None), now()).await.unwrap();
    store.create_transfer(&t, post("p1", "h1", None), now()).await.unwrap();
    let _ = store.create_account(&t, account("alice", true), now()).await;
    let listed = all_events(store.as_ref(), &t, &EventFilter::default(), 100).await;
    let expected: BTreeSet<&str> = [
        "account.opened:bank",
        "account.opened:alice",
        "account.opened:bob",
        "transfer.committed:fund",
        "transfer.committed:t1",
        "transfer.rejected:t2",
        "hold.created:h1",
        "hold.posted:p1",
    ]
    .into();
    assert_eq!(listed.iter().map(String::as_str).collect::<BTreeSet<_>>(), expected);
    assert_eq!(listed.len(), expected.len(), "one event a change: {listed:?}");
    let event = store.get_event(&t, &EventId::parse("transfer.committed:t1").unwrap(), now()).await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&event.body).unwrap();
    assert_eq!(
        (body["type"].as_str(), body["data"]["object"]["amount"].as_i64()),
        (Some("transfer.committed"), Some(10))
    );
    let created: Vec<_> = store
        .list_events(&t, &EventFilter::default(), 100, None, now())
        .await
        .unwrap()
        .items
        .iter()
        .map(|e| e.created)
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "newest first");
    // Another tenant sees none of them; past the retention, none are served.
    assert!(store.get_event(&tenant("globex"), &event.id, now()).await.unwrap_err().is_not_found());
    let later = now() + ledger::event::RETENTION;
    assert!(store.get_event(&t, &event.id, later).await.unwrap_err().is_not_found());
    assert!(store.list_events(&t, &EventFilter::default(), 10, None, later).await.unwrap().items.is_empty());
}

pub async fn events_filter_by_type_and_time_and_page_without_gaps(store: Arc<dyn Store>) {
    let t = funded(store.as_ref(), 1_000).await;
    let middle = now();
    for i in 0..9 {
        store.create_transfer(&t, transfer(&format!("t{i}"), "alice", "bob", 1), now()).await.unwrap();
    }
    let committed = EventFilter { kind: Some(EventType::TransferCommitted), ..Default::default() };
    let paged = all_events(store.as_ref(), &t, &committed, 2).await;
    assert_eq!(paged.len(), 10, "the funding and nine: {paged:?}");
    assert_eq!(paged.iter().collect::<BTreeSet<_>>().len(), 10, "none twice");
    let since = EventFilter { from: Some(middle), ..Default::default() };
    let recent = all_events(store.as_ref(), &t, &since, 4).await;
    assert_eq!(recent.len(), 9, "{recent:?}");
    let before = EventFilter { to: Some(middle), ..Default::default() };
    let earlier = all_events(store.as_ref(), &t, &before, 4).await;
    assert_eq!(earlier.len(), 4, "three accounts and the funding: {earlier:?}");
}
