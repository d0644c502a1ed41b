//! The gateway's decoders on arbitrary text: client frames (what any WebSocket client may send)
//! and broker messages (event heads); the filters a subscription carries are run against the
//! decoded events, and the glob matcher is checked against a plain reference matcher.
#![no_main]

use aiops_gateway::protocol::{ClientMessage, EventHead, decode_client, decode_event_head};
use aiops_schemas::glob::glob_match;
use libfuzzer_sys::fuzz_target;

/// The textbook dynamic-programming glob matcher: the reference. `m[i][j]`: the first `i`
/// pattern characters match the first `j` text characters.
fn reference_glob(pattern: &[char], text: &[char]) -> bool {
    let mut m = vec![vec![false; text.len() + 1]; pattern.len() + 1];
    m[0][0] = true;
    for i in 1..=pattern.len() {
        for j in 0..=text.len() {
            m[i][j] = match pattern[i - 1] {
                '*' => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                '?' => j > 0 && m[i - 1][j - 1],
                c => j > 0 && m[i - 1][j - 1] && text[j - 1] == c,
            };
        }
    }
    m[pattern.len()][text.len()]
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The same text as a frame and as a broker message.
    let message = decode_client(text);
    let head = decode_event_head(text).unwrap_or_default();
    if let Ok(ClientMessage::Subscribe { filter, .. }) = &message {
        let _ = filter.matches(&head);
        let _ = filter.matches(&EventHead::default());
        if let (Some(pattern), Some(series)) = (&filter.metric, &head.series) {
            let (p, t): (Vec<char>, Vec<char>) =
                (pattern.chars().collect(), series.name.chars().collect());
            if p.len() <= 64 && t.len() <= 256 {
                assert_eq!(
                    glob_match(pattern, &series.name),
                    reference_glob(&p, &t),
                    "glob {pattern:?} on {:?}",
                    series.name
                );
            }
        }
    }
    // Split the input into a glob and a text to reach the matcher directly too.
    if let Some((pattern, name)) = text.split_once('\n') {
        let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
        if p.len() <= 64 && t.len() <= 256 {
            assert_eq!(
                glob_match(pattern, name),
                reference_glob(&p, &t),
                "glob {pattern:?} on {name:?}"
            );
        } else {
            let _ = glob_match(pattern, name);
        }
    }
});
