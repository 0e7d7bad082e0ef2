//! Kafka from tests: topics, producing lines, reading a topic back, and the
//! runner as a child process pointed at the test broker.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A topic name no other test or run uses.
pub fn unique_topic(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures::executor::block_on(admin.create_topics(
        [&new],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .expect("create_topics answers");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
    }
}

/// Produces each line as one message, spread over partitions by `key_of`,
/// and waits until the broker has them all.
pub fn produce(bootstrap: &str, topic: &str, lines: &[Vec<u8>], partitions: i32) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    for (i, line) in lines.iter().enumerate() {
        send(&producer, topic, i, line, partitions);
    }
    producer
        .flush(Duration::from_secs(60))
        .expect("the broker takes every message");
}

/// Queues line number `i` on its partition (`i * 7919 % partitions`, the
/// spread every test uses), waiting while the producer's queue is full.
pub fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    i: usize,
    line: &[u8],
    partitions: i32,
) {
    let partition = (i as i32).wrapping_mul(7919).rem_euclid(partitions.max(1));
    let mut record = BaseRecord::<(), [u8]>::to(topic)
        .payload(line)
        .partition(partition);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                std::thread::sleep(Duration::from_millis(10));
                record = back;
            }
        }
    }
}

/// One message read back: payload and headers.
pub struct Read {
    pub payload: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// A consumer assigned to every partition of `topic` from the beginning,
/// with each partition's `(low, high)` watermarks as seen now.
fn from_the_beginning(
    bootstrap: &str,
    topic: &str,
    settings: &[(&str, &str)],
) -> (BaseConsumer, HashMap<i32, (i64, i64)>) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.auto.commit", "false");
    for (k, v) in settings {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    let mut marks = HashMap::new();
    for p in metadata.topics()[0].partitions() {
        let watermarks = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .expect("watermarks");
        marks.insert(p.id(), watermarks);
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    (consumer, marks)
}

/// Every message of `topic` (all partitions, from the beginning to the end
/// offsets seen now).
pub fn read_all(bootstrap: &str, topic: &str) -> Vec<Read> {
    let (consumer, marks) = from_the_beginning(bootstrap, topic, &[("group.id", "kith-tests")]);
    let remaining: i64 = marks.values().map(|(low, high)| high - low).sum();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (out.len() as i64) < remaining && std::time::Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("a message");
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            (
                                h.key.to_string(),
                                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.push(Read {
                payload: m.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
    }
    out
}

/// What every Kafka test starts from: the test broker, a fresh topic and a
/// working folder, and the environment `examples/kafka/pipeline.yaml` reads
/// (checkpoints to a folder inside the working one).
pub struct KafkaCase {
    pub bootstrap: String,
    pub topic: String,
    pub dir: tempfile::TempDir,
    pub partitions: i32,
    checkpoints: String,
}

impl KafkaCase {
    pub fn new(prefix: &str, partitions: i32) -> KafkaCase {
        let services = super::services::require(&["kafka"]);
        let bootstrap = services.get("KAFKA_BOOTSTRAP").to_string();
        let topic = unique_topic(prefix);
        create_topic(&bootstrap, &topic, partitions);
        let dir = tempfile::tempdir().unwrap();
        let checkpoints = format!("file://{}", dir.path().join("checkpoints").display());
        KafkaCase {
            bootstrap,
            topic,
            dir,
            partitions,
            checkpoints,
        }
    }

    pub fn produce(&self, lines: &[Vec<u8>]) {
        produce(&self.bootstrap, &self.topic, lines, self.partitions);
    }

    /// The pipeline's environment with checkpoints every `interval`.
    pub fn envs<'a>(&'a self, interval: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("KAFKA_BOOTSTRAP", self.bootstrap.as_str()),
            ("KITH_INPUT_TOPIC", self.topic.as_str()),
            ("KITH_CHECKPOINTS", self.checkpoints.as_str()),
            ("KITH_CHECKPOINT_INTERVAL", interval),
        ]
    }

    /// The export of a file run over `lines` (written into the working folder).
    pub fn reference(&self, lines: &[Vec<u8>], name: &str) -> Vec<String> {
        let input = self.dir.path().join(format!("{name}.jsonl"));
        super::runner::write_lines(&input, lines);
        let reference_dir = self.dir.path().join(name);
        std::fs::create_dir_all(&reference_dir).unwrap();
        super::runner::reference_export(&input, &reference_dir)
    }
}

/// Every committed message of `topic` (a `read_committed` consumer, all
/// partitions, up to the end offsets seen now), as (key, payload).
pub fn read_committed(bootstrap: &str, topic: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (consumer, marks) = from_the_beginning(
        bootstrap,
        topic,
        &[
            ("group.id", "kith-tests-committed"),
            ("isolation.level", "read_committed"),
        ],
    );
    let ends: HashMap<i32, i64> = marks.into_iter().map(|(p, (_, high))| (p, high)).collect();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let done = |c: &BaseConsumer| {
        let positions = c.position().expect("positions");
        ends.iter().all(|(p, high)| {
            *high == 0
                || matches!(
                    positions.find_partition(topic, *p).map(|e| e.offset()),
                    Some(Offset::Offset(o)) if o >= *high
                )
        })
    };
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(m) => {
                let m = m.expect("a message");
                out.push((
                    m.key().unwrap_or_default().to_vec(),
                    m.payload().unwrap_or_default().to_vec(),
                ));
            }
            None => {
                if done(&consumer) {
                    break;
                }
            }
        }
    }
    out
}
