use clap::Parser;

// glibc's malloc spent a quarter of the copy's CPU in malloc/free (perf, docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tsmigrate::cli::init_tracing();
    let code = tsmigrate::cli::run(tsmigrate::cli::Cli::parse()).await;
    std::process::exit(code);
}
