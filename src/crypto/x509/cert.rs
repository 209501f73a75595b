//! The fields of an X.509 certificate the verifiers need, parsed over the exact bytes, and the
//! check of its signature by an issuer key.
//!
//! Must not build paths or decide trust (that is `chain`), nor verify other signatures.

use super::X509Error;
use super::names::{common_name, name_to_string, serial_hex};
use super::scheme::{key_type_name, resolve_scheme, verify_signature};
use crate::crypto::der::{self, Tlv};

#[derive(Debug, Clone)]
pub struct CertInfo {
    pub der: Vec<u8>,
    pub tbs_der: Vec<u8>,
    pub serial: Vec<u8>,
    /// Lower-case hex of the serial's content octets, leading zero octet removed.
    pub serial_hex: String,
    pub issuer_der: Vec<u8>,
    pub subject_der: Vec<u8>,
    pub issuer: String,
    pub subject: String,
    pub not_before_ms: i64,
    pub not_after_ms: i64,
    pub spki_der: Vec<u8>,
    pub sig_alg_oid: String,
    pub sig_alg_params: Option<Vec<u8>>,
    pub signature: Vec<u8>,
    /// basicConstraints: (cA, pathLenConstraint).
    pub basic_constraints: Option<(bool, Option<u32>)>,
    /// keyUsage bits (bit 0 = digitalSignature … bit 5 = keyCertSign), when present.
    pub key_usage: Option<u16>,
    /// extKeyUsage purposes (OIDs), when present.
    pub ext_key_usage: Option<Vec<String>>,
    pub subject_key_id: Option<Vec<u8>>,
    pub authority_key_id: Option<Vec<u8>>,
}

pub const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
pub const KU_NON_REPUDIATION: u16 = 1 << 1;
pub const KU_KEY_CERT_SIGN: u16 = 1 << 5;
/// `id-kp-timeStamping` (RFC 3161 §2.3: a TSA certificate carries exactly this purpose).
pub const EKU_TIME_STAMPING: &str = "1.3.6.1.5.5.7.3.8";

impl CertInfo {
    /// Parses a DER certificate.
    pub fn parse(der: &[u8]) -> Result<CertInfo, X509Error> {
        let cert_err = |m: &str| X509Error::Certificate(m.to_string());
        let (cert, _) = der::read_ber(der).map_err(|e| X509Error::Certificate(e.to_string()))?;
        if cert.tag != 0x30 {
            return Err(cert_err("不是 SEQUENCE"));
        }
        let parts = cert.children()?;
        let (tbs, alg, sig) = match parts.as_slice() {
            [tbs, alg, sig, ..] => (tbs, alg, sig),
            _ => return Err(cert_err("缺少 tbsCertificate/签名")),
        };
        let alg_parts = alg.children()?;
        let sig_alg_oid =
            der::oid_string(alg_parts.first().ok_or_else(|| cert_err("签名算法缺失"))?)?;
        let sig_alg_params = alg_parts.get(1).map(|p| p.raw.to_vec());
        if sig.tag != 0x03 {
            return Err(cert_err("签名值不是 BIT STRING"));
        }
        let signature = sig.content.get(1..).unwrap_or_default().to_vec();

        let fields = tbs.children()?;
        let mut it = fields.iter().peekable();
        if it.peek().is_some_and(|f| f.tag == 0xa0) {
            it.next();
        }
        let serial_tlv = it.next().ok_or_else(|| cert_err("序列号缺失"))?;
        if serial_tlv.tag != 0x02 {
            return Err(cert_err("序列号不是 INTEGER"));
        }
        let _tbs_alg = it.next().ok_or_else(|| cert_err("算法缺失"))?;
        let issuer = it.next().ok_or_else(|| cert_err("签发者缺失"))?;
        let validity = it.next().ok_or_else(|| cert_err("有效期缺失"))?;
        let subject = it.next().ok_or_else(|| cert_err("主体缺失"))?;
        let spki = it.next().ok_or_else(|| cert_err("公钥缺失"))?;
        let times = validity.children()?;
        let not_before_ms = der::time_ms(times.first().ok_or_else(|| cert_err("notBefore 缺失"))?)?;
        let not_after_ms = der::time_ms(times.get(1).ok_or_else(|| cert_err("notAfter 缺失"))?)?;

        let mut info = CertInfo {
            der: cert.raw.to_vec(),
            tbs_der: tbs.raw.to_vec(),
            serial: serial_tlv.content.to_vec(),
            serial_hex: serial_hex(serial_tlv.content),
            issuer_der: issuer.raw.to_vec(),
            subject_der: subject.raw.to_vec(),
            issuer: name_to_string(issuer),
            subject: name_to_string(subject),
            not_before_ms,
            not_after_ms,
            spki_der: spki.raw.to_vec(),
            sig_alg_oid,
            sig_alg_params,
            signature,
            basic_constraints: None,
            key_usage: None,
            ext_key_usage: None,
            subject_key_id: None,
            authority_key_id: None,
        };
        for f in it {
            if f.tag == 0xa3 {
                info.read_extensions(f)?;
            }
        }
        Ok(info)
    }

