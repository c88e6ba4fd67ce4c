//! The listening socket: accepts connections, bounds how many associations
//! run at once, and shuts down in two steps (stop accepting and let running
//! associations finish for a grace period, then abort what remains).

use crate::association::{AssociationContext, serve};
use crate::stream::DicomStream;
use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJSource, Pdu,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

pub struct Scp {
    listener: TcpListener,
    ctx: Arc<AssociationContext>,
    max_associations: usize,
    shutdown_grace: Duration,
    /// DICOM TLS (PS3.15 Annex B) on this listener.
    tls: Option<TlsAcceptor>,
}

impl Scp {
    pub fn new(
        listener: TcpListener,
        ctx: AssociationContext,
        max_associations: usize,
        shutdown_grace: Duration,
    ) -> Scp {
        Scp::sharing(listener, Arc::new(ctx), max_associations, shutdown_grace)
    }

    /// As [`Scp::new`], with a context another listener serves too.
    pub fn sharing(
        listener: TcpListener,
        ctx: Arc<AssociationContext>,
        max_associations: usize,
        shutdown_grace: Duration,
    ) -> Scp {
        Scp {
            listener,
            ctx,
            max_associations,
            shutdown_grace,
            tls: None,
        }
    }

    /// Every connection starts with a TLS handshake through `acceptor`.
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Scp {
        self.tls = Some(acceptor);
        self
    }

    /// Runs until `shutdown` becomes true, then drains as described above.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.max_associations));
        let refusals = Arc::new(Semaphore::new(pending_refusals(self.max_associations)));
        let mut closed_unread = 0u64;
        let (abort_tx, abort_rx) = watch::channel(false);
        let mut running = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let ctx = self.ctx.clone();
                            let abort = abort_rx.clone();
                            let tls = self.tls.clone();
                            running.spawn(async move {
                                if let Some(stream) = establish(stream, tls, ctx.artim_timeout, peer).await {
                                    serve(stream, peer, ctx, abort).await;
                                }
                                drop(permit);
                            });
                        }
                        Err(_) => match refusals.clone().try_acquire_owned() {
                            Ok(permit) => {
                                tracing::warn!(%peer, "too many associations: rejecting");
                                let artim = self.ctx.artim_timeout;
                                let tls = self.tls.clone();
                                running.spawn(async move {
                                    if let Some(stream) = establish(stream, tls, artim, peer).await {
                                        reject_busy(stream, artim).await;
                                    }
                                    drop(permit);
                                });
                            }
                            Err(_) => {
                                // A flood: each connection is closed before
                                // anything is read or spawned for it, so it
                                // holds no descriptor and no memory.
                                drop(stream);
                                closed_unread += 1;
                                if closed_unread.is_power_of_two() {
                                    tracing::warn!(
                                        %peer,
                                        closed_unread,
                                        "too many connections waiting for a refusal: closing without reading"
                                    );
                                }
                            }
                        },
                    },
                    Err(e) => {
                        // Usually EMFILE: back off rather than spin.
                        tracing::error!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = running.join_next(), if !running.is_empty() => {}
                _ = shutdown.changed() => break,
            }
        }
        drop(self.listener);
        if !running.is_empty() {
            tracing::info!(
                associations = running.len(),
                "waiting up to {:?} for running associations",
                self.shutdown_grace
            );
        }
        let drained = tokio::time::timeout(self.shutdown_grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                associations = running.len(),
                "grace period over: aborting associations"
            );
            let _ = abort_tx.send(true);
            let _ = tokio::time::timeout(Duration::from_secs(5), async {
                while running.join_next().await.is_some() {}
            })
            .await;
        }
    }
}

/// How many connections over the association limit may wait at once for
/// their polite refusal. A scanner retrying while telerad is busy needs one;
/// past a few dozen it is a flood, and each would hold a descriptor and a
/// task for up to the ARTIM timeout.
fn pending_refusals(max_associations: usize) -> usize {
    max_associations.clamp(1, 32)
}

/// The connection tuned, and through its TLS handshake when the listener
/// has one (within the ARTIM timeout); `None` if the handshake fails: a
/// plain-TCP peer, a certificate refused.
async fn establish(
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    artim: Duration,
    peer: std::net::SocketAddr,
) -> Option<Box<dyn DicomStream>> {
    crate::socket::tune(&stream);
    let Some(acceptor) = tls else {
        return Some(Box::new(stream));
    };
    match tokio::time::timeout(artim, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            tracing::warn!(%peer, "DICOM TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::warn!(%peer, "no DICOM TLS handshake within the ARTIM timeout: closing");
            None
        }
    }
}

/// Reads the request (so the peer gets a proper answer, PS3.8 §9.3.4) and
/// rejects it as transient: the sender may try again shortly.
async fn reject_busy(mut stream: Box<dyn DicomStream>, artim: Duration) {
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(artim, crate::pdu_io::read(&mut stream, 16 * 1024, &mut buf)).await;
    if matches!(read, Ok(Ok(Pdu::AssociationRQ(_)))) {
        let rj = Pdu::AssociationRJ(AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceProviderPresentation(
                AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
            ),
        });
        let _ = crate::pdu_io::write(&mut stream, &rj, &mut buf).await;
    }
}
