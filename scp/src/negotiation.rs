//! Accepting or rejecting an association (DICOM PS3.8 §7.1, §9.3.3–9.3.4).
//!
//! A pure function of the request, the peer's address and the policy, so
//! every rule can be tested without a socket.

use dicom_ul::pdu::{
    AssociationAC, AssociationRJ, AssociationRJResult, AssociationRJServiceProviderASCEReason,
    AssociationRJServiceUserReason, AssociationRJSource, AssociationRQ, PresentationContextResult,
    PresentationContextResultReason, RequestorRoles, UserVariableItem,
};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use telerad_config::Config;
use telerad_dicom::commitment::STORAGE_COMMITMENT_PUSH_MODEL;
use telerad_dicom::mpps::MODALITY_PERFORMED_PROCEDURE_STEP;
use telerad_dicom::part10::{IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME};
use telerad_dicom::query::{STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE};
use telerad_dicom::sop_class::VERIFICATION;
use telerad_dicom::transfer_syntax::{self, EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN};
use telerad_dicom::uid::trim_uid;
use telerad_store::scope::Scope;

/// The only application context of DICOM (PS3.7 §A.2.1).
pub const DICOM_APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// What the SCP accepts, derived once from the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    pub ae_title: String,
    pub max_pdu_length: u32,
    pub storage_sop_classes: HashSet<String>,
    pub config: std::sync::Arc<Config>,
    /// The radiologists' workstations, which may query (not store).
    pub workstations: Vec<WorkstationCaller>,
}

/// A radiologist's workstation as a calling AE: its title, the addresses
/// its host had when the server started, and whose it is.
#[derive(Debug, Clone)]
pub struct WorkstationCaller {
    pub ae_title: String,
    pub addresses: Vec<IpAddr>,
    pub radiologist: String,
    pub sites: Vec<String>,
    /// Its storage SCP, where a C-MOVE it asks for sends the images.
    pub receiver: telerad_store::outbox::Destination,
}

impl WorkstationCaller {
    fn of_config(config: &Config) -> Vec<WorkstationCaller> {
        use std::net::ToSocketAddrs as _;
        config
            .radiologists
            .iter()
            .filter_map(|r| {
                let ws = r.workstation.as_ref()?;
                // Resolved once: negotiation must not wait on DNS, and a
                // name that does not resolve admits nobody.
                let addresses = (ws.host.as_str(), ws.port)
                    .to_socket_addrs()
                    .map(|found| found.map(|a| a.ip()).collect())
                    .unwrap_or_else(|e| {
                        tracing::warn!(
                            radiologist = %r.id,
                            "workstation host {:?} does not resolve ({e}): it cannot query",
                            ws.host
                        );
                        Vec::new()
                    });
                Some(WorkstationCaller {
                    ae_title: ws.ae_title.trim().to_string(),
                    addresses,
                    radiologist: r.id.clone(),
                    sites: r.sites.clone(),
                    receiver: telerad_store::outbox::Destination {
                        name: r.id.clone(),
                        ae_title: ws.ae_title.trim().to_string(),
                        host: ws.host.clone(),
                        port: ws.port,
                    },
                })
            })
            .collect()
    }
}

impl Policy {
    pub fn from_config(config: std::sync::Arc<Config>) -> Policy {
        let classes = config.dicom.storage_sop_classes();
        Policy {
            ae_title: config.dicom.ae_title.trim().to_string(),
            max_pdu_length: config.dicom.max_pdu_length,
            storage_sop_classes: classes.into_iter().collect(),
            workstations: WorkstationCaller::of_config(&config),
            config,
        }
    }
}

/// An accepted presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedContext {
    pub id: u8,
    pub abstract_syntax: String,
    pub transfer_syntax: String,
}

#[derive(Debug)]
pub enum Decision {
    Accept {
        ac: Box<AssociationAC>,
        /// The calling site; empty for a workstation, which stores nothing.
        site: String,
        /// What the caller's queries may see: its site, or for a
        /// radiologist's workstation what the radiologist may read.
        scope: Scope,
        /// Where the caller's C-MOVEs may send: a workstation's own
        /// receiver; `None` for a site.
        receiver: Option<telerad_store::outbox::Destination>,
        contexts: HashMap<u8, AcceptedContext>,
        /// The peer's maximum P-DATA length; 0 means no limit (PS3.8 D.1.1).
        peer_max_pdu: u32,
    },
    Reject {
        rj: AssociationRJ,
        why: String,
    },
}

