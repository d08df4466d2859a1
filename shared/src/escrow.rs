//! The escrow of a hot account's shards (`crate::shard`): the account as one, funds gathered into
//! a shard short of them, and spread again under a new policy.

use crate::account::AccountBalance;
use crate::money::Balances;

/// The account as one: the sum of its shards (`shards`, one per shard, any order), as shard 0
/// with nothing moved. Its version counts every shard's entries.
///
/// # Panics
/// If `shards` is empty: an account has at least its main shard.
pub fn merged(shards: &[AccountBalance]) -> AccountBalance {
    let main = shards.iter().find(|s| s.shard == 0).unwrap_or(&shards[0]);
    let mut whole = main.clone();
    whole.balances = Balances::default();
    whole.entry_count = 0;
    whole.moved = 0;
    for shard in shards {
        let (b, s) = (&mut whole.balances, &shard.balances);
        // Each shard's totals are at most POSTED_LIMIT; their sum is shown, never stored.
        b.debits_pending = b.debits_pending.saturating_add(s.debits_pending);
        b.debits_posted = b.debits_posted.saturating_add(s.debits_posted);
        b.credits_pending = b.credits_pending.saturating_add(s.credits_pending);
        b.credits_posted = b.credits_posted.saturating_add(s.credits_posted);
        whole.entry_count += shard.entry_count;
        whole.last_entry_at = whole.last_entry_at.max(shard.last_entry_at);
    }
    whole
}

/// The new `moved` of each shard a gather touches, the target's included: the shards as read, and
/// what each holds once the gather is written.
pub type Moves = Vec<(AccountBalance, i128)>;

/// Moves headroom into shard `target` from the others (`shards`, every shard as read) so that it
/// gains `need` and a share of what the others have to spare besides (so that it does not run
/// short again at once), from the shards with the most first, so the write touches few; or, if
/// the others have less than `need` to spare, all they have. `None` if they have nothing to
/// spare: then what the target has is all the account has.
pub fn gather(shards: &[AccountBalance], target: u16, need: i128) -> Option<Moves> {
    let into = shards.iter().find(|s| s.shard == target)?;
    let mut givers: Vec<(&AccountBalance, i128)> = shards
        .iter()
        .filter(|s| s.shard != target)
        .filter_map(|s| Some((s, s.headroom()?)))
        .filter(|(_, spare)| *spare > 0)
        .collect();
    let spare: i128 = givers.iter().map(|(_, spare)| spare).sum();
    if spare == 0 {
        return None;
    }
    givers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.shard.cmp(&b.0.shard)));
    let count = shards.len() as i128;
    let need = need.clamp(1, spare);
    let mut wanted = need + (spare - need) / count;
    let mut moves = Vec::new();
    let mut gained = 0;
    for (giver, spare) in givers {
        if wanted == 0 {
            break;
        }
        let take = spare.min(wanted);
        wanted -= take;
        gained += take;
        moves.push((giver.clone(), giver.moved - take));
    }
    moves.push((into.clone(), into.moved + gained));
    Some(moves)
}

/// The `moved` of each shard (in the order of `shards`) under a new policy (`policy`: the account
/// once changed, whose floor and overdraft limit apply): every shard's headroom at or above zero,
/// funds moved from the shards with the most to those short. The policy admits the whole account
/// (its balance above its floor), so the shards' headroom sums to zero or more and none is left
/// short; an account without a floor keeps its moves.
pub fn respread(shards: &[AccountBalance], policy: &AccountBalance) -> Vec<i128> {
    let mut moved: Vec<i128> = shards.iter().map(|s| s.moved).collect();
    let mut headroom: Vec<i128> = shards.iter().map(|s| under(s, policy).headroom().unwrap_or(0)).collect();
    for short in 0..shards.len() {
        while headroom[short] < 0 {
            let Some(rich) = (0..shards.len()).filter(|&i| headroom[i] > 0).max_by_key(|&i| headroom[i])
            else {
                break;
            };
            let take = headroom[rich].min(-headroom[short]);
            headroom[rich] -= take;
            moved[rich] -= take;
            headroom[short] += take;
            moved[short] += take;
        }
    }
    moved
}

/// The `moved` of each shard (in the order of `shards`: every shard the account will have, those
/// it gains empty) when it spreads over more: the account's headroom under `policy` shared evenly
/// (the main shard takes the remainder), so that writers drawn to any shard find funds there
/// rather than each gathering them from the main one at once. An account without a floor, or
/// with no headroom to share, is spread as [`respread`] spreads it.
pub fn spread_evenly(shards: &[AccountBalance], policy: &AccountBalance) -> Vec<i128> {
    let headroom: Option<Vec<i128>> = shards.iter().map(|s| under(s, policy).headroom()).collect();
    let Some(headroom) = headroom else { return respread(shards, policy) };
    let total: i128 = headroom.iter().sum();
    let count = shards.len() as i128;
    if total <= 0 || count == 0 {
        return respread(shards, policy);
    }
    let share = total / count;
    shards
        .iter()
        .zip(&headroom)
        .map(|(shard, had)| {
            let wanted = if shard.shard == 0 { share + total % count } else { share };
            shard.moved + wanted - had
        })
        .collect()
}

