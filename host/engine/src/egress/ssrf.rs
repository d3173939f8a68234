//! Which addresses the broker may connect to. The broker resolves a host
//! itself, refuses it if any address it resolves to is internal, and then
//! connects to the address it vetted (see `send`), so a second lookup by the
//! HTTP client cannot be rebound to another one.

use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::Host;

/// Why `ip` is internal, or `None` for a public unicast address.
pub(crate) fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => refused_v4(ip),
        IpAddr::V6(ip) => refused_v6(ip),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    Some(match ip.octets() {
        [0, ..] => "unspecified (0.0.0.0/8)",
        [10, ..] | [192, 168, ..] => "private",
        [172, b, ..] if (16..32).contains(&b) => "private",
        [127, ..] => "loopback",
        [169, 254, ..] => "link-local (cloud metadata)",
        [100, b, ..] if (64..128).contains(&b) => "shared (CGNAT)",
        [192, 0, 0, _] => "IETF protocol assignment",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, 18 | 19, ..] => "benchmarking",
        [a, ..] if a >= 224 => "multicast or reserved",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Forms that embed an IPv4 address are judged by it, but a mapped
    // address is refused outright: it is only ever a way to write IPv4.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    Some(match s {
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_loopback() => "loopback",
        [0, 0, 0, 0, 0, 0xffff, ..] => "IPv4-mapped",
        [0, 0, 0, 0, 0, 0, ..] => "IPv4-compatible",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local",
        [a, ..] if a & 0xffc0 == 0xfec0 => "site-local",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x2001, 0, ..] => "Teredo tunnel",
        [0x100, 0, 0, 0, ..] => "discard-only",
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return refused_v4(embedded(hi, lo)),
        [0x2002, hi, lo, ..] => return refused_v4(embedded(hi, lo)),
        _ => return None,
    })
}

/// Names that mean an internal service whatever they resolve to.
fn refused_name(host: &str) -> Option<&'static str> {
    let host = host.trim_end_matches('.');
    if host == "localhost" || host.ends_with(".localhost") {
        Some("loopback")
    } else if host.ends_with(".local") || host.ends_with(".internal") {
        Some("internal")
    } else if host == "metadata" || host == "instance-data" {
        Some("a cloud metadata host")
    } else {
        None
    }
}

/// The address to connect to for `url`, or why it is refused. With
/// `allow_private` nothing is refused, but the connection still goes to the
/// address resolved here.
pub(crate) async fn vet(url: &Url, allow_private: bool) -> Result<SocketAddr, String> {
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(Host::Ipv4(ip)) => vec![(ip, port).into()],
        Some(Host::Ipv6(ip)) => vec![(ip, port).into()],
        Some(Host::Domain(name)) => {
            if let Some(why) = refused_name(name).filter(|_| !allow_private) {
                return Err(format!("host {name} is {why}"));
            }
            tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| format!("host {name} did not resolve"))?
                .collect()
        }
        None => return Err("the URL has no host".into()),
    };
    let host = url.host_str().unwrap_or_default();
    if !allow_private {
        // One internal address is enough to refuse: a name that resolves
        // to public and internal addresses is how rebinding starts.
        if let Some(why) = addrs.iter().find_map(|a| refused_address(a.ip())) {
            return Err(format!(
                "{host} is a {why} address, which egress may not reach"
            ));
        }
    }
    addrs
        .first()
        .copied()
        .ok_or_else(|| format!("host {host} did not resolve"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Option<&'static str> {
        refused_address(text.parse().unwrap())
    }

    #[test]
    fn internal_ipv4_ranges_are_refused() {
        for (ip, why) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.100.100.200", "shared (CGNAT)"),
            ("0.0.0.0", "unspecified (0.0.0.0/8)"),
            ("224.0.0.1", "multicast or reserved"),
            ("255.255.255.255", "multicast or reserved"),
            ("192.0.0.170", "IETF protocol assignment"),
            ("198.18.0.1", "benchmarking"),
        ] {
            assert_eq!(refused(ip), Some(why), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.15.0.1",
            "172.32.0.1",
            "100.63.0.1",
            "100.128.0.1",
            "1.1.1.1",
        ] {
            assert_eq!(refused(ip), None, "{ip}");
        }
    }

    #[test]
    fn internal_ipv6_forms_are_refused() {
        for (ip, why) in [
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("fd00:ec2::254", "unique local"),
            ("fc00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("64:ff9b::10.0.0.1", "private"),
            ("2002:a9fe:a9fe::", "link-local (cloud metadata)"),
        ] {
            assert_eq!(refused(ip), Some(why), "{ip}");
        }
        for ip in ["2606:4700::1111", "64:ff9b::808:808", "2002:808:808::"] {
            assert_eq!(refused(ip), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn literal_and_named_hosts_are_vetted_without_connecting() {
        for url in [
            "http://127.0.0.1:9/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::1]:8080/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://localhost/",
            "http://api.localhost/",
            "http://metadata.google.internal/",
            "http://printer.local/",
        ] {
            let url = Url::parse(url).unwrap();
            let why = vet(&url, false).await.unwrap_err();
            assert!(
                why.contains("address") || why.contains("is "),
                "{url}: {why}"
            );
        }
        let url = Url::parse("http://127.0.0.1:9/").unwrap();
        assert_eq!(
            vet(&url, true).await,
            Ok("127.0.0.1:9".parse().unwrap()),
            "the flag lifts the refusal and keeps the vetted address"
        );
        let url = Url::parse("http://[::ffff:127.0.0.1]/").unwrap();
        let why = vet(&url, false).await.unwrap_err();
        assert!(why.contains("IPv4-mapped"), "{why}");
    }
}
