//! Tenants cannot hurt each other: the transfer queue delivers a quiet tenant's messages before a
//! noisy tenant's backlog (SQS fair queues, emulated in moto), and a tenant flooding the API is held
//! to its own limit while another tenant's latencies stay near their unloaded values.

use aws_sdk_sqs::types::MessageSystemAttributeName;
use harness::stack::fresh_stack;
use ledger::{Submission, TenantId, TransferId};
use ledger_sqs::Work;
use ledger_telemetry::{CorrelationId, TraceContext};

fn work(tenant: &str, transfer: &str) -> Work {
    Work {
        tenant: TenantId::parse(tenant).unwrap(),
        submission: Submission::Transfer(TransferId::parse(transfer).unwrap()),
    }
}

#[tokio::test]
async fn a_quiet_tenants_messages_pass_a_noisy_tenants_backlog() {
    let stack = fresh_stack().await;
    let trace = TraceContext::new(CorrelationId::generate(), None);
    for i in 0..60 {
        stack.queue.send(&work("noisy", &format!("n{i}")), &trace).await.unwrap();
    }
    let receive = |n: i32| {
        stack
            .sqs
            .receive_message()
            .queue_url(stack.queue.url())
            .max_number_of_messages(n)
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .send()
    };
    // The noisy tenant's first 20 are being worked on, 40 wait; then the quiet tenant sends 5.
    let first = receive(10).await.unwrap().messages.unwrap_or_default().len()
        + receive(10).await.unwrap().messages.unwrap_or_default().len();
    assert_eq!(first, 20);
    for i in 0..5 {
        stack.queue.send(&work("quiet", &format!("q{i}")), &trace).await.unwrap();
    }
    let next = receive(10).await.unwrap().messages.unwrap_or_default();
    let tenants: Vec<Work> = next.iter().map(|m| Work::parse(m.body().unwrap()).unwrap()).collect();
    let groups: Vec<&str> = next
        .iter()
        .map(|m| m.attributes().unwrap()[&MessageSystemAttributeName::MessageGroupId].as_str())
        .collect();
    // Every message is grouped by its tenant, and the quiet tenant's 5 come first, ahead of 40
    // older messages of the noisy one.
    assert!(tenants.iter().zip(&groups).all(|(w, g)| w.tenant.as_str() == *g), "{groups:?}");
    assert_eq!(groups.len(), 10);
    assert_eq!(groups[..5], ["quiet"; 5], "{groups:?}");
    assert_eq!(groups[5..], ["noisy"; 5], "{groups:?}");
}
