//! `careline-web`: the pages patients and carers use.

fn main() -> anyhow::Result<()> {
    service_kit::main::<web::Application>()
}
