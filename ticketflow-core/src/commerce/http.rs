//! A company's own order service over HTTP (`COMMERCE_API_URL`): the JSON contract README's
//! "Tools and support data" documents, and `examples/commerce_server.rs` serves.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{
    Commerce, CommerceError, Customer, Order, OrderStatus, Product, ProductQuery, RefundRequest, RemoteRefund,
};
use crate::money::Money;

/// The order service at a base URL.
#[derive(Debug, Clone)]
pub struct HttpCommerce {
    client: reqwest::Client,
    base_url: String,
    token: Option<SecretString>,
}

/// What the service answers to a refund.
#[derive(Deserialize)]
struct RefundAnswer {
    id: String,
    order_status: OrderStatus,
    refundable: Money,
}

impl HttpCommerce {
    /// The service at `base_url` (`https://orders.example.com/api`), with a bearer `token` if
    /// given, each request within `timeout`.
    pub fn new(base_url: &str, token: Option<SecretString>, timeout: Duration) -> Result<Self, CommerceError> {
        crate::telemetry::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("ticketflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CommerceError::Refused(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// `segments` percent-encoded under the base URL.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, CommerceError> {
        let mut url = reqwest::Url::parse(&self.base_url)
            .map_err(|e| CommerceError::Refused(format!("COMMERCE_API_URL is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| CommerceError::Refused("COMMERCE_API_URL cannot have paths".into()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn request(&self, method: Method, url: reqwest::Url) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url).header("accept", "application/json");
        match &self.token {
            Some(token) => request.bearer_auth(token.expose_secret()),
            None => request,
        }
    }

    /// Sends `request`; `None` for a 404; the body as `T` for a 2xx.
    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<Option<T>, CommerceError> {
        let response = request
            .send()
            .await
            .map_err(|e| CommerceError::Unavailable(format!("the order service did not answer: {e}")))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT
        {
            return Err(CommerceError::Unavailable(format!(
                "the order service answered {status}"
            )));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| body.chars().take(200).collect());
            return Err(CommerceError::Refused(format!("{status}: {message}")));
        }
        response
            .json::<T>()
            .await
            .map(Some)
            .map_err(|e| CommerceError::Refused(format!("the order service answered what ticketflow cannot read: {e}")))
    }
}

#[async_trait]
impl Commerce for HttpCommerce {
    async fn customer(&self, reference: &str) -> Result<Option<Customer>, CommerceError> {
        let url = self.url(&["customers", reference.trim()])?;
        self.send(self.request(Method::GET, url)).await
    }

    async fn orders(&self, customer_id: &str, limit: usize) -> Result<Vec<Order>, CommerceError> {
        let mut url = self.url(&["customers", customer_id, "orders"])?;
        url.query_pairs_mut().append_pair("limit", &limit.to_string());
        Ok(self.send(self.request(Method::GET, url)).await?.unwrap_or_default())
    }

    async fn order(&self, order_id: &str) -> Result<Option<Order>, CommerceError> {
        let url = self.url(&["orders", order_id])?;
        self.send(self.request(Method::GET, url)).await
    }

    async fn products(&self, query: &ProductQuery) -> Result<Vec<Product>, CommerceError> {
        if let Some(id) = &query.id {
            let url = self.url(&["products", id])?;
            let product: Option<Product> = self.send(self.request(Method::GET, url)).await?;
            return Ok(product.into_iter().collect());
        }
        let Some(name) = &query.name_contains else {
            return Ok(Vec::new());
        };
        let mut url = self.url(&["products"])?;
        url.query_pairs_mut()
            .append_pair("name_contains", name)
            .append_pair("limit", &query.limit.to_string());
        let mut products: Vec<Product> = self.send(self.request(Method::GET, url)).await?.unwrap_or_default();
        products.truncate(query.limit.max(1));
        Ok(products)
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Option<RemoteRefund>, CommerceError> {
        let url = self.url(&["orders", &request.order_id, "refunds"])?;
        let body = serde_json::json!({
            "amount": request.amount,
            "reason": request.reason,
            "ticket_id": request.ticket_id,
            "call_id": request.call_id,
        });
        // The call id is the refund's identity: a retry, or a resumed run, asks for the same
        // refund, and the service makes it once.
        let answer: Option<RefundAnswer> = self
            .send(
                self.request(Method::POST, url)
                    .header("idempotency-key", request.call_id.to_string())
                    .json(&body),
            )
            .await?;
        let answer = answer.ok_or_else(|| CommerceError::Refused(format!("order {} not found", request.order_id)))?;
        Ok(Some(RemoteRefund {
            id: answer.id,
            order_status: answer.order_status,
            refundable: answer.refundable,
        }))
    }
}
