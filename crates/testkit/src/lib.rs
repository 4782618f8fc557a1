//! Test harness: a throwaway PostgreSQL server.
