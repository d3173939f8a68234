//! The decision: may this request go out, and through which resource? A
//! request must fall under a granted, active resource's base URL (same
//! scheme, host and port, and under its path on a segment boundary), use
//! one of its methods and fall under one of its path prefixes. Paths are
//! judged after URL normalisation, so `..` cannot climb out of a prefix.
//! The broker API's proxied calls are judged by the same rule against
//! their grant's one resource ([`admits`]).

use super::resources::ACTIVE;
use crate::model::ResourceRecord;
use reqwest::Url;

/// A request's target as the decision and its receipt see it.
pub(crate) struct Target {
    pub url: Url,
    pub method: String,
    /// Host, with the port when the URL names one.
    pub host: String,
    /// Without the query.
    pub path: String,
}

impl Target {
    /// The parsed request, or why it cannot be one (the receipt then shows
    /// what could be read of it).
    pub fn parse(method: &str, url: &str) -> Result<Target, String> {
        let method = method.to_ascii_uppercase();
        let mut url = Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
        url.set_fragment(None);
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => String::new(),
        };
        let path = url.path().to_string();
        let target = Target {
            url,
            method,
            host,
            path,
        };
        if !matches!(target.url.scheme(), "http" | "https") || target.host.is_empty() {
            return Err("only absolute http(s) URLs can be called".into());
        }
        if !target.url.username().is_empty() || target.url.password().is_some() {
            return Err("the URL must not carry credentials".into());
        }
        if !valid_method(&target.method) {
            return Err(format!("invalid method {:?}", target.method));
        }
        // An encoded separator would be one segment here and two upstream.
        let lower = target.path.to_ascii_lowercase();
        if lower.contains("%2f") || lower.contains("%5c") {
            return Err("the path must not contain an encoded / or \\".into());
        }
        Ok(target)
    }
}

/// Methods are letters only (what every HTTP method in use is).
pub(crate) fn valid_method(method: &str) -> bool {
    !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic())
}

/// The resource that admits `t`, or the reason for refusing it with the
/// most specific resource that covered it, if one did.
pub(crate) fn admit<'a>(
    granted: &'a [ResourceRecord],
    t: &Target,
) -> Result<&'a ResourceRecord, (Option<&'a ResourceRecord>, String)> {
    let mut covering: Vec<(&ResourceRecord, String)> = granted
        .iter()
        .filter_map(|r| Some((r, base_path_covering(r, &t.url)?)))
        .collect();
    // Most specific base first.
    covering.sort_by_key(|(_, base)| std::cmp::Reverse(base.len()));
    let mut refusal = None;
    for (r, base) in &covering {
        match allows(r, base, t) {
            Ok(()) => return Ok(r),
            Err(why) => {
                refusal.get_or_insert((Some(*r), why));
            }
        }
    }
    Err(refusal.unwrap_or_else(|| {
        let origin = t.url.origin().ascii_serialization();
        let why = format!(
            "no resource granted to this workflow covers {origin}{}",
            t.path
        );
        (None, why)
    }))
}

/// Whether the one resource `r` admits `t`, or why not.
pub(crate) fn admits(r: &ResourceRecord, t: &Target) -> Result<(), String> {
    let Some(base) = base_path_covering(r, &t.url) else {
        let url = t.url.origin().ascii_serialization() + &t.path;
        return Err(format!("{url} is outside resource {}'s base URL", r.name));
    };
    allows(r, &base, t)
}

/// `r`'s base path (without a trailing `/`) if its base URL covers `url`.
fn base_path_covering(r: &ResourceRecord, url: &Url) -> Option<String> {
    let base = Url::parse(r.base_url.as_deref()?).ok()?;
    let same_origin = base.scheme() == url.scheme()
        && base.host_str() == url.host_str()
        && base.port_or_known_default() == url.port_or_known_default();
    let base_path = base.path().trim_end_matches('/').to_string();
    (same_origin && under(url.path(), &base_path)).then_some(base_path)
}

/// Whether `path` is `prefix` or below it, on a segment boundary.
fn under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

