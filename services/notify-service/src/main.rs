//! `careline-notify`: the notification projection, the SMTP delivery worker
//! and the notification state service.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    service_kit::main::<notify_service::Application>()
}