/// `shard` under `policy`'s overdraft rule and bounds.
fn under(shard: &AccountBalance, policy: &AccountBalance) -> AccountBalance {
    AccountBalance { allow_overdraft: policy.allow_overdraft, bounds: policy.bounds, ..shard.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use crate::money::Limit;
    use proptest::prelude::*;
    use time::OffsetDateTime;

    /// Shard `index` of a bounded account with `credits` posted, `debits` posted and `moved`.
    fn shard(index: u16, credits: u128, debits: u128, moved: i128) -> AccountBalance {
        let mut balance = fixtures::account("hot", false).open(OffsetDateTime::UNIX_EPOCH).balance_state();
        balance.shard = index;
        balance.moved = moved;
        balance.balances = Balances { credits_posted: credits, debits_posted: debits, ..Balances::default() };
        balance
    }

    /// `shards`, each with an overdraft limit of `limit`.
    fn limited(mut shards: Vec<AccountBalance>, limit: u64) -> Vec<AccountBalance> {
        for s in &mut shards {
            s.bounds.overdraft_limit = Some(Limit::new(limit).unwrap());
        }
        shards
    }

    /// `shards` with the `moved` of each (in their order) set.
    fn with_moved(shards: &[AccountBalance], moved: &[i128]) -> Vec<AccountBalance> {
        shards.iter().zip(moved).map(|(s, m)| AccountBalance { moved: *m, ..s.clone() }).collect()
    }

    fn headroom(shards: &[AccountBalance]) -> Vec<i128> {
        shards.iter().map(|s| s.headroom().unwrap()).collect()
    }

    fn after(shards: &[AccountBalance], moves: &Moves) -> Vec<AccountBalance> {
        shards
            .iter()
            .map(|s| {
                let moved = moves.iter().find(|(m, _)| m.shard == s.shard).map_or(s.moved, |(_, m)| *m);
                AccountBalance { moved, ..s.clone() }
            })
            .collect()
    }

    #[test]
    fn the_account_is_the_sum_of_its_shards() {
        let shards = [shard(1, 50, 10, -5), shard(0, 100, 30, 5)];
        let whole = merged(&shards);
        assert_eq!((whole.shard, whole.moved), (0, 0));
        assert_eq!((whole.balances.credits_posted, whole.balances.debits_posted), (150, 40));
    }

    #[test]
    fn a_gather_takes_from_the_richest_first_and_keeps_the_sum_of_moves() {
        let shards = [shard(0, 0, 0, 0), shard(1, 10, 0, 0), shard(2, 100, 0, 0), shard(3, 40, 0, 0)];
        let moves = gather(&shards, 0, 30).unwrap();
        // 30 needed, and a quarter of the 120 the others have left besides: 60, all from shard 2.
        assert_eq!(moves.len(), 2);
        assert_eq!((moves[0].0.shard, moves[0].1), (2, -60));
        assert_eq!((moves[1].0.shard, moves[1].1), (0, 60));
        let moved = after(&shards, &moves);
        assert_eq!(moved.iter().map(|s| s.moved).sum::<i128>(), 0);
        assert_eq!(headroom(&moved), [60, 10, 40, 40]);
    }

    #[test]
    fn the_others_give_all_they_have_when_it_is_too_little_and_nothing_is_no_gather() {
        let shards = [shard(0, 5, 0, 0), shard(1, 10, 0, 0), shard(2, 0, 0, 0)];
        let moves = gather(&shards, 0, 11).unwrap();
        assert_eq!(moves.iter().map(|(s, m)| (s.shard, *m)).collect::<Vec<_>>(), [(1, -10), (0, 10)]);
        let drained = after(&shards, &moves);
        assert!(gather(&drained, 0, 1).is_none());
    }

    #[test]
    fn the_overdraft_limit_is_the_main_shards() {
        let mut main = shard(0, 0, 0, 0);
        let mut other = shard(1, 0, 0, 0);
        for s in [&mut main, &mut other] {
            s.bounds.overdraft_limit = Some(Limit::new(100).unwrap());
        }
        assert_eq!((main.headroom(), other.headroom()), (Some(100), Some(0)));
        let moves = gather(&[main, other], 1, 40).unwrap();
        assert_eq!(moves.iter().map(|(s, m)| (s.shard, *m)).collect::<Vec<_>>(), [(0, -70), (1, 70)]);
    }

    #[test]
    fn a_new_policy_leaves_no_shard_short() {
        // Shard 0 spent 80 of its credit line of 100; shard 1 holds 200. The limit drops to 0.
        let mut shards = [shard(0, 0, 80, 0), shard(1, 200, 0, 0)];
        for s in &mut shards {
            s.bounds.overdraft_limit = Some(Limit::new(100).unwrap());
        }
        let mut policy = merged(&shards);
        policy.bounds.overdraft_limit = None;
        let moved = respread(&shards, &policy);
        assert_eq!(moved, [80, -80]);
    }

    #[test]
    fn spread_over_more_shards_each_gets_an_even_share_of_the_headroom() {
        // 103 on the main shard, 3 shards added empty: 25 each, the main one the remainder.
        let shards = [shard(0, 103, 0, 0), shard(1, 0, 0, 0), shard(2, 0, 0, 0), shard(3, 0, 0, 0)];
        let moved = spread_evenly(&shards, &merged(&shards));
        assert_eq!(moved, [-75, 25, 25, 25]);
        // No headroom to share: nothing moves.
        let empty = [shard(0, 0, 0, 0), shard(1, 0, 0, 0)];
        assert_eq!(spread_evenly(&empty, &merged(&empty)), [0, 0]);
    }

    proptest! {
        /// Whatever the shards hold, spreading them over more keeps the moves summing to zero and
        /// leaves every shard's headroom within one share of the others', none below zero.
        #[test]
        fn an_even_spread_conserves_and_leaves_no_shard_short(
            held in proptest::collection::vec((0u128..1_000, 0u128..1_000, -500i128..500), 1..8),
            added in 1usize..16,
            limit in 0u64..2_000,
        ) {
            let mut shards: Vec<AccountBalance> =
                held.iter().enumerate().map(|(i, (c, d, m))| shard(i as u16, *c, *d, *m)).collect();
            let drift: i128 = shards.iter().map(|s| s.moved).sum();
            shards[0].moved -= drift;
            shards.extend((0..added).map(|i| shard((held.len() + i) as u16, 0, 0, 0)));
            let shards = limited(shards, limit);
            let whole = merged(&shards);
            prop_assume!(!whole.below_floor(&whole.balances));
            let moved = spread_evenly(&shards, &whole);
            prop_assert_eq!(moved.iter().sum::<i128>(), 0);
            let shards = with_moved(&shards, &moved);
            let headroom = headroom(&shards);
            prop_assert!(headroom.iter().all(|h| *h >= 0));
            let others = &headroom[1..];
            prop_assert!(others.iter().all(|h| *h == others[0]), "{:?}", headroom);
            prop_assert!(headroom[0] >= others[0] && headroom[0] < others[0] + shards.len() as i128);
        }

        /// Whatever the shards hold and whichever is short, a gather keeps the moves summing to
        /// zero, leaves every shard's headroom at zero or more, and gives the target what it needs.
        #[test]
        fn a_gather_conserves_and_crosses_no_bound(
            held in proptest::collection::vec(0u128..1_000, 2..8),
            target in 0u16..8,
            need in 1i128..2_000,
        ) {
            let shards: Vec<AccountBalance> =
                held.iter().enumerate().map(|(i, h)| shard(i as u16, *h, 0, 0)).collect();
            let target = target % shards.len() as u16;
            let before = headroom(&shards);
            let others: i128 = before.iter().enumerate()
                .filter(|(i, _)| *i as u16 != target).map(|(_, h)| h).sum();
            match gather(&shards, target, need) {
                None => prop_assert_eq!(others, 0),
                Some(moves) => {
                    let moved = after(&shards, &moves);
                    prop_assert_eq!(moved.iter().map(|s| s.moved).sum::<i128>(), 0);
                    let now = headroom(&moved);
                    prop_assert!(now.iter().all(|h| *h >= 0));
                    prop_assert!(now[target as usize] - before[target as usize] >= need.min(others));
                    prop_assert_eq!(now.iter().sum::<i128>(), before.iter().sum::<i128>());
                }
            }
        }

        /// A policy the whole account admits leaves every shard's headroom at zero or more.
        #[test]
        fn a_respread_leaves_every_shard_whole(
            held in proptest::collection::vec((0u128..1_000, 0u128..1_000), 2..8),
            limit in 0u64..2_000,
        ) {
            let shards = limited(
                held.iter().enumerate().map(|(i, (c, d))| shard(i as u16, *c, *d, 0)).collect(),
                limit,
            );
            let whole = merged(&shards);
            prop_assume!(!whole.below_floor(&whole.balances));
            let moved = respread(&shards, &whole);
            prop_assert_eq!(moved.iter().sum::<i128>(), 0);
            let shards = with_moved(&shards, &moved);
            prop_assert!(headroom(&shards).iter().all(|h| *h >= 0));
        }
    }
}
