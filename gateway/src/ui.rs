//! The operator UI: the React app of `ui/` (live anomalies and drift, detector configuration),
//! built into `ui/dist/` and compiled into the binary, served at `/`. It opens a WebSocket back
//! to the same gateway and calls the configuration API on the same origin with the user's token.
//!
//! The built files are committed (CI rebuilds them and fails if they differ), so building the
//! binary needs only Rust. Nothing is fetched from anywhere else, so the page works offline and
//! behind strict egress rules; the content security policy pins it to its own origin.

/// A file of the UI.
pub struct Asset {
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// Served with every asset: only this origin's scripts, styles, WebSocket and API; no inline
/// script or style; no framing, so a hostile page cannot overlay the UI; no referrer, so the
/// page's address never leaves it.
pub const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cache-control", "no-cache"),
];

/// The asset at `path`, if the UI has one.
pub fn asset(path: &str) -> Option<Asset> {
    match path {
        "/" | "/index.html" => Some(Asset {
            content_type: "text/html; charset=utf-8",
            body: include_str!("../../ui/dist/index.html"),
        }),
        "/app.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("../../ui/dist/app.js"),
        }),
        "/app.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("../../ui/dist/app.css"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_refers_only_to_assets_that_are_served() {
        let page = asset("/").unwrap().body;
        for reference in ["/app.js", "/app.css"] {
            assert!(page.contains(reference), "{reference}");
            assert!(asset(reference).is_some(), "{reference}");
        }
        // No inline script or style: the policy would refuse them.
        assert!(!page.contains("<style"), "inline style in the page");
        let scripts = page.matches("<script").count();
        assert_eq!(
            scripts,
            page.matches("<script src=").count(),
            "inline script in the page"
        );
        // Nothing loaded from another origin: no CDN, no fonts.
        for attribute in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(!page.contains(attribute), "{attribute} in the page");
        }
        let style = asset("/app.css").unwrap().body;
        assert!(!style.contains("@import"), "the style sheet imports");
        assert!(
            !style.contains("url(http"),
            "the style sheet loads from elsewhere"
        );
        assert!(asset("/secret").is_none());
    }

    #[test]
    fn the_script_never_evaluates_strings() {
        // The policy has no 'unsafe-eval': a bundle that needs it would break in the browser.
        // (That the app never writes labels as HTML is ui/'s ESLint rules' job: React itself
        // contains the names of the escape hatches.)
        let script = asset("/app.js").unwrap().body;
        assert!(!script.contains("insertAdjacentHTML"));
        assert!(!script.contains("document.write("));
        assert!(!script.contains("new Function("));
        assert!(!script.contains("eval("));
    }
}
