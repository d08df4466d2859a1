//! How a request reaches the API: over HTTP (`HttpTransport`, reqwest), or any other way a
//! [`Transport`] is given (the tests' harness drives the router in process through one).

use async_trait::async_trait;
use bytes::Bytes;

/// A request as the client built it, and the answer as the API gave it.
pub type Request = http::Request<Bytes>;
pub type Response = http::Response<Bytes>;

#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends the request; an error means no answer came (the request may or may not have been
    /// applied).
    async fn send(&self, request: Request) -> Result<Response, String>;
}

/// The API over HTTP(S), with a timeout per request.
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    pub fn new(timeout: std::time::Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| e.to_string())?;
        Ok(Self { client })
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn send(&self, request: Request) -> Result<Response, String> {
        let (parts, body) = request.into_parts();
        let method =
            reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).map_err(|e| e.to_string())?;
        let mut outgoing = self.client.request(method, parts.uri.to_string()).body(body);
        for (name, value) in &parts.headers {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
        let answer = outgoing.send().await.map_err(|e| e.to_string())?;
        let mut response = http::Response::builder().status(answer.status().as_u16());
        for (name, value) in answer.headers() {
            response = response.header(name.as_str(), value.as_bytes());
        }
        let body = answer.bytes().await.map_err(|e| e.to_string())?;
        response.body(body).map_err(|e| e.to_string())
    }
}
