//! TLS for outgoing calls (webhooks): rustls with the ring provider,
//! installed once for the process.

/// Install ring as rustls' provider, unless one is installed already.
pub fn install_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
