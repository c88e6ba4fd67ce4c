//! TCP options for DICOM peers.
//!
//! DCMTK senders leave Nagle's algorithm on; with delayed ACKs on our side
//! each C-STORE then stalls ~40 ms waiting for an ACK. So: no Nagle, and
//! quick ACKs re-armed after each read (Linux resets the flag on its own).

use tokio::net::TcpStream;

pub fn tune(stream: &TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("cannot set TCP_NODELAY: {e}");
    }
    rearm_quickack(stream);
}

#[cfg(target_os = "linux")]
pub fn rearm_quickack(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

#[cfg(not(target_os = "linux"))]
pub fn rearm_quickack(_stream: &TcpStream) {}
