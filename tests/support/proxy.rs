//! A loopback TCP proxy that fails the first HTTP requests itself, for backends whose emulator
//! cannot inject faults (moto): what a load balancer in front of a real service does when it
//! sheds load.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct FaultyProxy {
    pub addr: SocketAddr,
    failed: Arc<AtomicUsize>,
}

impl FaultyProxy {
    /// Proxies to `upstream`; the first `fail` requests get `503 Service Unavailable` (one per
    /// connection, which is then closed); every later connection is piped through.
    pub fn start(upstream: SocketAddr, fail: usize) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let failed = Arc::new(AtomicUsize::new(0));
        let count = failed.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if count.load(Ordering::SeqCst) < fail {
                    count.fetch_add(1, Ordering::SeqCst);
                    refuse(client);
                } else if let Ok(server) = TcpStream::connect(upstream) {
                    pipe(client, server);
                }
            }
        });
        FaultyProxy { addr, failed }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests were refused.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and `Content-Length` body), answers 503, closes.
fn refuse(client: TcpStream) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let mut client = client;
    let _ = client.write_all(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
}

fn pipe(client: TcpStream, server: TcpStream) {
    let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut c2, mut s2) = (client, server);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c1, &mut s1);
        let _ = s1.shutdown(std::net::Shutdown::Write);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut s2, &mut c2);
        let _ = c2.shutdown(std::net::Shutdown::Write);
    });
}