fn allows(r: &ResourceRecord, base_path: &str, t: &Target) -> Result<(), String> {
    let name = &r.name;
    if r.status != ACTIVE {
        return Err(format!("resource {name} is {}", r.status));
    }
    if !r.methods.is_empty() && !r.methods.contains(&t.method) {
        let allowed = r.methods.join(", ");
        return Err(format!(
            "resource {name} allows {allowed}, not {}",
            t.method
        ));
    }
    let in_paths = r
        .paths
        .iter()
        .any(|p| under(&t.path, &format!("{base_path}{p}")));
    if !r.paths.is_empty() && !in_paths {
        return Err(format!(
            "path {} is outside resource {name}'s paths",
            t.path
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn resource(name: &str, base: &str, methods: &[&str], paths: &[&str]) -> ResourceRecord {
        ResourceRecord {
            id: format!("res_{name}"),
            principal: None,
            name: name.into(),
            provider: "static".into(),
            connection_ref: None,
            base_url: Some(Url::parse(base).unwrap().to_string()),
            methods: methods.iter().map(|m| m.to_string()).collect(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            scopes: vec![],
            metadata: Value::Null,
            injection: Value::Null,
            sealed: None,
            status: ACTIVE.into(),
            created_at: 0,
            updated_at: 0,
            revoked_at: None,
        }
    }

    fn decide(granted: &[ResourceRecord], method: &str, url: &str) -> Result<String, String> {
        let t = Target::parse(method, url)?;
        admit(granted, &t)
            .map(|r| r.name.clone())
            .map_err(|(_, why)| why)
    }

    #[test]
    fn requests_must_fall_under_a_granted_base_url() {
        let g = [
            resource("api", "https://api.example/v2", &[], &[]),
            resource("repos", "https://api.example/v2/repos", &["GET"], &[]),
        ];
        assert_eq!(
            decide(&g, "get", "https://api.example/v2/x?q=1"),
            Ok("api".into())
        );
        assert_eq!(
            decide(&g, "GET", "https://API.example:443/v2"),
            Ok("api".into())
        );
        assert_eq!(
            decide(&g, "GET", "https://api.example/v2/repos/1"),
            Ok("repos".into())
        );
        // The more specific resource refuses POST; the broader one allows it.
        assert_eq!(
            decide(&g, "POST", "https://api.example/v2/repos/1"),
            Ok("api".into())
        );
        for url in [
            "https://api.example/v2x",
            "https://api.example/v1",
            "https://api.example/v2/../admin",
            "https://api.example/v2/%2e%2e/admin",
            "http://api.example/v2/x",
            "https://api.example:8443/v2/x",
            "https://evil.example/v2/x",
            "https://api.example.evil.example/v2/x",
        ] {
            assert!(decide(&g, "GET", url).is_err(), "{url}");
        }
        assert!(decide(&g, "GET", "https://u:p@api.example/v2/x").is_err());
        assert!(decide(&g, "GET", "https://api.example/v2/a%2Fb").is_err());
        assert!(decide(&g, "GET", "ftp://api.example/v2").is_err());
        assert!(decide(&g, "G T", "https://api.example/v2").is_err());
    }

    #[test]
    fn methods_and_path_prefixes_limit_a_resource() {
        let mut r = resource(
            "gh",
            "https://gh.example/",
            &["GET", "POST"],
            &["/repos", "/user/"],
        );
        let g = [r.clone()];
        assert!(decide(&g, "GET", "https://gh.example/repos/a/b").is_ok());
        assert!(decide(&g, "GET", "https://gh.example/user/keys").is_ok());
        let why = decide(&g, "DELETE", "https://gh.example/repos/a").unwrap_err();
        assert_eq!(why, "resource gh allows GET, POST, not DELETE");
        let why = decide(&g, "GET", "https://gh.example/reposX").unwrap_err();
        assert_eq!(why, "path /reposX is outside resource gh's paths");
        assert!(decide(&g, "GET", "https://gh.example/user").is_err());
        r.status = "revoked".into();
        let why = decide(&[r], "GET", "https://gh.example/repos").unwrap_err();
        assert_eq!(why, "resource gh is revoked");
        let why = decide(&[], "GET", "https://gh.example/repos?token=x").unwrap_err();
        assert_eq!(
            why,
            "no resource granted to this workflow covers https://gh.example/repos"
        );
    }
}
