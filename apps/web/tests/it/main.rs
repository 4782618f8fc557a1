//! Integration tests of the web frontend.