/// Why a site bound to client certificates refuses this peer, if it does.
fn certificate_refusal(names: &[String], certificate: PeerCertificate<'_>) -> Option<String> {
    if names.is_empty() {
        return None;
    }
    let Some(certificate) = certificate else {
        return Some("this site sends over DICOM TLS with a client certificate only".to_string());
    };
    let Ok(parsed) = webpki::EndEntityCert::try_from(certificate) else {
        return Some("its client certificate cannot be read".to_string());
    };
    let valid = names.iter().any(|name| {
        rustls::pki_types::ServerName::try_from(name.as_str())
            .is_ok_and(|name| parsed.verify_is_valid_for_subject_name(&name).is_ok())
    });
    (!valid).then(|| {
        format!(
            "its client certificate is valid for none of the site's names ({})",
            names.join(", ")
        )
    })
}

fn reject(source: AssociationRJSource, why: String) -> Decision {
    Decision::Reject {
        rj: AssociationRJ {
            result: AssociationRJResult::Permanent,
            source,
        },
        why,
    }
}

/// The peer's certificate, when the association came over DICOM TLS with
/// one (`None` over plain TCP).
pub type PeerCertificate<'a> = Option<&'a rustls::pki_types::CertificateDer<'a>>;

pub fn negotiate(
    rq: &AssociationRQ,
    peer: IpAddr,
    certificate: PeerCertificate<'_>,
    policy: &Policy,
) -> Decision {
    let calling = rq.calling_ae_title.trim();
    let called = rq.called_ae_title.trim();
    if rq.protocol_version & 1 == 0 {
        return reject(
            AssociationRJSource::ServiceProviderASCE(
                AssociationRJServiceProviderASCEReason::ProtocolVersionNotSupported,
            ),
            format!("protocol version {} not supported", rq.protocol_version),
        );
    }
    if trim_uid(&rq.application_context_name) != DICOM_APPLICATION_CONTEXT {
        return reject(
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::ApplicationContextNameNotSupported,
            ),
            format!(
                "application context {:?} not supported",
                rq.application_context_name
            ),
        );
    }
    if called != policy.ae_title {
        return reject(
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CalledAETitleNotRecognized,
            ),
            format!(
                "called AE title {called:?} is not this server's ({:?})",
                policy.ae_title
            ),
        );
    }
    let Some(site) = policy.config.site_for_calling_ae(calling) else {
        return match policy.workstations.iter().find(|w| w.ae_title == calling) {
            Some(workstation) => accept_workstation(rq, peer, workstation, policy),
            None => reject(
                AssociationRJSource::ServiceUser(
                    AssociationRJServiceUserReason::CallingAETitleNotRecognized,
                ),
                format!(
                    "calling AE title {calling:?} is not configured for any site or workstation"
                ),
            ),
        };
    };
    if !site.allows_address(peer) {
        return reject(
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CallingAETitleNotRecognized,
            ),
            format!(
                "calling AE title {calling:?} of site {} may not connect from {peer}",
                site.name
            ),
        );
    }
    if let Some(why) = certificate_refusal(&site.tls_client_names, certificate) {
        return reject(
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CallingAETitleNotRecognized,
            ),
            format!("calling AE title {calling:?} of site {}: {why}", site.name),
        );
    }

    accept(
        rq,
        policy,
        (site.name.clone(), Scope::site(&site.name), None),
        |abstract_syntax| {
            abstract_syntax == MODALITY_PERFORMED_PROCEDURE_STEP
                || abstract_syntax == STORAGE_COMMITMENT_PUSH_MODEL
                || abstract_syntax == STUDY_ROOT_FIND
                || policy.storage_sop_classes.contains(abstract_syntax)
        },
    )
}

