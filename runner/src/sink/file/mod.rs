//! The file sink: the change feed's events (see [`crate::sink::events`]) as
//! JSON lines appended to a file, made durable at every checkpoint barrier.
//! After a restart the changes since the last checkpoint are written again,
//! so a reader may see them twice; folding the file is unaffected.

use crate::sink::events;
use crate::sink::flush::Flush;
use crate::sink::worker::{SinkService, WriteContext};
use crate::sink::SinkError;
use kith_pipeline::sinks::file::FileSinkConfig;
use std::io::Write;
use std::path::PathBuf;

pub struct FileService {
    path: PathBuf,
    sink: String,
    file: Option<std::io::BufWriter<std::fs::File>>,
}

impl FileService {
    pub fn new(config: &FileSinkConfig, sink: &str) -> Self {
        FileService {
            path: config.path.clone(),
            sink: sink.to_string(),
            file: None,
        }
    }

    fn error(&self, e: std::io::Error) -> SinkError {
        SinkError::Fatal {
            sink: self.sink.clone(),
            message: format!("{}: {e}", self.path.display()),
        }
    }
}

impl SinkService for FileService {
    async fn prepare(&mut self, _writer_epoch: u32) -> Result<(), SinkError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| SinkError::Start {
                sink: self.sink.clone(),
                message: format!("{}: {e}", dir.display()),
            })?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| SinkError::Start {
                sink: self.sink.clone(),
                message: format!("{}: {e}", self.path.display()),
            })?;
        self.file = Some(std::io::BufWriter::with_capacity(1 << 20, file));
        Ok(())
    }

    async fn write(&mut self, flush: &Flush, ctx: &WriteContext) -> Result<(), SinkError> {
        let batch = events::events(flush);
        ctx.metrics.batch_size.observe(batch.len() as f64);
        ctx.metrics.requests.inc();
        let result = (|| {
            let out = self
                .file
                .as_mut()
                .ok_or_else(|| std::io::Error::other("the file is not open"))?;
            for e in &batch {
                out.write_all(&e.payload)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
            if flush.ack.is_some() {
                out.get_ref().sync_data()?;
            }
            Ok(())
        })();
        result.map_err(|e| self.error(e))
    }
}
