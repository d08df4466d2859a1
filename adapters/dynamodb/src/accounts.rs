//! Accounts: create (idempotent), get, list (by the accounts index), and list an account's entries;
//! an account's past is read in `history`.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use ledger::engine::Contention;
use ledger::port::{
    Accounts, BalanceAt, Created, EntryPosition, Page, Statement, StatementRange, StoreError,
};
use ledger::{
    Account, AccountBalance, AccountChange, AccountId, AccountVersion, Entry, Event, LedgerError,
    MetadataMatch, NewAccount, TenantId,
};
use time::OffsetDateTime;

use crate::cancel::{Cancelled, cancellation};
use crate::error::sdk;
use crate::items::{self, Item, put, put_if_new, s};
use crate::keys::{self, key};
use crate::store::DynamoStore;
use crate::store::current_correlation;

#[async_trait]
impl Accounts for DynamoStore {
    /// One TransactWriteItems putting the profile and the balance item, each only if new (redone if
    /// it only met another transaction). If the id exists, the stored account is read and compared
    /// with the request: replay or conflict.
    async fn create_account(
        &self,
        tenant: &TenantId,
        request: NewAccount,
        now: OffsetDateTime,
    ) -> Result<Created<Account>, StoreError> {
        let account = request.clone().open(now);
        let event = Event::account_opened(tenant, &account);
        let correlation = current_correlation();
        // Listed by its metadata, and its tenant in the directory, before it is written: once
        // created, it is found.
        futures::try_join!(self.list_account(tenant, &account), self.list_tenant(tenant))?;
        let mut contention = Contention::start();
        loop {
            let written = self
                .client
                .transact_write_items()
                .set_transact_items(Some(
                    // A hot account's shards, the main one first (`ledger::shard`).
                    (0..account.shard_items)
                        .map(|shard| {
                            let balance = AccountBalance { shard, ..account.balance_state() };
                            put_if_new(&self.table, items::balance_item(tenant, &balance))
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                ))
                .transact_items(put_if_new(&self.table, items::profile_item(tenant, &account))?)
                .transact_items(put(
                    &self.table,
                    crate::events::event_item(tenant, &event, correlation.as_deref())?,
                )?)
                .send()
                .await;
            let err = match written {
                Ok(_) => return Ok(Created::New(account)),
                Err(err) => err,
            };
            if let Cancelled::Contended = cancellation(err)? {
                let pause = contention.next_pause().ok_or_else(|| {
                    StoreError::Unavailable(format!("account {} stayed contended", account.id))
                })?;
                tokio::time::sleep(pause).await;
                continue;
            }
            let existing = self.get_account(tenant, &account.id).await?;
            let fields = request.differing_fields(&existing);
            return if fields.is_empty() {
                Ok(Created::Replayed(existing))
            } else {
                Err(LedgerError::IdempotencyConflict {
                    fields: fields.into_iter().map(str::to_owned).collect(),
                }
                .into())
            };
        }
    }

    /// One strongly consistent Query of the account's profile and balance items (and for a hot
    /// account, one snapshot of its shards).
    async fn get_account(&self, tenant: &TenantId, id: &AccountId) -> Result<Account, StoreError> {
        Ok(self.account_and_shards(tenant, id).await?.0)
    }

    /// The account's version (its entry count and revision): one consistent GetItem of its
    /// balance item (for a hot account, a snapshot of its shards, summed). What a conditional GET
    /// revalidates against.
    async fn account_balance(&self, tenant: &TenantId, id: &AccountId) -> Result<AccountBalance, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::account_pk(tenant, id), keys::BALANCE_SK)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        let main = items::balance_from(&out.item.ok_or_else(|| StoreError::not_found("account", id))?)?;
        if !main.is_sharded() {
            return Ok(main);
        }
        Ok(ledger::escrow::merged(&self.shard_snapshot(tenant, id, main.shard_items).await?))
    }