/// A radiologist's workstation, from its host only: it may verify, query
/// what its radiologist may read and have it sent to itself, and store
/// nothing.
fn accept_workstation(
    rq: &AssociationRQ,
    peer: IpAddr,
    workstation: &WorkstationCaller,
    policy: &Policy,
) -> Decision {
    let same = |a: &IpAddr| *a == peer || a.to_canonical() == peer.to_canonical();
    if !workstation.addresses.iter().any(same) {
        return reject(
            AssociationRJSource::ServiceUser(
                AssociationRJServiceUserReason::CallingAETitleNotRecognized,
            ),
            format!(
                "calling AE title {:?} is {}'s workstation, which is not at {peer}",
                workstation.ae_title, workstation.radiologist
            ),
        );
    }
    accept(
        rq,
        policy,
        (
            String::new(),
            Scope::Reader {
                radiologist: workstation.radiologist.clone(),
                sites: workstation.sites.clone(),
            },
            Some(workstation.receiver.clone()),
        ),
        |abstract_syntax| {
            [STUDY_ROOT_FIND, STUDY_ROOT_MOVE, STUDY_ROOT_GET].contains(&abstract_syntax)
        },
    )
}

/// The association accepted, each proposed context accepted if
/// Verification or `offered`, in a transfer syntax telerad reads.
fn accept(
    rq: &AssociationRQ,
    policy: &Policy,
    (site, scope, receiver): (String, Scope, Option<telerad_store::outbox::Destination>),
    offered: impl Fn(&str) -> bool,
) -> Decision {
    // A workstation that retrieves with C-GET receives the images on this
    // association: its storage contexts are accepted only where it asked
    // to be their SCP (role selection, PS3.7 D.3.3.4), never to store here.
    let receives_here: HashSet<&str> = if receiver.is_some() {
        rq.user_variables
            .iter()
            .filter_map(|v| match v {
                UserVariableItem::ScuScpRoleSelectionSubItem(uid, roles) if roles.scp => {
                    Some(trim_uid(uid))
                }
                _ => None,
            })
            .filter(|uid| policy.storage_sop_classes.contains(*uid))
            .collect()
    } else {
        HashSet::new()
    };
    let mut roles = Vec::new();
    let mut results = Vec::with_capacity(rq.presentation_contexts.len());
    let mut contexts = HashMap::new();
    for pc in &rq.presentation_contexts {
        let abstract_syntax = trim_uid(&pc.abstract_syntax);
        // DIMSE-N data sets and query identifiers are read in memory.
        let normalized = abstract_syntax == MODALITY_PERFORMED_PROCEDURE_STEP
            || abstract_syntax == STORAGE_COMMITMENT_PUSH_MODEL
            || abstract_syntax == STUDY_ROOT_FIND
            || abstract_syntax == STUDY_ROOT_MOVE
            || abstract_syntax == STUDY_ROOT_GET;
        let reversed = receives_here.contains(abstract_syntax);
        let known = abstract_syntax == VERIFICATION || offered(abstract_syntax) || reversed;
        // The sender's order is its preference; the first one we can store
        // unchanged wins. The small data sets of a DIMSE-N service are
        // read in memory, in a little-endian uncompressed syntax.
        let chosen = pc
            .transfer_syntaxes
            .iter()
            .map(|ts| trim_uid(ts))
            .find(|ts| {
                if normalized {
                    [IMPLICIT_VR_LITTLE_ENDIAN, EXPLICIT_VR_LITTLE_ENDIAN].contains(ts)
                } else {
                    transfer_syntax::is_supported(ts)
                }
            });
        let (reason, transfer_syntax) = match (known, chosen) {
            (false, _) => (
                PresentationContextResultReason::AbstractSyntaxNotSupported,
                pc.transfer_syntaxes
                    .first()
                    .map(|ts| trim_uid(ts))
                    .unwrap_or_default(),
            ),
            (true, None) => (
                PresentationContextResultReason::TransferSyntaxesNotSupported,
                pc.transfer_syntaxes
                    .first()
                    .map(|ts| trim_uid(ts))
                    .unwrap_or_default(),
            ),
            (true, Some(ts)) => {
                if reversed && !roles.contains(&abstract_syntax) {
                    roles.push(abstract_syntax);
                }
                contexts.insert(
                    pc.id,
                    AcceptedContext {
                        id: pc.id,
                        abstract_syntax: abstract_syntax.to_string(),
                        transfer_syntax: ts.to_string(),
                    },
                );
                (PresentationContextResultReason::Acceptance, ts)
            }
        };
        results.push(PresentationContextResult {
            id: pc.id,
            reason,
            transfer_syntax: transfer_syntax.to_string(),
        });
    }

    let peer_max_pdu = rq
        .user_variables
        .iter()
        .find_map(|v| match v {
            UserVariableItem::MaxLength(n) => Some(*n),
            _ => None,
        })
        .unwrap_or(0);
    Decision::Accept {
        ac: Box::new(AssociationAC {
            protocol_version: 1,
            calling_ae_title: rq.calling_ae_title.clone(),
            called_ae_title: rq.called_ae_title.clone(),
            application_context_name: DICOM_APPLICATION_CONTEXT.to_string(),
            presentation_contexts: results,
            user_variables: [
                UserVariableItem::MaxLength(policy.max_pdu_length),
                UserVariableItem::ImplementationClassUID(IMPLEMENTATION_CLASS_UID.to_string()),
                UserVariableItem::ImplementationVersionName(
                    IMPLEMENTATION_VERSION_NAME.to_string(),
                ),
            ]
            .into_iter()
            // Storage associations only: a workstation's C-GET waits for
            // each image's response on its association, a request in
            // between would be taken for a lost response.
            .chain(operations_window(rq).filter(|_| receiver.is_none()))
            .chain(roles.into_iter().map(|uid| {
                UserVariableItem::ScuScpRoleSelectionSubItem(
                    uid.to_string(),
                    RequestorRoles {
                        scu: false,
                        scp: true,
                    },
                )
            }))
            .collect(),
        }),
        site,
        scope,
        receiver,
        contexts,
        peer_max_pdu,
    }
}

