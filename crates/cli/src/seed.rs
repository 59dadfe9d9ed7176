//! The demo's sample warehouse, in a local Postgres database: deterministic `demo_events`,
//! `demo_users` and `demo_companies` tables.
//!
//! About 1% of the rows break a Mixpanel rule on purpose, so the run reports show failed records
//! with their reasons: events with a `distinct_id` Mixpanel refuses (`undefined`), a missing time or
//! an empty event name; users with an empty id; companies without an id.

use anyhow::Context;
use tokio_postgres::{Client, NoTls};

/// The events activation's query.
pub(crate) const QUERY: &str =
    "SELECT id, user_id, event, occurred_at, plan, amount, country, attributes FROM demo_events";
/// The user profiles activation's query.
pub(crate) const USERS_QUERY: &str =
    "SELECT user_id, email, name, plan, signed_up_at, company_id, tags FROM demo_users";
/// The group profiles activation's query.
pub(crate) const COMPANIES_QUERY: &str =
    "SELECT company_id, name, industry, employees FROM demo_companies";

/// How many users and companies go with `rows` events.
pub(crate) fn profile_counts(rows: u64) -> (u64, u64) {
    let users = (rows / 5).max(10);
    (users, (users / 10).max(3))
}

/// Connects to `url`, creating its database first (through the `postgres` database) when missing.
pub(crate) async fn connect_creating(url: &str) -> anyhow::Result<Client> {
    let config: tokio_postgres::Config = url
        .parse()
        .with_context(|| format!("`{}` is not a Postgres URL", redact(url)))?;
    let database = config.get_dbname().unwrap_or("postgres").to_owned();
    match open(&config).await {
        Ok(client) => Ok(client),
        Err(error)
            if error
                .as_db_error()
                .is_some_and(|e| e.code().code() == "3D000") =>
        {
            let mut admin = config.clone();
            admin.dbname("postgres");
            let client = open(&admin)
                .await
                .context("cannot reach Postgres to create the demo database")?;
            let quoted = database.replace('"', "\"\"");
            if let Err(e) = client
                .batch_execute(&format!("CREATE DATABASE \"{quoted}\""))
                .await
            {
                // Another demo may have created it in between.
                if e.as_db_error().is_none_or(|d| d.code().code() != "42P04") {
                    return Err(e).context(format!("cannot create database {database}"));
                }
            }
            open(&config)
                .await
                .with_context(|| format!("cannot connect to {}", redact(url)))
        }
        Err(error) => Err(error).with_context(|| format!("cannot connect to {}", redact(url))),
    }
}

async fn open(config: &tokio_postgres::Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "demo database connection ended");
        }
    });
    Ok(client)
}

/// A URL with its password hidden, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Makes `demo_events` hold exactly `rows` deterministic rows; returns how many are invalid on purpose.
pub(crate) async fn seed(client: &Client, rows: u64) -> anyhow::Result<u64> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS demo_events (
                id          bigint PRIMARY KEY,
                user_id     text NOT NULL,
                event       text NOT NULL,
                occurred_at timestamptz,
                plan        text NOT NULL,
                amount      numeric(10, 2) NOT NULL,
                country     text NOT NULL,
                attributes  jsonb NOT NULL
            )",
        )
        .await
        .context("cannot create demo_events")?;
    let count: i64 = client
        .query_one("SELECT count(*) FROM demo_events", &[])
        .await?
        .get(0);
    if count as u64 != rows {
        let limit = i64::try_from(rows).context("--rows is too large")?;
        client
            .batch_execute("TRUNCATE demo_events")
            .await
            .context("cannot empty demo_events")?;
        client
            .execute(
                "INSERT INTO demo_events
                 SELECT g,
                        CASE WHEN g % 199 = 0 THEN 'undefined' ELSE 'user-' || (g % 5000) END,
                        CASE WHEN g % 223 = 0 THEN ''
                             ELSE (ARRAY['Page Viewed','Signed Up','Order Placed','Plan Upgraded'])[1 + g % 4] END,
                        CASE WHEN g % 211 = 0 THEN NULL
                             ELSE timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => g) END,
                        (ARRAY['free','pro','team'])[1 + g % 3],
                        round((g % 1000) * 1.25, 2),
                        (ARRAY['US','DE','FR','IN','BR'])[1 + g % 5],
                        jsonb_build_object('source', 'demo', 'cohort', g / 1000)
                 FROM generate_series(1::bigint, $1::bigint) AS g",
                &[&limit],
            )
            .await
            .context("cannot fill demo_events")?;
    }
    let (users, companies) = profile_counts(rows);
    seed_profiles(client, users, companies).await?;
    Ok(invalid_rows(rows))
}

/// Fills `demo_users` (every 101st has an empty id) and `demo_companies` (every 50th has no id).
async fn seed_profiles(client: &Client, users: u64, companies: u64) -> anyhow::Result<()> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS demo_users (
                id           bigint PRIMARY KEY,
                user_id      text NOT NULL,
                email        text,
                name         text NOT NULL,
                plan         text NOT NULL,
                signed_up_at timestamptz NOT NULL,
                company_id   bigint NOT NULL,
                tags         text[] NOT NULL
            );
            CREATE TABLE IF NOT EXISTS demo_companies (
                id         bigint PRIMARY KEY,
                company_id bigint,
                name       text NOT NULL,
                industry   text NOT NULL,
                employees  integer NOT NULL
            )",
        )
        .await
        .context("cannot create the demo profile tables")?;
    let have: (i64, i64) = {
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM demo_users), (SELECT count(*) FROM demo_companies)",
                &[],
            )
            .await?;
        (row.get(0), row.get(1))
    };
    let users = i64::try_from(users).context("too many users")?;
    let companies = i64::try_from(companies).context("too many companies")?;
    if have == (users, companies) {
        return Ok(());
    }
    client
        .batch_execute("TRUNCATE demo_users, demo_companies")
        .await?;
    client
        .execute(
            "INSERT INTO demo_users
             SELECT g,
                    CASE WHEN g % 101 = 0 THEN '' ELSE 'user-' || g END,
                    CASE WHEN g % 7 = 0 THEN NULL ELSE 'user' || g || '@example.com' END,
                    'User ' || g,
                    (ARRAY['free','pro','team'])[1 + g % 3],
                    timestamptz '2025-01-01 00:00:00+00' + make_interval(mins => g::int),
                    1 + g % $2::bigint,
                    ARRAY['demo', (ARRAY['beta','early','enterprise'])[1 + g % 3]]
             FROM generate_series(1::bigint, $1::bigint) AS g",
            &[&users, &companies],
        )
        .await
        .context("cannot fill demo_users")?;
    client
        .execute(
            "INSERT INTO demo_companies
             SELECT g,
                    CASE WHEN g % 50 = 0 THEN NULL ELSE g END,
                    'Company ' || g,
                    (ARRAY['retail','software','finance','health'])[1 + g % 4],
                    (10 + g * 7 % 990)::integer
             FROM generate_series(1::bigint, $1::bigint) AS g",
            &[&companies],
        )
        .await
        .context("cannot fill demo_companies")?;
    Ok(())
}

/// How many of the first `rows` rows break a rule (any of the three ways).
pub(crate) fn invalid_rows(rows: u64) -> u64 {
    (1..=rows)
        .filter(|g| g % 199 == 0 || g % 211 == 0 || g % 223 == 0)
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_one_percent_of_rows_are_invalid() {
        let bad = invalid_rows(100_000);
        assert!((1300..1500).contains(&bad), "{bad}");
    }

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
