//! RabbitMQ through lapin: a durable quorum queue (classic selectable), persistent messages,
//! publisher confirms, manual acks, a dead-letter exchange and queue, and reconnection.
//!
//! Topology, declared idempotently on every (re)connection:
//!
//! ```text
//! <queue>        durable, x-queue-type quorum|classic, x-dead-letter-exchange <queue>.dlx,
//!                x-delivery-limit (quorum)
//! <queue>.dlx    direct exchange, durable
//! <queue>.dead   durable queue bound to <queue>.dlx with routing key <queue>
//! ```
//!
//! Redeclaring an existing queue with another `x-queue-type` makes the broker close the
//! channel (406 PRECONDITION_FAILED): switching types needs a new queue name.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use super::{Delivery, Queue, QueueDepth, QueueError, QueueType, Settle, Subscription, TicketMessage};

/// Where the broker is and how the queue is shaped.
#[derive(Debug, Clone)]
pub struct RabbitOptions {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: String,
    /// The work queue's name (`QUEUE_NAME`, default `ticket_processing`).
    pub queue: String,
    /// Quorum or classic.
    pub queue_type: QueueType,
    /// Deliveries after which a quorum queue dead-letters a message that keeps failing.
    pub delivery_limit: u32,
}

impl RabbitOptions {
    /// Options for `url` with the default queue.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            queue: "ticket_processing".into(),
            queue_type: QueueType::Quorum,
            delivery_limit: 5,
        }
    }

    /// The dead-letter exchange.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.queue)
    }

    /// The dead-letter queue.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dead", self.queue)
    }
}

/// One connection with its publishing channel.
struct Link {
    connection: Connection,
    publisher: Channel,
}

/// The RabbitMQ queue. Connects lazily and reconnects after the broker comes back.
pub struct RabbitQueue {
    options: RabbitOptions,
    link: Mutex<Option<Arc<Link>>>,
}

impl std::fmt::Debug for RabbitQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitQueue")
            .field("queue", &self.options.queue)
            .finish_non_exhaustive()
    }
}

fn unavailable(error: lapin::Error) -> QueueError {
    QueueError::Unavailable(error.to_string())
}

