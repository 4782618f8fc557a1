//! Integration tests of the stack file: the example, the diagnostics corpus.

mod diagnostics;
mod example;
mod schema;