/// Requests a storage requester may have outstanding on one association
/// when it asks for an asynchronous operations window: they are performed
/// in order, one at a time (each instance durable before its response), but
/// the requester need not wait a round trip between two.
const OPERATIONS_PERFORMED: u16 = 16;

/// The answer to a requester's Asynchronous Operations Window sub-item
/// (PS3.7 D.3.3.3.1), none when it sent none. Both fields of the answer
/// speak of the requester, each at most what it proposed (0: no limit):
/// the operations it may invoke, up to the [`OPERATIONS_PERFORMED`] here,
/// and those it may perform, one (telerad invokes one at a time).
fn operations_window(rq: &AssociationRQ) -> Option<UserVariableItem> {
    rq.user_variables.iter().find_map(|v| match v {
        UserVariableItem::Unknown(crate::scu::ASYNC_OPERATIONS_WINDOW_ITEM, data)
            if data.len() == 4 =>
        {
            let at_most = |proposed: u16, ours: u16| match proposed {
                0 => ours,
                n => n.min(ours),
            };
            let invoked = at_most(u16::from_be_bytes([data[0], data[1]]), OPERATIONS_PERFORMED);
            let performed = at_most(u16::from_be_bytes([data[2], data[3]]), 1);
            let mut answer = invoked.to_be_bytes().to_vec();
            answer.extend(performed.to_be_bytes());
            Some(UserVariableItem::Unknown(
                crate::scu::ASYNC_OPERATIONS_WINDOW_ITEM,
                answer,
            ))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_ul::pdu::PresentationContextProposed;

    fn echo_request(calling: &str) -> AssociationRQ {
        AssociationRQ {
            protocol_version: 1,
            calling_ae_title: calling.into(),
            called_ae_title: "TELERAD".into(),
            application_context_name: DICOM_APPLICATION_CONTEXT.into(),
            presentation_contexts: vec![PresentationContextProposed {
                id: 1,
                abstract_syntax: VERIFICATION.into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2".into()],
            }],
            user_variables: vec![UserVariableItem::MaxLength(16_384)],
        }
    }

    /// A modality's MPPS context is accepted in an uncompressed
    /// little-endian syntax only: its data set is read in memory.
    #[test]
    fn performed_procedure_steps_are_negotiated_uncompressed() {
        let policy = Policy::from_config(std::sync::Arc::new(Config::example()));
        let mut rq = echo_request("STORESCU");
        rq.presentation_contexts = vec![
            PresentationContextProposed {
                id: 1,
                abstract_syntax: MODALITY_PERFORMED_PROCEDURE_STEP.into(),
                transfer_syntaxes: vec![
                    "1.2.840.10008.1.2.4.90".into(),
                    EXPLICIT_VR_LITTLE_ENDIAN.into(),
                ],
            },
            PresentationContextProposed {
                id: 3,
                abstract_syntax: MODALITY_PERFORMED_PROCEDURE_STEP.into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2.4.90".into()],
            },
        ];
        let Decision::Accept { contexts, .. } =
            negotiate(&rq, "127.0.0.1".parse().expect("an address"), None, &policy)
        else {
            panic!("refused");
        };
        assert_eq!(contexts[&1].transfer_syntax, EXPLICIT_VR_LITTLE_ENDIAN);
        assert!(!contexts.contains_key(&3), "JPEG 2000 for an MPPS data set");
    }

    /// An asynchronous operations window is answered only when asked,
    /// bounded by what telerad performs.
    #[test]
    fn an_operations_window_is_answered_when_asked() {
        let policy = Policy::from_config(std::sync::Arc::new(Config::example()));
        let window = |rq: &AssociationRQ| {
            let Decision::Accept { ac, .. } =
                negotiate(rq, "127.0.0.1".parse().expect("an address"), None, &policy)
            else {
                panic!("refused");
            };
            ac.user_variables.iter().find_map(|v| match v {
                UserVariableItem::Unknown(0x53, data) => Some(data.clone()),
                _ => None,
            })
        };
        let mut rq = echo_request("STORESCU");
        assert_eq!(window(&rq), None);
        // (invoked, performed) of the requester, each at most what it
        // proposed: 8 invoked, as many as telerad performs; one performed.
        rq.user_variables
            .push(UserVariableItem::Unknown(0x53, vec![0, 8, 0, 4]));
        assert_eq!(window(&rq), Some(vec![0, 8, 0, 1]));
        rq.user_variables.pop();
        // 0: no limit proposed; telerad's own bound then.
        rq.user_variables
            .push(UserVariableItem::Unknown(0x53, vec![0, 0, 0, 0]));
        assert_eq!(window(&rq), Some(vec![0, 16, 0, 1]));
    }

    /// A radiologist's workstation may query, from its host only, and
    /// store nothing; its queries see what its radiologist may read.
    #[test]
    fn a_workstation_queries_from_its_host_and_stores_nothing() {
        let config = Config::example();
        let policy = Policy::from_config(std::sync::Arc::new(config.clone()));
        let owner = config
            .radiologists
            .iter()
            .find(|r| {
                r.workstation
                    .as_ref()
                    .is_some_and(|w| w.ae_title == "MARTIN_WS")
            })
            .expect("the example's workstation");
        let mut rq = echo_request("MARTIN_WS");
        rq.presentation_contexts.extend([
            PresentationContextProposed {
                id: 3,
                abstract_syntax: STUDY_ROOT_FIND.into(),
                transfer_syntaxes: vec![EXPLICIT_VR_LITTLE_ENDIAN.into()],
            },
            PresentationContextProposed {
                id: 5,
                abstract_syntax: "1.2.840.10008.5.1.4.1.1.2".into(),
                transfer_syntaxes: vec![EXPLICIT_VR_LITTLE_ENDIAN.into()],
            },
        ]);
        let Decision::Accept {
            contexts,
            scope,
            site,
            ..
        } = negotiate(&rq, "127.0.0.1".parse().expect("an address"), None, &policy)
        else {
            panic!("refused");
        };
        assert_eq!(site, "");
        assert_eq!(
            scope,
            Scope::Reader {
                radiologist: owner.id.clone(),
                sites: owner.sites.clone(),
            }
        );
        let mut accepted: Vec<u8> = contexts.keys().copied().collect();
        accepted.sort();
        assert_eq!(accepted, [1, 3], "verification and C-FIND only");
        let elsewhere = negotiate(&rq, "192.0.2.7".parse().expect("an address"), None, &policy);
        assert!(
            matches!(&elsewhere, Decision::Reject { why, .. } if why.contains("not at 192.0.2.7")),
            "{elsewhere:?}"
        );
    }

    /// The embedded example's catch-all AE titles (DCMTK's and telerad's
    /// own defaults) are accepted from this machine, and from nowhere else.
    #[test]
    fn the_examples_catch_all_ae_titles_are_accepted_from_this_machine_only() {
        let policy = Policy::from_config(std::sync::Arc::new(Config::example()));
        for calling in ["STORESCU", "ECHOSCU", "TELERAD_SCU"] {
            for (peer, accepted) in [
                ("127.0.0.1", true),
                ("::1", true),
                ("10.22.0.5", false),
                ("192.0.2.7", false),
            ] {
                let peer: IpAddr = peer.parse().expect("an address");
                let decision = negotiate(&echo_request(calling), peer, None, &policy);
                assert_eq!(
                    matches!(decision, Decision::Accept { .. }),
                    accepted,
                    "{calling} from {peer}"
                );
            }
        }
    }
}