    fn read_extensions(&mut self, wrapper: &Tlv<'_>) -> Result<(), X509Error> {
        let (exts, _) = der::read_ber(wrapper.content)?;
        for ext in exts.children()? {
            let parts = ext.children()?;
            let Some(oid_tlv) = parts.first() else {
                continue;
            };
            let oid = der::oid_string(oid_tlv)?;
            let Some(value) = parts.iter().rev().find(|p| p.tag == 0x04) else {
                continue;
            };
            let Ok((inner, _)) = der::read_ber(value.content) else {
                continue;
            };
            match oid.as_str() {
                "2.5.29.19" => {
                    let kids = inner.children().unwrap_or_default();
                    let mut ca = false;
                    let mut path_len = None;
                    for k in kids {
                        match k.tag {
                            0x01 => ca = k.content.first().is_some_and(|b| *b != 0),
                            0x02 => {
                                path_len = Some(
                                    k.content
                                        .iter()
                                        .take(4)
                                        .fold(0u32, |a, b| (a << 8) | u32::from(*b)),
                                )
                            }
                            _ => {}
                        }
                    }
                    self.basic_constraints = Some((ca, path_len));
                }
                "2.5.29.15" if inner.tag == 0x03 => {
                    let b0 = inner.content.get(1).copied().unwrap_or(0);
                    let b1 = inner.content.get(2).copied().unwrap_or(0);
                    // Bit 0 of the ASN.1 BIT STRING is the most significant bit of the octet.
                    let mut bits = 0u16;
                    for i in 0..8 {
                        if b0 & (0x80 >> i) != 0 {
                            bits |= 1 << i;
                        }
                    }
                    if b1 & 0x80 != 0 {
                        bits |= 1 << 8;
                    }
                    self.key_usage = Some(bits);
                }
                "2.5.29.37" => {
                    self.ext_key_usage = Some(
                        inner
                            .children()
                            .unwrap_or_default()
                            .iter()
                            .take(32)
                            .filter_map(|k| der::oid_string(k).ok())
                            .collect(),
                    );
                }
                "2.5.29.14" if inner.tag == 0x04 => {
                    self.subject_key_id = Some(inner.content.to_vec());
                }
                "2.5.29.35" => {
                    self.authority_key_id = inner
                        .children()
                        .unwrap_or_default()
                        .into_iter()
                        .find(|k| k.tag == 0x80)
                        .map(|k| k.content.to_vec());
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether this certificate's signature verifies under `issuer_spki_der`.
    pub fn verify_signed_by(&self, issuer_spki_der: &[u8]) -> Result<(), X509Error> {
        let scheme = resolve_scheme(&self.sig_alg_oid, self.sig_alg_params.as_deref(), None)?;
        verify_signature(issuer_spki_der, scheme, &self.tbs_der, &self.signature)
    }

    pub fn is_valid_at(&self, ms: i64) -> bool {
        self.not_before_ms <= ms && ms <= self.not_after_ms
    }

    pub(crate) fn is_self_issued(&self) -> bool {
        self.issuer_der == self.subject_der
    }

    /// The key type for reports.
    pub fn key_type(&self) -> String {
        key_type_name(&self.spki_der)
    }

    /// `CN` of the subject, else the whole subject string.
    pub fn subject_cn(&self) -> String {
        common_name(&self.subject)
    }
}
