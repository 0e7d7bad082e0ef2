//! DynamoDB requests: the client from the standard AWS configuration
//! chain, the table checks at start, and the writes of a flush with the
//! error table.
//!
//! Conditional mode sends each item as a `PutItem` conditioned on the stored
//! version being older (`attribute_not_exists(version) OR version < :v`),
//! removals as tombstones under the same condition: a refused condition
//! means the store already holds this write or a newer one, which counts as
//! success. Batch mode sends `BatchWriteItem`s of up to 25 items and 16 MB
//! and resends what comes back as `UnprocessedItems`. Requests run in
//! parallel up to the sink's in-flight bound; keys within a flush are
//! distinct, and flushes are written one after the other.

use super::config::DynamoDbConfig;
use super::encode::{self, Item};
use crate::sink::flush::{Flush, ProfileOp};
use crate::sink::retry::Outcome;
use crate::sink::worker::{SinkService, WriteContext};
use crate::sink::SinkError;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, TableStatus, TimeToLiveSpecification, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures::StreamExt;
use kith_api::pipeline::DynamoDbWriteMode;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The condition every conditional write carries.
const NEWER_ONLY: &str = "attribute_not_exists(version) OR version < :v";

pub struct DynamoDbService {
    client: Client,
    config: DynamoDbConfig,
    sink: String,
}

/// What one error of the DynamoDB API means (the error table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// The condition refused the write: the item holds this version or a newer one.
    AlreadyApplied,
    Retry(&'static str),
    Fatal,
}

/// Classifies an error by its code and HTTP status. Throttling and server
/// errors are retried; a refused condition is success; anything naming the
/// request, the table or the credentials as wrong stops the sink.
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> Class {
    match code {
        Some("ConditionalCheckFailedException") => Class::AlreadyApplied,
        Some(
            "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "Throttling"
            | "SlowDown",
        ) => Class::Retry("throttled"),
        Some("InternalServerError" | "InternalFailure" | "ServiceUnavailable") => {
            Class::Retry("unavailable")
        }
        Some("TransactionConflictException" | "TransactionInProgressException") => {
            Class::Retry("conflict")
        }
        Some(
            "ResourceNotFoundException"
            | "ValidationException"
            | "AccessDeniedException"
            | "UnrecognizedClientException"
            | "MissingAuthenticationToken"
            | "InvalidSignatureException"
            | "ItemCollectionSizeLimitExceededException"
            | "SerializationException",
        ) => Class::Fatal,
        _ => match status {
            Some(s) if s >= 500 || s == 429 => Class::Retry("unavailable"),
            _ => Class::Fatal,
        },
    }
}

fn classify<E>(e: &SdkError<E, HttpResponse>) -> (Class, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::TimeoutError(_) => (Class::Retry("timeout"), "request timed out".into()),
        SdkError::DispatchFailure(d) => (
            Class::Retry("unavailable"),
            format!("cannot reach DynamoDB: {:?}", d.as_connector_error()),
        ),
        SdkError::ResponseError(_) => (
            Class::Retry("unavailable"),
            "the response was cut off or unreadable".into(),
        ),
        SdkError::ServiceError(se) => {
            let err = se.err();
            let status = se.raw().status().as_u16();
            let class = classify_code(err.code(), Some(status));
            let message = format!(
                "{}: {}",
                err.code().unwrap_or("error"),
                err.message().unwrap_or("(no message)")
            );
            (class, message)
        }
        other => (Class::Fatal, format!("{other}")),
    }
}

fn outcome(class: Class, message: String) -> Outcome {
    match class {
        Class::Retry(reason) => Outcome::Retry { reason, message },
        Class::Fatal | Class::AlreadyApplied => Outcome::Fatal(message),
    }
}

