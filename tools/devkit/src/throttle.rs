//! A stand-in DynamoDB endpoint that answers every call as throttled, counting the calls: how the
//! tests show that throttling is retried with backoff and then surfaces as "unavailable".

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::Region;
use aws_sdk_dynamodb::config::Credentials;
use ledger_dynamodb::DynamoStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BODY: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"throttled"}"#;

pub struct ThrottlingEndpoint {
    pub url: String,
    calls: Arc<AtomicUsize>,
}

impl ThrottlingEndpoint {
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    // One read holds the whole (small) request; the answer does not depend on it.
                    let _ = socket.read(&mut buf).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    let response = format!(
                        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                        BODY.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        Ok(Self { url, calls })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// A store whose every call goes to this endpoint, with the project's retry settings.
    pub async fn store(&self) -> DynamoStore {
        let config = ledger_dynamodb::client::config_loader()
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "devkit"))
            .load()
            .await;
        DynamoStore::new(ledger_dynamodb::client::dynamodb_client(&config), "throttled")
    }
}