    /// Reads the account, decides the change, and writes it in one transaction: the balance item's
    /// policy and revision (conditioned on the version read, as every transfer's write is), the
    /// profile's metadata if it changed, and the event. Metadata is listed for search first. A
    /// write cancelled because the account moved is redone from a fresh read, within the
    /// contention budget, unless the client named the version (`expected`): then it is stale.
    async fn change_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
        change: &AccountChange,
        expected: Option<AccountVersion>,
        now: OffsetDateTime,
    ) -> Result<Account, StoreError> {
        let stale =
            || StoreError::from(LedgerError::PreconditionFailed { what: "account", id: id.to_string() });
        let mut contention = Contention::start();
        loop {
            let (account, shards) = self.account_and_shards(tenant, id).await?;
            if expected.is_some_and(|version| version != account.version()) {
                return Err(stale());
            }
            let Some(changed) = change.decide(&account)? else { return Ok(account) };
            if changed.metadata != account.metadata {
                self.list_account(tenant, &changed).await?;
            }
            let event = Event::account_changed(tenant, change.event_type(), &changed, now);
            // Every shard takes the new policy, its funds spread so that none is short under it
            // (`ledger::escrow::respread`); shards the account gains are added.
            // An account spread over more shards shares its headroom among them all.
            let policy = changed.balance_state();
            let added: Vec<AccountBalance> = (account.shard_items..changed.shard_items)
                .map(|shard| AccountBalance {
                    shard,
                    balances: Default::default(),
                    entry_count: 0,
                    moved: 0,
                    ..policy.clone()
                })
                .collect();
            let moved = if added.is_empty() {
                ledger::escrow::respread(&shards, &policy)
            } else {
                ledger::escrow::spread_evenly(&[shards.as_slice(), &added].concat(), &policy)
            };
            let mut writes = Vec::new();
            for (shard, moved) in shards.iter().zip(&moved) {
                writes.push(self.policy_update(tenant, shard, &policy, *moved)?);
            }
            for (added, moved) in added.into_iter().zip(&moved[shards.len()..]) {
                let added = AccountBalance { moved: *moved, ..added };
                writes.push(put_if_new(&self.table, items::balance_item(tenant, &added))?);
            }
            if changed.metadata != account.metadata || changed.shard_items != account.shard_items {
                writes.push(self.profile_update(tenant, &changed)?);
            }
            writes.push(put(
                &self.table,
                crate::events::event_item(tenant, &event, current_correlation().as_deref())?,
            )?);
            let sent = self.client.transact_write_items().set_transact_items(Some(writes)).send().await;
            let Err(err) = sent else { return Ok(changed) };
            let cancelled = cancellation(err)?;
            if expected.is_some() && cancelled != Cancelled::Contended {
                return Err(stale());
            }
            let pause = contention
                .next_pause()
                .ok_or_else(|| StoreError::Unavailable(format!("account {id} stayed contended")))?;
            tokio::time::sleep(pause).await;
        }
    }

    /// One Query of the accounts index, ascending by id, then one TransactGetItems of the page's
    /// balance items: the balances of a page are one snapshot, so they always sum as the ledger's
    /// totals did at one instant (a BatchGetItem could read one account before a transfer and its
    /// counterparty after it). The index is eventually consistent: an account created a moment ago
    /// may be missing from a list for a moment.
    async fn list_accounts(
        &self,
        tenant: &TenantId,
        metadata: &MetadataMatch,
        page_size: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<Account, AccountId>, StoreError> {
        if let Some((key, value)) = metadata.pairs().iter().next() {
            return self.accounts_with(tenant, metadata, (key, value), page_size, after).await;
        }
        let (profiles, wanted, more) = self.profiles_page(tenant, page_size, after).await?;
        let balances = self.page_balances(tenant, &wanted).await?;
        let mut accounts = Vec::with_capacity(profiles.len());
        for (profile, (id, count)) in profiles.iter().zip(&wanted) {
            accounts.push(account_on_page(tenant, profile, id, *count, &balances)?);
        }
        let next = if more { accounts.last().map(|a| a.id.clone()) } else { None };
        Ok(Page { items: accounts, next })
    }

    /// The page's balance items as `list_accounts` reads them (one snapshot), each shard a head.
    async fn shard_balances(
        &self,
        tenant: &TenantId,
        page_size: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<AccountBalance, AccountId>, StoreError> {
        let (_, wanted, more) = self.profiles_page(tenant, page_size, after).await?;
        let balances = self.page_balances(tenant, &wanted).await?;
        let mut shards = Vec::with_capacity(wanted.len());
        for (id, count) in &wanted {
            for shard in 0..(*count).max(1) {
                // A shard with no balance item yet has nothing to commit to.
                if let Some(item) = balances.get(&keys::shard_pk(tenant, id, shard)) {
                    shards.push(items::balance_from(item)?);
                }
            }
        }
        let next = if more { wanted.last().map(|(id, _)| id.clone()) } else { None };
        Ok(Page { items: shards, next })
    }

    /// Consistent Queries of the shard's entries, newest first, down to `from` (`chains`).
    async fn shard_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        shard: u16,
        from: u64,
    ) -> Result<Vec<Entry>, StoreError> {
        self.entries_from(tenant, account, shard, from).await
    }

    /// A page of the account's entries (`entries_page`; a hot account's merged, `hot_entries`).
    async fn list_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        page_size: u16,
        before: Option<EntryPosition>,
    ) -> Result<Page<Entry, EntryPosition>, StoreError> {
        let page = self.entries_page(tenant, account, page_size, before);
        match futures::try_join!(self.hot_shards(tenant, account), page)? {
            (Some(shards), _) => self.hot_entries(tenant, account, shards, page_size, before).await,
            (None, page) => Ok(page),
        }
    }

    async fn balance_at(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<BalanceAt, StoreError> {
        ledger::port::check_balance_at(at, now)?;
        let balance = self.balance_until(tenant, account, at, Some("at"));
        match futures::try_join!(self.hot_shards(tenant, account), balance)? {
            (Some(shards), _) => self.hot_balance_at(tenant, account, shards, at, Some("at")).await,
            (None, balance) => Ok(balance),
        }
    }

    async fn statement(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        range: StatementRange,
        now: OffsetDateTime,
    ) -> Result<Statement, StoreError> {
        range.check(now)?;
        match self.hot_shards(tenant, account).await? {
            Some(shards) => self.hot_statement(tenant, account, shards, range).await,
            None => self.statement_page(tenant, account, range).await,
        }
    }
}

