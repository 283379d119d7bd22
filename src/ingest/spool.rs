//! A local durable spool for lines Kafka did not acknowledge, so a shipper is answered (and
//! not stalled) while Kafka is unreachable. Records are appended to segment files, framed
//! as `[len u32][crc32 u32][payload]` and fsynced before the push is answered; segments are
//! replayed oldest first and deleted once Kafka acknowledged all of their messages.
//!
//! Crash windows: a record torn by a crash fails its CRC and is dropped with a warning (its
//! push was never answered 204); a crash during replay re-sends that segment (at least once).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// Segments rotate at this size, bounding what a crash during replay can re-send.
const SEGMENT_BYTES: u64 = 8 << 20;

/// One message as it would have been produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledMessage {
    pub key: String,
    pub payload: String,
    pub ts_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool is full ({used} of {max} bytes); retry later")]
    Full { used: u64, max: u64 },
    #[error("spool io: {0}")]
    Io(#[from] std::io::Error),
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
}

struct State {
    /// Segment being appended to, with its sequence number and size.
    current: Option<(u64, File, u64)>,
    next_seq: u64,
    used: u64,
}

impl Spool {
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let segments = list_segments(dir)?;
        let used = segments
            .iter()
            .map(|(_, p)| fs::metadata(p).map_or(0, |m| m.len()))
            .sum();
        let next_seq = segments.last().map_or(0, |(s, _)| s + 1);
        Ok(Spool {
            dir: dir.to_owned(),
            max_bytes,
            state: Mutex::new(State {
                current: None,
                next_seq,
                used,
            }),
        })
    }

    /// Bytes held on disk.
    pub fn used(&self) -> u64 {
        self.state.lock().used
    }

    /// Appends one batch and fsyncs it. Refuses when the spool would exceed its size.
    pub fn append(&self, messages: &[SpooledMessage]) -> Result<(), SpoolError> {
        let payload = serde_json::to_vec(messages).expect("spooled messages serialize");
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        let mut state = self.state.lock();
        if state.used + frame.len() as u64 > self.max_bytes {
            return Err(SpoolError::Full {
                used: state.used,
                max: self.max_bytes,
            });
        }
        if state.current.as_ref().is_none_or(|(_, _, size)| *size >= SEGMENT_BYTES) {
            let seq = state.next_seq;
            state.next_seq += 1;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(segment_path(&self.dir, seq))?;
            // The new file's directory entry must survive a crash too.
            File::open(&self.dir)?.sync_all()?;
            state.current = Some((seq, file, 0));
        }
        let (_, file, size) = state.current.as_mut().expect("a current segment");
        file.write_all(&frame)?;
        file.sync_data()?;
        *size += frame.len() as u64;
        state.used += frame.len() as u64;
        Ok(())
    }

    /// The oldest segment and its batches, in order. Closes it for appends first, so it can
    /// be deleted once replayed.
    pub fn oldest(&self) -> std::io::Result<Option<(u64, Vec<Vec<SpooledMessage>>)>> {
        let mut state = self.state.lock();
        let Some((seq, path)) = list_segments(&self.dir)?.into_iter().next() else {
            return Ok(None);
        };
        if state.current.as_ref().is_some_and(|(s, _, _)| *s == seq) {
            state.current = None;
        }
        drop(state);
        Ok(Some((seq, read_segment(&path)?)))
    }

    /// Deletes a replayed segment.
    pub fn remove(&self, seq: u64) -> std::io::Result<()> {
        let path = segment_path(&self.dir, seq);
        let len = fs::metadata(&path).map_or(0, |m| m.len());
        fs::remove_file(&path)?;
        let mut state = self.state.lock();
        state.used = state.used.saturating_sub(len);
        Ok(())
    }
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

fn list_segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let seq = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse().ok());
        if let Some(seq) = seq {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

fn read_segment(path: &Path) -> std::io::Result<Vec<Vec<SpooledMessage>>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut batches = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            tracing::warn!(path = %path.display(), "torn record at the end of a spool segment (crash while appending); dropped");
            break;
        };
        if crc32fast::hash(payload) != crc {
            tracing::warn!(path = %path.display(), "spool record fails its checksum; dropped");
            break;
        }
        match serde_json::from_slice(payload) {
            Ok(batch) => batches.push(batch),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "unreadable spool record; dropped"),
        }
        at += 8 + len;
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(i: usize) -> SpooledMessage {
        SpooledMessage {
            key: format!("k{i}"),
            payload: format!("{{\"n\":{i}}}"),
            ts_ms: i as i64,
        }
    }

    fn tmp() -> PathBuf {
        std::env::temp_dir().join(format!("ailogs-spool-{}", uuid::Uuid::new_v4().simple()))
    }

    #[test]
    fn appends_replay_in_order_across_restarts() {
        let dir = tmp();
        let spool = Spool::open(&dir, 1 << 20).expect("open");
        spool.append(&[msg(1), msg(2)]).expect("append");
        spool.append(&[msg(3)]).expect("append");
        drop(spool);
        let spool = Spool::open(&dir, 1 << 20).expect("reopen");
        assert!(spool.used() > 0);
        spool.append(&[msg(4)]).expect("append after restart");
        let mut seen = Vec::new();
        while let Some((seq, batches)) = spool.oldest().expect("read") {
            seen.extend(batches.into_iter().flatten().map(|m| m.ts_ms));
            spool.remove(seq).expect("remove");
        }
        assert_eq!(seen, vec![1, 2, 3, 4]);
        assert_eq!(spool.used(), 0);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn full_spool_refuses_and_torn_records_are_dropped() {
        let dir = tmp();
        let spool = Spool::open(&dir, 64).expect("open");
        spool.append(&[msg(1)]).expect("fits");
        assert!(matches!(spool.append(&[msg(2), msg(3)]), Err(SpoolError::Full { .. })));
        drop(spool);
        // A crash in the middle of an append leaves a partial frame at the end.
        let seg = list_segments(&dir).expect("list")[0].1.clone();
        OpenOptions::new()
            .append(true)
            .open(&seg)
            .expect("open seg")
            .write_all(&[9, 0, 0, 0, 1, 2])
            .expect("tear");
        let spool = Spool::open(&dir, 1 << 20).expect("reopen");
        let (_, batches) = spool.oldest().expect("read").expect("a segment");
        assert_eq!(batches, vec![vec![msg(1)]]);
        let _ = fs::remove_dir_all(dir);
    }
}
