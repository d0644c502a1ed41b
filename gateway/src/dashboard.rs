//! The live dashboard: a static page, script and style sheet compiled into the binary and served
//! at `/`, which open a WebSocket back to the same gateway with the user's token.
//!
//! Nothing is fetched from anywhere else, so the page works offline and behind strict egress
//! rules; the content security policy pins it to its own origin.

/// A file of the dashboard.
pub struct Asset {
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// Served with every asset: only this origin's scripts, styles and WebSocket; no framing, so a
/// hostile page cannot overlay the dashboard; no referrer, so the page's address never leaves it.
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

/// The asset at `path`, if the dashboard has one.
pub fn asset(path: &str) -> Option<Asset> {
    match path {
        "/" | "/index.html" => Some(Asset {
            content_type: "text/html; charset=utf-8",
            body: include_str!("dashboard/index.html"),
        }),
        "/dashboard.js" => Some(Asset {
            content_type: "text/javascript; charset=utf-8",
            body: include_str!("dashboard/dashboard.js"),
        }),
        "/dashboard.css" => Some(Asset {
            content_type: "text/css; charset=utf-8",
            body: include_str!("dashboard/dashboard.css"),
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
        for reference in ["/dashboard.js", "/dashboard.css"] {
            assert!(page.contains(reference), "{reference}");
            assert!(asset(reference).is_some(), "{reference}");
        }
        // Nothing from another origin: no CDN, no fonts.
        for asset in ["/", "/dashboard.js", "/dashboard.css"] {
            let body = super::asset(asset).unwrap().body;
            assert!(!body.contains("https://"), "{asset} fetches from elsewhere");
            assert!(
                !body.contains("http://") || asset == "/dashboard.js",
                "{asset}"
            );
        }
        assert!(asset("/secret").is_none());
    }

    #[test]
    fn the_script_never_writes_event_fields_as_html() {
        // Labels and names come from whoever produces metrics: a label value of
        // `<img onerror=...>` must stay text.
        let script = asset("/dashboard.js").unwrap().body;
        assert!(!script.contains("innerHTML"));
        assert!(!script.contains("outerHTML"));
        assert!(!script.contains("insertAdjacentHTML"));
        assert!(!script.contains("document.write"));
    }
}
