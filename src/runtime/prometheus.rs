//! `--prometheus ADDR:PORT`: an HTTP endpoint (crate `tiny_http`) that
//! answers every scrape of `/metrics` with a snapshot of the script's maps
//! read at that moment, in the Prometheus text exposition format
//! ([`crate::output::prometheus`]). Requests are answered from the run
//! loop between ring-buffer polls, so no map is read concurrently.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::diag::{Diagnostic, Result};
use crate::output::model::MapDump;
use crate::output::prometheus::{exposition, CONTENT_TYPE};

/// Prefix of every metric name.
pub const METRIC_PREFIX: &str = "netscript_";

/// The address to listen on: `HOST:PORT`, `[V6]:PORT`, or `PORT` / `:PORT`
/// for 127.0.0.1 (loopback unless an address is given).
pub fn listen_addr(text: &str) -> Result<SocketAddr> {
    let bad = || {
        Diagnostic::plain(format!(
            "--prometheus: '{}' is not ADDR:PORT, :PORT or PORT",
            text
        ))
    };
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    text.parse::<SocketAddr>().map_err(|_| bad())
}

/// A bound metrics endpoint.
pub struct MetricsServer {
    server: tiny_http::Server,
}

impl MetricsServer {
    /// Listens on `addr`.
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer> {
        let server = tiny_http::Server::http(addr).map_err(|e| {
            Diagnostic::plain(format!("--prometheus: cannot listen on {}: {}", addr, e))
        })?;
        Ok(MetricsServer { server })
    }

    /// The address actually bound (the port chosen for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.server_addr().to_ip()
    }

    /// Answers the requests waiting now, without blocking: `/metrics` (or
    /// `/`) with the exposition of the maps `snapshot` reads, anything else
    /// with 404.
    pub fn answer_pending(&self, mut snapshot: impl FnMut() -> Result<Vec<MapDump>>) -> Result<()> {
        while let Ok(Some(request)) = self.server.try_recv() {
            let path = request.url().split('?').next().unwrap_or("");
            let response = if path == "/metrics" || path == "/" {
                let text = exposition(&snapshot()?, METRIC_PREFIX)
                    .map_err(|_| Diagnostic::plain("--prometheus: cannot encode the maps"))?;
                let header = tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE)
                    .map_err(|_| Diagnostic::plain("--prometheus: bad content type"))?;
                tiny_http::Response::from_string(text).with_header(header)
            } else {
                tiny_http::Response::from_string("not found: scrape /metrics\n")
                    .with_status_code(404)
            };
            // A scraper that went away is not our failure.
            let _ = request.respond(response);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_unless_an_address_is_given() {
        assert_eq!(
            listen_addr("9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            listen_addr(":9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            listen_addr("0.0.0.0:80").unwrap(),
            "0.0.0.0:80".parse().unwrap()
        );
        assert_eq!(
            listen_addr("[::1]:80").unwrap(),
            "[::1]:80".parse().unwrap()
        );
        assert!(listen_addr("localhost").is_err());
    }

    #[test]
    fn serves_a_snapshot_per_scrape() {
        use std::io::{Read, Write};
        let server = MetricsServer::bind(listen_addr("0").unwrap()).unwrap();
        let addr = server.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).unwrap();
            body
        });
        let mut scrapes = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while scrapes == 0 && std::time::Instant::now() < deadline {
            server
                .answer_pending(|| {
                    scrapes += 1;
                    Ok(vec![MapDump {
                        name: "@n".into(),
                        entries: vec![(vec![], crate::output::model::Aggregate::Count(7))],
                    }])
                })
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let body = client.join().unwrap();
        assert!(body.contains("200 OK"), "{}", body);
        assert!(body.contains("netscript_n_total 7\n"), "{}", body);
        assert_eq!(scrapes, 1);
    }
}
