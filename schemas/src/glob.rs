//! Glob matching on names (`*` any run of characters, `?` any one character), used wherever a
//! configuration or a token selects metrics, labels or channels by pattern.

/// Matches `text` against a glob of `*` (any run) and `?` (any one character), in linear
/// space and at worst O(len(pattern) × len(text)) time.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        // A `*` is a wildcard even where the text has a `*` too: tried first, so it always
        // records where to backtrack to.
        if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ti = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("cpu_*", "cpu_usage"));
        assert!(glob_match("*_p99", "latency_p99"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("h?st", "host"));
        assert!(glob_match("ü*", "über"));
        assert!(!glob_match("cpu_*", "mem_usage"));
        assert!(!glob_match("a*b", "acbd"));
        assert!(glob_match("**a", "a"));
    }

    #[test]
    fn a_star_is_a_wildcard_where_the_text_has_a_star_too() {
        // Found by fuzz/fuzz_targets/gateway_frame.rs: the `*` was taken as a literal match of
        // the text's `*`, with no backtracking point, so a label value with a `*` could escape
        // a subscription's filter.
        assert!(glob_match("a?*~bc*", "aXXbYc*~bc*"));
        assert!(glob_match("*x", "*ax"));
        assert!(glob_match("a*", "a*"));
        assert!(!glob_match("*x", "*ay"));
    }
}
