//! The parse stage: raw records into validated points, and everything else into dead letters.

use std::sync::Arc;
use std::time::Instant;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;

use aiops_schemas::{Format, ParseOptions, SeriesCache, parse_record_cached};

use crate::metrics::{Counters, Stage};
use crate::record::{DeadLetter, PartitionId, RawRecord, SourcePoint};

/// How the records of each topic are parsed. A partition number's high 16 bits are its topic's
/// index (see [`PartitionId`]); sources without topics use index 0.
#[derive(Debug, Clone)]
pub struct RecordFormats(Arc<Vec<(Format, ParseOptions)>>);

impl RecordFormats {
    /// One format for everything.
    pub fn single(format: Format, options: ParseOptions) -> RecordFormats {
        RecordFormats(Arc::new(vec![(format, options)]))
    }

    /// One format per topic, in topic-index order (at least one).
    pub fn per_topic(formats: Vec<(Format, ParseOptions)>) -> RecordFormats {
        RecordFormats(Arc::new(formats))
    }

    /// The format of a partition's records.
    pub fn for_partition(&self, partition: PartitionId) -> &(Format, ParseOptions) {
        let topic = partition.topic_index();
        self.0.get(topic).unwrap_or(&self.0[0])
    }
}

/// Parses records where they were read (no exchange: parsing is the embarrassingly parallel
/// part), emitting points on the first stream and dead letters on the second.
pub trait ParseStage<'scope> {
    /// See the trait docs.
    fn parse_records(
        self,
        formats: RecordFormats,
        counters: Arc<Counters>,
    ) -> (
        Stream<'scope, u64, Vec<SourcePoint>>,
        Stream<'scope, u64, Vec<DeadLetter>>,
    );
}

impl<'scope> ParseStage<'scope> for Stream<'scope, u64, Vec<RawRecord>> {
    fn parse_records(
        self,
        formats: RecordFormats,
        counters: Arc<Counters>,
    ) -> (
        Stream<'scope, u64, Vec<SourcePoint>>,
        Stream<'scope, u64, Vec<DeadLetter>>,
    ) {
        let worker = self.scope().index();
        let mut builder = OperatorBuilder::new("Parse".to_owned(), self.scope());
        let mut input = builder.new_input(self, Pipeline);
        let (points_output, points) = builder.new_output::<Vec<SourcePoint>>();
        let (dead_output, dead) = builder.new_output::<Vec<DeadLetter>>();
        let mut points_output =
            timely::dataflow::operators::generic::OutputBuilder::from(points_output);
        let mut dead_output =
            timely::dataflow::operators::generic::OutputBuilder::from(dead_output);
        builder.build(move |_| {
            // Series this worker has parsed before: most points are of a known series.
            let mut cache = SeriesCache::new(SERIES_CACHE_CAPACITY);
            move |_frontiers| {
                let mut points_handle = points_output.activate();
                let mut dead_handle = dead_output.activate();
                input.for_each(|cap, batch| {
                    let started = Instant::now();
                    let mut points = points_handle.session(&cap);
                    let mut dead = dead_handle.session(&cap);
                    let mut parsed = 0;
                    counters.add_records_in(batch.len() as u64);
                    for record in batch.drain(..) {
                        let (format, options) = formats.for_partition(record.partition);
                        match parse_record_cached(
                            *format,
                            &record.bytes,
                            options,
                            record.received,
                            &mut cache,
                        ) {
                            Ok(found) => {
                                parsed += found.len() as u64;
                                for (index, point) in found.into_iter().enumerate() {
                                    points.give(SourcePoint {
                                        seq: sub_position(record.seq, index),
                                        partition: record.partition,
                                        point,
                                    });
                                }
                            }
                            Err(error) => dead.give(DeadLetter {
                                seq: record.seq,
                                partition: record.partition,
                                key: record.key,
                                format: *format,
                                kind: error.kind().to_owned(),
                                reason: error.to_string(),
                                bytes: record.bytes,
                            }),
                        }
                    }
                    counters.add_points_in(parsed);
                    counters.time_stage(Stage::Parse, Some(worker), started.elapsed());
                });
            }
        });
        (points, dead)
    }
}

/// Series a worker's parse stage remembers (about 200 bytes each).
pub const SERIES_CACHE_CAPACITY: usize = 100_000;

/// Bits of a position reserved for the index of a point within its record.
pub const SUB_POSITION_BITS: u32 = 12;

/// The position of the `index`-th point of the record at `seq`: one record may hold several
/// points (an Influx line with several fields, a JSON array), which keep their order within
/// it. Records hold at most 4096 points in practice; beyond that, later points share the last
/// sub-position and keep their relative order through the stable sort.
pub fn sub_position(seq: u64, index: usize) -> u64 {
    (seq << SUB_POSITION_BITS) | (index as u64).min((1 << SUB_POSITION_BITS) - 1)
}
