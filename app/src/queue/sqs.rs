//! SQS: long polling, the visibility timeout as the lease, delete only after
//! the job is recorded. Giving up means leaving the message to the queue's
//! redrive policy, which moves it to the dead-letter queue once its receive
//! count passes `maxReceiveCount`: the worker makes it visible at once so
//! the next receive moves it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use super::{Backlog, Delivery, Queue, QueueError};
use crate::domain::PredictionId;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    lease: Duration,
    wait: Duration,
    max_receives: Option<u32>,
}

/// An SQS client from the usual AWS configuration chain (environment,
/// profile, web identity, ECS container credentials, instance metadata),
/// with `endpoint` overriding the service endpoint (moto in tests).
pub async fn client(endpoint: Option<&str>) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    Client::new(&loader.load().await)
}

fn sqs_error<E: std::error::Error>(e: E) -> QueueError {
    QueueError::Sqs(DisplayErrorContext(e).to_string())
}

impl SqsQueue {
    /// Reads the queue's redrive policy, so that the worker gives up no
    /// later than SQS moves the message to the dead-letter queue.
    pub async fn new(
        client: Client,
        url: String,
        lease: Duration,
        wait: Duration,
    ) -> Result<Self, QueueError> {
        let attrs = client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(sqs_error)?;
        let max_receives = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|v| match &v["maxReceiveCount"] {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            })
            .map(|n| n as u32);
        if max_receives.is_none() {
            tracing::warn!(queue = %url, "the SQS queue has no redrive policy: failed jobs will not reach a dead-letter queue");
        }
        Ok(SqsQueue {
            client,
            url,
            lease,
            wait,
            max_receives,
        })
    }

    fn lease_secs(&self) -> i32 {
        self.lease.as_secs().clamp(1, 43_200) as i32
    }

    async fn set_visibility(&self, delivery: &Delivery, secs: i32) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(&delivery.receipt)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn enqueue(&self, prediction: PredictionId) -> Result<(), QueueError> {
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(prediction.to_string())
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }

    async fn receive(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(self.wait.as_secs() as i32)
            .visibility_timeout(self.lease_secs())
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(sqs_error)?;
        let mut deliveries = Vec::new();
        for m in out.messages() {
            let body = m.body().unwrap_or_default().trim();
            let receipt = m.receipt_handle().unwrap_or_default().to_owned();
            let Some(prediction_id) = PredictionId::parse(body) else {
                // Not ours and never will be: drop it rather than loop on it.
                tracing::error!(body, "deleting a malformed SQS message");
                let _ = self
                    .client
                    .delete_message()
                    .queue_url(&self.url)
                    .receipt_handle(&receipt)
                    .send()
                    .await;
                continue;
            };
            let attr = |name: MessageSystemAttributeName| {
                m.attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse::<u64>().ok())
            };
            deliveries.push(Delivery {
                prediction_id,
                attempt: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                    .unwrap_or(1)
                    .max(1) as u32,
                receipt,
                enqueued_at: attr(MessageSystemAttributeName::SentTimestamp)
                    .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
                    .filter(|t| *t <= SystemTime::now() + Duration::from_secs(60)),
            });
        }
        Ok(deliveries)
    }

    async fn extend(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.set_visibility(delivery, self.lease_secs()).await
    }

    async fn ack(&self, delivery: &Delivery) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(&delivery.receipt)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }

    async fn retry_later(&self, delivery: &Delivery, delay: Duration) -> Result<(), QueueError> {
        self.set_visibility(delivery, delay.as_secs().min(43_200) as i32)
            .await
    }

    async fn dead_letter(&self, delivery: &Delivery) -> Result<(), QueueError> {
        if self.max_receives.is_none() {
            // No redrive policy: keeping the message would retry it forever.
            tracing::error!(prediction = %delivery.prediction_id, "no dead-letter queue; deleting the failed job's message");
            return self.ack(delivery).await;
        }
        self.set_visibility(delivery, 0).await
    }

    fn max_receives(&self) -> Option<u32> {
        self.max_receives
    }

    async fn backlog(&self) -> Result<Backlog, QueueError> {
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(sqs_error)?;
        let waiting = attrs
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok());
        Ok(Backlog {
            waiting,
            ..Backlog::default()
        })
    }
}
