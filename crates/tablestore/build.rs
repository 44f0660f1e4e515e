//! Compiles the Tablestore wire schema with protox (pure Rust), so no system `protoc` is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["src/proto/tablestore.proto", "src/proto/filter.proto"];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["src/proto"])?;
    prost_build::Config::new()
        // The server decodes write rows as slices of the request body instead of copies.
        .bytes([
            ".tsmigrate.tablestore.RowInBatchWriteRowRequest.row_change",
            ".tsmigrate.tablestore.RowInBulkImportRequest.row_change",
        ])
        .compile_fds(fds)?;
    Ok(())
}
