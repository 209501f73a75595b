//! The request body must keep arriving: a body that stalls longer than
//! `server.body_timeout_secs` between two pieces ends in a timeout error, so a client that
//! sends its head and then nothing cannot hold a worker's request, a connection and a file
//! descriptor for ever. actix times out the TLS handshake and the request head itself; the
//! body has no timeout of its own there.
//!
//! Every payload is wrapped once, by [`guard`] (a middleware the server installs), so the
//! API, the console and multipart uploads all see the same timeout as an error of their
//! payload; each surface words it (the API answers `408` with its JSON shape).

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Marks the I/O error a stalled body ends with, so readers can tell it from a broken one.
#[derive(Debug)]
struct BodyStalled;

impl std::fmt::Display for BodyStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body stalled")
    }
}

impl std::error::Error for BodyStalled {}

/// Whether `e` is the end of a body that stalled past the timeout.
pub fn is_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.get_ref().is_some_and(|i| i.is::<BodyStalled>()))
}

/// A payload that fails once no piece of it arrived for `idle`.
struct TimedPayload {
    inner: Payload,
    idle: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
    done: bool,
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(item)) => {
                let deadline = tokio::time::Instant::now() + this.idle;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(Some(item))
            }
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        BodyStalled,
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// Wraps the payload of `req` so it times out after `idle` without progress.
pub fn wrap(req: &mut ServiceRequest, idle: Duration) {
    let inner = req.take_payload();
    let timed = TimedPayload {
        inner,
        idle,
        sleep: Box::pin(tokio::time::sleep(idle)),
        done: false,
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(timed),
    });
}

/// The middleware: every request's body under the timeout of the application's configuration.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let idle = req
        .app_data::<actix_web::web::Data<super::AppState>>()
        .map(|s| Duration::from_secs(s.config.server.body_timeout_secs));
    if let Some(idle) = idle {
        wrap(&mut req, idle);
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn a_stalled_body_ends_in_a_timeout_and_a_complete_one_passes() {
        let stalls = futures_util::stream::iter([Ok(Bytes::from_static(b"part"))])
            .chain(futures_util::stream::pending());
        let mut timed = TimedPayload {
            inner: Payload::Stream {
                payload: Box::pin(stalls),
            },
            idle: Duration::from_millis(50),
            sleep: Box::pin(tokio::time::sleep(Duration::from_millis(50))),
            done: false,
        };
        assert_eq!(timed.next().await.unwrap().unwrap(), &b"part"[..]);
        let err = timed.next().await.unwrap().unwrap_err();
        assert!(is_timeout(&err), "{err}");
        assert!(timed.next().await.is_none());
        assert!(!is_timeout(&PayloadError::Overflow));
    }
}
