//! This host's IP addresses, for `io.l5d.localhost`.
//!
//! Linkerd first resolved the host name (`InetAddress.getLocalHost`), later
//! listed the addresses of every interface that is up. We take the union:
//! the host name's addresses (so a name mapped to the pod IP in
//! `/etc/hosts` counts) and, on Linux, the interfaces' addresses from
//! `/proc/net` (so a host name mapped to `127.0.1.1` does not hide them).
//! Without a libc binding in the tree, `/proc` is the way to the latter.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::namer::inet::HostResolver;

/// This host's IPs, found once. Sources that fail are skipped; the result
/// may be empty (the transformer then keeps no address at all).
pub async fn local_ips(resolver: &HostResolver) -> BTreeSet<IpAddr> {
    let mut ips = BTreeSet::new();
    if let Some(host) = hostname().await {
        match resolver.lookup(&host).await {
            Ok(found) => ips.extend(found),
            Err(e) => tracing::warn!(host, error = %e, "cannot resolve this host's name"),
        }
    }
    if let Ok(text) = tokio::fs::read_to_string("/proc/net/fib_trie").await {
        ips.extend(fib_trie_local(&text).into_iter().map(IpAddr::V4));
    }
    if let Ok(text) = tokio::fs::read_to_string("/proc/net/if_inet6").await {
        ips.extend(if_inet6(&text).into_iter().map(IpAddr::V6));
    }
    ips.into_iter().map(|ip| ip.to_canonical()).collect()
}

async fn hostname() -> Option<String> {
    let from_kernel = tokio::fs::read_to_string("/proc/sys/kernel/hostname")
        .await
        .ok();
    from_kernel
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// The IPv4 addresses the kernel's local routing table marks as this
/// host's (`/32 host LOCAL` under an address in `/proc/net/fib_trie`).
fn fib_trie_local(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        if let Some(addr) = line.trim().strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if line.contains("/32 host LOCAL") {
            out.extend(last);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The addresses in `/proc/net/if_inet6` (32 hex digits, then fields).
fn if_inet6(text: &str) -> Vec<Ipv6Addr> {
    text.lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|hex| u128::from_str_radix(hex, 16).ok())
        .map(Ipv6Addr::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_formats() {
        let trie = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     \
                    |-- 10.1.2.3\n        /32 host LOCAL\n     |-- 10.1.2.255\n        /32 link BROADCAST\n\
                    Local:\n     |-- 127.0.0.1\n        /32 host LOCAL\n     |-- 10.1.2.3\n        /32 host LOCAL\n";
        assert_eq!(
            fib_trie_local(trie),
            [Ipv4Addr::new(10, 1, 2, 3), Ipv4Addr::LOCALHOST]
        );
        let inet6 = "00000000000000000000000000000001 01 80 10 80       lo\n\
                     fe800000000000000000000000000001 02 40 20 80     eth0\n";
        assert_eq!(
            if_inet6(inet6),
            [Ipv6Addr::LOCALHOST, "fe80::1".parse::<Ipv6Addr>().unwrap()]
        );
    }
}
