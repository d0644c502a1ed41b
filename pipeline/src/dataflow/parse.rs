//! The parse stage: raw records into validated points, and everything else into dead letters.

use std::sync::Arc;

use timely::dataflow::Stream;
use timely::dataflow::operators::core::OkErr;

use aiops_schemas::{Format, ParseOptions, TimestampMs, parse_record};

use crate::metrics::Counters;
use crate::record::{DeadLetter, RawRecord, SourcePoint};

/// Parses records where they were read (no exchange: parsing is the embarrassingly parallel
/// part), emitting points on the first stream and dead letters on the second.
pub trait ParseStage<'scope> {
    /// See the trait docs. `now` gives the timestamp of points that carry none.
    fn parse_records(
        self,
        format: Format,
        options: Arc<ParseOptions>,
        now: fn() -> TimestampMs,
        counters: Arc<Counters>,
    ) -> (
        Stream<'scope, u64, Vec<SourcePoint>>,
        Stream<'scope, u64, Vec<DeadLetter>>,
    );
}

impl<'scope> ParseStage<'scope> for Stream<'scope, u64, Vec<RawRecord>> {
    fn parse_records(
        self,
        format: Format,
        options: Arc<ParseOptions>,
        now: fn() -> TimestampMs,
        counters: Arc<Counters>,
    ) -> (
        Stream<'scope, u64, Vec<SourcePoint>>,
        Stream<'scope, u64, Vec<DeadLetter>>,
    ) {
        let (points, dead) = self.ok_err(move |record: RawRecord| {
            match parse_record(format, &record.bytes, &options, now()) {
                Ok(points) => Ok((record.seq, points)),
                Err(error) => Err(DeadLetter {
                    seq: record.seq,
                    format,
                    kind: error.kind().to_owned(),
                    reason: error.to_string(),
                    bytes: record.bytes,
                }),
            }
        });
        let points = flatten(points, counters);
        (points, dead)
    }
}

/// One record may hold several points (an Influx line with several fields, a JSON array):
/// they share the record's position, and keep their order within it through a sub-position in
/// the low bits.
fn flatten<'scope>(
    stream: Stream<'scope, u64, Vec<(u64, Vec<aiops_schemas::MetricPoint>)>>,
    counters: Arc<Counters>,
) -> Stream<'scope, u64, Vec<SourcePoint>> {
    use timely::dataflow::channels::pact::Pipeline;
    use timely::dataflow::operators::generic::Operator;
    stream.unary(Pipeline, "FlattenRecords", move |_, _| {
        move |input, output| {
            input.for_each(|cap, batch| {
                let mut session = output.session(&cap);
                let mut count = 0;
                for (seq, points) in batch.drain(..) {
                    count += points.len() as u64;
                    for (index, point) in points.into_iter().enumerate() {
                        session.give(SourcePoint {
                            seq: sub_position(seq, index),
                            point,
                        });
                    }
                }
                counters.add_points_in(count);
            });
        }
    })
}

/// Bits of a position reserved for the index of a point within its record.
pub const SUB_POSITION_BITS: u32 = 12;

/// The position of the `index`-th point of the record at `seq`. Records hold at most 4096
/// points in practice (a 1 MiB record of minimal Influx lines holds fewer); beyond that, later
/// points share the last sub-position and keep their relative order by a stable sort.
pub fn sub_position(seq: u64, index: usize) -> u64 {
    (seq << SUB_POSITION_BITS) | (index as u64).min((1 << SUB_POSITION_BITS) - 1)
}
