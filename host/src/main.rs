fn main() -> std::process::ExitCode {
    tidebase_host::cli::main()
}
