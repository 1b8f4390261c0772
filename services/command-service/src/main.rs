//! `careline-command`: the command service.

// Every command allocates a few small buffers (HTTP/2 frames, the event);
// mimalloc keeps that cheaper than glibc's malloc under many threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    service_kit::main::<command_service::Application<event_store::JetStreamStore>>()
}
