fn main() {
    std::process::exit(husk::dispatch::main());
}
