//! The Careline protobuf contract, compiled.
//!
//! * [`events`] is `careline.events.v1`: the [`events::Envelope`] every event
//!   travels in and the payload of every domain event. Internal services that
//!   subscribe to the stream decode with these types.
//! * [`command`] is `careline.command.v1`: the gRPC API every change goes
//!   through.
//! * [`inbox`] is `careline.inbox.v1`: the read API of inboxes and threads.
//! * [`contract`] holds what the `.proto` files cannot say in types: the NATS
//!   subject layout, header names, and the event-type name and aggregate of
//!   each payload.
//! * [`FILE_DESCRIPTOR_SET`] is every compiled file, for gRPC reflection.
//!
//! The `.proto` sources live beside this crate under `careline/`; `build.rs`
//! compiles them with protox, so no system `protoc` is needed.

pub mod contract;
pub mod time;

/// Generated code, in the proto package layout.
pub mod careline {
    pub mod audit {
        pub mod v1 {
            #![allow(missing_docs, clippy::all, missing_debug_implementations)]
            include!(concat!(env!("OUT_DIR"), "/careline.audit.v1.rs"));
        }
    }
    pub mod command {
        pub mod v1 {
            #![allow(missing_docs, clippy::all, missing_debug_implementations)]
            include!(concat!(env!("OUT_DIR"), "/careline.command.v1.rs"));
        }
    }
    pub mod inbox {
        pub mod v1 {
            #![allow(missing_docs, clippy::all, missing_debug_implementations)]
            include!(concat!(env!("OUT_DIR"), "/careline.inbox.v1.rs"));
        }
    }
    pub mod notify {
        pub mod v1 {
            #![allow(missing_docs, clippy::all, missing_debug_implementations)]
            include!(concat!(env!("OUT_DIR"), "/careline.notify.v1.rs"));
        }
    }
    pub mod events {
        pub mod v1 {
            #![allow(missing_docs, clippy::all, missing_debug_implementations)]
            include!(concat!(env!("OUT_DIR"), "/careline.events.v1.rs"));
        }
    }
}

/// `google.rpc`: the standard error details (`Status`, `ErrorInfo`) every
/// refusal carries (`service_kit::reason`).
pub mod google {
    pub mod rpc {
        #![allow(missing_docs, clippy::all, missing_debug_implementations)]
        include!(concat!(env!("OUT_DIR"), "/google.rpc.rs"));
    }
}

pub use careline::audit::v1 as audit;
pub use careline::command::v1 as command;
pub use careline::events::v1 as events;
pub use careline::inbox::v1 as inbox;
pub use careline::notify::v1 as notify;

/// The encoded `FileDescriptorSet` of every Careline `.proto` file, for gRPC
/// server reflection and for tests that walk the contract.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/careline_descriptor.bin"));
