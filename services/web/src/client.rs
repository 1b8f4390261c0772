//! Who a request comes from on the network, for limits per client: the
//! peer's address, or, when the peer is a trusted proxy (the TLS proxy in
//! front of the instances), the first address in `X-Forwarded-For`,
//! counted from the right, that is not itself a trusted proxy. A client
//! cannot choose its address by sending the header: it is believed only
//! from a proxy this service trusts.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The client's address, as text; "unknown" without a peer (a request
/// that did not come over a socket).
pub(crate) fn address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpAddr]) -> String {
    let Some(peer) = peer.map(|p| canonical(p.ip())) else {
        return "unknown".into();
    };
    if !trusted.contains(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) if trusted.contains(&canonical(ip)) => continue,
            Ok(ip) => return canonical(ip).to_string(),
            // Not an address: what the proxy was given, so stop there.
            Err(_) => break,
        }
    }
    peer.to_string()
}

/// IPv4 addresses that arrive mapped into IPv6, as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `CARELINE_WEB_TRUSTED_PROXIES`: comma-separated addresses.
pub(crate) fn parse_trusted(text: &str) -> Result<Vec<IpAddr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.parse::<IpAddr>()
                .map(canonical)
                .map_err(|_| format!("CARELINE_WEB_TRUSTED_PROXIES: {a:?} is not an IP address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
        let trusted = parse_trusted("127.0.0.1, ::1").unwrap();
        let proxy: SocketAddr = "127.0.0.1:50000".parse().unwrap();
        let outside: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        // Through the proxy: the address it forwarded for.
        assert_eq!(
            address(Some(proxy), &headers(&["203.0.113.9"]), &trusted),
            "203.0.113.9"
        );
        // A client's own claim, to the left of what the proxy added, is not
        // believed.
        assert_eq!(
            address(Some(proxy), &headers(&["10.9.9.9, 203.0.113.9"]), &trusted),
            "203.0.113.9"
        );
        // Straight from the internet, the header means nothing.
        assert_eq!(
            address(Some(outside), &headers(&["203.0.113.9"]), &trusted),
            "198.51.100.7"
        );
        // Through the proxy without the header: the proxy.
        assert_eq!(address(Some(proxy), &headers(&[]), &trusted), "127.0.0.1");
        assert_eq!(
            address(None, &headers(&["203.0.113.9"]), &trusted),
            "unknown"
        );
        assert!(parse_trusted("localhost").is_err());
    }
}
