//! The alert stage: each series' alert policy turns scores into anomaly events.

use std::sync::Arc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use aiops_operators::{AlertState, TemplateSet, build_event};
use aiops_schemas::{AnomalyEvent, Severity};

use super::SeriesMap;
use crate::metrics::Counters;
use crate::record::ScoredPoint;

/// See the module docs.
pub trait AlertStage<'scope> {
    /// Emits an event for each point that opens (or escalates) an incident.
    fn alerts(
        self,
        templates: Arc<TemplateSet>,
        counters: Arc<Counters>,
    ) -> Stream<'scope, u64, Vec<AnomalyEvent>>;
}

impl<'scope> AlertStage<'scope> for Stream<'scope, u64, Vec<ScoredPoint>> {
    fn alerts(
        self,
        templates: Arc<TemplateSet>,
        counters: Arc<Counters>,
    ) -> Stream<'scope, u64, Vec<AnomalyEvent>> {
        self.unary(Pipeline, "Alert", move |_, _| {
            let mut series: SeriesMap<AlertState> = SeriesMap::default();
            move |input, output| {
                input.for_each(|cap, batch| {
                    let mut session = output.session(&cap);
                    let (mut events, mut critical, mut new_series) = (0, 0, 0u64);
                    for scored in batch.drain(..) {
                        let template = &templates.templates()[scored.template as usize];
                        let state =
                            series
                                .entry(scored.point.series.key().0)
                                .or_insert_with(|| {
                                    new_series += 1;
                                    AlertState::new()
                                });
                        let score = scored.combined.map(|c| c.score);
                        let (Some(alert), Some(combined)) = (
                            state.step(&template.alert, scored.point.timestamp, score),
                            scored.combined,
                        ) else {
                            continue;
                        };
                        events += 1;
                        critical += u64::from(alert.severity == Severity::Critical);
                        session.give(build_event(
                            template,
                            &scored.point,
                            &combined,
                            &scored.scores,
                            &alert,
                        ));
                    }
                    counters.add_events_out(events);
                    counters.add_critical_out(critical);
                    counters.add_state_bytes(new_series * std::mem::size_of::<AlertState>() as u64);
                });
            }
        })
    }
}