impl DynamoStore {
    /// How many shards the account has, if more than one (its history is then read merged,
    /// `shard_history`): one GetItem of its balance item's shard count, beside the read of an
    /// account that is not hot.
    async fn hot_shards(&self, tenant: &TenantId, account: &AccountId) -> Result<Option<u16>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(keys::account_pk(tenant, account), keys::BALANCE_SK)))
            .projection_expression("shard_items")
            // An account marked hot a moment ago is read merged.
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        let items = out.item.as_ref().and_then(|item| item.get("shard_items")).and_then(|v| v.as_n().ok());
        Ok(items.and_then(|n| n.parse::<u16>().ok()).filter(|count| *count > 1))
    }

    /// One Query of the account's item collection, newest entry first. The account's own items sort
    /// below every entry, so the same query proves the account exists when it has no entries (or
    /// none left past the cursor) at no extra call.
    async fn entries_page(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        page_size: u16,
        before: Option<EntryPosition>,
    ) -> Result<Page<Entry, EntryPosition>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(keys::account_pk(tenant, account)))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(i32::from(page_size) + 1);
        // Below the account's hold listings, which sort after its entries.
        let before = before.map_or_else(|| keys::ENTRIES_END.to_owned(), keys::entry_sk);
        query = query
            .key_condition_expression("pk = :pk AND sk < :before")
            .expression_attribute_values(":before", s(before));
        let out = query.send().await.map_err(sdk)?;
        if out.items().is_empty() {
            return Err(StoreError::not_found("account", account));
        }
        let is_entry = |item: &&items::Item| matches!(item.get(keys::SK), Some(AttributeValue::S(sk)) if sk.starts_with(keys::ENTRY_SK_PREFIX));
        let mut entries =
            out.items().iter().filter(is_entry).map(items::entry_from).collect::<Result<Vec<_>, _>>()?;
        let next = paginate(&mut entries, page_size, EntryPosition::of);
        Ok(Page { items: entries, next })
    }
}

