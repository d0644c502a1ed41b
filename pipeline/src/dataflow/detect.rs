//! The detector stage: each series' detectors score its points, and the template's ensemble
//! combines their scores.

use std::sync::Arc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use aiops_operators::{SeriesDetectors, TemplateSet};

use super::SeriesMap;
use crate::metrics::Counters;
use crate::record::{FeaturedPoint, ScoredPoint};

/// See the module docs.
pub trait DetectStage<'scope> {
    /// Scores every point. Runs on the worker that computed the features (no exchange), in the
    /// order the feature stage emitted them.
    fn detect(
        self,
        templates: Arc<TemplateSet>,
        counters: Arc<Counters>,
    ) -> Stream<'scope, u64, Vec<ScoredPoint>>;
}

impl<'scope> DetectStage<'scope> for Stream<'scope, u64, Vec<FeaturedPoint>> {
    fn detect(
        self,
        templates: Arc<TemplateSet>,
        counters: Arc<Counters>,
    ) -> Stream<'scope, u64, Vec<ScoredPoint>> {
        self.unary(Pipeline, "Detect", move |_, _| {
            let mut series: SeriesMap<SeriesDetectors> = SeriesMap::default();
            move |input, output| {
                // `for_each`, not `for_each_stamp`: the latter may reorder batches of one epoch.
                input.for_each(|cap, batch| {
                    let mut session = output.session(&cap);
                    let (mut scored, mut state_bytes) = (0, 0);
                    for FeaturedPoint {
                        seq,
                        point,
                        template,
                        features,
                    } in batch.drain(..)
                    {
                        let template_config = &templates.templates()[template as usize];
                        let key = point.series.key().0;
                        let detectors = match series.get_mut(&key) {
                            Some(detectors) => detectors,
                            None => {
                                // Templates were validated when the set was built, so building
                                // their detectors cannot fail here.
                                let Ok(built) =
                                    SeriesDetectors::new(template_config, templates.registry())
                                else {
                                    continue;
                                };
                                state_bytes += built.state_bytes() as u64;
                                series.entry(key).or_insert(built)
                            }
                        };
                        let (scores, combined) = detectors.observe(template_config, &features);
                        scored += 1;
                        session.give(ScoredPoint {
                            seq,
                            point,
                            template,
                            scores,
                            combined,
                        });
                    }
                    counters.add_points_scored(scored);
                    counters.add_state_bytes(state_bytes);
                });
            }
        })
    }
}
