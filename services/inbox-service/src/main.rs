//! `careline-inbox`: the inbox projection and query service.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    service_kit::main::<inbox_service::Application>()
}