/// The account of `profile` on a page, as one: its balance items (`count` shards) from
/// `balances` (`DynamoStore::page_balances`), summed.
fn account_on_page(
    tenant: &TenantId,
    profile: &Item,
    id: &AccountId,
    count: u16,
    balances: &HashMap<String, Item>,
) -> Result<Account, StoreError> {
    let lacks = || StoreError::Corrupt(format!("account {id} lacks a balance item"));
    let main = balances.get(&keys::account_pk(tenant, id)).ok_or_else(lacks)?;
    let mut account = items::account_from(profile, main)?;
    if count > 1 {
        let shards = (0..count)
            .map(|shard| {
                balances
                    .get(&keys::shard_pk(tenant, id, shard))
                    .ok_or_else(lacks)
                    .and_then(items::balance_from)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let whole = ledger::escrow::merged(&shards);
        (account.balances, account.entry_count) = (whole.balances, whole.entry_count);
    }
    Ok(account)
}

/// Cuts a `limit + 1` result down to `limit` and returns the cursor of the last kept item if
/// anything was cut.
fn paginate<T, C>(items: &mut Vec<T>, page_size: u16, cursor: impl Fn(&T) -> C) -> Option<C> {
    let limit = usize::from(page_size);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    }
}

impl DynamoStore {
    /// The account, as one, and each of its shards as read (just its balance item if it is not
    /// hot): one strongly consistent Query of its profile and balance items, and for a hot
    /// account one snapshot of its shards.
    async fn account_and_shards(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<(Account, Vec<AccountBalance>), StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk <= :balance")
            .expression_attribute_values(":pk", s(keys::account_pk(tenant, id)))
            .expression_attribute_values(":balance", s(keys::BALANCE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk)?;
        let (profile, balance) = match out.items() {
            [] => return Err(StoreError::not_found("account", id)),
            [profile, balance] => (profile, balance),
            _ => return Err(StoreError::Corrupt(format!("account {id} lacks its profile or balance item"))),
        };
        let mut account = items::account_from(profile, balance)?;
        let main = items::balance_from(balance)?;
        if !main.is_sharded() {
            return Ok((account, vec![main]));
        }
        let shards = self.shard_snapshot(tenant, id, main.shard_items).await?;
        let whole = ledger::escrow::merged(&shards);
        (account.balances, account.entry_count, account.revision) =
            (whole.balances, whole.entry_count, whole.revision);
        Ok((account, shards))
    }

    /// A page of the tenant's account profiles by id, after `after` (from `gsi1`), with each
    /// one's id and how many balance items (shards) it has, and whether more follow.
    async fn profiles_page(
        &self,
        tenant: &TenantId,
        page_size: u16,
        after: Option<&AccountId>,
    ) -> Result<(Vec<Item>, Vec<(AccountId, u16)>, bool), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .expression_attribute_values(":pk", s(keys::accounts_index_pk(tenant)))
            // One more than asked: whether it comes back says whether there is a next page.
            .limit(i32::from(page_size) + 1);
        query = match after {
            Some(after) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", s(after.as_str())),
            None => query.key_condition_expression("gsi1pk = :pk"),
        };
        let mut profiles = query.send().await.map_err(sdk)?.items.unwrap_or_default();
        let more = profiles.len() > usize::from(page_size);
        profiles.truncate(usize::from(page_size));
        // Each account's balance items: a hot account's shards, as its profile counts them.
        let shard_items = |profile: &Item| items::number::<u16>(profile.get("shard_items")).unwrap_or(1);
        let mut wanted = Vec::with_capacity(profiles.len());
        for profile in &profiles {
            wanted
                .push((items::Reader(profile).parsed("id", |v| AccountId::parse(v))?, shard_items(profile)));
        }
        Ok((profiles, wanted, more))
    }

    /// The balance items of a page of accounts (`wanted`: each with its count of shards), by
    /// partition key: one snapshot, so the page's balances always sum as the ledger's totals did
    /// at one instant (a BatchGetItem could read one account before a transfer and its
    /// counterparty after it), unless its hot accounts bring it over 100 items.
    async fn page_balances(
        &self,
        tenant: &TenantId,
        wanted: &[(AccountId, u16)],
    ) -> Result<HashMap<String, Item>, StoreError> {
        let keys: Vec<Item> = wanted
            .iter()
            .flat_map(|(id, count)| {
                (0..(*count).max(1))
                    .map(move |shard| key(keys::shard_pk(tenant, id, shard), keys::BALANCE_SK))
            })
            .collect();
        let pk_of = |item: &Item| item.get(keys::PK).and_then(|v| v.as_s().ok()).cloned();
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(crate::reads::MAX_READ_KEYS) {
            found.extend(
                self.snapshot(chunk.to_vec())
                    .await?
                    .into_iter()
                    .filter_map(|item| Some((pk_of(&item)?, item))),
            );
        }
        Ok(found)
    }

    /// A page of the accounts listed under `first` (a pair of `metadata`), those holding every
    /// pair. A listing whose account was never
    /// created, or was created with other metadata, finds nothing.
    async fn accounts_with(
        &self,
        tenant: &TenantId,
        metadata: &MetadataMatch,
        first: (&str, &str),
        page_size: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<Account, AccountId>, StoreError> {
        let (ids, more) = self.accounts_listed(tenant, first, usize::from(page_size), after).await?;
        let next = if more { ids.last().cloned() } else { None };
        // The profiles (no transfer rewrites them), and the balances as one snapshot, as a list has.
        let profiles = ids.iter().map(|id| key(keys::account_pk(tenant, id), keys::ACCOUNT_SK)).collect();
        let balances = ids.iter().map(|id| key(keys::account_pk(tenant, id), keys::BALANCE_SK)).collect();
        let (mut found, balances) = futures::try_join!(self.batch_get(profiles), self.snapshot(balances))?;
        found.extend(balances);
        let text = |item: &Item, name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let by_key: HashMap<(Option<String>, Option<String>), &Item> =
            found.iter().map(|item| ((text(item, keys::PK), text(item, keys::SK)), item)).collect();
        let mut accounts = Vec::new();
        for id in &ids {
            let pk = Some(keys::account_pk(tenant, id));
            let profile = by_key.get(&(pk.clone(), Some(keys::ACCOUNT_SK.to_owned())));
            let balance = by_key.get(&(pk, Some(keys::BALANCE_SK.to_owned())));
            let (Some(profile), Some(balance)) = (profile, balance) else { continue };
            let account = items::account_from(profile, balance)?;
            if metadata.pairs().iter().all(|(k, v)| account.metadata.as_map().get(k) == Some(v)) {
                accounts.push((account, *profile));
            }
        }
        // With hot accounts, the page's balances again as one snapshot with their shards.
        if accounts.iter().any(|(a, _)| a.shard_items > 1) {
            let wanted: Vec<(AccountId, u16)> =
                accounts.iter().map(|(a, _)| (a.id.clone(), a.shard_items)).collect();
            let balances = self.page_balances(tenant, &wanted).await?;
            for ((account, profile), (id, count)) in accounts.iter_mut().zip(&wanted) {
                *account = account_on_page(tenant, profile, id, *count, &balances)?;
            }
        }
        Ok(Page { items: accounts.into_iter().map(|(a, _)| a).collect(), next })
    }
}

impl DynamoStore {
    /// Sets a balance item's (`read`, one shard of the account as read) policy and revision as
    /// `policy` has them, and the funds moved into it (`moved`) if the account has shards, only if
    /// it is still as read: the same condition every transfer's write carries.
    fn policy_update(
        &self,
        tenant: &TenantId,
        read: &AccountBalance,
        policy: &AccountBalance,
        moved: i128,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let was = ledger::engine::AsRead::of(read);
        let mut sets = Vec::new();
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::shard_pk(tenant, &read.id, read.shard)))
            .key(keys::SK, s(keys::BALANCE_SK))
            .condition_expression(crate::writer::as_read_condition(was));
        for (name, value) in crate::writer::as_read_values(was) {
            update = update.expression_attribute_values(name, value);
        }
        let mut attributes = items::policy(policy);
        if policy.is_sharded() {
            attributes
                .extend([("shard".to_owned(), items::n(read.shard)), ("moved".to_owned(), items::n(moved))]);
        }
        let mut removes = Vec::new();
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            sets.push(format!("#p{i} = :p{i}"));
            update = update
                .expression_attribute_names(format!("#p{i}"), name)
                .expression_attribute_values(format!(":p{i}"), value);
        }
        for (name, bound) in
            [("overdraft_limit", policy.bounds.overdraft_limit), ("max_balance", policy.bounds.max_balance)]
        {
            if bound.is_none() {
                removes.push(name);
            }
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let update = update.update_expression(expression).build().map_err(crate::error::unbuilt)?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(update).build())
    }

    /// Sets the profile's metadata and count of shards as `changed` has them (the balance items'
    /// conditions order it).
    fn profile_update(
        &self,
        tenant: &TenantId,
        changed: &Account,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        let profile = items::profile_item(tenant, changed);
        let metadata = profile.get("metadata").cloned().unwrap_or(AttributeValue::M(HashMap::new()));
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.table)
            .key(keys::PK, s(keys::account_pk(tenant, &changed.id)))
            .key(keys::SK, s(keys::ACCOUNT_SK))
            .update_expression("SET metadata = :metadata, shard_items = :shards")
            .expression_attribute_values(":metadata", metadata)
            .expression_attribute_values(":shards", items::n(changed.shard_items))
            .build()
            .map_err(crate::error::unbuilt)?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder().update(update).build())
    }
}