fn long_string(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

impl RabbitQueue {
    /// A queue that connects on first use (so that the API can start, and keep accepting
    /// tickets into the outbox, while the broker is down).
    pub fn new(options: RabbitOptions) -> Self {
        Self {
            options,
            link: Mutex::new(None),
        }
    }

    /// The options.
    pub fn options(&self) -> &RabbitOptions {
        &self.options
    }

    /// Closes the connection (deliveries not yet acknowledged go back to the queue); the next
    /// call reconnects.
    pub async fn close(&self) {
        if let Some(link) = self.link.lock().await.take() {
            let _ = link.connection.close(200, "closing".into()).await;
        }
    }

    /// The current link, or a new one (with the topology declared) if there is none or it broke.
    async fn link(&self) -> Result<Arc<Link>, QueueError> {
        let mut guard = self.link.lock().await;
        if let Some(link) = guard.as_ref()
            && link.connection.status().connected()
            && link.publisher.status().connected()
        {
            return Ok(link.clone());
        }
        let connection = Connection::connect(&self.options.url, ConnectionProperties::default())
            .await
            .map_err(unavailable)?;
        let publisher = connection.create_channel().await.map_err(unavailable)?;
        self.declare(&publisher).await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(unavailable)?;
        let link = Arc::new(Link { connection, publisher });
        *guard = Some(link.clone());
        Ok(link)
    }

    async fn declare(&self, channel: &Channel) -> Result<(), QueueError> {
        let o = &self.options;
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let mut type_only = FieldTable::default();
        type_only.insert("x-queue-type".into(), long_string(o.queue_type.as_str()));
        channel
            .exchange_declare(
                o.dead_letter_exchange().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        channel
            .queue_declare(o.dead_letter_queue().into(), durable, type_only.clone())
            .await
            .map_err(unavailable)?;
        channel
            .queue_bind(
                o.dead_letter_queue().into(),
                o.dead_letter_exchange().into(),
                o.queue.clone().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        let mut args = type_only;
        args.insert("x-dead-letter-exchange".into(), long_string(&o.dead_letter_exchange()));
        args.insert("x-dead-letter-routing-key".into(), long_string(&o.queue));
        if o.queue_type == QueueType::Quorum {
            args.insert("x-delivery-limit".into(), AMQPValue::LongInt(o.delivery_limit as i32));
        }
        channel
            .queue_declare(o.queue.clone().into(), durable, args)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn drop_link(&self) {
        self.link.lock().await.take();
    }

    /// Publishes raw bytes to the work queue (for tests of malformed messages).
    pub async fn publish_raw(&self, body: &[u8]) -> Result<(), QueueError> {
        self.publish_with(body, BasicProperties::default().with_delivery_mode(2))
            .await
    }

    async fn publish_with(&self, body: &[u8], properties: BasicProperties) -> Result<(), QueueError> {
        let link = self.link().await?;
        let result = async {
            let confirm = link
                .publisher
                .basic_publish(
                    ShortString::from(""),
                    self.options.queue.clone().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body,
                    properties,
                )
                .await
                .map_err(unavailable)?
                .await
                .map_err(unavailable)?;
            match confirm {
                Confirmation::Ack(None) => Ok(()),
                Confirmation::Ack(Some(_)) => Err(QueueError::NotConfirmed("returned as unroutable".into())),
                Confirmation::Nack(_) => Err(QueueError::NotConfirmed("negatively acknowledged".into())),
                Confirmation::NotRequested => Err(QueueError::NotConfirmed("confirms are off".into())),
            }
        }
        .await;
        if matches!(result, Err(QueueError::Unavailable(_))) {
            self.drop_link().await;
        }
        result
    }
}

struct RabbitSettle {
    acker: lapin::Acker,
}

#[async_trait]
impl Settle for RabbitSettle {
    async fn ack(&self) -> Result<(), QueueError> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
    async fn dead_letter(&self) -> Result<(), QueueError> {
        self.acker
            .reject(BasicRejectOptions { requeue: false })
            .await
            .map(|_| ())
            .map_err(unavailable)
    }
}

struct RabbitSubscription {
    consumer: lapin::Consumer,
    // Keeps the channel open for as long as the subscription lives.
    _channel: Channel,
}

fn header(table: Option<&FieldTable>, name: &str) -> Option<String> {
    match table?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(s.to_string()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

fn attempt_header(table: Option<&FieldTable>) -> u32 {
    match table.and_then(|t| t.inner().get("x-attempt")) {
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

#[async_trait]
impl Subscription for RabbitSubscription {
    async fn next(&mut self) -> Option<Delivery> {
        match self.consumer.next().await? {
            Err(error) => {
                tracing::warn!(%error, "RabbitMQ consumer stopped");
                None
            }
            Ok(delivery) => {
                let headers = delivery.properties.headers().as_ref();
                let message = TicketMessage::decode(&delivery.data).map(|mut m| {
                    m.request_id = header(headers, "x-request-id");
                    m.traceparent = header(headers, "traceparent");
                    m.attempt = attempt_header(headers);
                    m
                });
                Some(Delivery {
                    message,
                    settle: Box::new(RabbitSettle { acker: delivery.acker }),
                })
            }
        }
    }
}

#[async_trait]
impl Queue for RabbitQueue {
    async fn publish(&self, message: &TicketMessage) -> Result<(), QueueError> {
        let mut headers = FieldTable::default();
        if let Some(request_id) = &message.request_id {
            headers.insert("x-request-id".into(), long_string(request_id));
        }
        if let Some(traceparent) = &message.traceparent {
            headers.insert("traceparent".into(), long_string(traceparent));
        }
        headers.insert("x-attempt".into(), AMQPValue::LongInt(message.attempt as i32));
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message.ticket_id.to_string().into())
            .with_headers(headers);
        self.publish_with(&message.body(), properties).await
    }

    async fn subscribe(&self, prefetch: u16) -> Result<Box<dyn Subscription>, QueueError> {
        let link = self.link().await?;
        let channel = link.connection.create_channel().await.map_err(unavailable)?;
        channel
            .basic_qos(prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(unavailable)?;
        let consumer = channel
            .basic_consume(
                self.options.queue.clone().into(),
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(Box::new(RabbitSubscription {
            consumer,
            _channel: channel,
        }))
    }

    async fn check(&self) -> Result<(), QueueError> {
        self.link().await.map(|_| ())
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let link = self.link().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let channel = link.connection.create_channel().await.map_err(unavailable)?;
        let ready = channel
            .queue_declare(self.options.queue.clone().into(), passive, FieldTable::default())
            .await
            .map_err(unavailable)?
            .message_count();
        let dead = channel
            .queue_declare(self.options.dead_letter_queue().into(), passive, FieldTable::default())
            .await
            .map_err(unavailable)?
            .message_count();
        let _ = channel.close(200, "done".into()).await;
        Ok(QueueDepth {
            ready: u64::from(ready),
            dead: u64::from(dead),
        })
    }
}
