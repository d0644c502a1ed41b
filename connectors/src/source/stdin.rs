//! The stdin source: one record per line of standard input, read by worker 0.
//!
//! A reader thread feeds a bounded channel, so the worker keeps stepping the dataflow (and
//! events keep flowing) while the producer on the other end of the pipe is quiet. Each poll takes
//! what has arrived, up to a batch, as one epoch.

use std::io::BufRead;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::time::Duration;

use aiops_schemas::Format;

use super::single_format;
use aiops_pipeline::Result;
use aiops_pipeline::dataflow::RecordFormats;
use aiops_pipeline::record::{PartitionId, RawRecord};
use aiops_pipeline::source::{Batch, Poll, Source, SourceContext, WorkerSource};
use aiops_schemas::ParseOptions;

/// Lines per epoch at most.
const BATCH_LINES: usize = 4096;

/// Records from standard input.
#[derive(Debug, Clone)]
pub struct StdinSource {
    format: Format,
}

impl StdinSource {
    /// Standard input, parsed as `format`.
    pub fn new(format: Format) -> StdinSource {
        StdinSource { format }
    }
}

impl Source for StdinSource {
    fn describe(&self) -> String {
        format!("stdin ({})", self.format)
    }

    fn formats(&self, base: &ParseOptions) -> RecordFormats {
        single_format(self.format, base)
    }

    fn open(
        &self,
        index: usize,
        _peers: usize,
        _context: &SourceContext,
    ) -> Result<Box<dyn WorkerSource>> {
        if index != 0 {
            return Ok(Box::new(Finished));
        }
        let (sender, receiver) = sync_channel(BATCH_LINES * 4);
        std::thread::Builder::new()
            .name("aiops-stdin".into())
            .spawn(move || read_lines(std::io::stdin().lock(), sender))
            .map_err(|e| {
                aiops_pipeline::Error::Dataflow(format!("cannot start the stdin reader: {e}"))
            })?;
        Ok(Box::new(LineReceiver::new(receiver)))
    }
}

/// Reads lines until the end of input (or the receiver hangs up); a read error ends the input
/// like an end of file, after reporting it.
pub(crate) fn read_lines(mut input: impl BufRead, sender: SyncSender<Vec<u8>>) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                while matches!(line.last(), Some(b'\n' | b'\r')) {
                    line.pop();
                }
                if line.trim_ascii().is_empty() {
                    continue;
                }
                if sender.send(line.clone()).is_err() {
                    return;
                }
            }
            Err(error) => {
                tracing::error!(%error, "aiops: stopped reading standard input: {error}");
                return;
            }
        }
    }
}

/// Worker 0's side: lines from the reader thread, numbered in arrival order.
pub(crate) struct LineReceiver {
    receiver: Receiver<Vec<u8>>,
    seq: u64,
    epoch: u64,
}

impl LineReceiver {
    pub(crate) fn new(receiver: Receiver<Vec<u8>>) -> LineReceiver {
        LineReceiver {
            receiver,
            seq: 0,
            epoch: 0,
        }
    }

    fn record(&mut self, bytes: Vec<u8>) -> RawRecord {
        self.seq += 1;
        RawRecord {
            seq: self.seq - 1,
            partition: PartitionId::default(),
            received: aiops_schemas::system_now(),
            key: None,
            bytes,
        }
    }
}

impl WorkerSource for LineReceiver {
    fn poll(&mut self) -> Result<Poll> {
        let first = match self.receiver.recv_timeout(Duration::from_millis(20)) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => return Ok(Poll::Idle),
            Err(RecvTimeoutError::Disconnected) => return Ok(Poll::Done),
        };
        let mut records = vec![self.record(first)];
        while records.len() < BATCH_LINES {
            match self.receiver.try_recv() {
                Ok(line) => {
                    let record = self.record(line);
                    records.push(record);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        self.epoch += 1;
        Ok(Poll::Ready {
            epoch: self.epoch - 1,
            batch: Batch::Raw(records),
        })
    }

    fn next_epoch(&self) -> u64 {
        self.epoch
    }
}

/// A worker with no share of the source.
struct Finished;

impl WorkerSource for Finished {
    fn poll(&mut self) -> Result<Poll> {
        Ok(Poll::Done)
    }

    fn next_epoch(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_arrive_in_order_as_epochs_and_blank_lines_are_skipped() {
        let (sender, receiver) = sync_channel(16);
        let input = std::io::Cursor::new(b"a\r\n\nb\nc".to_vec());
        let reader = std::thread::spawn(move || read_lines(input, sender));
        let mut worker = LineReceiver::new(receiver);
        let mut seen = Vec::new();
        loop {
            match worker.poll().unwrap() {
                Poll::Ready {
                    batch: Batch::Raw(records),
                    ..
                } => seen.extend(
                    records
                        .into_iter()
                        .map(|r| (r.seq, String::from_utf8(r.bytes).unwrap())),
                ),
                Poll::Idle => continue,
                Poll::Done => break,
                Poll::Ready { .. } => unreachable!(),
            }
        }
        reader.join().unwrap();
        assert_eq!(seen, [(0, "a".into()), (1, "b".into()), (2, "c".into())]);
    }
}
