//! `ailogs simulate`: the demo's simulated AI application, writing its JSON lines to files
//! (`<dir>/<service>/app.log`) as the real services would, for a shipper (Promtail) to tail.
//! The compose stack's `log-generator` runs it.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ailogs_pipeline::synth::{Incident, SynthLine, Traffic};

use crate::cli::SimulateArgs;

const NS: i64 = 1_000_000_000;

/// One service's log file, rotated (renamed to `app.log.1`) when it outgrows its limit, as
/// logrotate would: shippers follow the rename.
struct ServiceLog {
    path: PathBuf,
    file: BufWriter<File>,
    written: u64,
}

impl ServiceLog {
    fn open(dir: &Path, service: &str) -> std::io::Result<ServiceLog> {
        let service_dir = dir.join(service);
        std::fs::create_dir_all(&service_dir)?;
        let path = service_dir.join("app.log");
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let written = file.metadata()?.len();
        Ok(ServiceLog {
            path,
            file: BufWriter::new(file),
            written,
        })
    }

    fn write(&mut self, line: &str, max_bytes: u64) -> std::io::Result<()> {
        if self.written > 0 && self.written + line.len() as u64 > max_bytes {
            self.file.flush()?;
            std::fs::rename(&self.path, self.path.with_extension("log.1"))?;
            self.file = BufWriter::new(OpenOptions::new().create(true).append(true).open(&self.path)?);
            self.written = 0;
        }
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")?;
        self.written += line.len() as u64 + 1;
        Ok(())
    }
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let mut logs: HashMap<&'static str, ServiceLog> = HashMap::new();
    let mut traffic = Traffic::new(args.seed);
    let mut pending: Vec<SynthLine> = Vec::new();
    let rate = args.rate.max(1);
    let started = now_ns();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut ticks = 0u64;
    println!(
        "writing {} requests/s of simulated AI traffic under {}",
        rate,
        args.dir.display()
    );
    loop {
        tick.tick().await;
        let now = now_ns();
        if args.duration_s.is_some_and(|s| now - started >= s as i64 * NS) {
            break;
        }
        // One incident every 150 s, each kind in turn, as the demo plays them.
        if ticks % 750 == 375 {
            let incident = Incident::ALL[(ticks / 750) as usize % Incident::ALL.len()];
            traffic.start_incident(incident, rate * 20);
        }
        ticks += 1;
        let n = (rate / 5).max(1);
        pending.extend((0..n).flat_map(|i| traffic.request(now + i64::from(i) * NS / 5 / i64::from(n))));
        // A line is written once its time has come (a timed-out call is logged later).
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut pending).into_iter().partition(|l| l.ts_ns <= now);
        pending = later;
        for line in ready {
            let log = match logs.entry(line.service) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(ServiceLog::open(&args.dir, line.service)?),
            };
            log.write(&line.line, args.max_file_bytes)?;
        }
        for log in logs.values_mut() {
            log.file.flush()?;
        }
    }
    Ok(())
}

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_is_rotated_and_lines_go_on_in_a_new_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = ServiceLog::open(dir.path(), "api").expect("open");
        for i in 0..10 {
            log.write(&format!(r#"{{"n":{i}}}"#), 40).expect("write");
        }
        log.file.flush().expect("flush");
        let current = std::fs::read_to_string(dir.path().join("api/app.log")).expect("current");
        let rotated = std::fs::read_to_string(dir.path().join("api/app.log.1")).expect("rotated");
        assert!(current.len() <= 40 && rotated.len() <= 40, "{current:?} {rotated:?}");
        assert!(current.ends_with("{\"n\":9}\n"), "{current:?}");
        assert!(rotated.lines().all(|l| l.starts_with("{\"n\":")));
    }
}
