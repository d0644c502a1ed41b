//! The feature stage: routes each point to the worker that owns its series, puts every epoch in
//! source order, picks the series' template, and computes its features.

use std::collections::BTreeMap;
use std::sync::Arc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator;

use aiops_operators::{FeatureExtractor, TemplateSet};

use super::SeriesMap;
use crate::metrics::Counters;
use crate::record::{FeaturedPoint, SourcePoint};

/// See the module docs.
pub trait FeatureStage<'scope> {
    /// Exchanges points by series key and emits their features, epoch by epoch in order.
    fn features(
        self,
        templates: Arc<TemplateSet>,
        counters: Arc<Counters>,
    ) -> Stream<'scope, u64, Vec<FeaturedPoint>>;
}

struct SeriesFeatures {
    /// `None` when no template matches: the series is counted, not scored.
    template: Option<u16>,
    extractor: FeatureExtractor,
}

impl<'scope> FeatureStage<'scope> for Stream<'scope, u64, Vec<SourcePoint>> {
    fn features(
        self,
        templates: Arc<TemplateSet>,
        counters: Arc<Counters>,
    ) -> Stream<'scope, u64, Vec<FeaturedPoint>> {
        let route = Exchange::new(|p: &SourcePoint| p.point.series.key().0);
        self.unary_frontier(route, "Features", move |_, _| {
            // Points wait here until their epoch is complete, so that a series' points are
            // processed in source order however they were spread over workers.
            let mut pending: BTreeMap<u64, (Capability<u64>, Vec<SourcePoint>)> = BTreeMap::new();
            let mut series: SeriesMap<SeriesFeatures> = SeriesMap::default();
            move |(input, frontier), output| {
                input.for_each(|cap, batch| {
                    let Some(retained) = cap.retain_least(output.output_index()) else {
                        return;
                    };
                    pending
                        .entry(*retained.time())
                        .or_insert_with(|| (retained, Vec::new()))
                        .1
                        .append(batch);
                });
                while let Some(entry) = pending.first_entry() {
                    if frontier.less_equal(entry.key()) {
                        break;
                    }
                    let (cap, mut points) = entry.remove();
                    points.sort_by_key(|p| p.seq);
                    let mut session = output.session(&cap);
                    let (mut unmatched, mut new_series) = (0, 0);
                    for SourcePoint { seq, point } in points {
                        let state = series.entry(point.series.key().0).or_insert_with(|| {
                            new_series += 1;
                            SeriesFeatures {
                                template: templates.select(&point.series).map(|(i, _)| i as u16),
                                extractor: FeatureExtractor::new(),
                            }
                        });
                        let Some(template) = state.template else {
                            unmatched += 1;
                            continue;
                        };
                        let config = &templates.templates()[template as usize].features;
                        if let Some(features) =
                            state.extractor.next(config, point.timestamp, point.value)
                        {
                            session.give(FeaturedPoint {
                                seq,
                                point,
                                template,
                                features,
                            });
                        }
                    }
                    counters.add_unmatched(unmatched);
                    counters.add_series(new_series);
                    counters
                        .add_state_bytes(new_series * std::mem::size_of::<SeriesFeatures>() as u64);
                }
            }
        })
    }
}
