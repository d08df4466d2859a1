//! The dead-letter queue: what sits in it and why, and redriving it to the transfer queue after a
//! fix. Works against the emulator and against SQS alike (plain receive/send/delete).

use std::io;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use ledger::port::Work;

#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub message_id: String,
    pub receives: u32,
    pub reason: String,
    pub body: String,
}

fn sqs_err(e: impl std::error::Error + 'static) -> io::Error {
    io::Error::other(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

/// Why a message ended here: it does not parse (it never will: fix the sender), or it parsed but
/// could not be settled through every receive (transient failures: redrive after the fix).
fn reason(body: &str, receives: u32) -> String {
    match Work::parse(body) {
        Err(err) => format!("unparseable: {err}"),
        Ok(work) => {
            format!("{} of tenant {} not settled after {receives} receives", work.submission, work.tenant)
        }
    }
}

/// Every message in the dead-letter queue, left in place (each is received with a zero visibility
/// timeout, so it stays visible).
pub async fn list(client: &Client, dlq_url: &str) -> io::Result<Vec<DeadLetter>> {
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..20 {
        let out = client
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(sqs_err)?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for m in messages {
            let receives = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let body = m.body().unwrap_or_default().to_owned();
            let id = m.message_id().unwrap_or_default().to_owned();
            seen.entry(id.clone()).or_insert(DeadLetter {
                message_id: id,
                receives,
                reason: reason(&body, receives),
                body,
            });
        }
    }
    Ok(seen.into_values().collect())
}

/// Moves every message of the dead-letter queue back to the transfer queue: send, then delete. A
/// crash between the two leaves a copy in both, which the worker's idempotency makes harmless.
pub async fn redrive(client: &Client, dlq_url: &str, queue_url: &str) -> io::Result<usize> {
    let mut moved = 0;
    loop {
        let out = client
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
            .await
            .map_err(sqs_err)?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(moved);
        }
        let entries: Vec<SendMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                // The tenant's group again, so the fair queue still tells tenants apart.
                let group = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId));
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body().unwrap_or_default())
                    .set_message_group_id(group.cloned())
                    .build()
                    .ok()
            })
            .collect();
        let sent = client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(sqs_err)?;
        for ok in sent.successful() {
            let Some(m) = ok.id().parse::<usize>().ok().and_then(|i| messages.get(i)) else { continue };
            client
                .delete_message()
                .queue_url(dlq_url)
                .set_receipt_handle(m.receipt_handle.clone())
                .send()
                .await
                .map_err(sqs_err)?;
            moved += 1;
        }
    }
}
