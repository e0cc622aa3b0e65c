fn main() {
    println!("benchmark: placeholder");
}
