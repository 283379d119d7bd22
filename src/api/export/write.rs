//! The writing side of an export: rows into 64 KiB chunks on a bounded channel, through
//! gzip when asked, on a blocking thread.

use std::io::{self, Write};
use std::sync::Arc;

use ailogs_pipeline::Enriched;
use ailogs_pipeline::export::Rows;
use axum::body::Bytes;
use tokio::sync::mpsc;

use super::ExportFormat;
use crate::api::AppState;

const CHUNK_BYTES: usize = 64 * 1024;

/// Writes every line in `format`, then finishes the writer (a gzip trailer, the last chunk).
pub(super) fn write_lines<W: Write + Finish>(
    mut out: W,
    rows: &Rows<'_>,
    format: ExportFormat,
    lines: &[Arc<Enriched>],
    state: &AppState,
) -> io::Result<()> {
    let counter = state.metrics.export_lines.with_label_values(&[format.as_str()]);
    let mut written = 0u64;
    // Counted in steps, not per line: the counter is shared with other exports.
    let count = |n: &mut u64, force: bool| {
        if force || *n >= 4096 {
            counter.inc_by(*n);
            *n = 0;
        }
    };
    match format {
        ExportFormat::Ndjson | ExportFormat::Json => {
            let json = format == ExportFormat::Json;
            if json {
                out.write_all(b"[")?;
            }
            for (i, line) in lines.iter().enumerate() {
                if json && i > 0 {
                    out.write_all(b",\n")?;
                }
                serde_json::to_writer(&mut out, &rows.json(line))?;
                if !json {
                    out.write_all(b"\n")?;
                }
                written += 1;
                count(&mut written, false);
            }
            if json {
                out.write_all(b"]\n")?;
            }
        }
        ExportFormat::Csv => {
            let mut csv = csv::Writer::from_writer(&mut out);
            rows.csv_header(&mut csv).map_err(csv_error)?;
            for line in lines {
                rows.csv(line, &mut csv).map_err(csv_error)?;
                written += 1;
                count(&mut written, false);
            }
            csv.flush()?;
            drop(csv);
        }
    }
    count(&mut written, true);
    out.finish()
}

fn csv_error(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Ends a writer: the gzip trailer, then the last partial chunk.
pub(super) trait Finish {
    fn finish(self) -> io::Result<()>;
}

impl Finish for ChunkSink {
    fn finish(mut self) -> io::Result<()> {
        self.send()
    }
}

impl Finish for flate2::write::GzEncoder<ChunkSink> {
    fn finish(self) -> io::Result<()> {
        flate2::write::GzEncoder::finish(self)?.finish()
    }
}

/// Collects bytes into chunks and hands each to the response body, waiting while the client
/// is behind. A closed channel (the client went away) is a `BrokenPipe` that stops the writer.
pub(super) struct ChunkSink {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl ChunkSink {
    pub(super) fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> Self {
        ChunkSink {
            buf: Vec::with_capacity(CHUNK_BYTES),
            tx,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK_BYTES)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client closed the export"))
    }
}

impl Write for ChunkSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK_BYTES {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
