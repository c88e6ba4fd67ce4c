//! What a DICOM association runs over: plain TCP, or TLS on TCP (PS3.15
//! Annex B). The PDU code reads and writes any of them.

use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub trait DicomStream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {
    /// The TCP connection underneath, for socket options.
    fn tcp(&self) -> &TcpStream;

    /// The certificate the peer presented in the TLS handshake (verified
    /// against the configured authority), if any.
    fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        None
    }
}

impl DicomStream for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl DicomStream for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }

    fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        self.get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.clone().into_owned())
    }
}

impl DicomStream for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl<T: DicomStream + ?Sized> DicomStream for Box<T> {
    fn tcp(&self) -> &TcpStream {
        (**self).tcp()
    }

    fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        (**self).peer_certificate()
    }
}
