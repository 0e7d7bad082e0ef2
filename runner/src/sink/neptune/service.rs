//! Neptune requests through `aws-sdk-neptunedata` `ExecuteGremlinQuery`
//! (`POST /gremlin` with `{"gremlin": ...}`), with the error table.
//!
//! The writer fence: at start the sink sets the fence vertex to its writer
//! epoch, unless it already holds a greater one (then a newer runner owns
//! the graph and this one stops). Every request starts at that vertex and
//! does nothing when it holds another epoch, so a late request of a runner
//! that was replaced cannot change the graph; the answer (a count of 0)
//! says so and stops this sink.

use super::config::NeptuneConfig;
use super::encode::{self, Ids, Request};
use crate::sink::flush::Flush;
use crate::sink::retry::Outcome;
use crate::sink::worker::{SinkService, WriteContext};
use crate::sink::SinkError;
use aws_sdk_neptunedata::config::http::HttpResponse;
use aws_sdk_neptunedata::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_neptunedata::Client;
use aws_smithy_types::Document;
use futures::StreamExt;
use std::time::Duration;

pub struct NeptuneService {
    client: Client,
    config: NeptuneConfig,
    sink: String,
    ids: Ids,
    fence: String,
    epoch: u32,
}

/// What one Neptune error means (the error table). Neptune names its
/// errors in `code`; a Gremlin Server answers 500 with only a message, so
/// the message is looked at when there is no code.
pub fn classify_code(code: Option<&str>, status: u16, message: &str) -> Outcome {
    let retry = |reason: &'static str| Outcome::Retry {
        reason,
        message: format!("{}: {message}", code.unwrap_or("error")),
    };
    match code {
        Some("ThrottlingException" | "TooManyRequestsException") => retry("throttled"),
        Some("ConcurrentModificationException" | "ConstraintViolationException") => {
            retry("conflict")
        }
        Some(
            "TimeLimitExceededException"
            | "ClientTimeoutException"
            | "MemoryLimitExceededException"
            | "QueryLimitExceededException"
            | "InternalFailureException"
            | "ServerShutdownException"
            | "ReadOnlyViolationException",
        ) => retry("unavailable"),
        Some(
            "MalformedQueryException"
            | "BadRequestException"
            | "InvalidParameterException"
            | "InvalidArgumentException"
            | "MissingParameterException"
            | "QueryTooLargeException"
            | "AccessDeniedException"
            | "UnsupportedOperationException"
            | "IllegalArgumentException",
        ) => Outcome::Fatal(format!("{}: {message}", code.unwrap_or("error"))),
        _ if status == 429 => retry("throttled"),
        _ if status >= 500 => {
            let m = message.to_ascii_lowercase();
            if m.contains("conflict") || m.contains("concurrent") {
                retry("conflict")
            } else if m.contains("no such property")
                || m.contains("no signature of method")
                || m.contains("missingproperty")
                || m.contains("parse")
                || m.contains("syntax")
                || m.contains("method too large")
            {
                Outcome::Fatal(format!("the graph refused a query: {message}"))
            } else {
                retry("unavailable")
            }
        }
        _ => Outcome::Fatal(format!("{}: {message}", code.unwrap_or("error"))),
    }
}

fn classify<E>(e: &SdkError<E, HttpResponse>) -> Outcome
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::TimeoutError(_) => Outcome::Retry {
            reason: "timeout",
            message: "request timed out".into(),
        },
        SdkError::DispatchFailure(d) => Outcome::Retry {
            reason: "unavailable",
            message: format!("cannot reach the graph: {:?}", d.as_connector_error()),
        },
        SdkError::ResponseError(_) => Outcome::Retry {
            reason: "unavailable",
            message: "the response was cut off or unreadable".into(),
        },
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let body = se
                .raw()
                .body()
                .bytes()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(600)]).into_owned())
                .unwrap_or_default();
            let message = se.err().message().map(str::to_string).unwrap_or(body);
            classify_code(se.err().code(), status, &message)
        }
        other => Outcome::Fatal(other.to_string()),
    }
}

/// The first number in a Gremlin answer (GraphSON `{"@type": "g:Int64",
/// "@value": n}` inside the result's `data`).
fn first_number(d: &Document) -> Option<i64> {
    match d {
        Document::Number(n) => Some(n.to_f64_lossy() as i64),
        Document::Array(items) => items.iter().find_map(first_number),
        Document::Object(map) => ["data", "@value"]
            .iter()
            .find_map(|k| map.get(*k).and_then(first_number))
            .or_else(|| map.values().find_map(first_number)),
        _ => None,
    }
}

