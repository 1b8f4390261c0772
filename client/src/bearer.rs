//! A client for the command API: every call carries the caller's bearer
//! token. Used by the operator CLI's demo seeding, by the tests and by the
//! benchmark; other clients use any gRPC library and the proto.

use proto::command::command_service_client::CommandServiceClient;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone, Debug)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    pub fn new(token: &str) -> Result<Self, Status> {
        format!("Bearer {token}")
            .parse()
            .map(Bearer)
            .map_err(|_| Status::unauthenticated("the token is not valid header text"))
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// The command API as one signed-in person.
pub type Client = CommandServiceClient<InterceptedService<Channel, Bearer>>;

/// A client on `channel` that authenticates every call with `token`.
pub fn client(channel: Channel, token: &str) -> Result<Client, Status> {
    Ok(CommandServiceClient::with_interceptor(
        channel,
        Bearer::new(token)?,
    ))
}

/// A fresh command id (UUIDv7: unique and time-ordered).
pub fn command_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
