//! The API's scenarios: end to end through the router (and the worker and the sweeper where a
//! scenario queues or expires), written once for any backend. The fast tier runs them on the memory
//! store (`tests/fast`), and the emulated tier on DynamoDB Local (`tests/emulated`);
//! `api_scenarios!` instantiates every one of them for one backend, so both run the same list.

pub mod api;
pub mod caching;
pub mod governance;
pub mod history;
pub mod holds;
pub mod isolation;
pub mod linked;
pub mod reconcile;
pub mod reversals;
pub mod scopes;
pub mod search;

/// Every scenario, for the API `$api` makes (an expression giving a fresh `harness::Api<_>` each
/// time it is evaluated; it may `.await`).
#[macro_export]
macro_rules! api_scenarios {
    ($api:expr) => {
        $crate::api_scenarios!(@each $api;
            api: [
                the_documented_walkthrough,
                business_rules_answer_422_with_their_code_and_replay_the_same,
                idempotency_conflicts_name_the_differing_fields,
                bad_input_is_a_typed_400_naming_the_field,
                an_amount_written_as_a_float_without_fraction_is_that_integer,
                an_account_without_id_gets_a_generated_one,
                bodies_over_64_kib_are_413,
                credentials_and_tenants,
                unknown_routes_and_methods_are_problems,
                lists_paginate_with_opaque_cursors,
            ];
            caching: [
                every_get_is_tagged_and_answered_304_while_unchanged,
                a_tag_is_its_tenants_own,
            ];
            governance: [
                a_frozen_account_moves_no_money_on_any_route_and_its_holds_still_release,
                closing_needs_an_empty_account_is_final_and_refuses_every_later_transfer,
                bounds_hold_with_holds_counted_and_change_only_on_the_version_named,
                a_transfer_under_if_match_commits_only_on_the_versions_read_and_a_dry_run_writes_nothing,
                changes_racing_transfers_are_ordered_one_way_or_the_other,
                a_transfers_metadata_changes_only_on_the_representation_read_and_search_finds_it,
                a_hot_account_reads_as_one_and_obeys_its_rules_on_every_route,
            ];
            isolation: [
                another_tenant_sees_404_never_data_on_every_route,
                webhook_endpoints_are_capped_per_tenant_under_concurrent_adds,
            ];
            search: [
                every_filter_finds_exactly_what_the_model_says_across_pages,
            ];
            scopes: [
                each_scope_reaches_exactly_its_routes_and_a_refusal_writes_nothing,
                a_machine_clients_token_acts_for_the_tenant_it_is_mapped_to,
            ];
            holds: [
                a_hold_reserves_and_a_post_captures_part_of_it_releasing_the_rest,
                a_void_releases_all_and_concurrent_posts_and_voids_resolve_a_hold_once,
                an_expired_hold_reads_expired_at_once_and_frees_its_money_at_once,
                at_the_deadline_posts_reads_and_sweeps_race_and_exactly_one_resolves_each_hold,
                holds_settle_in_batches_in_order_and_through_respond_async,
                every_misuse_is_a_typed_4xx_and_writes_nothing,
            ];
            linked: [
                a_chain_commits_whole_in_order_and_a_failing_member_fails_it_all,
                holds_posts_and_reversals_link_and_a_currency_mismatch_fails_the_chain,
                concurrent_chains_on_the_sync_and_async_routes_apply_whole_or_not_at_all,
                chains_inside_batches_settle_whole_even_across_the_workers_windows,
                every_misuse_of_a_chain_is_a_typed_4xx_and_writes_nothing,
                a_queued_chains_member_sent_alone_never_applies_without_its_chain,
                a_currency_exchange_is_a_chain_through_a_liquidity_account_per_currency,
            ];
            reversals: [
                a_partial_then_a_full_reversal_move_back_what_was_posted_linked_both_ways,
                concurrent_reversals_on_both_routes_never_sum_to_more_than_the_original,
                a_transfer_and_its_reversals_settle_in_one_batch_in_order,
                every_misuse_of_a_reversal_is_a_typed_4xx_and_writes_nothing,
                several_reversals_of_one_transfer_land_in_one_transaction,
            ];
            reconcile: [
                a_statement_in_either_format_matches_once_and_its_unmatched_line_is_booked_once,
                concurrent_uploads_of_one_statement_count_once,
                every_misuse_of_a_reconciliation_is_a_typed_4xx_and_writes_nothing,
            ];
            history: [
                balances_as_of_past_instants_and_statements_between_them,
                concurrent_writers_leave_each_history_in_time_order_and_every_instant_reads_its_entry,
                every_misuse_of_the_history_is_a_typed_4xx,
                a_year_of_imported_history_reads_back_month_by_month,
            ];
        );
    };
    (@each $api:expr; $($module:ident: [$($test:ident),* $(,)?];)*) => {
        $(
            mod $module {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $test() {
                        $crate::scenarios::$module::$test($api).await;
                    }
                )*
            }
        )*
    };
}
