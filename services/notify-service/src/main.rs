//! `careline-notify`: the notification projection, the SMTP delivery worker
//! and the notification state service.

use notify_service::{Application, Config};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    service_kit::init_tracing();
    let config = Config::from_env()?;
    let keys = service_kit::TokenKeys::from_env().map_err(anyhow::Error::msg)?;
    let mut app = Application::build(config, keys).await?;
    if let Some(tls) = service_kit::server::ServerTls::from_env().map_err(anyhow::Error::msg)? {
        app = app.with_tls(tls);
    }
    app.run(service_kit::shutdown_signal()).await
}
