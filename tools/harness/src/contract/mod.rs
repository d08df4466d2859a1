//! The store contract: what every store behind the port must do, as tests that take a fresh store.
//! The memory store runs them in the fast tier (`tests/fast`), the DynamoDB store against DynamoDB
//! Local (`tests/emulated`); `contract_tests!` instantiates the whole suite for one store, so both
//! always run the same list.

pub mod accounts;
pub mod books;
pub mod events;
pub mod limits;
pub mod submissions;
pub mod transfers;
pub mod webhooks;

use ledger::port::Store;
use ledger::{AccountId, TenantId, TransferId};
use time::OffsetDateTime;

pub(crate) fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).expect("a valid tenant")
}

pub(crate) fn account_id(raw: &str) -> AccountId {
    AccountId::parse(raw).expect("a valid account id")
}

pub(crate) fn transfer_id(raw: &str) -> TransferId {
    TransferId::parse(raw).expect("a valid transfer id")
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// A run's deadline far enough not to cut it.
pub fn later() -> std::time::Instant {
    std::time::Instant::now() + std::time::Duration::from_secs(120)
}

/// Opens `bank` (overdraft), `alice` and `bob` in tenant acme, and funds alice with `funds`.
pub(crate) async fn funded(store: &dyn Store, funds: u64) -> TenantId {
    use ledger::fixtures::{account, transfer};
    let t = tenant("acme");
    for (id, overdraft) in [("bank", true), ("alice", false), ("bob", false)] {
        store.create_account(&t, account(id, overdraft), now()).await.expect("an account opens");
    }
    if funds > 0 {
        let funding = store.create_transfer(&t, transfer("fund", "bank", "alice", funds), now()).await;
        assert!(!funding.expect("the funding commits").is_replay());
    }
    t
}

/// An account's balance.
pub(crate) async fn balance(store: &dyn Store, t: &TenantId, id: &str) -> i128 {
    store.get_account(t, &account_id(id)).await.expect("the account exists").balances.balance()
}

/// Every test of the contract, for the store `$store` makes (an expression giving an
/// `Arc<dyn ledger::port::Store>`, fresh each time it is evaluated).
#[macro_export]
macro_rules! contract_tests {
    ($store:expr) => {
        $crate::contract_tests!(@each $store;
            accounts: [
                opening_an_account_twice_replays_and_other_fields_conflict,
                an_account_reads_back_with_its_version,
                lists_page_through_every_account_and_entry_exactly_once,
                a_digest_commits_to_every_head_and_each_account_proves_its_own,
                balances_as_of_instants_and_statements_page_by_page,
                instants_a_history_cannot_state_are_typed_refusals,
                tenants_never_see_each_others_accounts,
                accounts_are_found_by_their_metadata_across_pages,
            ];
            books: [
                the_books_balance_run_after_run_reading_only_what_is_new,
                runs_racing_transfers_find_no_fault_and_close_every_side,
            ];
            transfers: [
                a_transfer_moves_money_once_and_writes_both_entries,
                reusing_a_transfer_id_with_other_fields_conflicts_and_moves_nothing,
                a_rejected_transfer_id_is_spent,
                every_rule_is_enforced,
                concurrent_duplicates_apply_exactly_once,
                concurrent_spends_never_overdraw,
                a_hold_posts_once_and_its_remainder_is_released,
                a_hold_past_its_time_reads_expired_and_is_released_once,
                the_sweeper_releases_due_holds_once,
                a_hold_past_its_time_never_refuses_a_transfer,
                the_sweeper_is_bounded_and_fair_across_tenants,
                reversals_never_sum_past_what_was_posted,
                a_linked_chain_applies_whole_or_not_at_all,
            ];
            submissions: [
                a_queued_transfer_settles_once,
                a_queued_chain_settles_whole_even_beside_its_member_sent_alone,
                a_batch_settles_in_order_and_counts_each_transfer_once,
                concurrent_runs_of_one_batch_settle_it_once_in_order,
                a_batch_whose_ids_hold_other_transfers_is_refused_whole,
                a_batch_waits_for_a_transfer_another_submission_holds,
            ];
            events: [
                each_change_writes_exactly_one_event_listed_newest_first,
                events_filter_by_type_and_time_and_page_without_gaps,
            ];
            webhooks: [
                endpoints_are_versioned_and_changes_over_a_stale_read_fail,
                disabling_an_endpoint_writes_its_event_once,
                deliveries_record_attempts_and_list_newest_first,
                a_delivery_is_leased_by_one_copy_at_a_time,
            ];
            limits: [
                a_bucket_moves_only_as_its_condition_allows,
                concurrent_writes_to_one_bucket_move_it_once_each,
            ];
        );
    };
    (@each $store:expr; $($module:ident: [$($test:ident),* $(,)?];)*) => {
        $(
            mod $module {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $test() {
                        $crate::contract::$module::$test($store).await;
                    }
                )*
            }
        )*
    };
}