impl DynamoDbService {
    pub async fn connect(
        config: &DynamoDbConfig,
        sink: &str,
        _pipeline: &str,
    ) -> Result<Self, SinkError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(r) = &config.region {
            loader = loader.region(aws_config::Region::new(r.clone()));
        }
        let shared = loader.load().await;
        if shared.region().is_none() {
            return Err(SinkError::Start {
                sink: sink.to_string(),
                message: "no AWS region: set the sink's `region`, or AWS_REGION".into(),
            });
        }
        // Retries are this sink's own (classified, jittered, counted).
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(10))
                    .connect_timeout(Duration::from_secs(3))
                    .build(),
            );
        if let Some(e) = &config.endpoint {
            builder = builder.endpoint_url(e);
        }
        Ok(DynamoDbService {
            client: Client::from_conf(builder.build()),
            config: config.clone(),
            sink: sink.to_string(),
        })
    }

    fn start_error(&self, message: String) -> SinkError {
        SinkError::Start {
            sink: self.sink.clone(),
            message,
        }
    }

    /// Checks that `table` exists with partition key `key` (creating it
    /// when the pipeline asks).
    async fn ensure_table(&self, table: &str, key: &str) -> Result<(), SinkError> {
        match self.client.describe_table().table_name(table).send().await {
            Ok(out) => {
                let schema = out.table().map(|t| t.key_schema()).unwrap_or_default();
                let hash = schema
                    .iter()
                    .find(|k| k.key_type() == &KeyType::Hash)
                    .map(|k| k.attribute_name());
                if hash != Some(key) || schema.len() != 1 {
                    return Err(self.start_error(format!(
                        "table `{table}` must have the partition key `{key}` (a string) and no sort key"
                    )));
                }
                Ok(())
            }
            Err(e) => {
                let (_, message) = classify(&e);
                if e.code() != Some("ResourceNotFoundException") {
                    return Err(
                        self.start_error(format!("cannot describe table `{table}`: {message}"))
                    );
                }
                if !self.config.create_tables {
                    return Err(self.start_error(format!(
                        "table `{table}` does not exist; create it (partition key `{key}`, a string) or set `createTables: true`"
                    )));
                }
                self.create_table(table, key).await
            }
        }
    }

    async fn create_table(&self, table: &str, key: &str) -> Result<(), SinkError> {
        let attribute = AttributeDefinition::builder()
            .attribute_name(key)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| self.start_error(e.to_string()))?;
        let schema = KeySchemaElement::builder()
            .attribute_name(key)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| self.start_error(e.to_string()))?;
        let created = self
            .client
            .create_table()
            .table_name(table)
            .attribute_definitions(attribute)
            .key_schema(schema)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(e) = created {
            // Another runner may have created it meanwhile.
            if e.code() != Some("ResourceInUseException") {
                let (_, message) = classify(&e);
                return Err(self.start_error(format!("cannot create table `{table}`: {message}")));
            }
        }
        for _ in 0..120 {
            let status = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .ok()
                .and_then(|o| o.table().and_then(|t| t.table_status().cloned()));
            if status == Some(TableStatus::Active) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let ttl = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("expires_at")
            .build()
            .map_err(|e| self.start_error(e.to_string()))?;
        if let Err(e) = self
            .client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            tracing::warn!(sink = %self.sink, table, error = %classify(&e).1, "cannot turn on TTL for tombstones; they stay until removed");
        }
        tracing::info!(sink = %self.sink, table, "table created");
        Ok(())
    }

    fn expires_at(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + self.config.tombstone_ttl.as_secs()
    }

    /// The items of a flush, with their tables; `None` for a plain delete
    /// (batch mode) keyed by the item's key only.
    fn items(&self, flush: &Flush, ctx: &WriteContext) -> Vec<Write> {
        let conditional = self.config.write_mode == DynamoDbWriteMode::Conditional;
        let expires = self.expires_at();
        let profiles = &self.config.profiles_table;
        let index = &self.config.identifiers_table;
        let mut writes = Vec::with_capacity(flush.len());
        for op in &flush.profiles {
            match op {
                ProfileOp::Upsert(view) => {
                    let (item, shrunk) = encode::profile_item(view, flush.version);
                    if shrunk {
                        ctx.metrics.oversize.inc();
                        tracing::warn!(sink = %self.sink, profile = %view.profile_id, "profile over DynamoDB's 400 KB item limit: written without its largest attribute values (listed in attributes_omitted)");
                    }
                    writes.push(Write::put(profiles, item));
                }
                ProfileOp::Delete {
                    profile_id,
                    redirect,
                } => writes.push(if conditional {
                    Write::put(
                        profiles,
                        encode::profile_tombstone(
                            profile_id,
                            redirect.as_deref(),
                            flush.version,
                            expires,
                        ),
                    )
                } else {
                    Write::delete(profiles, "profile_id", profile_id.clone())
                }),
            }
        }
        for op in &flush.identifiers {
            if op.profile_ids.is_empty() {
                writes.push(if conditional {
                    Write::put(
                        index,
                        encode::identifier_tombstone(
                            &op.type_name,
                            &op.value,
                            flush.version,
                            expires,
                        ),
                    )
                } else {
                    Write::delete(
                        index,
                        "identifier",
                        encode::identifier_key(&op.type_name, &op.value),
                    )
                });
            } else {
                writes.push(Write::put(
                    index,
                    encode::identifier_item(op, flush.version),
                ));
            }
        }
        writes
    }

    async fn put_conditional(
        &self,
        w: Write,
        version: u64,
        ctx: &WriteContext,
    ) -> Result<(), SinkError> {
        let Write::Put { table, item } = w else {
            return Ok(());
        };
        ctx.metrics.batch_size.observe(1.0);
        ctx.retrying("PutItem", || async {
            let sent = self
                .client
                .put_item()
                .table_name(&table)
                .set_item(Some(item.clone()))
                .condition_expression(NEWER_ONLY)
                .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
                .send()
                .await;
            match sent {
                Ok(_) => Ok(()),
                Err(e) => match classify(&e) {
                    (Class::AlreadyApplied, _) => Ok(()),
                    (class, message) => Err(outcome(class, message)),
                },
            }
        })
        .await
    }

    async fn batch_write(&self, batch: Vec<Write>, ctx: &WriteContext) -> Result<(), SinkError> {
        let mut requests: HashMap<String, Vec<WriteRequest>> = HashMap::new();
        for w in batch {
            let (table, request) = w.into_request().map_err(|message| SinkError::Fatal {
                sink: self.sink.clone(),
                message,
            })?;
            requests.entry(table).or_default().push(request);
        }
        let remaining = Mutex::new(requests);
        ctx.retrying("BatchWriteItem", || async {
            let batch = remaining.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let items: usize = batch.values().map(Vec::len).sum();
            ctx.metrics.batch_size.observe(items as f64);
            let sent = self
                .client
                .batch_write_item()
                .set_request_items(Some(batch))
                .send()
                .await;
            match sent {
                Ok(out) => {
                    let unprocessed: HashMap<String, Vec<WriteRequest>> = out
                        .unprocessed_items
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|(_, v)| !v.is_empty())
                        .collect();
                    if unprocessed.is_empty() {
                        return Ok(());
                    }
                    let left: usize = unprocessed.values().map(Vec::len).sum();
                    *remaining.lock().unwrap_or_else(|p| p.into_inner()) = unprocessed;
                    Err(Outcome::Retry {
                        reason: "unprocessed",
                        message: format!("{left} of {items} items unprocessed"),
                    })
                }
                Err(e) => {
                    let (class, message) = classify(&e);
                    Err(outcome(class, message))
                }
            }
        })
        .await
    }
}

