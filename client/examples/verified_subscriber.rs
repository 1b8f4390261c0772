//! An internal service's subscriber (an EHR feed, say) that believes an
//! event only as far as its writer's signature goes, not the NATS
//! configuration: an event its subject may not carry, or one that is not
//! signed by a key that may write there, is set aside and said on stderr;
//! every other is printed, one line each. It needs the NATS address, the
//! stream, the subject prefix and the writers' public keys, nothing else
//! of Careline's:
//!
//! ```sh
//! NATS_URL=nats://127.0.0.1:4222 CARELINE_STREAM=CARELINE CARELINE_PREFIX=careline \
//! CARELINE_EVENT_PUBLIC_KEYS=command=k1:…,reads=inbox-1:… \
//!   cargo run -p careline-client --example verified_subscriber
//! ```

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull};
use event_store::EventKeys;
use event_store::signing::SIGNATURE_HEADER;
use futures::StreamExt;
use prost::Message;
use proto::events::{AggregateType, Envelope};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let keys = EventKeys::parse(&var("CARELINE_EVENT_PUBLIC_KEYS", ""))?;
    let prefix = var("CARELINE_PREFIX", "careline");
    let client = async_nats::connect(var("NATS_URL", "nats://127.0.0.1:4222")).await?;
    let stream = jetstream::new(client)
        .get_stream(var("CARELINE_STREAM", "CARELINE"))
        .await?;
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: format!("{prefix}.events.>"),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let Ok(envelope) = Envelope::decode(message.payload.as_ref()) else {
            eprintln!("set aside on {}: not an event", message.subject);
            continue;
        };
        let signature = message
            .headers
            .as_ref()
            .and_then(|h| h.get(SIGNATURE_HEADER))
            .map(|v| v.as_str());
        let access = envelope.aggregate_type() == AggregateType::Access;
        let checked = proto::contract::check_origin(&prefix, &message.subject, &envelope)
            .and_then(|()| keys.check(&message.subject, access, &message.payload, signature));
        match checked {
            Ok(()) => println!(
                "{} {} {}",
                envelope.event_type, envelope.aggregate_id, envelope.event_id
            ),
            Err(why) => eprintln!(
                "set aside {} on {}: {why}",
                envelope.event_type, message.subject
            ),
        }
    }
    Ok(())
}
