//! Either transport, chosen by the URL's scheme (`redis://`, `rediss://`, `nats://`,
//! `tls://`): what a bridge or a worker holds when its configuration names the transport.

use crate::nats::Nats;
use crate::redis::Redis;
use crate::{Answer, Delivery, Options, Subscription, Transport, TransportError, Work};
use std::time::Duration;

/// Redis or NATS, one [`Transport`] (share it with an `Arc`).
pub enum AnyTransport {
    /// Redis Streams and pub/sub.
    Redis(Redis),
    /// NATS JetStream and subjects.
    Nats(Box<Nats>),
}

/// Which transport a URL names, by its scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `redis://` or `rediss://`.
    Redis,
    /// `nats://` or `tls://` (a list separated by commas).
    Nats,
}

impl Kind {
    /// The transport `url` names, or an Invalid error that says which schemes are known.
    pub fn of(url: &str) -> Result<Kind, TransportError> {
        let scheme = url.split("://").next().unwrap_or("");
        match scheme {
            "redis" | "rediss" => Ok(Kind::Redis),
            "nats" | "tls" => Ok(Kind::Nats),
            _ => Err(TransportError::Invalid {
                what: "url",
                problem: format!(
                    "'{url}' is not a transport: redis://, rediss://, nats:// or tls://"
                ),
            }),
        }
    }

    /// `redis` or `nats`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Redis => "redis",
            Kind::Nats => "nats",
        }
    }
}

/// Connects to the transport `url` names.
pub async fn connect(url: &str, options: Options) -> Result<AnyTransport, TransportError> {
    Ok(match Kind::of(url)? {
        Kind::Redis => AnyTransport::Redis(Redis::connect(url, options).await?),
        Kind::Nats => AnyTransport::Nats(Box::new(Nats::connect(url, options).await?)),
    })
}

impl AnyTransport {
    /// Which transport this is.
    pub fn kind(&self) -> Kind {
        match self {
            AnyTransport::Redis(_) => Kind::Redis,
            AnyTransport::Nats(_) => Kind::Nats,
        }
    }
}

/// Calls the same method on whichever transport it is.
macro_rules! each {
    ($self:ident, $t:ident => $call:expr) => {
        match $self {
            AnyTransport::Redis($t) => $call.await,
            AnyTransport::Nats($t) => $call.await,
        }
    };
}

/// `url` with the secret of each server's credentials hidden (`user:***@`, or `***@` for
/// a token), for messages.
pub fn redact(url: &str) -> String {
    url.split(',')
        .map(|one| {
            let Some((scheme, rest)) = one.split_once("://") else {
                return one.to_string();
            };
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let Some(at) = rest[..end].rfind('@') else {
                return one.to_string();
            };
            let hidden = match rest[..at].split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_string(),
            };
            format!("{scheme}://{hidden}{}", &rest[at..])
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Transport for AnyTransport {
    async fn send_work(&self, work: &Work) -> Result<(), TransportError> {
        each!(self, t => t.send_work(work))
    }

    async fn leave(&self, topic: &str, consumer: &str) -> Result<bool, TransportError> {
        each!(self, t => t.leave(topic, consumer))
    }

    async fn take_work(
        &self,
        topic: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<Work>>, TransportError> {
        each!(self, t => t.take_work(topic, consumer, max, wait))
    }

    async fn ack_work(&self, delivery: &Delivery<Work>) -> Result<(), TransportError> {
        each!(self, t => t.ack_work(delivery))
    }

    async fn send_answer(&self, answer: &Answer) -> Result<(), TransportError> {
        each!(self, t => t.send_answer(answer))
    }

    async fn take_answers(
        &self,
        consumer: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery<Answer>>, TransportError> {
        each!(self, t => t.take_answers(consumer, max, wait))
    }

    async fn ack_answer(&self, delivery: &Delivery<Answer>) -> Result<(), TransportError> {
        each!(self, t => t.ack_answer(delivery))
    }

    async fn publish(&self, subject: &str, payload: &[u8]) -> Result<(), TransportError> {
        each!(self, t => t.publish(subject, payload))
    }

    async fn subscribe(&self, pattern: &str) -> Result<Subscription, TransportError> {
        each!(self, t => t.subscribe(pattern))
    }
}

#[cfg(test)]
mod tests {
    use super::{redact, Kind};
    #[test]
    fn a_url_in_a_message_keeps_its_secrets() {
        assert_eq!(
            redact("redis://:hunter2@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(
            redact("rediss://app:s3cret@h:6380/"),
            "rediss://app:***@h:6380/"
        );
        assert_eq!(
            redact("nats://tok@a:4222,nats://u:p@b:4222"),
            "nats://***@a:4222,nats://u:***@b:4222"
        );
        assert_eq!(redact("nats://a:4222"), "nats://a:4222");
        assert_eq!(redact("redis://h/?x=a@b"), "redis://h/?x=a@b");
    }

    #[test]
    fn a_url_names_its_transport_by_its_scheme() {
        assert_eq!(Kind::of("redis://127.0.0.1:6379/").unwrap(), Kind::Redis);
        assert_eq!(Kind::of("rediss://h/").unwrap(), Kind::Redis);
        assert_eq!(Kind::of("nats://a:4222,nats://b:4222").unwrap(), Kind::Nats);
        let e = Kind::of("postgres://x/y").unwrap_err().to_string();
        assert!(e.contains("redis://"), "{e}");
    }
}
