//! Loopback ports.

use std::net::{SocketAddr, TcpListener};

/// An address on 127.0.0.1 that nothing listens on: bound to port 0, then
/// released. For a server to be started there later, or to see a
/// connection refused. (Another process may take it in between; prefer
/// binding `127.0.0.1:0` and reading the address back where a server
/// allows it.)
pub fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_refuses_connections_and_can_be_bound() {
        let addr = free_port();
        assert!(addr.ip().is_loopback());
        assert!(std::net::TcpStream::connect(addr).is_err());
        TcpListener::bind(addr).expect("the port is free to bind");
    }
}
