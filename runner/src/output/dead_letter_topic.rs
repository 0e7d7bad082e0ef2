//! Dead letters to a Kafka topic: the message as received, with where it came
//! from and why it could not be applied in headers (`kith-reason`,
//! `kith-category`, `kith-topic`, `kith-partition`, `kith-offset`).
//!
//! Nothing is dropped: the producer never times a message out, and
//! [`DeadLetterTopic::flush`] waits until the broker has every dead letter,
//! which the runner does before the positions past them can be checkpointed.

use crate::observation::Rejection;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterTopicError {
    #[error("dead-letter topic `{topic}`: the producer cannot be created: {source}")]
    Create { topic: String, source: KafkaError },
    #[error("dead-letter topic `{topic}`: {source}")]
    Send { topic: String, source: KafkaError },
}

/// Where a dead message was read.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

pub struct DeadLetterTopic {
    producer: BaseProducer,
    topic: String,
    written: u64,
    unflushed: bool,
}

impl DeadLetterTopic {
    pub fn new(
        bootstrap_servers: &str,
        properties: &BTreeMap<String, String>,
        topic: &str,
    ) -> Result<Self, DeadLetterTopicError> {
        let mut config = ClientConfig::new();
        for (k, v) in properties {
            config.set(k, v);
        }
        let producer = config
            .set("bootstrap.servers", bootstrap_servers)
            // Retry until the broker takes it: a dead letter is never dropped.
            .set("message.timeout.ms", "0")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .map_err(|source| DeadLetterTopicError::Create {
                topic: topic.to_string(),
                source,
            })?;
        Ok(DeadLetterTopic {
            producer,
            topic: topic.to_string(),
            written: 0,
            unflushed: false,
        })
    }

    /// Queues one dead letter.
    pub fn write(
        &mut self,
        origin: &Origin<'_>,
        raw: &[u8],
        why: &Rejection,
    ) -> Result<(), DeadLetterTopicError> {
        let reason = why.to_string();
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(header("kith-reason", &reason))
            .insert(header("kith-category", why.category()))
            .insert(header("kith-topic", origin.topic))
            .insert(header("kith-partition", &partition))
            .insert(header("kith-offset", &offset));
        let mut record = BaseRecord::<(), [u8]>::to(&self.topic)
            .payload(raw)
            .headers(headers);
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue is full while the broker is away: wait.
                    self.producer.poll(Duration::from_millis(100));
                    record = back;
                }
                Err((source, _)) => {
                    return Err(DeadLetterTopicError::Send {
                        topic: self.topic.clone(),
                        source,
                    })
                }
            }
        }
        self.producer.poll(Duration::ZERO);
        self.written += 1;
        self.unflushed = true;
        Ok(())
    }

    /// Waits until the broker has every dead letter written so far.
    pub fn flush(&mut self) {
        if !self.unflushed {
            return;
        }
        while let Err(e) = self.producer.flush(Duration::from_secs(5)) {
            tracing::warn!(error = %e, topic = %self.topic, "dead letters not delivered yet; retrying");
        }
        self.unflushed = false;
    }

    pub fn total(&self) -> u64 {
        self.written
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
