//! What the HTTP layers (`api`, `console`) and the server share: [`AppState`], the handle
//! every request handler receives, and the request metrics it carries.
//!
//! It assembles nothing and holds no rules: `server` builds it, handlers read it.

pub mod body_timeout;
pub mod metrics;
pub mod multipart;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::keys::Keyring;
use crate::store::Store;
use std::sync::Arc;

/// What every handler may use.
pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub keys: Arc<Keyring>,
    pub gateway: Gateway,
    pub metrics: Arc<metrics::Metrics>,
    /// Outbound client for member callbacks (SPEC §4).
    pub interop: Arc<crate::interop::MemberClient>,
}

impl AppState {
    /// The `{code,message,data}` body of an answer and the platform's SM2 signature over
    /// exactly those bytes (Base64): what the API sends.
    pub fn signed_body(
        &self,
        code: &str,
        message: &str,
        data: &impl serde::Serialize,
    ) -> (Vec<u8>, String) {
        let (body, signature, _) = self.signed_body_and_cert(code, message, data);
        (body, signature)
    }

    /// [`AppState::signed_body`] with the DER certificate of the key that signed it, from one
    /// snapshot of the platform key (a rotation cannot come between them): what the console
    /// lets a person keep.
    pub fn signed_body_and_cert(
        &self,
        code: &str,
        message: &str,
        data: &impl serde::Serialize,
    ) -> (Vec<u8>, String, Vec<u8>) {
        use base64::Engine;
        #[derive(serde::Serialize)]
        struct Body<'a, T> {
            code: &'a str,
            message: &'a str,
            data: &'a T,
        }
        let body = serde_json::to_vec(&Body {
            code,
            message,
            data,
        })
        .unwrap_or_else(|_| br#"{"code":"50000","message":"","data":""}"#.to_vec());
        let platform = self.keys.platform();
        let signature = base64::engine::general_purpose::STANDARD.encode(platform.sign(&body));
        (body, signature, platform.cert_der().to_vec())
    }

    /// Makes every write of the acts done so far durable (group commit). The one storage call
    /// the HTTP layers make themselves: an answer is sent only after it returns.
    pub async fn durable(&self) -> Result<(), crate::store::StoreError> {
        self.store.commit().await
    }
}
