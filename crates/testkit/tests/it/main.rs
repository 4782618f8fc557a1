//! The harness against the real thing: PostgreSQL starts, serves, stops and comes back.

use berth_testkit::Postgres;

#[test]
fn postgres_starts_answers_sql_and_restarts_with_its_data() {
    let pg = Postgres::start();
    assert_eq!(pg.psql("SELECT 1 + 1"), "2");
    pg.psql("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)");
    pg.stop();
    assert!(!pg.is_running());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_err(),
        "nothing listens while stopped"
    );
    pg.start_again();
    assert_eq!(pg.psql("SELECT v FROM kept"), "7");
    assert!(pg.url().contains(&format!(":{}/fileanalyzer", pg.port())));
}

#[test]
fn postgres_requires_the_password_over_tcp() {
    let pg = Postgres::start();
    let env = pg.env();
    let password = env.iter().find(|(k, _)| k == "DB_PASSWORD").unwrap();
    assert_eq!(password.1, Postgres::PASSWORD);
    let method = pg.psql("SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' LIMIT 1");
    assert_eq!(method, "scram-sha-256");
}

#[test]
fn dropping_postgres_stops_the_server() {
    let port = {
        let pg = Postgres::start();
        pg.port()
    };
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
