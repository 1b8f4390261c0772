//! `careline-audit`: the audit projection and the audit trail service.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    service_kit::main::<audit_service::Application>()
}