impl NeptuneService {
    pub async fn connect(
        config: &NeptuneConfig,
        sink: &str,
        pipeline: &str,
    ) -> Result<Self, SinkError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        loader = loader.region(aws_config::Region::new(
            config
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into()),
        ));
        let shared = loader.load().await;
        let built = aws_sdk_neptunedata::config::Builder::from(&shared)
            .endpoint_url(&config.endpoint)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_config::timeout::TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .connect_timeout(Duration::from_secs(3))
                    .build(),
            )
            .build();
        let ids = Ids {
            prefix: config.id_prefix.clone(),
        };
        Ok(NeptuneService {
            client: Client::from_conf(built),
            fence: encode::fence_id(&ids, pipeline),
            ids,
            config: config.clone(),
            sink: sink.to_string(),
            epoch: 0,
        })
    }

    async fn query(&self, script: &str) -> Result<Option<Document>, Outcome> {
        match self
            .client
            .execute_gremlin_query()
            .gremlin_query(script)
            .send()
            .await
        {
            Ok(out) => Ok(out.result().cloned()),
            Err(e) => Err(classify(&e)),
        }
    }

    async fn send(&self, request: &Request, ctx: &WriteContext) -> Result<(), SinkError> {
        ctx.metrics.batch_size.observe(request.operations as f64);
        let applied = ctx
            .retrying("ExecuteGremlinQuery", || async {
                let result = self.query(&request.script).await?;
                Ok(result.as_ref().and_then(first_number))
            })
            .await?;
        match applied {
            Some(1) => Ok(()),
            Some(0) => Err(SinkError::Fatal {
                sink: self.sink.clone(),
                message: format!(
                    "fenced: the graph's writer fence no longer holds this runner's writer epoch {} (a newer runner writes this pipeline)",
                    self.epoch
                ),
            }),
            other => Err(SinkError::Fatal {
                sink: self.sink.clone(),
                message: format!("unexpected answer to a write: {other:?}"),
            }),
        }
    }

    async fn send_all(&self, requests: Vec<Request>, ctx: &WriteContext) -> Result<(), SinkError> {
        let results: Vec<Result<(), SinkError>> =
            futures::stream::iter(requests.into_iter().map(|r| async move {
                ctx.metrics.in_flight.inc();
                let result = self.send(&r, ctx).await;
                ctx.metrics.in_flight.dec();
                result
            }))
            .buffer_unordered(ctx.delivery.max_in_flight)
            .collect()
            .await;
        results.into_iter().collect()
    }

    fn start_error(&self, message: String) -> SinkError {
        SinkError::Start {
            sink: self.sink.clone(),
            message,
        }
    }
}

impl SinkService for NeptuneService {
    async fn prepare(&mut self, writer_epoch: u32) -> Result<(), SinkError> {
        self.epoch = writer_epoch;
        let mut read = String::from("g.V(");
        super::literal::push_quoted(&mut read, &self.fence);
        read.push_str(").values('epoch')");
        let current = match self.query(&read).await {
            Ok(doc) => doc.as_ref().and_then(first_number),
            Err(Outcome::Fatal(m) | Outcome::Retry { message: m, .. }) => {
                return Err(self.start_error(format!(
                    "cannot reach the graph at {}: {m}",
                    self.config.endpoint
                )))
            }
        };
        if let Some(held) = current {
            if held > i64::from(writer_epoch) {
                return Err(self.start_error(format!(
                    "the graph is written by a newer runner (writer epoch {held}, this one {writer_epoch})"
                )));
            }
        }
        let mut set = String::from("g.mergeV([(T.id):");
        super::literal::push_quoted(&mut set, &self.fence);
        set.push_str(&format!(
            "]).option(Merge.onCreate,[(T.label):'kith_writer','epoch':{writer_epoch}L]).option(Merge.onMatch,['epoch':Cardinality.single({writer_epoch}L)]).count()"
        ));
        self.query(&set)
            .await
            .map_err(|o| self.start_error(format!("cannot set the writer fence: {o:?}")))?;
        Ok(())
    }

    async fn write(&mut self, flush: &Flush, ctx: &WriteContext) -> Result<(), SinkError> {
        let (vertices, edges) = encode::requests(
            flush,
            &self.ids,
            &self.fence,
            self.epoch,
            self.config.batch_size,
        );
        self.send_all(vertices, ctx).await?;
        self.send_all(edges, ctx).await
    }
}
