//! A self-contained seal-making kit: a CA, a seal maker and a seal signer with fresh SM2 keys,
//! and seals built with them. The member simulator files its own seals with it; tests and the
//! load generator use it to make real seals without any committed key material.

use super::{SealParams, SesError, build_seal_v1, build_seal_v4};
use crate::crypto::certgen::{CertSpec, issue_sm2, self_signed_sm2};
use crate::crypto::der;
use crate::crypto::sm::{CryptoError, Sm2KeyPair};

const DAY_MS: i64 = 24 * 3600 * 1000;

pub struct SealKit {
    pub root: Sm2KeyPair,
    pub root_cert: Vec<u8>,
    pub maker: Sm2KeyPair,
    pub maker_cert: Vec<u8>,
    /// The seal holder's signing key; its certificate goes into every seal's cert list.
    pub signer: Sm2KeyPair,
    pub signer_cert: Vec<u8>,
}

impl SealKit {
    /// A CA valid for ten years and a maker and signer valid for one, issued to `organization`.
    pub fn generate(organization: &str) -> Result<Self, CryptoError> {
        let now = crate::time::now_ms();
        let spec = |cn: &str, ca: bool, years: i64| CertSpec {
            common_name: cn.into(),
            organization: Some(organization.into()),
            not_before_ms: now - DAY_MS,
            not_after_ms: now + years * 365 * DAY_MS,
            is_ca: ca,
            serial: None,
        };
        let root = Sm2KeyPair::generate();
        let root_cert = self_signed_sm2(&spec(&format!("{organization} CA"), true, 10), &root)?;
        let maker = Sm2KeyPair::generate();
        let maker_cert = issue_sm2(
            &spec("制章者", false, 1),
            &maker.public_key(),
            &root_cert,
            &root,
        )?;
        let signer = Sm2KeyPair::generate();
        let signer_cert = issue_sm2(
            &spec(organization, false, 1),
            &signer.public_key(),
            &root_cert,
            &root,
        )?;
        Ok(Self {
            root,
            root_cert,
            maker,
            maker_cert,
            signer,
            signer_cert,
        })
    }

    /// Parameters of an organisation seal named `name`, valid from now for `valid_days`.
    pub fn params(
        &self,
        name: &str,
        es_id: &str,
        valid_days: i64,
        picture_png: Vec<u8>,
    ) -> SealParams {
        let now = crate::time::now_ms();
        SealParams {
            vid: "hutong".into(),
            es_id: es_id.into(),
            seal_type: 1,
            name: name.into(),
            cert_list: vec![self.signer_cert.clone()],
            cert_list_is_digest: false,
            cert_digest_type: "SM3".into(),
            create_date_ms: now - 1000,
            valid_start_ms: now - 1000,
            valid_end_ms: now + valid_days * DAY_MS,
            picture_kind: "png".into(),
            picture_data: picture_png,
            width_mm: 42,
            height_mm: 42,
            ext_datas: vec![],
        }
    }

    /// A GB/T 38540 v4 seal.
    pub fn seal_v4(&self, params: &SealParams) -> Result<Vec<u8>, SesError> {
        build_seal_v4(params, &self.maker, &self.maker_cert)
    }

    /// A GM/T 0031 v1 seal.
    pub fn seal_v1(&self, params: &SealParams) -> Result<Vec<u8>, SesError> {
        build_seal_v1(params, &self.maker, &self.maker_cert)
    }
}

/// The header of a PNG declaring `width`×`height` pixels: enough for size read-outs in tests.
pub fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut p = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    p.extend_from_slice(&width.to_be_bytes());
    p.extend_from_slice(&height.to_be_bytes());
    p.extend_from_slice(b"\x08\x06\x00\x00\x00");
    p
}

/// `sig` (an SM2 DER `SEQUENCE{r,s}`) re-encoded the way one large vendor's seal software writes
/// it: a 32-byte `r` or `s` with its high bit set loses the leading 0x00 DER requires. `None`
/// when neither value has its high bit set (nothing to re-encode) or `sig` is not SM2 DER. For
/// tests of the producer quirk (issue 12 point 1); never used to produce anything real.
pub fn without_sign_octets(sig: &[u8]) -> Option<Vec<u8>> {
    let raw = crate::crypto::sm::parse_sm2_signature(sig).ok()?.to_bytes();
    let (r, s) = raw.split_at(32);
    if r[0] & 0x80 == 0 && s[0] & 0x80 == 0 {
        return None;
    }
    let int = |v: &[u8]| {
        let start = v.iter().position(|&b| b != 0).unwrap_or(v.len() - 1);
        der::tlv(0x02, &v[start..])
    };
    Some(der::tlv(0x30, &[int(r), int(s)].concat()))
}

/// `der` with every OCTET STRING or BIT STRING holding exactly `old` rewritten to hold `new`,
/// the enclosing lengths re-encoded (e.g. the SignerInfo signature of a CMS). For tests.
pub fn replace_value(der: &[u8], old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    fn walk(tlv: der::Tlv<'_>, old: &[u8], new: &[u8]) -> Option<Vec<u8>> {
        if tlv.is_constructed() {
            let mut body = Vec::new();
            for child in tlv.children().ok()? {
                body.extend(walk(child, old, new)?);
            }
            return Some(der::tlv(tlv.tag, &body));
        }
        Some(match (tlv.tag, tlv.content) {
            (0x04, c) if c == old => der::tlv(0x04, new),
            (0x03, [0, c @ ..]) if c == old => der::tlv(0x03, &[&[0u8][..], new].concat()),
            _ => tlv.raw.to_vec(),
        })
    }
    let (top, _) = der::read_der(der).ok()?;
    walk(top, old, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ses::SesSeal;

    #[test]
    fn kit_seals_verify_and_carry_the_signer_certificate() {
        let kit = SealKit::generate("测试单位").unwrap();
        let params = kit.params("测试单位公章", "KIT-1", 30, png_header(10, 10));
        for der in [kit.seal_v4(&params).unwrap(), kit.seal_v1(&params).unwrap()] {
            let seal = SesSeal::decode(&der).unwrap();
            seal.verify_maker().unwrap();
            assert_eq!(seal.cert_list, vec![kit.signer_cert.clone()]);
        }
    }
}