/// One item to write (or, in batch mode, a key to delete).
#[derive(Debug, Clone)]
enum Write {
    Put { table: String, item: Item },
    Delete { table: String, key: Item },
}

impl Write {
    fn put(table: &str, item: Item) -> Self {
        Write::Put {
            table: table.to_string(),
            item,
        }
    }

    fn delete(table: &str, key_name: &str, key: String) -> Self {
        Write::Delete {
            table: table.to_string(),
            key: Item::from([(key_name.to_string(), AttributeValue::S(key))]),
        }
    }

    fn size(&self) -> usize {
        match self {
            Write::Put { item, .. } => encode::item_size(item),
            Write::Delete { key, .. } => encode::item_size(key),
        }
    }

    fn into_request(self) -> Result<(String, WriteRequest), String> {
        match self {
            Write::Put { table, item } => {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| e.to_string())?;
                Ok((table, WriteRequest::builder().put_request(put).build()))
            }
            Write::Delete { table, key } => {
                let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(|e| e.to_string())?;
                Ok((
                    table,
                    WriteRequest::builder().delete_request(delete).build(),
                ))
            }
        }
    }
}

impl SinkService for DynamoDbService {
    async fn prepare(&mut self, _writer_epoch: u32) -> Result<(), SinkError> {
        let profiles = self.config.profiles_table.clone();
        let index = self.config.identifiers_table.clone();
        self.ensure_table(&profiles, "profile_id").await?;
        self.ensure_table(&index, "identifier").await
    }

    async fn write(&mut self, flush: &Flush, ctx: &WriteContext) -> Result<(), SinkError> {
        let writes = self.items(flush, ctx);
        let in_flight = ctx.delivery.max_in_flight;
        let this: &DynamoDbService = self;
        let results: Vec<Result<(), SinkError>> = match self.config.write_mode {
            DynamoDbWriteMode::Conditional => {
                futures::stream::iter(writes.into_iter().map(|w| async move {
                    ctx.metrics.in_flight.inc();
                    let r = this.put_conditional(w, flush.version, ctx).await;
                    ctx.metrics.in_flight.dec();
                    r
                }))
                .buffer_unordered(in_flight)
                .collect()
                .await
            }
            DynamoDbWriteMode::Batch => {
                let sized = writes.into_iter().map(|w| {
                    let size = w.size();
                    (w, size)
                });
                let batches = encode::batches(sized.collect());
                futures::stream::iter(batches.into_iter().map(|b| async move {
                    ctx.metrics.in_flight.inc();
                    let r = this.batch_write(b, ctx).await;
                    ctx.metrics.in_flight.dec();
                    r
                }))
                .buffer_unordered(in_flight)
                .collect()
                .await
            }
        };
        results.into_iter().collect()
    }
}
