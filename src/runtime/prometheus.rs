//! `--prometheus ADDR:PORT`: a minimal HTTP endpoint that answers every
//! scrape of `/metrics` with a snapshot of the script's maps read at that
//! moment, in the Prometheus text exposition format
//! ([`crate::output::prometheus`]). Requests are answered from the run
//! loop between ring-buffer polls (within 100 ms), so no map is read
//! concurrently and no thread is started: connections are bounded and
//! idle ones time out.

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

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

/// At most this many scrapers are served at once; a connection past it is
/// closed at once (Prometheus retries at its next interval).
pub const MAX_CONNECTIONS: usize = 16;

/// A connection that has not sent a whole request within this is closed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest request head read (a scrape's is a few hundred bytes).
const MAX_REQUEST_BYTES: usize = 8192;

/// A scraper's connection: what it has sent so far, since when.
struct Connection {
    stream: TcpStream,
    request: Vec<u8>,
    since: Instant,
}

/// A bound metrics endpoint, served from the run loop without threads of
/// its own: at most [`MAX_CONNECTIONS`] at once, each closed after its
/// answer or after [`REQUEST_TIMEOUT`] without a whole request.
pub struct MetricsServer {
    listener: TcpListener,
    connections: RefCell<Vec<Connection>>,
}

impl MetricsServer {
    /// Listens on `addr`.
    pub fn bind(addr: SocketAddr) -> Result<MetricsServer> {
        let cannot = |e: std::io::Error| {
            Diagnostic::plain(format!("--prometheus: cannot listen on {}: {}", addr, e))
        };
        let listener = TcpListener::bind(addr).map_err(cannot)?;
        listener.set_nonblocking(true).map_err(cannot)?;
        Ok(MetricsServer {
            listener,
            connections: RefCell::new(Vec::new()),
        })
    }

    /// The address actually bound (the port chosen for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Accepts new connections and answers every whole request waiting
    /// now, without blocking: `/metrics` (or `/`) with the exposition of
    /// the maps `snapshot` reads, anything else with 404.
    pub fn answer_pending(&self, mut snapshot: impl FnMut() -> Result<Vec<MapDump>>) -> Result<()> {
        let mut connections = self.connections.borrow_mut();
        while let Ok((stream, _)) = self.listener.accept() {
            if connections.len() < MAX_CONNECTIONS && stream.set_nonblocking(true).is_ok() {
                connections.push(Connection {
                    stream,
                    request: Vec::new(),
                    since: Instant::now(),
                });
            }
        }
        let mut kept = Vec::with_capacity(connections.len());
        for mut c in connections.drain(..) {
            match read_request(&mut c) {
                Some(Ok(path)) => answer(c.stream, &path, &mut snapshot)?,
                Some(Err(())) => {}
                None if c.since.elapsed() < REQUEST_TIMEOUT => kept.push(c),
                None => {}
            }
        }
        *connections = kept;
        Ok(())
    }
}

/// Reads what `c` has sent: the path of its request once the head is
/// whole, `Some(Err)` when the connection is done for (closed, failed,
/// too long), `None` while the request is still coming.
fn read_request(c: &mut Connection) -> Option<std::result::Result<String, ()>> {
    let mut buf = [0u8; 1024];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => return Some(Err(())),
            Ok(n) => c.request.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Some(Err(())),
        }
        if c.request.len() > MAX_REQUEST_BYTES {
            return Some(Err(()));
        }
    }
    let head = String::from_utf8_lossy(&c.request);
    if !head.contains("\r\n\r\n") && !head.contains("\n\n") {
        return None;
    }
    // `GET /metrics?x HTTP/1.1`
    let target = head.split_whitespace().nth(1).unwrap_or("");
    Some(Ok(target.split('?').next().unwrap_or("").to_string()))
}

/// Sends the answer for `path` on `stream` and closes it; a scraper that
/// went away is not our failure.
fn answer(
    mut stream: TcpStream,
    path: &str,
    snapshot: &mut impl FnMut() -> Result<Vec<MapDump>>,
) -> Result<()> {
    let (status, content_type, body) = if path == "/metrics" || path == "/" {
        let text = exposition(&snapshot()?, METRIC_PREFIX)
            .map_err(|_| Diagnostic::plain("--prometheus: cannot encode the maps"))?;
        ("200 OK", CONTENT_TYPE, text)
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: scrape /metrics\n".to_string(),
        )
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(response.as_bytes());
    Ok(())
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
