//! systemd readiness notification (`Type=notify`): a datagram to `$NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;

use tracing::{debug, warn};

/// Tells systemd the daemon is listening.
pub fn ready() {
    send("READY=1\nSTATUS=Serving");
}

/// Tells systemd the daemon is shutting down.
pub fn stopping() {
    send("STOPPING=1\nSTATUS=Draining requests");
}

fn send(message: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|sock| {
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            // An abstract socket address.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(message.as_bytes(), &addr)
        } else {
            sock.send_to(message.as_bytes(), &path)
        }
    });
    match result {
        Ok(_) => debug!(message, "notified systemd"),
        Err(e) => warn!(cause = %e, "cannot notify systemd"),
    }
}
