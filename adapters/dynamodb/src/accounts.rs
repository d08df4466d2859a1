//! Accounts: create (idempotent), get, list (by the accounts index), and list an account's entries.

use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use ledger::{Account, AccountId, Entry, LedgerError, NewAccount, TenantId};
use time::OffsetDateTime;

use crate::items::{self, s};
use crate::{Created, DynamoStore, Page, StoreError, keys};

impl DynamoStore {
    /// One conditional PutItem. If the id exists, the stored account comes back with the failed
    /// condition (no second read) and is compared with the request: replay or conflict.
    pub async fn create_account(
        &self,
        tenant: &TenantId,
        request: NewAccount,
        now: OffsetDateTime,
    ) -> Result<Created<Account>, StoreError> {
        let account = request.clone().open(now);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(items::account_item(tenant, &account)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match put {
            Ok(_) => Ok(Created::New(account)),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => {
                    let existing = match failed.item() {
                        Some(item) => items::account_from(item)?,
                        None => self.get_account(tenant, &account.id).await?,
                    };
                    let fields = request.differing_fields(&existing);
                    if fields.is_empty() {
                        Ok(Created::Replayed(existing))
                    } else {
                        Err(LedgerError::IdempotencyConflict { fields }.into())
                    }
                }
                _ => Err(err.into()),
            },
        }
    }

    /// One strongly consistent GetItem.
    pub async fn get_account(&self, tenant: &TenantId, id: &AccountId) -> Result<Account, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(keys::PK, s(keys::account_pk(tenant, id)))
            .key(keys::SK, s(keys::ACCOUNT_SK))
            .consistent_read(true)
            .send()
            .await?;
        match out.item() {
            Some(item) => items::account_from(item),
            None => Err(LedgerError::NotFound { what: "account", id: id.to_string() }.into()),
        }
    }

    /// One Query of the accounts index, ascending by id. The index is eventually consistent: an
    /// account created a moment ago may be missing from a list for a moment.
    pub async fn list_accounts(
        &self,
        tenant: &TenantId,
        limit: u16,
        after: Option<&AccountId>,
    ) -> Result<Page<Account, AccountId>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .expression_attribute_values(":pk", s(keys::accounts_index_pk(tenant)))
            // One more than asked: whether it comes back says whether there is a next page.
            .limit(i32::from(limit) + 1);
        query = match after {
            Some(after) => query
                .key_condition_expression("gsi1pk = :pk AND gsi1sk > :after")
                .expression_attribute_values(":after", s(after.as_str())),
            None => query.key_condition_expression("gsi1pk = :pk"),
        };
        let out = query.send().await?;
        let mut accounts = out.items().iter().map(items::account_from).collect::<Result<Vec<_>, _>>()?;
        let next = paginate(&mut accounts, limit, |a| a.id.clone());
        Ok(Page { items: accounts, next })
    }

    /// One Query of the account's item collection, newest entry first. The account item sorts below
    /// every entry, so the same query proves the account exists when it has no entries (or none
    /// left past the cursor) at no extra call.
    pub async fn list_entries(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        limit: u16,
        before_sequence: Option<u64>,
    ) -> Result<Page<Entry, u64>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(keys::account_pk(tenant, account)))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(i32::from(limit) + 1);
        query = match before_sequence {
            Some(seq) => query
                .key_condition_expression("pk = :pk AND sk < :before")
                .expression_attribute_values(":before", s(keys::entry_sk(seq))),
            None => query.key_condition_expression("pk = :pk"),
        };
        let out = query.send().await?;
        if out.items().is_empty() {
            return Err(LedgerError::NotFound { what: "account", id: account.to_string() }.into());
        }
        let is_entry = |item: &&items::Item| matches!(item.get(keys::SK), Some(AttributeValue::S(sk)) if sk.starts_with(keys::ENTRY_SK_PREFIX));
        let mut entries =
            out.items().iter().filter(is_entry).map(items::entry_from).collect::<Result<Vec<_>, _>>()?;
        let next = paginate(&mut entries, limit, |e| e.sequence);
        Ok(Page { items: entries, next })
    }
}

/// Cuts a `limit + 1` result down to `limit` and returns the cursor of the last kept item if
/// anything was cut.
fn paginate<T, C>(items: &mut Vec<T>, limit: u16, cursor: impl Fn(&T) -> C) -> Option<C> {
    let limit = usize::from(limit);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    }
}
