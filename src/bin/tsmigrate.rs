use clap::Parser;

#[tokio::main]
async fn main() {
    tsmigrate::cli::init_tracing();
    let code = tsmigrate::cli::run(tsmigrate::cli::Cli::parse()).await;
    std::process::exit(code);
}
