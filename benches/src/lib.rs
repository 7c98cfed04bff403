//! veil-benches: criterion benchmarks live in `benches/`; this library holds nothing else.
