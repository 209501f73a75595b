//! Whom the platform trusts as a member's callback server (SPEC §4, issue 13 point 1).
//!
//! The certificate recorded for a member at onboarding is read one of two ways:
//! - **self-signed** (the usual `openssl req -x509` test certificate, often `CA:TRUE`): a pin.
//!   A server presenting exactly those bytes, inside their validity, with a subjectAltName for
//!   the callback host, is accepted whatever its basic constraints say — WebPKI refuses a
//!   certificate that is both anchor and end entity when it is marked CA, which is why the pin
//!   is checked before the chain. The pin is also an anchor, so a self-signed CA that issued
//!   the member's (different) leaf keeps working as a CA.
//! - **any other certificate**: a CA, added to the roots for this member only.
//!
//! Everything else goes through rustls' WebPKI verifier with the operating system's roots plus
//! that certificate. Handshake signatures are always checked with the provider's algorithms.
//! Refusals carry a [`CertCause`], so the failure says why in Chinese.

use super::cause::{Cause, CertCause, UNKNOWN_ISSUER};
use crate::crypto::x509::CertInfo;
use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::{Arc, OnceLock};

/// A registered certificate used as a pin.
#[derive(Debug)]
struct Pin {
    der: Vec<u8>,
    subject_der: Vec<u8>,
    not_before_ms: i64,
    not_after_ms: i64,
}

/// The verifier of one member's callback server certificate.
#[derive(Debug)]
pub struct MemberVerifier {
    pin: Option<Pin>,
    /// `None` when there is no anchor at all (no OS roots, nothing registered).
    webpki: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

/// The rustls provider of every outbound call (ring, as the server uses).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        if !loaded.errors.is_empty() {
            tracing::warn!(
                errors = loaded.errors.len(),
                "some operating-system root certificates could not be loaded"
            );
        }
        loaded.certs
    })
}

/// Whether `c` is self-signed: issuer is subject and its own key verifies its signature.
fn self_signed(c: &CertInfo) -> bool {
    c.issuer_der == c.subject_der && c.verify_signed_by(&c.spki_der).is_ok()
}

impl MemberVerifier {
    /// The verifier for a member whose registered callback certificate is `registered_pem`
    /// (none, or PEM `CERTIFICATE` blocks); [`Cause::BadCallbackCa`] when a registered block
    /// cannot be used.
    pub fn new(registered_pem: Option<&str>) -> Result<Self, Cause> {
        use rustls::pki_types::pem::PemObject;
        let provider = provider();
        let mut roots = rustls::RootCertStore::empty();
        // Unparsable system roots are skipped; the member's own certificate must be usable.
        roots.add_parsable_certificates(system_roots().iter().cloned());
        let mut pin = None;
        for c in CertificateDer::pem_slice_iter(registered_pem.unwrap_or("").as_bytes()) {
            let c = c.map_err(|_| Cause::BadCallbackCa)?;
            let info = CertInfo::parse(c.as_ref()).map_err(|_| Cause::BadCallbackCa)?;
            if pin.is_none() && self_signed(&info) {
                pin = Some(Pin {
                    der: info.der.clone(),
                    subject_der: info.subject_der.clone(),
                    not_before_ms: info.not_before_ms,
                    not_after_ms: info.not_after_ms,
                });
            }
            roots.add(c).map_err(|_| Cause::BadCallbackCa)?;
        }
        let webpki = if roots.is_empty() {
            None
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .ok()
        };
        Ok(Self {
            pin,
            webpki,
            algorithms: provider.signature_verification_algorithms,
        })
    }

    /// The client configuration that trusts this member's server as described above.
    pub fn client_config(self) -> Result<rustls::ClientConfig, rustls::Error> {
        Ok(rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth())
    }

    fn check_pin(
        pin: &Pin,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, CertCause> {
        let now_ms = i64::try_from(now.as_secs().saturating_mul(1000)).unwrap_or(i64::MAX);
        if now_ms > pin.not_after_ms {
            return Err(CertCause::Expired);
        }
        if now_ms < pin.not_before_ms {
            return Err(CertCause::NotYetValid);
        }
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)
            .map_err(|_| CertCause::Untrusted("证书编码无效".into()))?;
        rustls::client::verify_server_name(&parsed, server_name)
            .map_err(|_| CertCause::NotForHost(server_name.to_str().into_owned()))?;
        Ok(ServerCertVerified::assertion())
    }

    /// Why WebPKI refused `end_entity`, in the terms a member can act on.
    fn explain(
        &self,
        e: &rustls::Error,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
    ) -> CertCause {
        let info = CertInfo::parse(end_entity.as_ref()).ok();
        let untrusted = matches!(
            e,
            rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer | rustls::CertificateError::BadSignature
            )
        );
        if let (Some(pin), Some(info)) = (&self.pin, &info)
            && (info.subject_der == pin.subject_der || untrusted)
        {
            // Neither the pinned certificate nor one it issued.
            return CertCause::PinMismatch;
        }
        if info.is_some_and(|i| matches!(i.basic_constraints, Some((true, _)))) {
            return CertCause::CaAsEndEntity;
        }
        match super::cause::Cause::from_tls(e, &server_name.to_str()) {
            super::cause::Cause::Certificate(c) => c,
            _ => CertCause::Untrusted("证书未通过校验".into()),
        }
    }
}

impl ServerCertVerifier for MemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(pin) = &self.pin
            && end_entity.as_ref() == pin.der.as_slice()
        {
            return Self::check_pin(pin, end_entity, server_name, now)
                .map_err(CertCause::into_rustls);
        }
        let Some(webpki) = &self.webpki else {
            return Err(CertCause::Untrusted(UNKNOWN_ISSUER.into()).into_rustls());
        };
        webpki
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map_err(|e| self.explain(&e, end_entity, server_name).into_rustls())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
