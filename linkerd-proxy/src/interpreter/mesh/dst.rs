//! Where namerd is: Linkerd's `dst: /$/inet/<host>/<port>`.

use std::fmt;
use std::net::IpAddr;

use l5d_dtab::Path;

/// namerd's gRPC address, as the `io.l5d.mesh` interpreter's `dst`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dst {
    /// A DNS name or an IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

// === impl Dst ===

impl Dst {
    /// Parses `/$/inet/<host>/<port>` (`/$/inet/namerd.linkerd/4321`,
    /// `/$/inet/::1/4321`). The error names the input and what is wrong.
    pub fn parse(s: &str) -> Result<Dst, String> {
        let path = Path::read(s).map_err(|e| format!("dst `{s}` is not a path: {e}"))?;
        let labels: Vec<&[u8]> = path.labels().collect();
        let [b"$", b"inet", host, port] = labels.as_slice() else {
            return Err(format!(
                "dst `{s}` is not of the form /$/inet/<host>/<port>"
            ));
        };
        let port = std::str::from_utf8(port)
            .ok()
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                format!(
                    "dst `{s}`: port `{}` is not a number from 1 to 65535",
                    String::from_utf8_lossy(port)
                )
            })?;
        let host = std::str::from_utf8(host)
            .ok()
            .filter(|h| valid_host(h))
            .ok_or_else(|| {
                format!(
                    "dst `{s}`: host `{}` is not a host name or IP address",
                    String::from_utf8_lossy(host)
                )
            })?;
        Ok(Dst {
            host: host.to_owned(),
            port,
        })
    }

    /// `http://<host>:<port>`, IPv6 in brackets.
    pub fn uri(&self) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("http://[{ip}]:{}", self.port),
            _ => format!("http://{}:{}", self.host, self.port),
        }
    }
}

/// An IP literal, or a DNS name of letters, digits, `-`, `_` and dots.
fn valid_host(h: &str) -> bool {
    h.parse::<IpAddr>().is_ok()
        || (!h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }))
}

impl fmt::Display for Dst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/$/inet/{}/{}", self.host, self.port)
    }
}

impl std::str::FromStr for Dst {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Dst::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The input and the host and port, or the start of the error.
    type Case = (&'static str, Result<(&'static str, u16), &'static str>);

    #[test]
    fn parses_linkerds_form() {
        let cases: &[Case] = &[
            ("/$/inet/namerd.linkerd/4321", Ok(("namerd.linkerd", 4321))),
            ("/$/inet/127.0.0.1/4100", Ok(("127.0.0.1", 4100))),
            ("/$/inet/::1/4321", Ok(("::1", 4321))),
            (
                "/$/inet/namerd",
                Err("dst `/$/inet/namerd` is not of the form /$/inet/<host>/<port>"),
            ),
            ("namerd:4321", Err("dst `namerd:4321` is not a path")),
            (
                "/$/inet/namerd/http",
                Err("dst `/$/inet/namerd/http`: port `http` is not a number from 1 to 65535"),
            ),
            (
                "/$/inet/namerd/70000",
                Err("dst `/$/inet/namerd/70000`: port `70000` is not a number from 1 to 65535"),
            ),
            (
                "/$/inet/na:me/1",
                Err("dst `/$/inet/na:me/1`: host `na:me` is not a host name or IP address"),
            ),
        ];
        for (input, want) in cases {
            match (Dst::parse(input), want) {
                (Ok(d), Ok((host, port))) => {
                    assert_eq!((d.host.as_str(), d.port), (*host, *port), "{input}")
                }
                (Err(e), Err(msg)) => assert!(e.starts_with(msg), "{input}: {e}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn uri_brackets_ipv6() {
        assert_eq!(Dst::parse("/$/inet/::1/1").unwrap().uri(), "http://[::1]:1");
        assert_eq!(Dst::parse("/$/inet/a.b/2").unwrap().uri(), "http://a.b:2");
        assert_eq!(
            Dst::parse("/$/inet/a.b/2").unwrap().to_string(),
            "/$/inet/a.b/2"
        );
    }
}
