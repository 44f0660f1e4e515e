use clap::Parser;

// glibc's malloc spent a quarter of the copy's CPU in malloc/free (perf, docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tsmigrate::process::disable_transparent_huge_pages();
    tsmigrate::cli::init_tracing();
    tsmigrate::cli::run(tsmigrate::cli::Cli::parse()).await
}
