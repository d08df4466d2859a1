//! The books' archive on S3 (`ledger::port::Archive`): each checkpoint one JSON object under its
//! own key (`ledger::port::checkpoint_key`). The bucket has Object Lock in compliance mode with a
//! default retention (`template.yaml`), so every object is locked as it lands: no one, the root
//! user included, deletes or overwrites a version before its retention ends. A put never replaces
//! a key another run wrote (`If-None-Match: *`).

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use ledger::books::Checkpoint;
use ledger::port::{Archive, StoreError, checkpoint_key};

#[derive(Debug, Clone)]
pub struct S3Archive {
    client: Client,
    bucket: String,
}

impl S3Archive {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self { client, bucket: bucket.into() }
    }
}

/// An S3 client on `sdk`'s settings, addressing buckets by path if `path_style` (a local
/// emulator's single endpoint) rather than by virtual host.
pub fn s3_client(sdk: &aws_config::SdkConfig, path_style: bool) -> Client {
    Client::from_conf(aws_sdk_s3::config::Builder::from(sdk).force_path_style(path_style).build())
}

fn unavailable(err: impl std::fmt::Debug) -> StoreError {
    StoreError::Unavailable(format!("{err:?}"))
}

#[async_trait]
impl Archive for S3Archive {
    async fn put(&self, checkpoint: &Checkpoint) -> Result<String, StoreError> {
        let key = checkpoint_key(checkpoint);
        let body = serde_json::to_vec(checkpoint).map_err(|e| StoreError::Unexpected(e.to_string()))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(key)
    }

    async fn get(&self, key: &str) -> Result<Checkpoint, StoreError> {
        let object =
            self.client.get_object().bucket(&self.bucket).key(key).send().await.map_err(unavailable)?;
        let body = object.body.collect().await.map_err(unavailable)?.into_bytes();
        serde_json::from_slice(&body).map_err(|e| StoreError::Corrupt(format!("{key}: {e}")))
    }
}
